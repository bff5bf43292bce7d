import t from 'tap';
import { EventBus } from '../../src/events/bus.js';
import { AddressBook } from '../../src/events/addresses.js';
import { parseMac } from '../../src/net/mac.js';

const A = parseMac('52:54:00:00:00:0a');
const B = parseMac('52:54:00:00:00:0b');

t.test('bus: ordered seq, clock, subscribers isolated from each other, bounded ring', async (t) => {
  let now = 1000;
  const bus = new EventBus(() => now, 3);
  const got: number[] = [];
  bus.subscribe(() => { throw new Error('bad subscriber'); });
  const off = bus.subscribe((e) => got.push(e.seq));
  for (let i = 0; i < 5; i++) { now++; bus.publish({ type: 'tftp.start', client: '10.0.0.1', file: `f${i}`, size: i }); }
  t.same(got, [1, 2, 3, 4, 5]);
  t.equal(bus.counters.subscriberErrors, 5, 'a throwing subscriber is counted, not fatal');
  t.same(bus.recent().map((e) => e.seq), [3, 4, 5], 'ring keeps the newest, oldest first');
  t.same(bus.recent(() => true, 4).map((e) => e.seq), [5], 'resume after a seq');
  t.equal(bus.recent()[2]!.at, 1005);
  off();
  bus.publish({ type: 'tftp.start', client: 'x', file: 'y', size: 0 });
  t.same(got, [1, 2, 3, 4, 5], 'unsubscribed');
});

t.test('address book: learns from DHCP events, moves, forgets, is bounded', async (t) => {
  const bus = new EventBus(() => 0);
  const book = new AddressBook(2);
  bus.subscribe((e) => book.learn(e));
  bus.publish({ type: 'dhcp.ack', mac: A, ip: '10.0.0.5' });
  t.equal(book.macOf('10.0.0.5'), A);
  t.equal(book.macOf('::ffff:10.0.0.5'), A, 'IPv4-mapped form');
  t.equal(book.ipOf(A), '10.0.0.5');
  bus.publish({ type: 'dhcp.ack', mac: A, ip: '10.0.0.6' });
  t.equal(book.macOf('10.0.0.5'), undefined, 'old address dropped when the MAC moves');
  bus.publish({ type: 'dhcp.ack', mac: B, ip: '10.0.0.6' });
  t.equal(book.ipOf(A), undefined, 'an address taken over by another MAC');
  bus.publish({ type: 'dhcp.nak', mac: B, ip: '10.0.0.9' });
  t.equal(book.ipOf(B), '10.0.0.6', 'NAK teaches nothing');
  bus.publish({ type: 'dhcp.release', mac: B, ip: '10.0.0.6' });
  t.equal(book.macOf('10.0.0.6'), undefined, 'release forgets');
  bus.publish({ type: 'dhcp.ignored', mac: A, ip: '10.0.0.77', message: 'discover' });
  t.equal(book.ipOf(A), undefined, 'an ignored DISCOVER teaches nothing');
  bus.publish({ type: 'dhcp.ignored', mac: A, ip: '10.0.0.77', message: 'request' });
  t.equal(book.ipOf(A), '10.0.0.77', 'ProxyDHCP: the address a client requests from the lab\'s DHCP server');
  for (let i = 0; i < 5; i++) book.set(parseMac(`52:54:00:00:01:0${i}`), `10.0.1.${i}`);
  t.equal(book.macOf('10.0.1.0'), undefined, 'oldest evicted beyond max');
  t.equal(book.macOf('10.0.1.4'), parseMac('52:54:00:00:01:04'));
});

t.test('bus: syslog lines have a ring of their own and cannot push other events out', async (t) => {
  const bus = new EventBus(() => 0, 5, { syslog: 3 });
  bus.publish({ type: 'tftp.start', client: '10.0.0.1', file: 'a', size: 1 });
  bus.publish({ type: 'dhcp.ack', mac: A, ip: '10.0.0.5' });
  for (let i = 0; i < 1000; i++) bus.publish({ type: 'syslog', ip: '10.0.0.9', severity: 6, text: `flood ${i}` });
  bus.publish({ type: 'dhcp.ack', mac: B, ip: '10.0.0.6' });
  const r = bus.recent();
  t.same(r.filter((e) => e.type !== 'syslog').map((e) => e.seq), [1, 2, 1003], 'every other event is still there');
  t.same(r.filter((e) => e.type === 'syslog').map((e) => (e as { text: string }).text), ['flood 997', 'flood 998', 'flood 999'], 'the newest syslog lines, 3 of them');
  t.same(r.map((e) => e.seq), [1, 2, 1000, 1001, 1002, 1003], 'merged in publish order');
  t.same(bus.recent(() => true, 1001).map((e) => e.seq), [1002, 1003], 'resume after a seq across both rings');
  t.equal(bus.firstComplete(), 1000, 'a reader resuming before seq 999 has missed syslog lines, though older DHCP events are held');
  t.same(new EventBus(() => 0, 2, {}).publish({ type: 'syslog', ip: 'x', severity: 1, text: 'y' }).seq, 1, 'no separate ring when none is asked for');
});
