/**
 * perfdhcp (Kea) runs full DORA exchanges against the real daemon at a fixed
 * rate with many simulated clients. perfdhcp always acts as a relay (giaddr =
 * its own address, replies to it on port 67), so the daemon picks the subnet
 * from giaddr. Asserts: (almost) no drops, nearly every exchange completes,
 * and the API then lists one bound lease per acknowledged client, each with
 * its own pool address.
 */
import t from 'tap';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { startDaemon } from '../helpers/daemon.js';
import { apiLeases, inRange, removeDaemonDir, runPerfdhcp } from '../helpers/dhcp-tools.js';

const skip = netnsUnavailable();

const RATE = 200;
const CLIENTS = 500;
const PERIOD_S = 5;
const POOL = ['10.92.1.0', '10.92.3.254'] as const;

t.test('perfdhcp DORA at a fixed rate: no drops, one bound lease per client', { skip, timeout: 90_000 }, async (t) => {
  const net = new TestNet('pdh');
  t.teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const sdev = `${net.tag}s`, cdev = `${net.tag}c`;
  await net.veth(srv, sdev, cli, cdev, '10.92.0.1/22', '10.92.0.2/22');

  const api = 'http://10.92.0.1:8080';
  const d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.92.0.1:8080", publicUrl: "${api}" }
dhcp:
  mode: server
  interface: ${sdev}
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.92.0.0/22
      pool: [${POOL[0]}, ${POOL[1]}]
      router: 10.92.0.1
      leaseTime: 3600
`, { logLevel: 'info' });
  t.teardown(async () => { await d.stop(); await removeDaemonDir(d); });

  // -W: after the test period, wait 1 s for the last replies before counting drops.
  const p = await runPerfdhcp(net, cli, ['-4', '-r', String(RATE), '-R', String(CLIENTS), '-p', String(PERIOD_S), '-W', '1000000', '-l', cdev, '10.92.0.1'], 40_000);
  t.comment(`perfdhcp: DO ${JSON.stringify(p.do)} RA ${JSON.stringify(p.ra)} rate ${p.rate} exit ${p.code}`);
  t.ok(p.ra, 'perfdhcp ran full 4-way exchanges');
  const ra = p.ra!;
  const expected = RATE * PERIOD_S;
  t.ok(p.do.sent >= expected * 0.7, `perfdhcp sent about ${expected} DISCOVERs (${p.do.sent})`);
  t.ok(p.do.drops <= Math.max(2, p.do.sent * 0.005), `DISCOVER-OFFER drops ~0 (${p.do.drops} of ${p.do.sent})`);
  t.ok(ra.drops <= Math.max(2, ra.sent * 0.005), `REQUEST-ACK drops ~0 (${ra.drops} of ${ra.sent})`);
  t.ok(ra.received >= p.do.sent * 0.9, `4-way exchanges completed ${ra.received} >= 90% of ${p.do.sent} sent`);

  // What the daemon acknowledged: its last ACK per client.
  const acks = d.events('dhcp.ack');
  t.ok(acks.length >= ra.received, `daemon logged at least as many ACKs (${acks.length}) as perfdhcp received (${ra.received})`);
  const ackedIp = new Map<string, string>();
  for (const a of acks) ackedIp.set(String(a.mac), String(a.ip));
  t.ok(ackedIp.size >= Math.min(CLIENTS, ra.received) * 0.9, `distinct clients acknowledged: ${ackedIp.size}`);
  t.equal(d.events('dhcp.nak').length, 0, 'no NAKs');
  t.equal(d.events('dhcp.no-address').length, 0, 'pool never ran out');

  const leases = await apiLeases(net, srv, api, d.dataDir);
  const bound = leases.filter((l) => l.state === 'bound');
  t.equal(bound.length, ackedIp.size, 'API lists one bound lease per acknowledged client');
  t.equal(new Set(bound.map((l) => l.mac)).size, bound.length, 'distinct MACs');
  t.equal(new Set(bound.map((l) => l.ip)).size, bound.length, 'distinct IPs');
  t.ok(bound.every((l) => inRange(l.ip, POOL[0], POOL[1])), 'every address from the pool');
  const mismatched = bound.filter((l) => ackedIp.get(l.mac!) !== l.ip);
  t.same(mismatched, [], 'each lease has the address its client was acknowledged');
});
