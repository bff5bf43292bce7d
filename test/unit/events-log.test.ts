import t from 'tap';
import { EventBus, type EventBody, type EventType } from '../../src/events/bus.js';
import { logBusEvents } from '../../src/events/log.js';
import { parseMac } from '../../src/net/mac.js';
import { memoryLogger } from '../helpers/memory-logger.js';

const MAC = parseMac('52:54:00:00:00:01');


/** The events no module logs: one line each from the bus subscriber. */
const LOGGED: EventBody[] = [
  { type: 'tftp.start', client: '10.0.0.9', file: 'undionly.kpxe', size: 70_000, mac: MAC },
  { type: 'iscsi.login', iqn: 'iqn.2026-11.org.metalboot:m1', initiator: 'iqn.x:m1', address: '10.0.0.9', mac: MAC },
  { type: 'iscsi.logout', iqn: 'iqn.2026-11.org.metalboot:m1', initiator: 'iqn.x:m1', mac: MAC },
  { type: 'power.command', mac: MAC, driver: 'ipmi', target: '10.0.1.5:623', command: 'power on', ok: false, ms: 12, error: 'unreachable' },
  { type: 'operation', id: 'op-1', kind: 'provision', mac: MAC, status: 'failed', step: 'disk', error: 'pool full' },
  { type: 'machine.changed', mac: MAC, what: 'disk-reset', actor: 'api' },
];

/** Every other bus type: its module writes its own, richer line (dhcp.ack, tftp.transfer, ...). */
const NOT_LOGGED: EventBody[] = [
  ...(['dhcp.offer', 'dhcp.ack', 'dhcp.nak', 'dhcp.decline', 'dhcp.release', 'dhcp.inform', 'dhcp.proxy-offer', 'dhcp.proxy-ack', 'dhcp.ignored', 'dhcp.no-address'] as const)
    .map((type) => ({ type, mac: MAC, ip: '10.0.0.9' })),
  { type: 'tftp.end', client: '10.0.0.9', file: 'f', ok: true, bytes: 1, size: 1, durationMs: 1, retransmits: 0, mac: MAC },
  { type: 'boot.script', mac: MAC, ip: '10.0.0.9', action: 'sanboot', served: true },
  { type: 'machine.state', mac: MAC, from: 'ready', to: 'active', reason: 'login', actor: 'system' },
  { type: 'syslog', mac: MAC, ip: '10.0.0.9', severity: 6, text: 'hello' },
];

t.test('one info line per event no module logs, named by the bus type, with its fields', async (t) => {
  const { log, lines } = memoryLogger();
  const bus = new EventBus(() => 1_000);
  logBusEvents(bus, log);
  for (const b of LOGGED) bus.publish({ ...b });
  const got = lines();
  t.same(got.map((l) => l['event']), LOGGED.map((b) => b.type), 'exactly one line each, in order');
  t.ok(got.every((l) => l['level'] === 'info'), 'at info, the default level');
  t.match(got[0], { event: 'tftp.start', client: '10.0.0.9', file: 'undionly.kpxe', size: 70_000, mac: MAC, seq: 1 });
  t.match(got[1], { event: 'iscsi.login', iqn: 'iqn.2026-11.org.metalboot:m1', initiator: 'iqn.x:m1', address: '10.0.0.9', mac: MAC });
  t.match(got[3], { event: 'power.command', driver: 'ipmi', target: '10.0.1.5:623', command: 'power on', ok: false, ms: 12, error: 'unreachable' });
  t.match(got[4], { event: 'operation', id: 'op-1', kind: 'provision', status: 'failed', step: 'disk', error: 'pool full' });
  t.ok(got.every((l) => !('type' in l) && !('at' in l)), 'the type is the event name; the line has its own time');
});

t.test('no line from this subscriber for the events their modules log', async (t) => {
  const { log, lines } = memoryLogger();
  const bus = new EventBus(() => 1_000);
  logBusEvents(bus, log);
  for (const b of NOT_LOGGED) bus.publish({ ...b });
  t.same(lines(), []);
});

t.test('every bus type is logged once: by this subscriber or by its module', async (t) => {
  // A Record over the union: a new bus type does not compile until it is placed here.
  const WHO: Record<EventType, 'bus' | 'module'> = {
    'dhcp.offer': 'module', 'dhcp.ack': 'module', 'dhcp.nak': 'module', 'dhcp.decline': 'module', 'dhcp.release': 'module',
    'dhcp.inform': 'module', 'dhcp.proxy-offer': 'module', 'dhcp.proxy-ack': 'module', 'dhcp.ignored': 'module', 'dhcp.no-address': 'module',
    'tftp.start': 'bus', 'tftp.end': 'module', 'boot.script': 'module', 'iscsi.login': 'bus', 'iscsi.logout': 'bus',
    'power.command': 'bus', 'machine.state': 'module', 'machine.changed': 'bus', 'operation': 'bus', 'syslog': 'module',
  };
  const of = (w: 'bus' | 'module') => Object.keys(WHO).filter((k) => WHO[k as EventType] === w).sort();
  t.same(LOGGED.map((b) => b.type).sort(), of('bus'));
  t.same(NOT_LOGGED.map((b) => b.type).sort(), of('module'));
});

t.test('the unsubscribe stops it', async (t) => {
  const { log, lines } = memoryLogger();
  const bus = new EventBus(() => 1_000);
  const off = logBusEvents(bus, log);
  off();
  bus.publish({ ...LOGGED[0]! });
  t.same(lines(), []);
});
