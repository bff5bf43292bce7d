import t from 'tap';
import { LeaseTable, type LeaseTableOptions } from '../../src/leases/table.js';
import type { Lease } from '../../src/leases/lease.js';
import type { Ipv4 } from '../../src/net/ipv4.js';
import { formatIpv4 } from '../../src/net/ipv4.js';
import { macFromBytes, type Mac } from '../../src/net/mac.js';
import { ip, mac, reservation, subnet } from '../helpers/dhcp.js';

const NET = subnet('10.99.0.0/24', '10.99.0.100', '10.99.0.109');
const NET2 = subnet('10.20.0.0/24', '10.20.0.10', '10.20.0.19');
const RES_ONLY = subnet('10.30.0.0/24', undefined, undefined);
const HOLD = 30_000;
const QUAR = 600_000;
const T0 = 1_800_000_000_000;

const A = mac('52:54:00:00:00:0a');
const B = mac('52:54:00:00:00:0b');
const C = mac('52:54:00:00:00:0c');
const R = mac('52:54:00:00:00:99');

function table(extra: Partial<LeaseTableOptions> = {}, leases: Lease[] = []): LeaseTable {
  return new LeaseTable({
    subnets: [NET, NET2, RES_ONLY],
    reservations: [reservation(R, '10.99.0.50', 'reserved-host'), reservation('52:54:00:00:00:98', '10.30.0.5')],
    offerHoldMs: HOLD,
    quarantineMs: QUAR,
    ...extra,
  }, leases);
}

function offer(tb: LeaseTable, m: Mac, now: number, requested?: Ipv4, net = NET): Ipv4 {
  const c = tb.chooseOffer(m, net, requested, now);
  if (!c.ok) throw new Error(c.reason);
  tb.holdOffer(m, c.ip, now);
  return c.ip;
}

t.test('subnetOf', async (t) => {
  const tb = table();
  t.equal(tb.subnetOf(ip('10.99.0.1')), NET);
  t.equal(tb.subnetOf(ip('10.20.0.200')), NET2);
  t.equal(tb.subnetOf(ip('192.168.1.1')), undefined);
});

t.test('DORA in the table: offer, hold, bind, lookups', async (t) => {
  const tb = table();
  const c = tb.chooseOffer(A, NET, undefined, T0);
  t.same(c, { ok: true, ip: ip('10.99.0.100'), needsProbe: true }, 'first pool address, never used: probe it');
  tb.holdOffer(A, ip('10.99.0.100'), T0);
  t.equal(tb.offerOf(A, T0 + 1), ip('10.99.0.100'));
  t.equal(tb.counts(T0).offered, 1);
  const l = tb.bind(A, ip('10.99.0.100'), 3600, { hostname: 'a', clientArch: 7, vendorClass: 'PXEClient', clientId: '01ab' }, T0 + 10);
  t.same(l, {
    ip: ip('10.99.0.100'), mac: A, state: 'bound', expiresAt: T0 + 10 + 3_600_000, updatedAt: T0 + 10, boundAt: T0 + 10,
    hostname: 'a', clientArch: 7, vendorClass: 'PXEClient', clientId: '01ab',
  });
  t.equal(tb.offerOf(A, T0 + 11), undefined, 'bind consumes the offer');
  t.equal(tb.leaseOf(A), l);
  t.equal(tb.get(ip('10.99.0.100')), l);
  t.same(tb.list(), [l]);
  t.same(tb.counts(T0 + 20), { bound: 1, declined: 0, offered: 0 });
  t.same(tb.counts(T0 + 10 + 3_600_000), { bound: 0, declined: 0, offered: 0 }, 'expired leases are not counted');
  // Optional details absent → absent fields, not undefined-valued ones.
  const l2 = tb.bind(B, ip('10.99.0.101'), 60, {}, T0);
  t.same(Object.keys(l2).sort(), ['boundAt', 'expiresAt', 'ip', 'mac', 'state', 'updatedAt']);
});

t.test('boundAt: set by a new binding, kept by a renewal or re-ACK of the same address', async (t) => {
  const tb = table();
  const x = offer(tb, A, T0);
  t.equal(tb.bind(A, x, 3600, {}, T0).boundAt, T0);
  const renewed = tb.bind(A, x, 3600, {}, T0 + 60_000);
  t.equal(renewed.boundAt, T0, 'renewal: the binding still started at the first ACK');
  t.equal(renewed.updatedAt, T0 + 60_000);
  // A lease loaded from a record written before boundAt existed: its updatedAt stands in.
  const old = table({}, [{ ip: x, mac: A, state: 'bound', expiresAt: T0 + 3_600_000, updatedAt: T0 - 5000 }]);
  t.equal(old.bind(A, x, 3600, {}, T0).boundAt, T0 - 5000);
  // New bindings: another address, the same one after a release, or after it ran out.
  const y = ip('10.99.0.105');
  t.equal(tb.bind(A, y, 3600, {}, T0 + 70_000).boundAt, T0 + 70_000, 'moved');
  tb.release(A, y, T0 + 80_000);
  t.equal(tb.bind(A, y, 3600, {}, T0 + 90_000).boundAt, T0 + 90_000, 'after a release');
  t.equal(tb.bind(A, y, 1, {}, T0 + 100_000).boundAt, T0 + 90_000);
  t.equal(tb.bind(A, y, 3600, {}, T0 + 102_000).boundAt, T0 + 102_000, 'after it expired');
});

t.test('same client gets the same address again: offer, bound, released, expired', async (t) => {
  const tb = table();
  const x = offer(tb, A, T0);
  t.equal(offer(tb, A, T0 + 1000), x, 'a second DISCOVER during the hold');
  tb.bind(A, x, 60, {}, T0 + 2000);
  const again = tb.chooseOffer(A, NET, undefined, T0 + 3000);
  t.same(again, { ok: true, ip: x, needsProbe: false }, 'bound: same address, no probe');
  // Other clients come and go meanwhile.
  for (const m of [B, C]) tb.bind(m, offer(tb, m, T0 + 4000), 60, {}, T0 + 4000);
  t.ok(tb.release(A, x, T0 + 5000));
  t.same(tb.chooseOffer(A, NET, undefined, T0 + 6000), { ok: true, ip: x, needsProbe: false }, 'after release');
  t.same(tb.chooseOffer(A, NET, undefined, T0 + 10_000_000), { ok: true, ip: x, needsProbe: false }, 'long after expiry');
  // Requested address is ignored in favour of its own when both are free.
  t.equal(tb.chooseOffer(A, NET, ip('10.99.0.108'), T0 + 6000).ok && (tb.chooseOffer(A, NET, ip('10.99.0.108'), T0 + 6000) as { ip: Ipv4 }).ip, x);
});

t.test('free addresses: never-used ones first, released ones stay with their client', async (t) => {
  const tb = table();
  const x = offer(tb, A, T0);
  tb.bind(A, x, 60, {}, T0);
  tb.release(A, x, T0 + 1);
  // 9 more fresh addresses exist: B..J get those, not A's released one.
  const got = new Set<Ipv4>();
  for (let i = 0; i < 9; i++) {
    const m = macFromBytes(Uint8Array.of(2, 0, 0, 0, 1, i));
    got.add(offer(tb, m, T0 + 2));
  }
  t.notOk(got.has(x), 'released address kept back while fresh ones remain');
  t.equal(got.size, 9);
  // Now the pool only has A's released address left.
  const late = tb.chooseOffer(mac('02:00:00:00:02:00'), NET, undefined, T0 + 3);
  t.same(late, { ok: true, ip: x, needsProbe: false }, 'second pass reuses released addresses');
});

t.test('two clients never get the same address', async (t) => {
  const tb = table();
  const seen = new Map<Ipv4, Mac>();
  for (let i = 0; i < 10; i++) {
    const m = macFromBytes(Uint8Array.of(2, 0, 0, 0, 0, i));
    const a = offer(tb, m, T0 + i);
    t.notOk(seen.has(a), `${formatIpv4(a)} not handed out twice`);
    seen.set(a, m);
  }
  t.equal(seen.size, 10, 'whole pool');
  const full = tb.chooseOffer(mac('02:00:00:00:01:00'), NET, undefined, T0 + 20);
  t.equal(full.ok, false, 'held offers make the pool full');
  if (!full.ok) t.match(full.reason, /exhausted/);
  // And after binding them all, requested addresses of others are refused.
  for (const [a, m] of seen) tb.bind(m, a, 3600, {}, T0 + 30);
  for (const [a, m] of seen) {
    const other = m === A ? B : A;
    t.equal(tb.assignable(other, a, NET, T0 + 40), 'in-use');
  }
});

t.test('held offers block others, then expire', async (t) => {
  const tb = table();
  const x = offer(tb, A, T0);
  t.equal(tb.assignable(B, x, NET, T0 + HOLD - 1), 'in-use', 'held for A');
  t.equal(tb.assignable(A, x, NET, T0 + HOLD - 1), 'ok', 'A itself may have it');
  const b = tb.chooseOffer(B, NET, x, T0 + 1);
  t.ok(b.ok && b.ip !== x, 'B requesting A\'s held address gets another one');
  t.equal(tb.offerOf(A, T0 + HOLD), undefined, 'offer expired');
  t.equal(tb.assignable(B, x, NET, T0 + HOLD), 'ok', 'free again once the hold runs out');
  const b2 = tb.chooseOffer(B, NET, x, T0 + HOLD);
  t.same(b2, { ok: true, ip: x, needsProbe: true });
  t.equal(tb.sweepOffers(T0 + HOLD - 1), 0, 'nothing to sweep before expiry');
  tb.holdOffer(B, x, T0 + HOLD);
  t.equal(tb.sweepOffers(T0 + HOLD), 1, 'A\'s expired offer swept');
  t.equal(tb.offerOf(B, T0 + HOLD + 1), x, 'sweeping A did not drop B\'s hold on the same address');
  t.equal(tb.assignable(A, x, NET, T0 + HOLD + 1), 'in-use');
});

t.test('forgetOffer releases the hold immediately', async (t) => {
  const tb = table();
  const x = offer(tb, A, T0);
  tb.forgetOffer(A);
  t.equal(tb.offerOf(A, T0), undefined);
  t.equal(tb.assignable(B, x, NET, T0), 'ok');
});

t.test('reservations: honoured, never given to another client', async (t) => {
  const tb = table();
  t.same(tb.chooseOffer(R, NET, undefined, T0), { ok: true, ip: ip('10.99.0.50'), needsProbe: false }, 'outside the pool, no probe');
  t.same(tb.chooseOffer(R, NET, ip('10.99.0.105'), T0), { ok: true, ip: ip('10.99.0.50'), needsProbe: false }, 'reservation beats a requested address');
  t.equal(tb.reservationOf(R)?.hostname, 'reserved-host');
  t.equal(tb.assignable(A, ip('10.99.0.50'), NET, T0), 'reserved');
  const a = tb.chooseOffer(A, NET, ip('10.99.0.50'), T0);
  t.ok(a.ok && a.ip !== ip('10.99.0.50'), 'A asking for the reserved address gets another');
  // A reservation inside the pool is skipped by the free-address search.
  const inPool = table({ reservations: [reservation(R, '10.99.0.100')] });
  for (let i = 0; i < 9; i++) {
    const c = inPool.chooseOffer(macFromBytes(Uint8Array.of(2, 0, 0, 0, 0, i)), NET, undefined, T0);
    t.ok(c.ok && c.ip !== ip('10.99.0.100'));
    if (c.ok) inPool.holdOffer(macFromBytes(Uint8Array.of(2, 0, 0, 0, 0, i)), c.ip, T0);
  }
  const none = inPool.chooseOffer(A, NET, undefined, T0);
  t.equal(none.ok, false, 'the reserved address is not the last free one for others');
  t.same(inPool.chooseOffer(R, NET, undefined, T0), { ok: true, ip: ip('10.99.0.100'), needsProbe: false });
  // Reservation in another subnet: the client gets a dynamic address here.
  const elsewhere = tb.chooseOffer(mac('52:54:00:00:00:98'), NET, undefined, T0);
  t.ok(elsewhere.ok && NET.pool && elsewhere.ip >= NET.pool.first && elsewhere.ip <= NET.pool.last);
  // Pool-less subnet: reservations only.
  t.same(tb.chooseOffer(mac('52:54:00:00:00:98'), RES_ONLY, undefined, T0), { ok: true, ip: ip('10.30.0.5'), needsProbe: false });
  t.equal(tb.chooseOffer(A, RES_ONLY, undefined, T0).ok, false);
  t.equal(tb.chooseOffer(A, RES_ONLY, ip('10.30.0.7'), T0).ok, false, 'not-in-pool');
});

t.test('a reservation held by a stale lease of another client is not handed out', async (t) => {
  const stale: Lease = { ip: ip('10.99.0.50'), mac: A, state: 'bound', expiresAt: T0 + 1000, updatedAt: T0 - 1000 };
  const tb = table({}, [stale]);
  const c = tb.chooseOffer(R, NET, undefined, T0);
  t.equal(c.ok, false);
  if (!c.ok) t.match(c.reason, /reserved address in-use/);
  t.same(tb.chooseOffer(R, NET, undefined, T0 + 1000), { ok: true, ip: ip('10.99.0.50'), needsProbe: false }, 'after it expired');
});

t.test('a client with a reservation is moved off its dynamic address', async (t) => {
  // It got a dynamic lease before the reservation existed.
  const old: Lease = { ip: ip('10.99.0.104'), mac: R, state: 'bound', expiresAt: T0 + 3_600_000, updatedAt: T0 - 1 };
  const tb = table({}, [old]);
  t.equal(tb.assignable(R, ip('10.99.0.104'), NET, T0), 'reserved', 'renewing the dynamic address is refused');
  t.equal(tb.assignable(R, ip('10.99.0.50'), NET, T0), 'ok');
  // …but only while the reserved address can actually be had.
  const blocked = table({}, [old, { ip: ip('10.99.0.50'), mac: A, state: 'bound', expiresAt: T0 + 1000, updatedAt: T0 }]);
  t.equal(blocked.assignable(R, ip('10.99.0.104'), NET, T0), 'ok', 'keeps its address while the reservation is taken');
});

t.test('requested address honoured when free, refused otherwise', async (t) => {
  const tb = table();
  t.same(tb.chooseOffer(A, NET, ip('10.99.0.107'), T0), { ok: true, ip: ip('10.99.0.107'), needsProbe: true });
  tb.bind(B, ip('10.99.0.106'), 60, {}, T0);
  const inUse = tb.chooseOffer(A, NET, ip('10.99.0.106'), T0);
  t.ok(inUse.ok && inUse.ip !== ip('10.99.0.106'));
  for (const bad of ['10.99.0.99', '10.99.0.0', '10.99.0.255', '10.20.0.10', '8.8.8.8']) {
    const c = tb.chooseOffer(C, NET, ip(bad), T0);
    t.ok(c.ok && c.ip !== ip(bad) && c.ip >= NET.pool!.first && c.ip <= NET.pool!.last, `requested ${bad} not honoured`);
  }
});

t.test('assignable reasons', async (t) => {
  const tb = table();
  t.equal(tb.assignable(A, ip('10.99.0.0'), NET, T0), 'not-in-subnet', 'network address');
  t.equal(tb.assignable(A, ip('10.99.0.255'), NET, T0), 'not-in-subnet', 'broadcast address');
  t.equal(tb.assignable(A, ip('10.20.0.10'), NET, T0), 'not-in-subnet');
  t.equal(tb.assignable(A, ip('10.99.0.10'), NET, T0), 'not-in-pool');
  t.equal(tb.assignable(A, ip('10.99.0.100'), NET, T0), 'ok');
  t.equal(tb.assignable(A, ip('10.99.0.50'), NET, T0), 'reserved');
  tb.quarantine(ip('10.99.0.101'), T0);
  t.equal(tb.assignable(A, ip('10.99.0.101'), NET, T0), 'quarantined');
  tb.bind(B, ip('10.99.0.102'), 60, {}, T0);
  t.equal(tb.assignable(A, ip('10.99.0.102'), NET, T0), 'in-use');
  t.equal(tb.assignable(B, ip('10.99.0.102'), NET, T0), 'ok', 'the owner may renew');
  t.equal(tb.assignable(A, ip('10.99.0.102'), NET, T0 + 60_000), 'ok', 'expired');
});

t.test('release: only by the owner of a bound lease', async (t) => {
  const tb = table();
  const x = offer(tb, A, T0);
  tb.bind(A, x, 60, {}, T0);
  t.equal(tb.release(B, x, T0 + 1), undefined, 'not the owner');
  t.equal(tb.get(x)?.state, 'bound');
  t.equal(tb.release(A, ip('10.99.0.109'), T0 + 1), undefined, 'no lease there');
  const r = tb.release(A, x, T0 + 2);
  t.same(r, { ip: x, mac: A, state: 'released', expiresAt: T0 + 2, updatedAt: T0 + 2, boundAt: T0 });
  t.equal(tb.release(A, x, T0 + 3), undefined, 'twice');
  t.equal(tb.assignable(B, x, NET, T0 + 2), 'ok', 'free for others right away');
  t.equal(tb.leaseOf(A)?.state, 'released', 'kept as history for the client');
});

t.test('quarantine (DECLINE / conflict): not offered until it passes, then probed again', async (t) => {
  const tb = table();
  const x = offer(tb, A, T0);
  tb.bind(A, x, 3600, {}, T0);
  const q = tb.quarantine(x, T0 + 1, A);
  t.same(q, { ip: x, state: 'declined', expiresAt: T0 + 1 + QUAR, updatedAt: T0 + 1 });
  t.equal(tb.leaseOf(A), undefined, 'the client no longer holds it');
  t.same(tb.counts(T0 + 2), { bound: 0, declined: 1, offered: 0 });
  const a = tb.chooseOffer(A, NET, x, T0 + 2);
  t.ok(a.ok && a.ip !== x, 'not re-offered to the decliner, even when requested');
  // Fill every other address with held offers: x stays out.
  const others: Mac[] = [];
  for (let i = 0; i < 9; i++) {
    const m = macFromBytes(Uint8Array.of(2, 0, 0, 0, 0, i));
    others.push(m);
    const c = tb.chooseOffer(m, NET, undefined, T0 + 3);
    t.ok(c.ok && c.ip !== x);
    if (c.ok) tb.holdOffer(m, c.ip, T0 + 3);
  }
  t.equal(tb.chooseOffer(B, NET, undefined, T0 + 4).ok, false, 'only the quarantined address left: none');
  const later = T0 + 1 + QUAR;
  for (const m of others) tb.holdOffer(m, tb.offerOf(m, T0 + 3)!, later);
  const after = tb.chooseOffer(B, NET, undefined, later);
  t.same(after, { ok: true, ip: x, needsProbe: true }, 'back after the quarantine, and checked for a conflict again');
});

t.test('quarantine of a held address drops the hold; without a mac', async (t) => {
  const tb = table();
  const x = offer(tb, A, T0);
  tb.quarantine(x, T0);
  t.equal(tb.offerOf(A, T0), undefined);
  t.equal(tb.get(x)?.mac, undefined);
  const zero = table({ quarantineMs: 0 });
  const y = offer(zero, A, T0);
  zero.quarantine(y, T0);
  t.equal(zero.assignable(B, y, NET, T0), 'ok', 'quarantineSeconds 0 disables quarantine');
});

t.test('needsProbe only for addresses never used', async (t) => {
  const tb = table();
  const c1 = tb.chooseOffer(A, NET, undefined, T0);
  t.ok(c1.ok && c1.needsProbe);
  if (!c1.ok) return;
  tb.holdOffer(A, c1.ip, T0);
  tb.markProbedClean(c1.ip);
  tb.forgetOffer(A);
  t.same(tb.chooseOffer(B, NET, c1.ip, T0), { ok: true, ip: c1.ip, needsProbe: false }, 'probed clean before');
  tb.bind(B, c1.ip, 60, {}, T0);
  tb.release(B, c1.ip, T0 + 1);
  t.same(tb.chooseOffer(C, NET, c1.ip, T0 + 2), { ok: true, ip: c1.ip, needsProbe: false }, 'released: no probe');
});

t.test('a client moving to another address frees the old one', async (t) => {
  const tb = table();
  tb.bind(A, ip('10.99.0.100'), 3600, {}, T0);
  tb.bind(A, ip('10.20.0.10'), 3600, {}, T0 + 10);
  t.equal(tb.leaseOf(A)?.ip, ip('10.20.0.10'));
  t.equal(tb.get(ip('10.99.0.100'))?.state, 'released');
  t.equal(tb.assignable(B, ip('10.99.0.100'), NET, T0 + 11), 'ok');
  t.equal(tb.counts(T0 + 11).bound, 1);
});

t.test('loading from the store: newest lease of a client wins; declined stay quarantined', async (t) => {
  const leases: Lease[] = [
    { ip: ip('10.99.0.101'), mac: A, state: 'bound', expiresAt: T0 + 1000, updatedAt: T0 - 10 },
    { ip: ip('10.99.0.102'), mac: A, state: 'released', expiresAt: T0 - 5, updatedAt: T0 - 5 },
    { ip: ip('10.99.0.103'), state: 'declined', expiresAt: T0 + 1000, updatedAt: T0 - 1 },
    { ip: ip('10.99.0.104'), mac: B, state: 'bound', expiresAt: T0 + 1000, updatedAt: T0 - 1 },
  ];
  const tb = table({}, leases);
  t.equal(tb.leaseOf(A)?.ip, ip('10.99.0.102'), 'newer record wins');
  const reversed = table({}, [...leases].reverse());
  t.equal(reversed.leaseOf(A)?.ip, ip('10.99.0.102'), 'independent of load order');
  t.equal(tb.assignable(C, ip('10.99.0.103'), NET, T0), 'quarantined');
  t.equal(tb.assignable(C, ip('10.99.0.104'), NET, T0), 'in-use');
  t.same(tb.chooseOffer(B, NET, undefined, T0), { ok: true, ip: ip('10.99.0.104'), needsProbe: false });
  t.same(tb.list().map((l) => l.ip), [0x0a630065, 0x0a630066, 0x0a630067, 0x0a630068]);
  const c = tb.chooseOffer(C, NET, undefined, T0);
  t.same(c, { ok: true, ip: ip('10.99.0.100'), needsProbe: true });
});
