import t from 'tap';
import { AddressBook } from '../../src/events/addresses.js';
import { EventBus } from '../../src/events/bus.js';
import type { Lease } from '../../src/leases/lease.js';
import { parseIpv4 } from '../../src/net/ipv4.js';
import { parseMac } from '../../src/net/mac.js';

const A = parseMac('52:54:00:00:00:0a');
const B = parseMac('52:54:00:00:00:0b');
const C = parseMac('52:54:00:00:00:0c');
const D = parseMac('52:54:00:00:00:0d');
const NOW = 1_000_000;

const lease = (mac: typeof A | undefined, ip: string, state: Lease['state'], expiresAt: number, updatedAt: number): Lease =>
  ({ ip: parseIpv4(ip), ...(mac ? { mac } : {}), state, expiresAt, updatedAt });

t.test('seeded at start from the active leases only', async (t) => {
  const book = new AddressBook();
  const n = book.seed([
    lease(A, '10.0.0.10', 'bound', NOW + 60_000, NOW - 5000),
    lease(B, '10.0.0.11', 'bound', NOW - 1, NOW - 90_000), // expired while the daemon was down
    lease(C, '10.0.0.12', 'released', NOW + 60_000, NOW - 5000),
    lease(undefined, '10.0.0.13', 'declined', NOW + 60_000, NOW - 5000),
    lease(D, '10.0.0.14', 'declined', NOW + 60_000, NOW - 5000),
  ], NOW);
  t.equal(n, 1);
  t.equal(book.macOf('10.0.0.10'), A, 'a syslog or TFTP packet from the leased address is attributed');
  t.equal(book.macOf('::ffff:10.0.0.10'), A, 'also as an IPv4-mapped address');
  t.equal(book.ipOf(A), '10.0.0.10');
  for (const ip of ['10.0.0.11', '10.0.0.12', '10.0.0.13', '10.0.0.14']) t.equal(book.macOf(ip), undefined, `${ip} not attributed`);
});

t.test('bounded: the most recently changed leases are kept; DHCP later moves them as usual', async (t) => {
  const book = new AddressBook(2);
  book.seed([
    lease(C, '10.0.0.3', 'bound', NOW + 1, NOW - 1000), // newest
    lease(A, '10.0.0.1', 'bound', NOW + 1, NOW - 3000), // oldest: evicted
    lease(B, '10.0.0.2', 'bound', NOW + 1, NOW - 2000),
  ], NOW);
  t.same([book.macOf('10.0.0.1'), book.macOf('10.0.0.2'), book.macOf('10.0.0.3')], [undefined, B, C]);
  book.set(B, '10.0.0.9');
  t.equal(book.macOf('10.0.0.2'), undefined);
  t.equal(book.macOf('10.0.0.9'), B);
});

t.test('INFORM teaches nothing: its chaddr and ciaddr are whatever the sender wrote (issue 13)', async (t) => {
  const bus = new EventBus(() => NOW);
  const book = new AddressBook();
  bus.subscribe((e) => book.learn(e));
  bus.publish({ type: 'dhcp.ack', mac: A, ip: '10.0.0.10' });
  bus.publish({ type: 'dhcp.inform', mac: A, ip: '10.0.0.66' });
  bus.publish({ type: 'dhcp.inform', mac: B, ip: '10.0.0.67' });
  t.equal(book.ipOf(A), '10.0.0.10', 'the ACKed address stays');
  t.equal(book.ipOf(B), undefined, 'an INFORM alone teaches nothing');
  t.equal(book.macOf('10.0.0.66'), undefined);
});

t.test('a REQUEST meant for another server teaches only a ProxyDHCP book, never a server-mode one', async (t) => {
  const bus = new EventBus(() => NOW);
  const proxy = new AddressBook();
  // Server mode: option 50 of that REQUEST is whatever the sender wrote; learning it would remap
  // A's address to B (the victim's syslog and TFTP credited to the wrong MAC).
  const server = new AddressBook(undefined, false);
  bus.subscribe((e) => { proxy.learn(e); server.learn(e); });
  bus.publish({ type: 'dhcp.ack', mac: A, ip: '10.0.0.10', message: 'request' });
  bus.publish({ type: 'dhcp.ignored', mac: B, ip: '10.0.0.10', message: 'request' });
  t.equal(proxy.macOf('10.0.0.10'), B, 'proxy: the only place it learns the address a client takes');
  t.equal(server.macOf('10.0.0.10'), A);
  t.equal(server.ipOf(B), undefined);
});
