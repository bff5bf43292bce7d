/**
 * A client behind a real relay agent (ISC dhcrelay) in its own routed
 * subnet:
 *
 *   cli ──(10.93.2.0/24)── rly ──(10.93.1.0/24, bridge)── srv (metalbootd)
 *                                         └── loc (a client on the server's own segment)
 *
 * The daemon serves two subnets; the relayed client must get an address from
 * the remote subnet's pool (chosen by giaddr), with that subnet's router, and
 * the lease must show up in the ACK log and the API under the client's MAC.
 * With `dhcrelay -a` (relay agent information, RFC 3046) the replies must
 * echo option 82 back to the relay.
 */
import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LineCollector, TestNet, netnsUnavailable } from '../helpers/netns.js';
import { startDaemon, type DaemonUnderTest } from '../helpers/daemon.js';
import { apiLeases, inRange, removeDaemonDir, udhcpc } from '../helpers/dhcp-tools.js';

const skip = netnsUnavailable();

const CLIENT_MAC = '52:54:00:93:02:01';
const LOCAL_MAC = '52:54:00:93:01:01';
const API = 'http://10.93.1.1:8080';

type Teardown = (fn: () => unknown) => void;

interface Topology {
  net: TestNet;
  srv: string; rly: string; cli: string; loc: string;
  rup: string; cdev: string; ldev: string;
  d: DaemonUnderTest;
  relayOut: LineCollector;
  tmp: string;
}

async function topology(teardown: Teardown, name: string, relayFlags: readonly string[]): Promise<Topology> {
  const net = new TestNet(name);
  teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const rly = await net.addNamespace('rly');
  const cli = await net.addNamespace('cli');
  const loc = await net.addNamespace('loc');
  const sdev = `${net.tag}s`, rup = `${net.tag}ru`, rdown = `${net.tag}rd`, cdev = `${net.tag}c`;
  const bridge = `${net.tag}b`, sport = `${net.tag}sp`, ldev = `${net.tag}l`;

  // Server side: a bridge (the served interface) with the relay and one local client on it.
  await net.bridge(srv, bridge, '10.93.1.1/24');
  await net.veth(srv, sdev, rly, rup, undefined, '10.93.1.2/24');
  await net.ip(srv, ['link', 'set', sdev, 'master', bridge]);
  await net.veth(srv, sport, loc, ldev);
  await net.ip(srv, ['link', 'set', sport, 'master', bridge]);
  await net.ip(loc, ['link', 'set', ldev, 'address', LOCAL_MAC]);
  // Client side: the relay routes between the two subnets.
  await net.veth(rly, rdown, cli, cdev, '10.93.2.1/24');
  await net.ip(cli, ['link', 'set', cdev, 'address', CLIENT_MAC]);
  await net.exec(rly, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  await net.ip(srv, ['route', 'add', '10.93.2.0/24', 'via', '10.93.1.2']);

  const d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.93.1.1:8080", publicUrl: "${API}" }
dhcp:
  mode: server
  interface: ${bridge}
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.93.1.0/24
      pool: [10.93.1.100, 10.93.1.150]
      router: 10.93.1.1
      leaseTime: 600
    - cidr: 10.93.2.0/24
      pool: [10.93.2.100, 10.93.2.150]
      router: 10.93.2.1
      dns: [10.93.1.1]
      leaseTime: 900
`);
  teardown(async () => { await d.stop(); await removeDaemonDir(d); });

  const relay = net.spawn(rly, ['dhcrelay', '-4', '-d', '--no-pid', ...relayFlags, '-id', rdown, '-iu', rup, '10.93.1.1'], 120);
  const relayOut = new LineCollector(relay.stderr);
  // dhcrelay prints "Sending on Socket/fallback" once its sockets are open.
  await relayOut.waitFor((l) => /Sending on\s+Socket\/fallback/.test(l), 10_000, 'dhcrelay start-up');

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mbt-rly-'));
  teardown(() => rm(tmp, { recursive: true, force: true }));
  return { net, srv, rly, cli, loc, rup, cdev, ldev, d, relayOut, tmp };
}

t.test('a relayed client gets an address from its own (remote) subnet', { skip, timeout: 60_000 }, async (t) => {
  const { net, srv, cli, loc, cdev, ldev, d, relayOut, tmp } = await topology((f) => t.teardown(f), 'rly', []);

  // Record the options the client got through the udhcpc script environment.
  const envFile = path.join(tmp, 'env'), script = path.join(tmp, 'script.sh');
  await writeFile(script, `#!/bin/sh\n[ "$1" = bound ] && env > ${envFile}\nexit 0\n`, { mode: 0o755 });

  const r = await udhcpc(net, cli, cdev, { tries: 8, extra: ['-s', script] });
  if (!r.ip) t.comment(`udhcpc: ${r.output}\nrelay: ${relayOut.lines.slice(-20).join('\n')}`);
  t.ok(r.ip, `relayed client got a lease (${r.ip})`);
  const ip = r.ip!;
  t.ok(inRange(ip, '10.93.2.100', '10.93.2.150'), `address ${ip} is from the remote subnet's pool`);
  t.equal(r.serverId, '10.93.1.1', 'server identifier is the daemon');
  t.ok(relayOut.lines.some((l) => l.includes(`Forwarded BOOTREPLY for ${CLIENT_MAC}`)), 'the reply went through the relay');
  const vars = Object.fromEntries((await readFile(envFile, 'utf8')).split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  t.equal(vars.router, '10.93.2.1', "the remote subnet's router");
  t.equal(vars.subnet, '255.255.255.0', 'its mask');
  t.equal(vars.lease, '900', 'its lease time');
  t.equal(vars.dns?.trim(), '10.93.1.1', 'its DNS server');

  const ack = await d.waitForEvent('dhcp.ack', 5000, (l) => l.mac === CLIENT_MAC);
  t.equal(ack.ip, ip, 'dhcp.ack log names the address and the client MAC');
  t.equal(d.events('dhcp.ignored').filter((l) => l.mac === CLIENT_MAC).length, 0, 'no relayed packet of the client was ignored');

  // A client on the server's own segment still gets the local subnet.
  const lr = await udhcpc(net, loc, ldev);
  t.ok(lr.ip && inRange(lr.ip, '10.93.1.100', '10.93.1.150'), `local client got a local address: ${lr.ip}`);

  const leases = await apiLeases(net, srv, API, d.dataDir);
  t.same(
    leases.filter((l) => l.state === 'bound').map((l) => [l.mac, l.ip]).sort(),
    [[CLIENT_MAC, ip], [LOCAL_MAC, lr.ip]].sort(),
    'API lists both leases, each in its own subnet',
  );
});

/** DHCP options of a captured UDP payload (main options field only; enough for option 82). */
function dhcpOptions(p: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let i = 240; i < p.length;) {
    const code = p[i]!;
    if (code === 0) { i++; continue; }
    if (code === 255 || i + 1 >= p.length) break;
    const len = p[i + 1]!;
    const v = p.subarray(i + 2, i + 2 + len);
    out.set(code, out.has(code) ? Buffer.concat([out.get(code)!, v]) : Buffer.from(v));
    i += 2 + len;
  }
  return out;
}

/** UDP payloads to/from port 67 in a pcap file (Ethernet, IPv4, no fragments). */
function dhcpPayloads(pcap: Buffer): { fromServer: boolean; payload: Buffer }[] {
  const out: { fromServer: boolean; payload: Buffer }[] = [];
  if (pcap.length < 24) return out;
  const le = pcap.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? pcap.readUInt32LE(o) : pcap.readUInt32BE(o));
  for (let o = 24; o + 16 <= pcap.length;) {
    const caplen = u32(o + 8);
    const f = pcap.subarray(o + 16, o + 16 + caplen);
    o += 16 + caplen;
    if (f.length < 14 + 20 + 8 || f.readUInt16BE(12) !== 0x0800 || f[14 + 9] !== 17) continue;
    const ihl = (f[14]! & 0x0f) * 4;
    const udp = 14 + ihl;
    const sport = f.readUInt16BE(udp), dport = f.readUInt16BE(udp + 2);
    if (sport !== 67 && dport !== 67) continue;
    const src = [...f.subarray(14 + 12, 14 + 16)].join('.');
    out.push({ fromServer: src === '10.93.1.1', payload: f.subarray(udp + 8) });
  }
  return out;
}

t.test('relay agent information (option 82) is echoed in replies (RFC 3046 §2.2)', { skip, timeout: 60_000 }, async (t) => {
  const { net, rly, cli, rup, cdev, d, relayOut, tmp } = await topology((f) => t.teardown(f), 'rl8', ['-a']);
  const pcap = path.join(tmp, 'up.pcap');
  const dump = net.spawn(rly, ['tcpdump', '-Z', 'root', '-i', rup, '-n', '-U', '--immediate-mode', '-s', '2048', '-w', pcap, 'udp', 'port', '67'], 60);
  const dumpErr = new LineCollector(dump.stderr);
  await dumpErr.waitFor((l) => /listening on/.test(l), 10_000, 'tcpdump start-up');

  const r = await udhcpc(net, cli, cdev, { tries: 8 });
  t.ok(r.ip && inRange(r.ip, '10.93.2.100', '10.93.2.150'), `relayed client got a lease with -a (${r.ip})`);
  t.ok(relayOut.lines.some((l) => /Adding \d+-byte relay agent option/.test(l)), 'dhcrelay added option 82');
  const ack = await d.waitForEvent('dhcp.ack', 5000, (l) => l.mac === CLIENT_MAC);
  t.equal(ack.ip, r.ip, 'acknowledged');

  await new Promise((res) => setTimeout(res, 300));
  dump.kill('SIGINT');
  await new Promise<void>((res) => { if (dump.exitCode !== null) res(); else dump.once('exit', () => res()); });
  const raw = await readFile(pcap);
  const packets = dhcpPayloads(raw);
  const requests = packets.filter((p) => !p.fromServer && p.payload[0] === 1);
  const replies = packets.filter((p) => p.fromServer && p.payload[0] === 2);
  t.ok(requests.length >= 2 && replies.length >= 2, `captured ${requests.length} relayed requests and ${replies.length} replies (tcpdump: ${dumpErr.lines.slice(-3).join(' / ')})`);
  const sent82 = requests.map((p) => dhcpOptions(p.payload).get(82)?.toString('hex'));
  t.ok(sent82.every((x) => x !== undefined), 'every relayed request carries option 82');
  const echoed = replies.map((p) => dhcpOptions(p.payload).get(82)?.toString('hex'));
  // RFC 3046 §2.2: the server echoes option 82 unchanged.
  t.same(echoed, replies.map(() => sent82[0]), 'every reply echoes the relay agent information unchanged');
});
