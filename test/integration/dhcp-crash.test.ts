/**
 * Crash safety of the lease store: leases are written (synced) before the
 * ACK goes out, so after `kill -9` of the daemon and a restart on the same
 * data directory every acknowledged lease is still there with the same
 * mac → ip, new clients never get one of those addresses, and a returning
 * client gets its old address back.
 *
 * The kill comes from the load client itself (test/helpers/dhcp-storm.ts) the
 * instant it receives its Nth ACK, while other exchanges are in flight: a
 * daemon that answered before its write completed loses leases here (checked
 * by making the handler not await the write: ~20 acknowledged leases lost per run).
 */
import t from 'tap';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import path from 'node:path';
import { REPO_ROOT, startDaemon, type DaemonUnderTest } from '../helpers/daemon.js';
import { type ApiLease, apiLeases, inRange, removeDaemonDir, runPerfdhcp, udhcpc } from '../helpers/dhcp-tools.js';
import type { StormResult } from '../helpers/dhcp-storm.js';

const skip = netnsUnavailable();
const POOL = ['10.95.9.0', '10.95.11.254'] as const;
const STORM = path.join(REPO_ROOT, 'dist/test/helpers/dhcp-storm.js');

async function setup(teardown: (fn: () => unknown) => void, name: string) {
  const net = new TestNet(name);
  teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  return { net, srv, cli, sdev: `${net.tag}s`, cdev: `${net.tag}c` };
}

function config(sdev: string, serverIp: string, cidr: string, pool: readonly [string, string]): string {
  return `
dataDir: "{{dataDir}}"
http: { listen: "${serverIp}:8080", publicUrl: "http://${serverIp}:8080" }
dhcp:
  mode: server
  interface: ${sdev}
  conflictCheck: { method: off }
  subnets:
    - cidr: ${cidr}
      pool: [${pool[0]}, ${pool[1]}]
      leaseTime: 3600
`;
}

async function kill9(d: DaemonUnderTest): Promise<void> {
  const pid = await d.nodePid();
  if (pid === undefined) throw new Error('daemon pid unknown');
  process.kill(pid, 'SIGKILL');
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([d.exited, new Promise<undefined>((res) => { timer = setTimeout(() => res(undefined), 10_000); })]);
  clearTimeout(timer);
  if (!r) throw new Error('daemon did not die after SIGKILL');
}

const pairs = (ls: readonly ApiLease[]) => ls.filter((l) => l.state === 'bound').map((l) => `${l.mac}=${l.ip}`).sort();

t.test('kill -9 while granting leases: every acknowledged lease survives the restart', { skip, timeout: 120_000 }, async (t) => {
  const { net, srv, cli, sdev, cdev } = await setup((f) => t.teardown(f), 'crk');
  await net.veth(srv, sdev, cli, cdev, '10.95.0.1/22', '10.95.0.2/22');
  const api = 'http://10.95.0.1:8080';
  const cfg = config(sdev, '10.95.0.1', '10.95.0.0/22', ['10.95.1.0', '10.95.3.254']);
  const d1 = await startDaemon(net, srv, cfg, { logLevel: 'info' });

  // Phase 1: a quiet batch of 60 clients, snapshot from the API.
  const first = await runPerfdhcp(net, cli, ['-4', '-r', '100', '-R', '60', '-n', '60', '-W', '500000', '-l', cdev, '10.95.0.1'], 30_000);
  t.ok((first.ra?.received ?? 0) >= 57, `first batch acknowledged: ${first.ra?.received}`);
  const before = await apiLeases(net, srv, api, d1.dataDir);
  t.ok(pairs(before).length >= 57, `API lists ${pairs(before).length} bound leases before the crash`);

  // Phase 2: a storm of exchanges; the load client itself sends SIGKILL to the daemon the
  // moment it has received its 150th ACK, so writes still in flight at that instant are cut off.
  const pid = await d1.nodePid();
  const storm = await net.exec(cli, ['node', STORM, '--server', '10.95.0.1', '--local', '10.95.0.2', '--kill-pid', String(pid),
    '--kill-after', '150', '--window', '64', '--mac-prefix', '2', '--max-seconds', '20'], 40_000);
  const st = JSON.parse(storm.stdout.trim().split('\n').at(-1)!) as StormResult;
  t.comment(`storm: ${st.discovers} DISCOVERs, ${st.acks.length} ACKs received (${st.acksBeforeKill} when it killed), ${st.elapsedMs} ms`);
  t.ok(st.killed, 'the load client killed the daemon mid-storm');
  const exited = await Promise.race([d1.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000).unref())]);
  t.ok(exited, 'daemon is gone');
  const acked = new Map<string, string>();
  for (const a of d1.events('dhcp.ack')) acked.set(String(a.mac), String(a.ip));
  for (const [mac, ip] of st.acks) acked.set(mac, ip);
  t.ok(acked.size >= 60 + 150, `${acked.size} clients were acknowledged before the kill`);

  // Restart on the same data directory.
  const d2 = await startDaemon(net, srv, cfg, { dataDir: d1.dataDir, logLevel: 'info' });
  t.teardown(async () => { await d2.stop(); await removeDaemonDir(d2); await removeDaemonDir(d1); });
  const loaded = d2.events('leases.loaded')[0];
  t.ok(Number(loaded?.count) >= acked.size, `restart loaded ${loaded?.count} leases`);
  const after = await apiLeases(net, srv, api, d1.dataDir);
  const afterByMac = new Map(after.filter((l) => l.state === 'bound').map((l) => [l.mac!, l.ip]));
  const lostOrMoved = [...acked].filter(([mac, ip]) => afterByMac.get(mac) !== ip);
  t.same(lostOrMoved, [], 'every acknowledged lease (logged by the daemon or received by a client) is still bound to the same address');
  t.same(pairs(before).filter((p) => !pairs(after).includes(p)), [], 'every lease listed before the crash is listed after it');

  // New clients (other MACs) never get an address that is already bound.
  const oldIps = new Set(afterByMac.values());
  const fresh = await runPerfdhcp(net, cli, ['-4', '-r', '100', '-R', '100', '-n', '100', '-W', '500000', '-b', 'mac=00:0c:03:00:00:00', '-l', cdev, '10.95.0.1'], 30_000);
  t.ok((fresh.ra?.received ?? 0) >= 95, `new clients acknowledged: ${fresh.ra?.received}`);
  const newAcks = d2.events('dhcp.ack').filter((a) => String(a.mac).startsWith('00:0c:03:'));
  t.ok(newAcks.length >= 95, `daemon acknowledged ${newAcks.length} new clients`);
  t.same(newAcks.filter((a) => oldIps.has(String(a.ip))).map((a) => `${a.mac}=${a.ip}`), [], 'no new client got an address bound before the crash');
  const final = (await apiLeases(net, srv, api, d1.dataDir)).filter((l) => l.state === 'bound');
  t.equal(new Set(final.map((l) => l.ip)).size, final.length, 'no duplicate address in the lease table');
  t.ok(final.length >= acked.size + 95, `${final.length} bound leases in total`);
});

t.test('kill -9: a returning client gets its old address back', { skip, timeout: 90_000 }, async (t) => {
  const { net, srv, cli, sdev, cdev } = await setup((f) => t.teardown(f), 'crm');
  await net.veth(srv, sdev, cli, cdev, '10.95.8.1/22');
  const api = 'http://10.95.8.1:8080';
  const cfg = config(sdev, '10.95.8.1', '10.95.8.0/22', POOL);
  const d1 = await startDaemon(net, srv, cfg);

  // Three clients, one after another, each with its own MAC on the same veth.
  const macs = ['52:54:00:95:04:01', '52:54:00:95:04:02', '52:54:00:95:04:03'];
  const got = new Map<string, string>();
  for (const mac of macs) {
    await net.ip(cli, ['link', 'set', cdev, 'address', mac]);
    const r = await udhcpc(net, cli, cdev);
    t.ok(r.ip && inRange(r.ip, POOL[0], POOL[1]), `${mac} got ${r.ip}`);
    got.set(mac, r.ip!);
  }
  t.equal(new Set(got.values()).size, 3, 'three distinct addresses');
  await kill9(d1);

  const d2 = await startDaemon(net, srv, cfg, { dataDir: d1.dataDir });
  t.teardown(async () => { await d2.stop(); await removeDaemonDir(d2); await removeDaemonDir(d1); });
  t.same(pairs(await apiLeases(net, srv, api, d1.dataDir)), [...got].map(([m, ip]) => `${m}=${ip}`).sort(), 'the API lists the same leases after the restart');

  // Each client comes back (in another order, as a fresh DISCOVER with no requested address).
  for (const mac of [...macs].reverse()) {
    await net.ip(cli, ['link', 'set', cdev, 'address', mac]);
    const r = await udhcpc(net, cli, cdev);
    t.equal(r.ip, got.get(mac), `${mac} gets its old address ${got.get(mac)} back`);
  }
  // And a new one gets none of them.
  await net.ip(cli, ['link', 'set', cdev, 'address', '52:54:00:95:04:99']);
  const n = await udhcpc(net, cli, cdev);
  t.ok(n.ip && inRange(n.ip, POOL[0], POOL[1]) && ![...got.values()].includes(n.ip), `a new client gets a different address (${n.ip})`);
  const final = (await apiLeases(net, srv, api, d1.dataDir)).filter((l) => l.state === 'bound');
  t.equal(final.length, 4, 'four bound leases');
  t.equal(new Set(final.map((l) => l.ip)).size, 4, 'four distinct addresses');
});
