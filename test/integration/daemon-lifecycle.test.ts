/**
 * The daemon as an operator sees it: config errors (exit 2, one line naming
 * the key), graceful SIGTERM under load (exit 0, database closed, restart on
 * the same data directory), serving exactly the configured interface, and
 * the health check and CLIs.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TestNet, netnsUnavailable, sh } from '../helpers/netns.js';
import { METALBOOTD, REPO_ROOT, startDaemon } from '../helpers/daemon.js';
import { apiLeases, inRange, removeDaemonDir, runPerfdhcp, udhcpc } from '../helpers/dhcp-tools.js';

const skip = netnsUnavailable();
const METALBOOT = path.join(REPO_ROOT, 'dist/src/cli/metalboot.js');
const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

t.test('config errors: exit 2 and one stderr line naming the key', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mbt-cfg-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A valid base (parsing only: the daemon exits before opening anything).
  const base = (dhcp: string, extraTop = '') => `
dataDir: ${dir}/data
http: { listen: "127.0.0.1:18080", publicUrl: "http://10.96.0.1:8080" }
${extraTop}dhcp:
${dhcp}`;
  const server = (subnets: string, iface = 'lo') => `  mode: server
  interface: ${iface}
  serverAddress: 10.96.0.1
  subnets:
${subnets}`;
  const cases: [name: string, yaml: string, key: RegExp][] = [
    ['unknown top-level key', base(server('    - { cidr: 10.96.0.0/24, pool: [10.96.0.10, 10.96.0.20] }'), 'colour: blue\n'), /config: colour: unknown key/],
    ['unknown nested key', base(server('    - { cidr: 10.96.0.0/24, pool: [10.96.0.10, 10.96.0.20], gateway: 10.96.0.1 }')), /config: dhcp\.subnets\[0\]\.gateway: unknown key/],
    ['bad CIDR', base(server('    - { cidr: 10.96.0.0/33, pool: [10.96.0.10, 10.96.0.20] }')), /config: dhcp\.subnets\[0\]\.cidr: /],
    ['bad CIDR (not an address)', base(server('    - { cidr: 10.96.0.300/24 }')), /config: dhcp\.subnets\[0\]\.cidr: /],
    ['pool outside the subnet', base(server('    - { cidr: 10.96.0.0/24, pool: [10.96.0.10, 10.96.1.20] }')), /config: dhcp\.subnets\[0\]\.pool: .*10\.96\.1\.20.*outside/],
    ['overlapping pools', base(server('    - { cidr: 10.96.0.0/24, pool: [10.96.0.10, 10.96.0.20] }\n    - { cidr: 10.96.0.0/23, pool: [10.96.0.15, 10.96.1.20] }')), /config: dhcp\.subnets\[1\]\.pool: .*overlaps/],
    ['missing interface', base(server('    - { cidr: 10.96.0.0/24, pool: [10.96.0.10, 10.96.0.20] }', 'mbtnoiface0')), /config: dhcp\.interface: .*mbtnoiface0.*does not exist/],
    ['server mode without interface', base('  mode: server\n  subnets: [{ cidr: 10.96.0.0/24 }]\n'), /config: dhcp\.interface: is required/],
    ['YAML syntax error', base(server('    - { cidr: 10.96.0.0/24, pool: [10.96.0.10, 10.96.0.20] }')) + '\n  : : [\n', /config: .*YAML/],
  ];
  for (const [name, yaml, key] of cases) {
    const file = path.join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
    await writeFile(file, yaml);
    const r = await sh(['node', METALBOOTD, '--config', file], 20_000, [0, 1, 2]);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    t.equal(r.code, 2, `${name}: exit code 2`);
    t.equal(lines.length, 1, `${name}: one line on stderr (${JSON.stringify(r.stderr)})`);
    t.match(lines[0] ?? '', key, `${name}: names the key: ${lines[0]}`);
    t.equal(r.stdout, '', `${name}: no log output`);
  }
  // A missing file and a bad flag are usage errors too.
  const missing = await sh(['node', METALBOOTD, '--config', path.join(dir, 'nope.yaml')], 20_000, [0, 1, 2]);
  t.equal(missing.code, 2, 'missing config file: exit 2');
  t.match(missing.stderr, /nope\.yaml/, 'names the file');
  t.equal(missing.stderr.trim().split('\n').length, 1, 'in one line');
  const flag = await sh(['node', METALBOOTD, '--bogus'], 20_000, [0, 1, 2]);
  t.equal(flag.code, 2, 'unknown flag: exit 2');
});

t.test('SIGTERM while serving: exit 0, database closed, restart on the same data directory', { skip, timeout: 90_000 }, async (t) => {
  const net = new TestNet('lcs');
  t.teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const sdev = `${net.tag}s`, cdev = `${net.tag}c`;
  await net.veth(srv, sdev, cli, cdev, '10.96.4.1/22', '10.96.4.2/22');
  const api = 'http://10.96.4.1:8080';
  const cfg = `
dataDir: "{{dataDir}}"
http: { listen: "10.96.4.1:8080", publicUrl: "${api}" }
dhcp:
  mode: server
  interface: ${sdev}
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.96.4.0/22
      pool: [10.96.5.0, 10.96.7.254]
      leaseTime: 3600
`;
  const d1 = await startDaemon(net, srv, cfg, { logLevel: 'info' });
  // Load: perfdhcp keeps exchanging while the signal arrives.
  const load = net.spawn(cli, ['perfdhcp', '-4', '-r', '200', '-R', '400', '-p', '5', '-l', cdev, '10.96.4.1'], 30);
  await d1.waitForEvent('dhcp.ack', 15_000, () => d1.events('dhcp.ack').length >= 100);
  const t0 = Date.now();
  const exit = await d1.stop('SIGTERM', 10_000);
  const took = Date.now() - t0;
  t.same(exit, { code: 0, signal: null }, 'exit code 0');
  t.ok(took < 5000, `stopped in ${took} ms`);
  const order = d1.logs().map((l) => l.event).filter((e) => e === 'daemon.stopping' || e === 'dhcp.stopped' || e === 'daemon.stopped');
  t.same(order, ['daemon.stopping', 'dhcp.stopped', 'daemon.stopped'], 'stopping → dhcp.stopped → daemon.stopped');
  t.equal(d1.events('daemon.stop-error').length, 0, 'no error while stopping');
  t.same(d1.err.lines.filter((l) => l.trim()), [], 'nothing on stderr');
  const acked = new Map<string, string>();
  for (const a of d1.events('dhcp.ack')) acked.set(String(a.mac), String(a.ip));
  load.kill('SIGKILL');

  // The store was closed cleanly: a new daemon opens it (LevelDB lock released) with every lease.
  const d2 = await startDaemon(net, srv, cfg, { dataDir: d1.dataDir, logLevel: 'info' });
  t.teardown(async () => { await d2.stop(); await removeDaemonDir(d2); await removeDaemonDir(d1); });
  t.equal(d2.events('leases.loaded')[0]?.count, acked.size, `restart loaded all ${acked.size} leases`);
  const after = new Map((await apiLeases(net, srv, api, d1.dataDir)).filter((l) => l.state === 'bound').map((l) => [l.mac, l.ip]));
  t.same([...acked].filter(([m, ip]) => after.get(m) !== ip), [], 'every acknowledged lease is back with its address');
});

t.test('serves only its interface; health check and CLIs', { skip, timeout: 90_000 }, async (t) => {
  const net = new TestNet('lci');
  t.teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const na = await net.addNamespace('a');
  const nb = await net.addNamespace('b');
  const sa = `${net.tag}sa`, ca = `${net.tag}ca`, sb = `${net.tag}sb`, cb = `${net.tag}cb`;
  await net.veth(srv, sa, na, ca, '10.96.1.1/24');
  await net.veth(srv, sb, nb, cb, '10.96.2.1/24');
  await net.ip(na, ['link', 'set', ca, 'address', '52:54:00:96:01:01']);
  await net.ip(nb, ['link', 'set', cb, 'address', '52:54:00:96:02:01']);

  const api = 'http://10.96.1.1:8080';
  // Both subnets are configured, but only interface A is served.
  const d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.96.1.1:8080", publicUrl: "${api}" }
dhcp:
  mode: server
  interface: ${sa}
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.96.1.0/24
      pool: [10.96.1.100, 10.96.1.150]
      leaseTime: 600
    - cidr: 10.96.2.0/24
      pool: [10.96.2.100, 10.96.2.150]
      leaseTime: 600
`);
  t.teardown(async () => { await d.stop(); await removeDaemonDir(d); });

  // A client on B gets nothing: broadcast DISCOVERs arrive on B and must not be seen.
  const b = await udhcpc(net, nb, cb, { tries: 3 });
  t.equal(b.ip, undefined, `no lease on interface B (${b.output.replace(/\n/g, ' ')})`);
  t.equal(b.code, 1, 'udhcpc -n gives up');
  // Unicast from B, to the server's B address and (routed) to its A address: relay-style, from perfdhcp.
  await net.ip(nb, ['addr', 'add', '10.96.2.2/24', 'dev', cb]);
  await net.ip(nb, ['route', 'add', 'default', 'via', '10.96.2.1']);
  for (const target of ['10.96.2.1', '10.96.1.1']) {
    const p = await runPerfdhcp(net, nb, ['-4', '-r', '10', '-n', '10', '-W', '500000', '-l', cb, target], 20_000);
    t.equal(p.do.received, 0, `unicast from B to ${target}: no reply (${p.do.sent} sent)`);
  }
  t.same(d.logs().filter((l) => typeof l.event === 'string' && l.event.startsWith('dhcp.') && l.event !== 'dhcp.listening'), [], 'the daemon saw no DHCP packet from B');

  // A client on A gets one.
  const a = await udhcpc(net, na, ca);
  t.ok(a.ip && inRange(a.ip, '10.96.1.100', '10.96.1.150'), `lease on interface A: ${a.ip}`);
  const leases = await apiLeases(net, srv, api, d.dataDir);
  t.same(leases.map((l) => [l.mac, l.ip, l.state]), [['52:54:00:96:01:01', a.ip, 'bound']], 'only A\'s client has a lease');

  // Health check.
  const h = await net.exec(srv, ['curl', '-s', '-w', '\n%{http_code}', '--max-time', '5', `${api}/healthz`], 10_000);
  const [body, code] = h.stdout.split('\n');
  t.equal(code, '200', 'GET /healthz is 200');
  t.same(JSON.parse(body!), { status: 'ok' }, 'with status ok');

  // CLI: lease table, JSON, version.
  const table = await net.exec(srv, ['node', METALBOOT, 'leases', '--api', api, '--token-file', `${d.dataDir}/api-token`], 20_000);
  const rows = table.stdout.trimEnd().split('\n');
  t.match(rows[0], /^IP\s+MAC\s+STATE\s+EXPIRES/, `table header: ${rows[0]}`);
  t.equal(rows.length, 2, 'one lease row');
  t.match(rows[1], new RegExp(`^${(a.ip ?? 'none').replace(/\./g, '\\.')}\\s+52:54:00:96:01:01\\s+bound\\s+\\d{4}-\\d\\d-\\d\\dT`), `lease row: ${rows[1]}`);
  const json = await net.exec(srv, ['node', METALBOOT, 'leases', '--api', `${api}/`, '--json', '--token-file', `${d.dataDir}/api-token`], 20_000);
  t.same((JSON.parse(json.stdout) as { ip: string; mac: string }[]).map((l) => [l.ip, l.mac]), [[a.ip, '52:54:00:96:01:01']], 'leases --json');
  const down = await net.exec(srv, ['node', METALBOOT, 'leases', '--api', 'http://127.0.0.1:9'], 20_000, [0, 1, 2]);
  t.equal(down.code, 1, 'unreachable API: exit 1');
  t.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:9\/api\/v1\/leases/, 'says which URL');
  const v = await sh(['node', METALBOOT, '--version'], 20_000);
  t.equal(v.stdout, `metalboot ${VERSION}\n`, `metalboot --version prints ${VERSION}`);
  const vd = await sh(['node', METALBOOTD, '--version'], 20_000);
  t.equal(vd.stdout, `metalbootd ${VERSION}\n`, 'metalbootd --version too');
});
