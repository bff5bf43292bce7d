/**
 * boot/script-access.ts: who may have a machine's sanboot script, from the lease table (server),
 * metalboot's own 4011 ACKs (proxy) and the neighbour table; the /proc/net/arp parser; the
 * bounded record of proxy ACKs. net/neighbours.ts reads a real file here (a temporary one).
 */
import t from 'tap';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { neighbourFromProcArp, ProxyReplies, scriptAccess, scriptAccessPolicy, type NeighbourFact, type ScriptAccessFacts } from '../../src/boot/script-access.js';
import { readNeighbour } from '../../src/net/neighbours.js';
import { parseMac } from '../../src/net/mac.js';
import { LeaseTable } from '../../src/leases/table.js';
import { parseCidr, parseIpv4 } from '../../src/net/ipv4.js';

const MAC = parseMac('52:54:00:77:13:01');
const OTHER = parseMac('52:54:00:66:66:66');
const NOW = 1_800_000_000_000;
const IP = '10.77.0.120';
const here = { kind: 'entry', mac: MAC } as const;

const server = (over: Partial<ScriptAccessFacts> = {}): ScriptAccessFacts => ({
  mode: 'server', now: NOW, lease: { ip: IP, bound: true, expiresAt: NOW + 60_000 }, neighbour: here, relayed: false, ...over,
});
const proxy = (over: Partial<ScriptAccessFacts> = {}): ScriptAccessFacts => ({
  mode: 'proxy', now: NOW, proxyReplyUntil: NOW + 60_000, neighbour: here, relayed: false, ...over,
});

t.test('server mode: only a bound, unexpired lease, from its address, answering ARP with the MAC', async (t) => {
  t.same(scriptAccess(MAC, IP, server()), { ok: true, via: 'lease' });
  t.match(scriptAccess(MAC, IP, server({ lease: undefined })), { ok: false, reason: /no bound lease/ }, 'no lease');
  t.match(scriptAccess(MAC, IP, server({ lease: { ip: IP, bound: false, expiresAt: NOW + 60_000 } })), { ok: false, reason: /no bound lease/ }, 'released');
  t.match(scriptAccess(MAC, IP, server({ lease: { ip: IP, bound: true, expiresAt: NOW } })), { ok: false, reason: /no bound lease/ }, 'expired');
  t.match(scriptAccess(MAC, '10.77.0.66', server()), { ok: false, reason: /not from the address leased/ }, 'another address');
  t.match(scriptAccess(MAC, IP, server({ neighbour: { kind: 'entry', mac: OTHER } })), { ok: false, reason: /another MAC/ }, 'the address borrowed by another MAC');
  t.match(scriptAccess(MAC, IP, server({ neighbour: { kind: 'none' } })), { ok: false, reason: /no neighbour entry/ }, 'on-link without an entry');
  t.same(scriptAccess(MAC, IP, server({ neighbour: { kind: 'none' }, relayed: true })), { ok: true, via: 'lease' }, 'a relayed client has no entry: the lease decides');
  t.match(scriptAccess(MAC, IP, server({ neighbour: { kind: 'entry', mac: OTHER }, relayed: true })), { ok: false }, 'but a mismatching entry refuses it still');
  t.match(scriptAccess(MAC, IP, server({ neighbour: { kind: 'unknown' } })), { ok: false, reason: /unreadable/ }, 'unreadable table: refused');
  t.match(scriptAccess(MAC, IP, server({ proxyReplyUntil: NOW + 1, lease: undefined })), { ok: false }, 'a proxy reply means nothing in server mode');
});

t.test('proxy mode: a ProxyDHCP reply for the MAC in this boot, and the address answers ARP with the MAC', async (t) => {
  t.same(scriptAccess(MAC, IP, proxy()), { ok: true, via: 'proxy-reply' });
  t.match(scriptAccess(MAC, IP, proxy({ proxyReplyUntil: undefined })), { ok: false, reason: /no ProxyDHCP reply/ }, 'no reply sent');
  t.match(scriptAccess(MAC, IP, proxy({ proxyReplyUntil: NOW })), { ok: false, reason: /no ProxyDHCP reply/ }, 'window over');
  t.match(scriptAccess(MAC, '10.77.0.66', proxy({ neighbour: { kind: 'entry', mac: OTHER } })), { ok: false, reason: /another MAC/ }, 'a host with its own MAC');
  t.match(scriptAccess(MAC, IP, proxy({ neighbour: { kind: 'none' }, relayed: true })), { ok: false, reason: /no neighbour entry/ }, 'proxy mode always needs the neighbour entry');
  t.match(scriptAccess(MAC, IP, proxy({ neighbour: { kind: 'unknown' } })), { ok: false, reason: /unreadable/ });
  t.match(scriptAccess(MAC, IP, proxy({ lease: { ip: IP, bound: true, expiresAt: NOW + 1 }, proxyReplyUntil: undefined })), { ok: false }, 'a lease means nothing in proxy mode');
});

t.test('DHCP off: nobody', async (t) => {
  t.match(scriptAccess(MAC, IP, server({ mode: 'off' })), { ok: false, reason: /DHCP is off/ });
});

const ARP = `IP address       HW type     Flags       HW address            Mask     Device
10.77.0.120      0x1         0x2         52:54:00:77:13:01     *        labbr
10.77.0.121      0x1         0x0         00:00:00:00:00:00     *        labbr
10.77.0.122      0x1         0x2         52:54:00:66:66:66     *        labbr
10.77.0.122      0x1         0x2         52:54:00:66:66:67     *        other
garbage line
10.77.0.123 0x1 zz 52:54:00:00:00:01 * labbr
`;

t.test('/proc/net/arp: complete entries only, conflicting ones unknown, garbage skipped', async (t) => {
  t.same(neighbourFromProcArp(ARP, '10.77.0.120'), { kind: 'entry', mac: MAC });
  t.same(neighbourFromProcArp(ARP, '10.77.0.121'), { kind: 'none' }, 'incomplete entry');
  t.same(neighbourFromProcArp(ARP, '10.77.0.122'), { kind: 'unknown' }, 'two MACs for one address');
  t.same(neighbourFromProcArp(ARP, '10.77.0.123'), { kind: 'none' }, 'unparsable flags');
  t.same(neighbourFromProcArp(ARP, '10.77.0.12'), { kind: 'none' }, 'no prefix match');
  t.same(neighbourFromProcArp('', IP), { kind: 'none' });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mbt-arp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'arp'), ARP);
  t.same(await readNeighbour('10.77.0.120', path.join(dir, 'arp')), { kind: 'entry', mac: MAC }, 'read from a file');
  t.same(await readNeighbour(IP, path.join(dir, 'missing')), { kind: 'unknown' }, 'an unreadable table is unknown, not none');
  const real = await readNeighbour('127.0.0.2');
  t.ok(real.kind === 'none' || real.kind === 'unknown', `this namespace's real table has no entry for a loopback address (${real.kind})`);
});

t.test('ProxyReplies: per MAC, expiring, bounded', async (t) => {
  const p = new ProxyReplies(10_000, 3);
  t.equal(p.of(MAC, NOW), undefined, 'nothing before a reply');
  p.record(MAC, NOW);
  t.equal(p.of(MAC, NOW + 1), NOW + 10_000);
  p.record(MAC, NOW + 5000);
  t.equal(p.of(MAC, NOW + 12_000), NOW + 15_000, 'a new reply extends the window');
  t.equal(p.of(MAC, NOW + 15_000), undefined, 'expired');
  for (let i = 0; i < 10; i++) p.record(parseMac(`52:54:00:00:00:${i.toString(16).padStart(2, '0')}`), NOW);
  t.equal(p.of(parseMac('52:54:00:00:00:00'), NOW), undefined, 'oldest MACs evicted');
  t.equal(p.of(parseMac('52:54:00:00:00:09'), NOW), NOW + 10_000, 'newest kept');
});

t.test('scriptAccessPolicy: the facts gathered from a real lease table, the proxy replies and the neighbour table', async (t) => {
  const lan = { cidr: parseCidr('10.77.0.0/24'), pool: { first: parseIpv4('10.77.0.100'), last: parseIpv4('10.77.0.200') }, dns: [], leaseTime: 600 };
  const relayedNet = { cidr: parseCidr('10.78.0.0/24'), pool: { first: parseIpv4('10.78.0.100'), last: parseIpv4('10.78.0.200') }, dns: [], leaseTime: 600 };
  const table = new LeaseTable({ subnets: [lan, relayedNet], reservations: [], offerHoldMs: 30_000, quarantineMs: 600_000 });
  const RELAYED_MAC = parseMac('52:54:00:77:13:02');
  table.bind(MAC, parseIpv4(IP), 600, {}, NOW);
  table.bind(RELAYED_MAC, parseIpv4('10.78.0.120'), 600, {}, NOW);
  let now = NOW + 1000;
  const arp = new Map<string, NeighbourFact>([[IP, here]]);
  const asked: string[] = [];
  const neighbour = async (a: string): Promise<NeighbourFact> => { asked.push(a); return arp.get(a) ?? { kind: 'none' }; };
  const replies = new ProxyReplies(60_000);
  const server = scriptAccessPolicy({ mode: 'server', clock: () => now, leases: table, serverAddress: parseIpv4('10.77.0.1'), proxyReplies: replies, neighbour });
  t.same(await server(MAC, IP), { ok: true, via: 'lease' }, 'its own lease, answering ARP');
  t.same(asked, [IP], 'the neighbour table is asked about the requester');
  t.match(await server(MAC, '10.77.0.121'), { ok: false, reason: /not from the address leased/ });
  t.same(await server(RELAYED_MAC, '10.78.0.120'), { ok: true, via: 'lease' }, 'relayed subnet: no neighbour entry needed');
  arp.delete(IP);
  t.match(await server(MAC, IP), { ok: false, reason: /no neighbour entry/ }, 'the interface\'s own subnet is not relayed: the entry is required');
  now = NOW + 601_000;
  arp.set(IP, here);
  t.match(await server(MAC, IP), { ok: false, reason: /no bound lease/ }, 'the lease ran out');

  const proxy = scriptAccessPolicy({ mode: 'proxy', clock: () => now, proxyReplies: replies, neighbour });
  t.match(await proxy(MAC, IP), { ok: false, reason: /no ProxyDHCP reply/ });
  replies.record(MAC, now);
  t.same(await proxy(MAC, IP), { ok: true, via: 'proxy-reply' }, 'a reply of ours opens the window');
});
