/**
 * events/attribution.ts over a real lease service (on a real store) and a real address book:
 * server mode trusts its own bound leases first; the address book fills in (proxy mode, or a
 * MAC without a lease); bindings come only from the lease table.
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { attribution } from '../../src/events/attribution.js';
import { AddressBook } from '../../src/events/addresses.js';
import { LeaseService } from '../../src/leases/service.js';
import { LeaseTable } from '../../src/leases/table.js';
import { openStore } from '../../src/store/db.js';
import { noConflictCheck } from '../../src/net/ping.js';
import { parseCidr, parseIpv4 } from '../../src/net/ipv4.js';
import { parseMac } from '../../src/net/mac.js';

const A = parseMac('52:54:00:00:a0:01');
const B = parseMac('52:54:00:00:a0:02');

t.test('server mode: the bound, unexpired lease first, the address book after; bindings only from leases', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-attr-'));
  const store = await openStore(path.join(dir, 'data'));
  t.teardown(async () => { await store.close(); await rm(dir, { recursive: true, force: true }); });
  let now = 1_800_000_000_000;
  const subnet = { cidr: parseCidr('10.61.0.0/24'), pool: { first: parseIpv4('10.61.0.100'), last: parseIpv4('10.61.0.110') }, dns: [], leaseTime: 600 };
  const leases = new LeaseService(new LeaseTable({ subnets: [subnet], reservations: [], offerHoldMs: 30_000, quarantineMs: 600_000 }), store, noConflictCheck, () => now);
  const book = new AddressBook();
  const who = attribution(leases, book, () => now);

  const offer = await leases.offer(A, subnet, undefined);
  if (!offer.ok) throw new Error(offer.reason);
  await leases.bind(A, offer.ip, subnet, {});
  book.set(A, '10.61.0.50'); // what some DHCP packet claimed
  book.set(B, '10.61.0.51');
  t.equal(who.ipOf(A), '10.61.0.100', 'the lease, not the address book');
  t.equal(who.macAt('10.61.0.100'), A);
  t.equal(who.macAt('::ffff:10.61.0.100'), A, 'IPv4-mapped source');
  t.ok(who.hasBinding('10.61.0.100'));
  t.equal(who.ipOf(B), '10.61.0.51', 'no lease: the address book');
  t.equal(who.macAt('10.61.0.51'), B);
  t.notOk(who.hasBinding('10.61.0.51'), 'the address book never makes a binding');
  now += 601_000;
  t.equal(who.ipOf(A), '10.61.0.50', 'an expired lease no longer counts');
  t.notOk(who.hasBinding('10.61.0.100'));
});

t.test('proxy mode (no lease service): the address book alone, and no bindings', async (t) => {
  const book = new AddressBook();
  book.set(A, '10.62.0.5');
  const who = attribution(undefined, book, () => 0);
  t.equal(who.ipOf(A), '10.62.0.5');
  t.equal(who.macAt('10.62.0.5'), A);
  t.notOk(who.hasBinding('10.62.0.5'));
});
