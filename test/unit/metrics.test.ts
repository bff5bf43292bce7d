import t from 'tap';
import Fastify from 'fastify';
import { EventBus } from '../../src/events/bus.js';
import { Metrics, BoundedLabel, poolLeaseCounts } from '../../src/metrics/registry.js';
import { metricsRoutes } from '../../src/http/routes/metrics.js';
import { parseMac } from '../../src/net/mac.js';
import { parseCidr, parseIpv4 } from '../../src/net/ipv4.js';
import type { DaemonProbes } from '../../src/status/types.js';
import type { Lease } from '../../src/leases/lease.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';

const MAC = parseMac('52:54:00:00:00:01');

function fixture() {
  const bus = new EventBus(() => 1000);
  const probes: DaemonProbes = {
    dhcp: { counters: { received: 10, malformed: 2, replies: 6, ignored: 1, errors: 0, byEvent: new Map([['dhcp.offer', 3], ['dhcp.ack', 3], ['dhcp.ignored', 1], ['dhcp.weird', 2]]) } },
    tftp: {
      counters: { requests: 4, malformed: 1, refused: 1, notFound: 1, busy: 0, busyClient: 5, busyUnknown: 6, wrongTid: 2, started: 2, completed: 1, failed: 1, declined: 4, bytes: 70_000, retransmits: 3 },
      transfersInProgress: () => [{ client: '10.0.0.5', file: 'x', size: 10, bytes: 5, startedAt: 0, retransmits: 0 }],
    },
    syslog: { counters: { received: 16, accepted: 5, malformed: 1, oversized: 1, rateLimited: 2, notServed: 4, rateLimitedTotal: 3, handlerErrors: 0 } },
    machines: { rows: () => [{ mac: MAC, name: 'a', state: 'active' }, { mac: 'x', name: 'b', state: 'active' }, { mac: 'y', name: 'c', state: 'provisioning' }] },
  };
  let usageCalls = 0;
  const metrics = new Metrics({
    bus, probes,
    leasePools: () => [{ pool: '10.0.0.0/24', active: 3, free: 48 }],
    iscsiSessions: () => 2,
    httpConnections: () => ({ open: 7, refusedPerAddress: 19_000, refusedTotal: 4 }),
    poolUsage: async () => { usageCalls++; return { backend: 'lvm', dataPercent: 41.5, metadataPercent: 7.25, totalBytes: 1e9, thresholdPercent: 90 }; },
  });
  return { bus, probes, metrics, usageCalls: () => usageCalls };
}

t.test('metric names and labels, read from counters and the bus; valid exposition text', async (t) => {
  const { bus, probes, metrics, usageCalls } = fixture();
  bus.publish({ type: 'power.command', mac: MAC, driver: 'ipmi', target: '10.0.1.5', command: 'chassis.power-on', ok: true, ms: 12 });
  bus.publish({ type: 'power.command', mac: MAC, driver: 'ipmi', target: '10.0.1.5', command: 'chassis.power-on', ok: false, ms: 3000, error: 'unreachable' });
  bus.publish({ type: 'operation', id: 'o1', kind: 'provision', mac: MAC, status: 'running', step: 'clone' });
  bus.publish({ type: 'operation', id: 'o1', kind: 'provision', mac: MAC, status: 'succeeded', step: 'done' });
  bus.publish({ type: 'operation', id: 'o2', kind: 'reset', mac: MAC, status: 'failed', step: 'x', error: 'e' });
  bus.publish({ type: 'iscsi.login', iqn: 'iqn.x:t', initiator: 'iqn.x:i' });
  metrics.observeHttp('GET', '/api/v1/disks/:mac', 200, 0.004);
  metrics.observeHttp('GET', undefined, 404, 0.001);
  metrics.observeHttp('BREW', '/x', 999, 0.001);
  metrics.observeSse(() => ({ clients: 3, dropped: 1 }));

  const text = await metrics.render();
  const { samples, types } = parsePromText(text);
  const v = (n: string, l: Record<string, string> = {}) => sampleValue(samples, n, l);
  t.equal(v('metalboot_dhcp_received_total'), 10);
  t.equal(v('metalboot_dhcp_malformed_total'), 2);
  t.equal(v('metalboot_dhcp_replies_total'), 6);
  t.equal(v('metalboot_dhcp_packets_total', { type: 'offer' }), 3);
  t.equal(v('metalboot_dhcp_packets_total', { type: 'ack' }), 3);
  t.equal(v('metalboot_dhcp_packets_total', { type: 'ignored' }), 1);
  t.equal(v('metalboot_dhcp_packets_total', { type: 'other' }), 2, 'unknown outcome names are folded');
  t.equal(v('metalboot_dhcp_leases', { pool: '10.0.0.0/24', state: 'active' }), 3);
  t.equal(v('metalboot_dhcp_leases', { pool: '10.0.0.0/24', state: 'free' }), 48);
  t.equal(v('metalboot_tftp_bytes_total'), 70_000);
  t.equal(v('metalboot_tftp_retransmits_total'), 3);
  t.equal(v('metalboot_tftp_transfers_total', { result: 'completed' }), 1);
  t.equal(v('metalboot_tftp_transfers_total', { result: 'failed' }), 1);
  t.equal(v('metalboot_tftp_transfers_total', { result: 'declined' }), 4, 'size queries apart from failures');
  t.equal(v('metalboot_tftp_errors_total', { kind: 'wrong_tid' }), 2);
  t.equal(v('metalboot_tftp_errors_total', { kind: 'busy_client' }), 5);
  t.equal(v('metalboot_tftp_errors_total', { kind: 'busy_unknown' }), 6);
  t.equal(v('metalboot_tftp_active_transfers'), 1);
  t.equal(v('metalboot_power_command_duration_seconds_count', { driver: 'ipmi', target: '10.0.1.5' }), 2);
  t.equal(v('metalboot_power_command_duration_seconds_bucket', { driver: 'ipmi', target: '10.0.1.5', le: '0.025' }), 1);
  t.equal(v('metalboot_power_command_errors_total', { driver: 'ipmi', target: '10.0.1.5', kind: 'unreachable' }), 1);
  t.equal(v('metalboot_power_commands_total', { driver: 'ipmi', command: 'chassis.power-on', result: 'ok' }), 1);
  t.equal(v('metalboot_operations_total', { kind: 'provision', result: 'succeeded' }), 1);
  t.equal(v('metalboot_operations_total', { kind: 'reset', result: 'failed' }), 1);
  t.equal(v('metalboot_iscsi_sessions'), 2);
  t.equal(v('metalboot_iscsi_logins_total'), 1);
  t.equal(v('metalboot_storage_pool_data_percent', { backend: 'lvm' }), 41.5);
  t.equal(v('metalboot_storage_pool_metadata_percent', { backend: 'lvm' }), 7.25);
  t.equal(v('metalboot_machines', { state: 'active' }), 2);
  t.equal(v('metalboot_machines', { state: 'provisioning' }), 1);
  t.equal(v('metalboot_syslog_messages_total', { result: 'rate_limited' }), 2);
  t.equal(v('metalboot_syslog_messages_total', { result: 'not_served' }), 4);
  t.equal(v('metalboot_syslog_dropped_total', { reason: 'not_served' }), 4);
  t.equal(v('metalboot_syslog_dropped_total', { reason: 'rate_source' }), 2);
  t.equal(v('metalboot_syslog_dropped_total', { reason: 'rate_total' }), 3);
  t.equal(v('metalboot_events_published_total'), 6);
  t.equal(v('metalboot_sse_clients'), 3);
  t.equal(v('metalboot_sse_dropped_total'), 1);
  t.equal(v('metalboot_http_connections'), 7);
  t.equal(v('metalboot_http_connections_refused_total', { reason: 'per_address' }), 19_000);
  t.equal(v('metalboot_http_connections_refused_total', { reason: 'total' }), 4);
  t.equal(types.get('metalboot_http_connections_refused_total'), 'counter');
  t.equal(v('metalboot_http_request_duration_seconds_count', { method: 'GET', route: '/api/v1/disks/:mac', status: '2xx' }), 1);
  t.equal(v('metalboot_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status: '4xx' }), 1);
  t.equal(v('metalboot_http_request_duration_seconds_count', { method: 'OTHER', route: '/x', status: 'other' }), 1);
  t.equal(types.get('metalboot_power_command_duration_seconds'), 'histogram');
  t.equal(types.get('metalboot_dhcp_packets_total'), 'counter');
  t.notMatch(text, /52:54:00/, 'no MAC in any label');

  // Counters move with their sources; a second scrape within the cache window reuses the pool reading.
  probes.dhcp!.counters.received = 15;
  probes.dhcp!.counters.byEvent.set('dhcp.ack', 4);
  const again = parsePromText(await metrics.render()).samples;
  t.equal(sampleValue(again, 'metalboot_dhcp_received_total'), 15);
  t.equal(sampleValue(again, 'metalboot_dhcp_packets_total', { type: 'ack' }), 4);
  t.equal(usageCalls(), 1, 'pool usage cached between scrapes');
  metrics.close();
  bus.publish({ type: 'iscsi.login', iqn: 'iqn.x:t', initiator: 'iqn.x:i' });
  t.equal(sampleValue(parsePromText(await metrics.render()).samples, 'metalboot_iscsi_logins_total'), 1, 'unsubscribed on close');
});

t.test('without sources: every family still renders, empty or zero', async (t) => {
  const m = new Metrics();
  const { samples, types } = parsePromText(await m.render());
  t.ok(types.has('metalboot_dhcp_packets_total'));
  t.equal(sampleValue(samples, 'metalboot_iscsi_sessions'), 0);
  t.equal(sampleValue(samples, 'metalboot_dhcp_received_total'), 0, 'no DHCP server: zero');
  t.notOk(samples.some((s) => s.name.startsWith('metalboot_storage_pool_')), 'no storage: no pool sample');
});

t.test('label values are bounded: hostile BMC names and commands cannot grow the series count', async (t) => {
  const bus = new EventBus(() => 0);
  const m = new Metrics({ bus });
  for (let i = 0; i < 3000; i++) bus.publish({ type: 'power.command', mac: MAC, driver: 'ipmi', target: `10.${i >> 8}.${i & 255}.1"\n{x}`, command: `c${i}`, ok: false, ms: 1, error: 'unreachable' });
  const { samples } = parsePromText(await m.render());
  const bmcs = new Set(samples.filter((s) => s.name === 'metalboot_power_command_errors_total').map((s) => s.labels['target']));
  t.equal(bmcs.size, 1025, '1024 BMCs and "other"');
  t.ok(bmcs.has('other'));
  t.ok([...bmcs].every((b) => /^[A-Za-z0-9_.:/-]+$/.test(b!)), 'sanitised');
  const cmds = new Set(samples.filter((s) => s.name === 'metalboot_power_commands_total').map((s) => s.labels['command']));
  t.equal(cmds.size, 65);
  const b = new BoundedLabel(1);
  t.same([b.value('a b'), b.value('c'), b.value('a b'), b.value('')], ['a_b', 'other', 'a_b', 'other']);
});

t.test('GET /metrics over fastify; HTTP durations labelled by route pattern, not URL', async (t) => {
  const m = new Metrics();
  const app = Fastify();
  metricsRoutes(app, m);
  app.get('/api/v1/disks/:mac', async () => ({}));
  t.teardown(() => app.close());
  for (const mac of ['a', 'b', 'c']) await app.inject({ url: `/api/v1/disks/${mac}` });
  await app.inject({ url: '/nothing/here?x=1' });
  const res = await app.inject({ url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const { samples } = parsePromText(res.body);
  t.equal(sampleValue(samples, 'metalboot_http_request_duration_seconds_count', { method: 'GET', route: '/api/v1/disks/:mac', status: '2xx' }), 3);
  t.equal(sampleValue(samples, 'metalboot_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status: '4xx' }), 1);
  t.notMatch(res.body, /nothing\/here|disks\/a"/);
});

t.test('poolLeaseCounts: active = bound and unexpired in the pool; declined held back; others free', async (t) => {
  const subnet = { cidr: parseCidr('10.0.0.0/24'), pool: { first: parseIpv4('10.0.0.100'), last: parseIpv4('10.0.0.109') }, dns: [], leaseTime: 60 };
  const noPool = { cidr: parseCidr('10.1.0.0/24'), dns: [], leaseTime: 60 };
  const l = (ip: string, state: Lease['state'], expiresAt: number): Lease => ({ ip: parseIpv4(ip), mac: MAC, state, expiresAt, updatedAt: 0 });
  const leases = [
    l('10.0.0.100', 'bound', 2000), l('10.0.0.101', 'bound', 500), l('10.0.0.102', 'declined', 2000),
    l('10.0.0.103', 'released', 2000), l('10.0.0.5', 'bound', 2000), l('10.0.0.109', 'bound', 2000),
  ];
  t.same(poolLeaseCounts([subnet, noPool], leases, 1000), [{ pool: '10.0.0.0/24', active: 2, free: 7 }]);
});

t.test('pool exhaustion: counted per subnet from the bus; other no-address outcomes are not', async (t) => {
  const { bus, metrics } = fixture();
  bus.publish({ type: 'dhcp.no-address', mac: MAC, reason: 'pool of 10.0.0.0/24 exhausted', exhaustedSubnet: '10.0.0.0/24' });
  bus.publish({ type: 'dhcp.no-address', mac: MAC, reason: 'pool of 10.0.0.0/24 exhausted', exhaustedSubnet: '10.0.0.0/24' });
  bus.publish({ type: 'dhcp.no-address', mac: MAC, reason: 'every address probed was in use', exhaustedSubnet: '10.1.0.0/24' });
  bus.publish({ type: 'dhcp.no-address', mac: MAC, reason: 'reserved address in-use' });
  const { samples, types } = parsePromText(await metrics.render());
  t.equal(types.get('metalboot_dhcp_pool_exhausted_total'), 'counter');
  t.equal(sampleValue(samples, 'metalboot_dhcp_pool_exhausted_total', { subnet: '10.0.0.0/24' }), 2);
  t.equal(sampleValue(samples, 'metalboot_dhcp_pool_exhausted_total', { subnet: '10.1.0.0/24' }), 1);
  t.equal(samples.filter((s) => s.name === 'metalboot_dhcp_pool_exhausted_total').length, 2, 'a taken reservation is not exhaustion');
  metrics.close();
});
