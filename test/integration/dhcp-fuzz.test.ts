/**
 * Fuzz the running daemon over the wire: 20,000 seeded random and mutated
 * packets to port 67 (unicast and broadcast) from a sender process in the
 * client namespace (test/helpers/dhcp-fuzz.ts). Afterwards the daemon must
 * still be alive and serving (health check and a real udhcpc lease), and on
 * SIGTERM it must report the malformed packets it dropped, with no crash and
 * no handler error logged.
 */
import t from 'tap';
import path from 'node:path';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { REPO_ROOT, startDaemon } from '../helpers/daemon.js';
import { apiLeases, inRange, removeDaemonDir, udhcpc } from '../helpers/dhcp-tools.js';
import type { FuzzSummary } from '../helpers/dhcp-fuzz.js';

const skip = netnsUnavailable();

const SEED = Number(process.env.MBT_FUZZ_SEED ?? 20261122);
const COUNT = 20_000;
const RATE = 2500;
const POOL = ['10.94.1.0', '10.94.14.255'] as const;
const CLIENT_MAC = '52:54:00:94:00:01';
const FUZZER = path.join(REPO_ROOT, 'dist/test/helpers/dhcp-fuzz.js');

t.test('the daemon survives 20,000 malformed and mutated packets', { skip, timeout: 150_000 }, async (t) => {
  const net = new TestNet('fuz');
  t.teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const sdev = `${net.tag}s`, cdev = `${net.tag}c`;
  await net.veth(srv, sdev, cli, cdev, '10.94.0.1/20', '10.94.0.2/20');
  // Limited broadcast (255.255.255.255) needs a route out of the client namespace; it stays on the veth.
  await net.ip(cli, ['route', 'add', 'default', 'dev', cdev]);

  const api = 'http://10.94.0.1:8080';
  const d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.94.0.1:8080", publicUrl: "${api}" }
dhcp:
  mode: server
  interface: ${sdev}
  conflictCheck: { method: off }
  offerHoldSeconds: 5
  quarantineSeconds: 60
  subnets:
    - cidr: 10.94.0.0/20
      pool: [${POOL[0]}, ${POOL[1]}]
      router: 10.94.0.1
      leaseTime: 600
`, { logLevel: 'info' });
  t.teardown(async () => { await d.stop(); await removeDaemonDir(d); });

  const r = await net.exec(cli, ['node', FUZZER, '--seed', String(SEED), '--count', String(COUNT), '--rate', String(RATE), '--max-seconds', '60',
    '--server', '10.94.0.1', '--bcast', '10.94.15.255', '--pool-first', POOL[0], '--pool-last', POOL[1]], 90_000);
  const fz = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as FuzzSummary;
  t.comment(`seed ${SEED}: ${JSON.stringify(fz)}`);
  t.equal(fz.stoppedEarly, false, 'sender finished within its time bound');
  t.ok(fz.sent >= COUNT * 0.99, `sent ${fz.sent} packets`);
  t.ok(fz.certainlyMalformed > COUNT * 0.1, `of which ${fz.certainlyMalformed} certainly malformed`);

  // Still alive and serving.
  t.equal(d.proc.exitCode, null, 'daemon process still running');
  const pid = await d.nodePid();
  t.doesNotThrow(() => process.kill(pid!, 0), 'daemon pid is alive');
  const health = await net.exec(srv, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `${api}/healthz`], 10_000);
  t.equal(health.stdout, '200', '/healthz answers');
  await net.ip(cli, ['link', 'set', cdev, 'address', CLIENT_MAC]);
  await net.ip(cli, ['addr', 'flush', 'dev', cdev]);
  const got = await udhcpc(net, cli, cdev, { tries: 8 });
  t.ok(got.ip && inRange(got.ip, POOL[0], POOL[1]), `a real client still gets a lease (${got.ip ?? got.output})`);
  const leases = await apiLeases(net, srv, api, d.dataDir);
  t.ok(leases.some((l) => l.mac === CLIENT_MAC && l.ip === got.ip && l.state === 'bound'), 'and the API lists it');
  const bound = leases.filter((l) => l.state === 'bound');
  t.equal(new Set(bound.map((l) => l.ip)).size, bound.length, 'no address bound twice');
  t.equal(new Set(bound.map((l) => l.mac)).size, bound.length, 'no client bound twice');

  // Graceful stop reports the counters.
  const exit = await d.stop('SIGTERM', 15_000);
  t.same(exit, { code: 0, signal: null }, 'SIGTERM: exit 0');
  const stopped = d.events('dhcp.stopped').at(-1);
  t.ok(stopped, 'dhcp.stopped logged');
  const received = Number(stopped?.received), malformed = Number(stopped?.malformed);
  t.comment(`daemon counters: ${JSON.stringify(stopped)}`);
  // Paced so that the socket buffer does not overflow; a busy machine may still drop a few.
  t.ok(received >= fz.sent * 0.8, `daemon received ${received} of ${fz.sent} sent`);
  t.ok(malformed > 0, `malformed counted: ${malformed}`);
  // Every certainly-malformed packet that arrived must have been counted; at most (sent - received) were lost.
  const lost = Math.max(0, fz.sent - received);
  t.ok(malformed >= fz.certainlyMalformed - lost, `malformed ${malformed} >= certainly malformed ${fz.certainlyMalformed} - lost ${lost}`);
  t.ok(malformed < received, 'not everything was malformed (the valid share was handled)');
  t.equal(d.events('daemon.crash').length, 0, 'no daemon.crash');
  t.equal(d.events('dhcp.error').length, 0, 'no dhcp.error (no handler threw)');
  t.equal(d.events('dhcp.socket-error').length, 0, 'no socket error');
  t.ok(d.events('daemon.stopped').length === 1, 'daemon.stopped logged');
  t.same(d.err.lines.filter((l) => l.trim() !== ''), [], 'nothing on stderr');
});
