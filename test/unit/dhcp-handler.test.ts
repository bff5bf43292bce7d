/**
 * Server-mode and proxy-mode decisions: handler + LeaseService + LeaseTable
 * together, over an in-memory Store and a conflict prober the test controls.
 */
import t, { type Test } from 'tap';
import { classify } from '../../src/dhcp/classify.js';
import { handleProxy, handleServer, type HandlerContext, type Outcome } from '../../src/dhcp/handler.js';
import { getIpv4, getText, getUint32, getUint8, MessageType, Opt } from '../../src/dhcp/options.js';
import { decodePacket, encodePacket, FLAG_BROADCAST, type DhcpPacket } from '../../src/dhcp/packet.js';
import { CLIENT_PORT, SERVER_PORT } from '../../src/dhcp/reply.js';
import { LeaseService } from '../../src/leases/service.js';
import { LeaseTable } from '../../src/leases/table.js';
import type { Lease } from '../../src/leases/lease.js';
import type { ReservationConfig, SubnetConfig } from '../../src/config/types.js';
import { formatIpv4, type Ipv4 } from '../../src/net/ipv4.js';
import { macFromBytes, type Mac } from '../../src/net/mac.js';
import {
  BOOT_FILES, END, FakeProber, InMemoryStore, ip, ipxeDiscover, opt, ovmfDiscover, PUBLIC_URL, pxeBiosDiscover, rawPacket, reservation,
  subnet, tick, UUID_OPT_VALUE,
} from '../helpers/dhcp.js';

const SERVER = ip('10.99.0.1');
const OTHER_SERVER = ip('10.99.0.2');
const BCAST = ip('255.255.255.255');
const LAN = subnet('10.99.0.0/24', '10.99.0.100', '10.99.0.109', { router: ip('10.99.0.1'), leaseTime: 3600 });
const RELAYED = subnet('10.20.0.0/24', '10.20.0.10', '10.20.0.19', { router: ip('10.20.0.1'), leaseTime: 600 });
const RELAY = '10.20.0.1';
const T0 = 1_800_000_000_000;
const HOLD_MS = 30_000;
const QUAR_MS = 600_000;
const ctx: HandlerContext = { serverId: SERVER, bootFiles: BOOT_FILES, publicUrl: PUBLIC_URL };

interface Env {
  now: number;
  readonly store: InMemoryStore;
  readonly prober: FakeProber;
  readonly table: LeaseTable;
  readonly leases: LeaseService;
  readonly conflicts: [Ipv4, Mac][];
  /** Source defaults to a legitimate client: its ciaddr, else 0.0.0.0 (port 68). */
  server(buf: Buffer, source?: { address: Ipv4; port: number }): Promise<Outcome>;
  proxy(buf: Buffer, port: number, source?: { address: Ipv4; port: number }): Outcome;
}

function setup(o: { subnets?: SubnetConfig[]; reservations?: ReservationConfig[]; leases?: Lease[] } = {}): Env {
  const store = new InMemoryStore();
  const prober = new FakeProber();
  const table = new LeaseTable({
    subnets: o.subnets ?? [LAN, RELAYED],
    reservations: o.reservations ?? [],
    offerHoldMs: HOLD_MS,
    quarantineMs: QUAR_MS,
  }, o.leases ?? []);
  const conflicts: [Ipv4, Mac][] = [];
  const env: Env = {
    now: T0,
    store,
    prober,
    table,
    leases: undefined as unknown as LeaseService,
    conflicts,
    server: (buf, source) => {
      const p = decode(buf);
      return handleServer(p, classify(p), ctx, env.leases, source ?? { address: p.ciaddr, port: 68 });
    },
    proxy: (buf, port, source = { address: ip('0.0.0.0'), port: 68 }) => {
      const p = decode(buf);
      return handleProxy(p, classify(p), ctx, port, source);
    },
  };
  (env as { leases: LeaseService }).leases = new LeaseService(table, store, prober, () => env.now, { conflict: (a, m) => conflicts.push([a, m]) });
  return env;
}

function decode(buf: Buffer): DhcpPacket {
  const r = decodePacket(buf);
  if (!r.ok) throw new Error(r.reason);
  return r.packet;
}

/** A client: its MAC and how it builds its messages. */
class Client {
  readonly mac: Mac;
  constructor(readonly hw: number[], readonly xid = 0x1000 + hw[5]!) {
    this.mac = macFromBytes(Uint8Array.from(hw));
  }

  msg(type: MessageType, f: {
    requested?: string | Ipv4; serverId?: Ipv4; ciaddr?: string; giaddr?: string; flags?: number; extra?: Buffer[]; htype?: number; hlen?: number; op?: number;
  } = {}): Buffer {
    const opts: Buffer[] = [opt(53, [type])];
    if (f.requested !== undefined) {
      const r = typeof f.requested === 'string' ? ip(f.requested) : f.requested;
      opts.push(opt(50, [r >>> 24, (r >>> 16) & 255, (r >>> 8) & 255, r & 255]));
    }
    if (f.serverId !== undefined) opts.push(opt(54, [f.serverId >>> 24, (f.serverId >>> 16) & 255, (f.serverId >>> 8) & 255, f.serverId & 255]));
    opts.push(opt(55, [1, 3, 6, 12, 15, 28, 51, 54]), ...(f.extra ?? []), END);
    return rawPacket({
      xid: this.xid, chaddr: this.hw, flags: f.flags ?? 0, ciaddr: f.ciaddr, giaddr: f.giaddr, hops: f.giaddr ? 1 : 0,
      ...(f.htype !== undefined ? { htype: f.htype } : {}), ...(f.hlen !== undefined ? { hlen: f.hlen } : {}), ...(f.op !== undefined ? { op: f.op } : {}),
      options: Buffer.concat(opts),
    });
  }

  discover(f: Parameters<Client['msg']>[1] = {}): Buffer {
    return this.msg(MessageType.Discover, { flags: FLAG_BROADCAST, ...f });
  }

  select(addr: Ipv4, f: Parameters<Client['msg']>[1] = {}): Buffer {
    return this.msg(MessageType.Request, { requested: addr, serverId: SERVER, flags: FLAG_BROADCAST, ...f });
  }
}

const client = (n: number) => new Client([0x52, 0x54, 0x00, 0x00, 0x01, n]);

function offered(t: Test, o: Outcome): Ipv4 {
  t.equal(o.event, 'dhcp.offer', `offer (${o.reason ?? ''})`);
  t.ok(o.reply, 'has a reply');
  t.equal(getUint8(o.reply!.packet.options, Opt.MessageType), MessageType.Offer);
  t.equal(o.reply!.packet.yiaddr, o.ip);
  t.equal(decode(encodePacket(o.reply!.packet)).yiaddr, o.ip, 'encodable');
  return o.ip!;
}

function acked(t: Test, o: Outcome, addr: Ipv4): void {
  t.equal(o.event, 'dhcp.ack', `ack (${o.reason ?? ''})`);
  t.equal(o.ip, addr);
  t.equal(getUint8(o.reply!.packet.options, Opt.MessageType), MessageType.Ack);
  t.equal(o.reply!.packet.yiaddr, addr);
  t.equal(decode(encodePacket(o.reply!.packet)).yiaddr, addr, 'encodable');
}

function nakked(t: Test, o: Outcome, reason?: RegExp): void {
  t.equal(o.event, 'dhcp.nak');
  t.equal(getUint8(o.reply!.packet.options, Opt.MessageType), MessageType.Nak);
  t.equal(o.reply!.packet.yiaddr, 0);
  if (reason) t.match(o.reason ?? '', reason);
}

function silent(t: Test, o: Outcome, reason?: RegExp): void {
  t.equal(o.event, 'dhcp.ignored');
  t.equal(o.reply, undefined, 'no reply');
  if (reason) t.match(o.reason ?? '', reason);
}

t.test('full DORA', async (t) => {
  const env = setup();
  const a = client(1);
  const o = await env.server(a.discover({ extra: [opt(12, 'node-a')] }));
  const x = offered(t, o);
  t.equal(x, ip('10.99.0.100'));
  t.same(env.prober.probed, [x], 'a never-used address is probed before the offer');
  t.same(o.reply!.to, { address: BCAST, port: CLIENT_PORT });
  t.equal(getIpv4(o.reply!.packet.options, Opt.ServerId), SERVER);
  t.equal(getUint32(o.reply!.packet.options, Opt.LeaseTime), 3600);
  t.equal(env.store.writes.length, 0, 'an offer writes nothing');
  t.equal(env.leases.offerOf(a.mac), x, 'held');

  const ack = await env.server(a.select(x, { extra: [opt(12, 'node-a'), opt(93, [0, 7]), opt(60, 'PXEClient:Arch:00007'), opt(61, [1, 1, 2])] }));
  acked(t, ack, x);
  t.same(ack.reply!.to, { address: BCAST, port: CLIENT_PORT });
  t.equal(getUint32(ack.reply!.packet.options, Opt.RenewalTime), 1800);
  const stored = env.store.leases.get(x)!;
  t.match(stored, { ip: x, mac: a.mac, state: 'bound', expiresAt: T0 + 3_600_000, hostname: 'node-a', clientArch: 7, vendorClass: 'PXEClient:Arch:00007', clientId: '010102' });
  t.equal(env.leases.offerOf(a.mac), undefined, 'offer consumed');
  // The reply is encodable as is.
  const wire = decode(encodePacket(ack.reply!.packet));
  t.equal(wire.yiaddr, x);
});

t.test('the ACK is produced only after the lease write resolved', async (t) => {
  const env = setup();
  const a = client(1);
  const b = client(2);
  const x = offered(t, await env.server(a.discover()));
  env.store.manual = true;
  let done: Outcome | undefined;
  const pending = env.server(a.select(x)).then((o) => { done = o; return o; });
  await tick();
  await tick();
  t.equal(done, undefined, 'still waiting for the store');
  t.equal(env.store.pending.length, 1, 'one write in flight');
  t.equal(env.store.pending[0]!.leases[0]!.ip, x);
  t.equal(env.store.leases.size, 0, 'not yet durable');
  // Meanwhile a second client cannot be given the same address.
  const bReq = await env.server(b.msg(MessageType.Request, { requested: x }));
  nakked(t, bReq, /in-use/);
  t.equal(env.store.flush(), 1);
  const o = await pending;
  acked(t, o, x);
  t.equal(env.store.leases.get(x)?.state, 'bound');
});

t.test('a failing store write means no ACK', async (t) => {
  const env = setup();
  const a = client(1);
  const x = offered(t, await env.server(a.discover()));
  env.store.manual = true;
  const p = env.server(a.select(x));
  await tick();
  env.store.pending.splice(0).forEach((w) => w.reject(new Error('disk full')));
  await t.rejects(p, /disk full/);
});

t.test('same client gets the same address again, also after release', async (t) => {
  const env = setup();
  const a = client(1);
  const b = client(2);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  t.equal(offered(t, await env.server(a.discover())), x, 'bound: same address');
  t.equal(env.prober.probed.length, 1, 'no probe for its own address');
  // RELEASE, someone else arrives, then the first client comes back.
  t.equal((await env.server(a.msg(MessageType.Release, { ciaddr: formatIpv4(x), serverId: SERVER }))).event, 'dhcp.release');
  t.equal(env.store.leases.get(x)?.state, 'released');
  const y = offered(t, await env.server(b.discover()));
  t.not(y, x, 'a fresh address for the newcomer, the released one stays with its client');
  env.now += 3_600_000 * 5;
  t.equal(offered(t, await env.server(a.discover())), x, 'even hours later');
});

t.test('two clients never get the same address, also with concurrent DISCOVERs', async (t) => {
  const env = setup();
  env.prober.manual = true;
  const clients = Array.from({ length: 8 }, (_, i) => client(i + 1));
  const pending = clients.map((c) => env.server(c.discover()));
  await tick();
  t.equal(env.prober.resolveAll(), 8, 'eight probes in flight at once');
  const outcomes = await Promise.all(pending);
  const addrs = outcomes.map((o) => offered(t, o));
  t.equal(new Set(addrs).size, 8, 'all distinct');
  // Concurrent REQUESTs complete, still distinct.
  env.prober.manual = false;
  const acks = await Promise.all(clients.map((c, i) => env.server(c.select(addrs[i]!))));
  acks.forEach((o, i) => acked(t, o, addrs[i]!));
  t.equal(new Set([...env.store.leases.values()].map((l) => l.ip)).size, 8);
  t.equal(new Set([...env.store.leases.values()].map((l) => l.mac)).size, 8);
});

t.test('held offers block others, then expire', async (t) => {
  const env = setup();
  const a = client(1);
  const b = client(2);
  const x = offered(t, await env.server(a.discover()));
  nakked(t, await env.server(b.select(x)), /in-use/);
  const y = offered(t, await env.server(b.discover({ requested: x })));
  t.not(y, x, 'requested but held for another');
  env.now += HOLD_MS;
  t.equal(env.leases.offerOf(a.mac), undefined);
  acked(t, await env.server(b.select(x)), x);
  nakked(t, await env.server(a.select(x)), /in-use/);
  t.equal(env.leases.offerOf(b.mac), undefined, 'B\'s own hold (on the other address) consumed by the bind');
  t.equal(env.leases.sweep(), 1, 'A\'s expired hold is swept');
});

t.test('requested address honoured when free', async (t) => {
  const env = setup();
  const a = client(1);
  t.equal(offered(t, await env.server(a.discover({ requested: '10.99.0.107' }))), ip('10.99.0.107'));
  t.same(env.prober.probed, [ip('10.99.0.107')]);
  const b = client(2);
  const y = offered(t, await env.server(b.discover({ requested: '10.99.0.50' })));
  t.not(y, ip('10.99.0.50'), 'outside the pool: not honoured');
});

t.test('reservations: honoured with their hostname, never given to another client', async (t) => {
  const r = client(9);
  const env = setup({ reservations: [reservation(r.mac, '10.99.0.50', 'reserved-9')] });
  const a = client(1);
  const o = await env.server(r.discover({ extra: [opt(12, 'os-name')] }));
  t.equal(offered(t, o), ip('10.99.0.50'));
  t.equal(getText(o.reply!.packet.options, Opt.Hostname), 'reserved-9', 'configured hostname wins');
  t.same(env.prober.probed, [], 'reserved addresses are not probed');
  acked(t, await env.server(r.select(ip('10.99.0.50'))), ip('10.99.0.50'));
  t.equal(env.store.leases.get(ip('10.99.0.50'))?.hostname, 'reserved-9');
  nakked(t, await env.server(a.msg(MessageType.Request, { requested: '10.99.0.50' })), /reserved|in-use/);
  const ao = await env.server(a.discover({ requested: '10.99.0.50' }));
  t.not(offered(t, ao), ip('10.99.0.50'));
  // Even after the reserved client released it.
  await env.server(r.msg(MessageType.Release, { ciaddr: '10.99.0.50', serverId: SERVER }));
  nakked(t, await env.server(a.msg(MessageType.Request, { requested: '10.99.0.50' })), /reserved/);
});

t.test('a client given a reservation later is moved to it at its next renewal', async (t) => {
  const r = client(9);
  const dynamic: Lease = { ip: ip('10.99.0.104'), mac: r.mac, state: 'bound', expiresAt: T0 + 3_600_000, updatedAt: T0 - 1 };
  const env = setup({ reservations: [reservation(r.mac, '10.99.0.50')], leases: [dynamic] });
  nakked(t, await env.server(r.msg(MessageType.Request, { ciaddr: '10.99.0.104' })), /reserved/);
  nakked(t, await env.server(r.msg(MessageType.Request, { requested: '10.99.0.104' })), /reserved/);
  const x = offered(t, await env.server(r.discover()));
  t.equal(x, ip('10.99.0.50'));
  acked(t, await env.server(r.select(x)), x);
  t.equal(env.store.leases.get(ip('10.99.0.104'))?.state, 'released', 'the dynamic address is given back');
  // A reservation added through the API takes effect the same way.
  const a = client(1);
  const y = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(y)), y);
  t.same(await env.leases.reserve({ mac: a.mac, ip: ip('10.99.0.60') }), { ok: true });
  nakked(t, await env.server(a.msg(MessageType.Request, { ciaddr: formatIpv4(y) })), /reserved/);
  t.equal(offered(t, await env.server(a.discover())), ip('10.99.0.60'));
});

t.test('SELECTING with another server id: offer dropped, no reply', async (t) => {
  const env = setup();
  const a = client(1);
  const b = client(2);
  const x = offered(t, await env.server(a.discover()));
  const o = await env.server(a.msg(MessageType.Request, { requested: x, serverId: OTHER_SERVER, flags: FLAG_BROADCAST }));
  silent(t, o, /another server/);
  t.equal(env.leases.offerOf(a.mac), undefined, 'hold released');
  t.equal(env.leases.assignable(b.mac, x, LAN), 'ok', 'free for others at once');
  t.equal(env.store.writes.length, 0);
  silent(t, await env.server(a.msg(MessageType.Request, { serverId: SERVER })), /without requested address/);
});

t.test('INIT-REBOOT', async (t) => {
  const env = setup();
  const a = client(1);
  const b = client(2);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  // Rebooted: REQUEST with option 50, no server id, ciaddr 0.
  const own = await env.server(a.msg(MessageType.Request, { requested: x }));
  acked(t, own, x);
  t.same(own.reply!.to, { address: BCAST, port: CLIENT_PORT });
  // Someone else's address.
  nakked(t, await env.server(b.msg(MessageType.Request, { requested: x })), /in-use/);
  // An address of another of our subnets while on this one: wrong network.
  const wrong = await env.server(b.msg(MessageType.Request, { requested: '10.20.0.12' }));
  nakked(t, wrong, /wrong network/);
  t.same(wrong.reply!.to, { address: BCAST, port: CLIENT_PORT }, 'NAK broadcast');
  // Via a relay, asking for a LAN address: also wrong network, NAK to the relay with broadcast bit.
  const viaRelay = await env.server(b.msg(MessageType.Request, { requested: x, giaddr: RELAY }));
  nakked(t, viaRelay, /wrong network/);
  t.same(viaRelay.reply!.to, { address: ip(RELAY), port: SERVER_PORT });
  t.equal(viaRelay.reply!.packet.flags & FLAG_BROADCAST, FLAG_BROADCAST);
  // An address on a network we know nothing about: stay silent (another server may own it).
  silent(t, await env.server(b.msg(MessageType.Request, { requested: '192.168.1.50' })));
  // A client behind a relay we do not serve: silent.
  silent(t, await env.server(b.msg(MessageType.Request, { requested: '172.16.0.5', giaddr: '172.16.0.1' })), /do not serve/);
  // Quarantined address: NAK.
  env.table.quarantine(ip('10.99.0.105'), env.now);
  nakked(t, await env.server(b.msg(MessageType.Request, { requested: '10.99.0.105' })), /quarantined/);
  t.equal(env.store.leases.size, 1, 'NAKs write nothing');
});

t.test('RENEWING and REBINDING', async (t) => {
  const env = setup();
  const a = client(1);
  const b = client(2);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  env.now += 1_800_000;
  const renew = await env.server(a.msg(MessageType.Request, { ciaddr: formatIpv4(x) }));
  acked(t, renew, x);
  t.equal(renew.reply!.packet.ciaddr, x, 'ciaddr copied');
  t.same(renew.reply!.to, { address: x, port: CLIENT_PORT }, 'unicast to ciaddr');
  t.equal(env.store.leases.get(x)?.expiresAt, env.now + 3_600_000, 'extended');
  env.now += 1_500_000;
  const rebind = await env.server(a.msg(MessageType.Request, { ciaddr: formatIpv4(x), flags: FLAG_BROADCAST }));
  acked(t, rebind, x);
  t.equal(env.store.leases.get(x)?.expiresAt, env.now + 3_600_000);
  // Another client renewing an address it does not hold.
  nakked(t, await env.server(b.msg(MessageType.Request, { ciaddr: formatIpv4(x) })), /in-use/);
  // Renewing an address we do not serve: silent.
  silent(t, await env.server(b.msg(MessageType.Request, { ciaddr: '192.168.1.9' })));
  // A REQUEST with nothing to go on.
  silent(t, await env.server(b.msg(MessageType.Request)), /neither/);
});

t.test('RENEWING from a relayed subnet arrives unicast without giaddr and is ACKed', async (t) => {
  const env = setup();
  const c = client(3);
  const y = offered(t, await env.server(c.discover({ giaddr: RELAY })));
  t.ok(y >= ip('10.20.0.10') && y <= ip('10.20.0.19'), 'relay subnet');
  acked(t, await env.server(c.select(y, { giaddr: RELAY })), y);
  // RFC 2131 §4.3.2: RENEWING is unicast straight to the server; trust ciaddr.
  const renew = await env.server(c.msg(MessageType.Request, { ciaddr: formatIpv4(y) }));
  acked(t, renew, y);
  t.same(renew.reply!.to, { address: y, port: CLIENT_PORT });
  // REBINDING through the relay also works.
  acked(t, await env.server(c.msg(MessageType.Request, { ciaddr: formatIpv4(y), giaddr: RELAY })), y);
  // But a LAN address rebinding through the relay is on the wrong network.
  const a = client(1);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  nakked(t, await env.server(a.msg(MessageType.Request, { ciaddr: formatIpv4(x), giaddr: RELAY })), /wrong network/);
});

t.test('RELEASE only by the owner', async (t) => {
  const env = setup();
  const a = client(1);
  const b = client(2);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  silent(t, await env.server(b.msg(MessageType.Release, { ciaddr: formatIpv4(x), serverId: SERVER })), /does not hold/);
  t.equal(env.store.leases.get(x)?.state, 'bound');
  silent(t, await env.server(a.msg(MessageType.Release, { ciaddr: formatIpv4(x), serverId: OTHER_SERVER })), /another server/);
  t.equal(env.store.leases.get(x)?.state, 'bound');
  const rel = await env.server(a.msg(MessageType.Release, { ciaddr: formatIpv4(x), serverId: SERVER }));
  t.equal(rel.event, 'dhcp.release');
  t.equal(rel.reply, undefined, 'RELEASE is not answered');
  t.match(env.store.leases.get(x), { state: 'released', mac: a.mac, expiresAt: env.now });
  t.equal(env.leases.assignable(b.mac, x, LAN), 'ok');
});

t.test('DECLINE quarantines the address until the quarantine passes', async (t) => {
  const env = setup();
  const a = client(1);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  silent(t, await env.server(a.msg(MessageType.Decline, { requested: x, serverId: OTHER_SERVER })), /not for us/);
  silent(t, await env.server(a.msg(MessageType.Decline, { serverId: SERVER })), /not for us/);
  t.equal(env.store.leases.get(x)?.state, 'bound');
  const d = await env.server(a.msg(MessageType.Decline, { requested: x, serverId: SERVER }));
  t.equal(d.event, 'dhcp.decline');
  t.equal(d.reply, undefined);
  t.match(env.store.leases.get(x), { state: 'declined', expiresAt: env.now + QUAR_MS });
  t.equal(env.store.leases.get(x)?.mac, undefined);
  const y = offered(t, await env.server(a.discover()));
  t.not(y, x, 'not offered again to the decliner');
  nakked(t, await env.server(client(5).msg(MessageType.Request, { requested: x })), /quarantined/);
  // After the quarantine it comes back, probed again first.
  env.now += QUAR_MS;
  env.prober.probed.length = 0;
  const o = await env.server(client(6).discover({ requested: x }));
  t.equal(offered(t, o), x);
  t.same(env.prober.probed, [x], 'probed again');
});

t.test('DECLINE by a client that does not hold the address is ignored', async (t) => {
  const env = setup();
  const a = client(1);
  const b = client(2);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  silent(t, await env.server(b.msg(MessageType.Decline, { requested: x, serverId: SERVER })), /held by another client/);
  t.match(env.store.leases.get(x), { state: 'bound', mac: a.mac }, 'owner keeps its lease');
  t.equal(env.leases.leaseOf(a.mac)?.ip, x);
  // An address merely offered to A cannot be declined by B either.
  const y = offered(t, await env.server(a.discover({ requested: '10.99.0.108' })));
  t.equal(y, x, 'A still gets its own');
  const c = client(3);
  const z = offered(t, await env.server(c.discover()));
  silent(t, await env.server(b.msg(MessageType.Decline, { requested: z, serverId: SERVER })));
  t.equal(env.leases.offerOf(c.mac), z);
});

t.test('conflict probe: an address found in use is quarantined and another offered', async (t) => {
  const env = setup();
  const a = client(1);
  env.prober.inUseSet.add(ip('10.99.0.100'));
  const o = await env.server(a.discover());
  t.equal(offered(t, o), ip('10.99.0.101'));
  t.same(env.prober.probed, [ip('10.99.0.100'), ip('10.99.0.101')]);
  t.match(env.store.leases.get(ip('10.99.0.100')), { state: 'declined', expiresAt: T0 + QUAR_MS }, 'quarantine persisted');
  t.same(env.conflicts, [[ip('10.99.0.100'), a.mac]]);
  // The conflicting address is not offered to the next client either, and not probed again.
  const b = client(2);
  t.equal(offered(t, await env.server(b.discover({ requested: '10.99.0.100' }))), ip('10.99.0.102'));
  t.equal(env.prober.probed.filter((p) => p === ip('10.99.0.100')).length, 1);
  // Only never-used addresses are probed: A's own address is not probed again.
  env.prober.probed.length = 0;
  acked(t, await env.server(a.select(ip('10.99.0.101'))), ip('10.99.0.101'));
  t.equal(offered(t, await env.server(a.discover())), ip('10.99.0.101'));
  t.same(env.prober.probed, []);
});

t.test('conflict probe: everything in use gives dhcp.no-address, bounded probes', async (t) => {
  const env = setup();
  for (let i = 100; i <= 109; i++) env.prober.inUseSet.add(ip(`10.99.0.${i}`));
  const o = await env.server(client(1).discover());
  t.equal(o.event, 'dhcp.no-address');
  t.equal(o.reply, undefined);
  t.ok(env.prober.probed.length >= 2 && env.prober.probed.length <= 5, `bounded (${env.prober.probed.length} probes)`);
  t.equal(env.conflicts.length, env.prober.probed.length, 'each conflict quarantined');
  t.equal([...env.store.leases.values()].filter((l) => l.state === 'declined').length, env.prober.probed.length);
});

t.test('pool exhaustion gives dhcp.no-address', async (t) => {
  const tiny = subnet('10.99.0.0/24', '10.99.0.100', '10.99.0.101');
  const env = setup({ subnets: [tiny] });
  offered(t, await env.server(client(1).discover()));
  offered(t, await env.server(client(2).discover()));
  const o = await env.server(client(3).discover());
  t.equal(o.event, 'dhcp.no-address');
  t.equal(o.reply, undefined);
  t.match(o.reason ?? '', /exhausted/);
  t.equal(o.mac, client(3).mac);
});

t.test('a relayed DISCOVER gets an address in the relay\'s subnet, reply to the relay', async (t) => {
  const env = setup();
  const c = client(3);
  const o = await env.server(c.discover({ giaddr: RELAY, extra: [opt(82, [1, 2, 0, 7])] }));
  const y = offered(t, o);
  t.equal(y, ip('10.20.0.10'));
  t.same(o.reply!.to, { address: ip(RELAY), port: SERVER_PORT });
  t.equal(o.reply!.packet.giaddr, ip(RELAY));
  t.equal(getUint32(o.reply!.packet.options, Opt.LeaseTime), 600, 'that subnet\'s lease time');
  t.equal(getIpv4(o.reply!.packet.options, Opt.Router), ip('10.20.0.1'));
  const ack = await env.server(c.select(y, { giaddr: RELAY }));
  acked(t, ack, y);
  t.same(ack.reply!.to, { address: ip(RELAY), port: SERVER_PORT });
  // A relay whose subnet we do not serve: ignored.
  silent(t, await env.server(client(4).discover({ giaddr: '172.16.0.1' })), /no subnet for relay/);
});

t.test('a client moving subnets: its old lease is released, in the store too', async (t) => {
  const env = setup();
  const a = client(1);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  env.now += 1000;
  const y = offered(t, await env.server(a.discover({ giaddr: RELAY })));
  acked(t, await env.server(a.select(y, { giaddr: RELAY })), y);
  t.equal(env.store.leases.get(y)?.state, 'bound');
  t.equal(env.store.leases.get(x)?.state, 'released', 'old address persisted as released');
  // A restart from the store sees one bound lease for the client.
  const reloaded = new LeaseTable({ subnets: [LAN, RELAYED], reservations: [], offerHoldMs: HOLD_MS, quarantineMs: QUAR_MS }, await env.store.loadLeases());
  t.equal(reloaded.counts(env.now).bound, 1);
  t.equal(reloaded.assignable(client(2).mac, x, LAN, env.now), 'ok', 'old address free after restart');
});

t.test('INFORM: configuration ACK to ciaddr, no lease', async (t) => {
  const env = setup();
  const a = client(1);
  const o = await env.server(a.msg(MessageType.Inform, { ciaddr: '10.99.0.20' }));
  t.equal(o.event, 'dhcp.inform');
  t.same(o.reply!.to, { address: ip('10.99.0.20'), port: CLIENT_PORT });
  t.equal(o.reply!.packet.yiaddr, 0);
  t.notOk(o.reply!.packet.options.has(Opt.LeaseTime));
  t.equal(getIpv4(o.reply!.packet.options, Opt.Router), ip('10.99.0.1'));
  t.equal(env.store.writes.length, 0);
  silent(t, await env.server(a.msg(MessageType.Inform, { ciaddr: '192.168.0.5' })), /do not serve/);
  silent(t, await env.server(a.msg(MessageType.Inform)), /do not serve/);
});

t.test('server mode ignores what it must not answer', async (t) => {
  const env = setup();
  const a = client(1);
  silent(t, await env.server(a.discover({ htype: 6 })), /Ethernet/);
  silent(t, await env.server(a.discover({ op: 2 })), /BOOTREQUEST/);
  silent(t, await env.server(rawPacket({ options: Buffer.concat([opt(55, [1]), END]) })), /no message type/);
  for (const mt of [MessageType.Offer, MessageType.Ack, MessageType.Nak, 13 as MessageType]) {
    silent(t, await env.server(a.msg(mt)), /unexpected/);
  }
  t.equal(env.store.writes.length, 0);
  t.same(env.prober.probed, []);
});

t.test('network-boot clients in server mode get boot information with their lease', async (t) => {
  const env = setup();
  const pxe = await env.server(pxeBiosDiscover());
  offered(t, pxe);
  t.equal(pxe.reply!.packet.file, 'undionly.kpxe');
  t.equal(pxe.reply!.packet.siaddr, SERVER);
  t.equal(getText(pxe.reply!.packet.options, Opt.VendorClass), 'PXEClient');
  t.same(pxe.reply!.packet.options.get(Opt.ClientUuid), UUID_OPT_VALUE);
  t.same(pxe.boot, { kind: 'tftp', file: 'undionly.kpxe' });
  const efi = await env.server(ovmfDiscover());
  t.equal(offered(t, efi) !== pxe.ip, true);
  t.equal(efi.reply!.packet.file, 'snponly.efi');
  const ipxe = await env.server(ipxeDiscover());
  offered(t, ipxe);
  t.equal(ipxe.reply!.packet.file, 'http://10.99.0.1:8080/boot/52:54:00:aa:bb:02.ipxe');
  t.same([...ipxe.reply!.packet.options.get(Opt.Ipxe)!], [176, 1, 1]);
  // The PXE ROM and the iPXE it loads share one lease (same MAC).
  const rom = await env.server(pxeBiosDiscover({ chaddr: [0x52, 0x54, 0x00, 0xaa, 0xbb, 0x02] }));
  t.equal(rom.ip, ipxe.ip);
});

t.test('proxy mode', async (t) => {
  const env = setup();
  // Not a PXE client: ignored.
  const plain = env.proxy(client(1).discover(), 67);
  silent(t, plain, /not a PXE client/);
  silent(t, env.proxy(rawPacket({ options: Buffer.concat([opt(53, [1]), opt(60, 'HTTPClient:Arch:00016'), opt(93, [0, 16]), END]) }), 67), /not a PXE client/);
  // DISCOVER on 67 → OFFER broadcast, no address.
  const off = env.proxy(pxeBiosDiscover(), 67);
  t.equal(off.event, 'dhcp.proxy-offer');
  t.same(off.reply!.to, { address: BCAST, port: CLIENT_PORT });
  t.equal(off.reply!.packet.yiaddr, 0);
  t.equal(getUint8(off.reply!.packet.options, Opt.MessageType), MessageType.Offer);
  t.equal(off.reply!.packet.file, 'undionly.kpxe');
  t.notOk(off.reply!.packet.options.has(Opt.LeaseTime));
  // REQUEST on 67 is the real DHCP server's business.
  silent(t, env.proxy(rawPacket({ options: Buffer.concat([opt(53, [3]), opt(60, 'PXEClient'), END]) }), 67), /only DISCOVER/);
  // REQUEST on 4011 → ACK to the source.
  const src = { address: ip('10.99.0.150'), port: 4011 };
  const req4011 = rawPacket({
    ciaddr: '10.99.0.150', chaddr: [0x52, 0x54, 0x00, 0xaa, 0xbb, 0x03],
    options: Buffer.concat([opt(53, [3]), opt(60, 'PXEClient:Arch:00007:UNDI:003000'), opt(93, [0, 7]), opt(97, UUID_OPT_VALUE), END]),
  });
  const ack = env.proxy(req4011, 4011, src);
  t.equal(ack.event, 'dhcp.proxy-ack');
  t.same(ack.reply!.to, src);
  t.equal(ack.reply!.packet.yiaddr, 0, 'never yiaddr');
  t.equal(getUint8(ack.reply!.packet.options, Opt.MessageType), MessageType.Ack);
  t.equal(ack.reply!.packet.file, 'snponly.efi');
  t.same(ack.reply!.packet.options.get(Opt.ClientUuid), UUID_OPT_VALUE);
  // DISCOVER on 4011 is answered too; INFORM is not.
  t.equal(env.proxy(pxeBiosDiscover(), 4011, src).event, 'dhcp.proxy-ack');
  silent(t, env.proxy(rawPacket({ options: Buffer.concat([opt(53, [8]), opt(60, 'PXEClient'), END]) }), 4011, src), /unexpected inform/);
  // A PXE client with nothing to boot, non-Ethernet, BOOTREPLY.
  silent(t, env.proxy(rawPacket({ options: Buffer.concat([opt(53, [1]), opt(60, 'PXEClient'), opt(93, [0, 10]), END]) }), 67), /no PXE boot program/);
  silent(t, env.proxy(pxeBiosDiscover({ htype: 32, hlen: 0 }), 67), /Ethernet/);
  silent(t, env.proxy(pxeBiosDiscover({ op: 2 }), 67), /BOOTREQUEST/);
  // iPXE via proxy: script, no 175.
  const ip4 = env.proxy(ipxeDiscover(), 67);
  t.equal(ip4.reply!.packet.file, 'http://10.99.0.1:8080/boot/52:54:00:aa:bb:02.ipxe');
  t.notOk(ip4.reply!.packet.options.has(Opt.Ipxe));
  // Proxy mode never touches leases.
  t.equal(env.store.writes.length, 0);
  t.equal(env.table.list().length, 0);
  t.same(env.prober.probed, []);
});

// Issue 13.1: RELEASE and INFORM from a sender that does not hold the address change nothing.
t.test('RELEASE only from the address it releases (RFC 2131 §4.4.6), even with the owner\'s chaddr', async (t) => {
  const env = setup();
  const a = client(1);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  const attacker = { address: ip('10.99.0.66'), port: 68 };
  silent(t, await env.server(a.msg(MessageType.Release, { ciaddr: formatIpv4(x), serverId: SERVER }), attacker), /not sent from the address it releases/);
  silent(t, await env.server(a.msg(MessageType.Release, { ciaddr: formatIpv4(x), serverId: SERVER, giaddr: RELAY }), { address: ip(RELAY), port: 67 }), /not sent from/);
  t.equal(env.store.leases.get(x)?.state, 'bound', 'still bound');
  t.equal((await env.server(a.msg(MessageType.Release, { ciaddr: formatIpv4(x), serverId: SERVER }), { address: x, port: 68 })).event, 'dhcp.release', 'from its own address it is released');
});

t.test('INFORM: not from its ciaddr, or with the network or broadcast address, is ignored; relayed only via its relay', async (t) => {
  const env = setup();
  const a = client(1);
  const attacker = { address: ip('10.99.0.66'), port: 68 };
  silent(t, await env.server(a.msg(MessageType.Inform, { ciaddr: '10.99.0.20' }), attacker), /not sent from its ciaddr/);
  silent(t, await env.server(a.msg(MessageType.Inform, { ciaddr: '10.99.0.255' })), /network or broadcast/);
  silent(t, await env.server(a.msg(MessageType.Inform, { ciaddr: '10.99.0.0' })), /network or broadcast/);
  silent(t, await env.server(a.msg(MessageType.Inform, { ciaddr: '10.20.0.255', giaddr: RELAY }), { address: ip(RELAY), port: 67 }), /network or broadcast/);
  // Relayed (giaddr set, RFC 2131 §4.4.3 broadcast INFORM): from the relay, ciaddr in the relay's subnet.
  const relayed = await env.server(a.msg(MessageType.Inform, { ciaddr: '10.20.0.15', giaddr: RELAY }), { address: ip(RELAY), port: 67 });
  t.equal(relayed.event, 'dhcp.inform', 'relayed INFORM answered');
  t.same(relayed.reply!.to, { address: ip(RELAY), port: SERVER_PORT }, 'back through the relay');
  silent(t, await env.server(a.msg(MessageType.Inform, { ciaddr: '10.20.0.15', giaddr: RELAY }), attacker), /not from its relay/);
  silent(t, await env.server(a.msg(MessageType.Inform, { ciaddr: '10.99.0.20', giaddr: RELAY }), { address: ip(RELAY), port: 67 }), /another subnet/);
  t.equal(env.store.writes.length, 0, 'no INFORM wrote anything');
  t.equal(env.leases.leaseOf(a.mac), undefined, 'and none bound');
});

t.test('broadcast, multicast and all-zero chaddr are ignored in both modes', async (t) => {
  const env = setup();
  for (const hw of [[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01], [0, 0, 0, 0, 0, 0]]) {
    const c = new Client(hw);
    silent(t, await env.server(c.discover()), /chaddr is (the broadcast|a multicast|the all-zero)/);
    silent(t, env.proxy(pxeBiosDiscover({ chaddr: hw }), SERVER_PORT), /chaddr is/);
  }
  t.equal(env.store.writes.length, 0);
});

t.test('an exhausted pool names its subnet in the outcome (for the warning and the metric)', async (t) => {
  const env = setup({ subnets: [subnet('10.99.0.0/24', '10.99.0.100', '10.99.0.100', { leaseTime: 600 })] });
  const a = client(1);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  const o = await env.server(client(2).discover());
  t.equal(o.event, 'dhcp.no-address');
  t.equal(o.exhaustedSubnet, '10.99.0.0/24');
  t.match(o.reason, /exhausted/);
});

t.test('DECLINE of a bound lease only shortly after its ACK (RFC 2131 §4.4.1): a late one, chaddr forged or not, is ignored', async (t) => {
  const env = setup();
  const a = client(1);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  env.now += 61_000;
  silent(t, await env.server(a.msg(MessageType.Decline, { requested: x, serverId: SERVER })), /long after the ACK/);
  t.match(env.store.leases.get(x), { state: 'bound', mac: a.mac }, 'the holder keeps its lease');
  // The window runs from the binding's first ACK: neither a renewal nor an INIT-REBOOT of the
  // same address (which anyone can send from 0.0.0.0 with the holder's chaddr) reopens it.
  acked(t, await env.server(a.msg(MessageType.Request, { ciaddr: formatIpv4(x) })), x);
  env.now += 2000;
  silent(t, await env.server(a.msg(MessageType.Decline, { requested: x, serverId: SERVER })), /long after the ACK/);
  acked(t, await env.server(a.msg(MessageType.Request, { requested: x }), { address: ip('0.0.0.0'), port: 68 }), x);
  env.now += 2000;
  silent(t, await env.server(a.msg(MessageType.Decline, { requested: x, serverId: SERVER })), /long after the ACK/);
  t.match(env.store.leases.get(x), { state: 'bound', mac: a.mac, boundAt: T0 }, 'still bound; the binding started at the first ACK');
  // A new binding (the client released and took the address again) opens a new window.
  env.now += 1000;
  t.equal((await env.server(a.msg(MessageType.Release, { ciaddr: formatIpv4(x), serverId: SERVER }), { address: x, port: 68 })).event, 'dhcp.release');
  const y = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(y)), y);
  env.now += 2000;
  t.equal((await env.server(a.msg(MessageType.Decline, { requested: y, serverId: SERVER }))).event, 'dhcp.decline');
});

t.test('leaseAt: who holds an address by our own ACK; a REQUEST for another server naming it changes nothing', async (t) => {
  const env = setup();
  const a = client(1);
  const x = offered(t, await env.server(a.discover()));
  acked(t, await env.server(a.select(x)), x);
  t.equal(env.leases.leaseAt(x)?.mac, a.mac);
  t.equal(env.leases.leaseAtAddress(formatIpv4(x))?.mac, a.mac);
  t.equal(env.leases.leaseAtAddress(`::ffff:${formatIpv4(x)}`)?.mac, a.mac, 'IPv4-mapped form');
  // Syslog and TFTP take "holds a binding" from here (daemon.ts), not from the address book,
  // which this REQUEST would teach in proxy mode.
  const b = client(2);
  silent(t, await env.server(b.msg(MessageType.Request, { requested: x, serverId: OTHER_SERVER })));
  t.equal(env.leases.leaseAt(x)?.mac, a.mac);
  t.equal(env.leases.leaseAt(ip('10.99.0.200')), undefined, 'no lease');
  t.equal(env.leases.leaseAtAddress('garbage'), undefined);
  env.now += 3_600_000;
  t.equal(env.leases.leaseAt(x), undefined, 'expired');
});
