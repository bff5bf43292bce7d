/**
 * The Debian package as an admin gets it: scripts/build-deb builds it (or
 * METALBOOT_DEB names one already built), dpkg installs it into an empty root
 * (--root, maintainer scripts run chrootless with DPKG_ROOT), the files land
 * where the README lists them and the conffile is recorded, systemd-analyze
 * verifies the installed unit, the installed daemon starts from the installed
 * configuration (in a namespace; only dataDir and tgtd's control port
 * overridden) and says READY=1 to a notify socket once /healthz answers, and
 * purge keeps the data directory.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TestNet, LineCollector, netnsUnavailable, sh } from '../helpers/netns.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { NotifyReceiver } from '../helpers/notify-receiver.js';

const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const skip = netnsUnavailable() || (existsSync('/usr/bin/dpkg-deb') ? false : 'needs dpkg-deb');
const hasSystemdAnalyze = existsSync('/usr/bin/systemd-analyze') || existsSync('/bin/systemd-analyze');

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const md5 = (file: string) => createHash('md5').update(readFileSync(file)).digest('hex');

t.test('metalboot .deb: build, install into a clean root, verify, run, purge', { skip, timeout: 900_000 }, async (t) => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'mbt-deb-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));

  // 1. The package.
  let deb = process.env['METALBOOT_DEB'];
  if (deb) {
    t.comment(`reusing ${deb}`);
  } else {
    const r = await sh(['bash', path.join(REPO_ROOT, 'scripts/build-deb'), '--out', path.join(work, 'out')], 600_000);
    const arch = (await sh(['dpkg', '--print-architecture'])).stdout.trim();
    deb = path.join(work, 'out', `metalboot_${VERSION}_${arch}.deb`);
    t.ok(existsSync(deb), `build-deb wrote ${path.basename(deb)}: ${r.stdout.trim().split('\n').pop()}`);
  }

  const info = (await sh(['dpkg-deb', '--field', deb])).stdout;
  t.match(info, new RegExp(`^Version: ${VERSION.replaceAll('.', '\\.')}$`, 'm'), 'version from package.json');
  t.match(info, /^Depends: .*nodejs \(>= 20\).*$/m, 'depends on nodejs >= 20');
  t.match(info, /^Depends: .*\btgt\b.*$/m, 'depends on tgt');
  for (const p of ['lvm2', 'thin-provisioning-tools', 'qemu-utils', 'ipxe']) t.match(info, new RegExp(`^(Recommends|Suggests): .*\\b${p}\\b`, 'm'), `recommends or suggests ${p}`);
  const contents = (await sh(['dpkg-deb', '--contents', deb], 60_000)).stdout.split('\n').filter(Boolean);
  t.same(contents.filter((l) => !/^\S+ root\/root /.test(l)), [], 'every file root:root');
  t.same(contents.filter((l) => /^[-d]\S{4}w|^[-d]\S{7}w/.test(l)), [], 'nothing group- or world-writable');
  const ctl = path.join(work, 'control');
  await sh(['dpkg-deb', '--control', deb, ctl]);
  t.equal(readFileSync(path.join(ctl, 'conffiles'), 'utf8'), '/etc/metalboot/metalboot.yaml\n', 'conffiles lists the config');
  for (const s of ['postinst', 'prerm', 'postrm']) t.ok((statSync(path.join(ctl, s)).mode & 0o111) !== 0, `${s} executable`);
  const postinst = readFileSync(path.join(ctl, 'postinst'), 'utf8');
  const commands = postinst.split('\n').filter((l) => !/^\s*(#|echo\b)/.test(l)).join('\n');
  t.notMatch(commands, /systemctl\s+(enable|start|restart)\b|deb-systemd-invoke/, 'postinst enables and starts nothing');

  // 2. Install into an empty root: maintainer scripts run without chroot, with DPKG_ROOT set.
  const root = path.join(work, 'root');
  for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/log']) await mkdir(path.join(root, d), { recursive: true });
  await writeFile(path.join(root, 'var/lib/dpkg/status'), '');
  await writeFile(path.join(root, 'var/lib/dpkg/available'), '');
  const dpkg = (args: string[], netns?: string) =>
    sh([...(netns ? ['ip', 'netns', 'exec', netns] : []), 'dpkg', `--root=${root}`, '--force-script-chrootless', '--force-depends', ...args], 300_000, [0, 1, 2]);
  // Installed from inside a network namespace with no interface up: the package needs no network.
  const offline = `mbt-deb-offline-${process.pid}`;
  await sh(['ip', 'netns', 'add', offline]);
  t.teardown(() => sh(['ip', 'netns', 'del', offline], 10_000, [0, 1]).then(() => undefined));
  const inst = await dpkg(['-i', deb], offline);
  t.equal(inst.code, 0, `dpkg -i with no network: ${inst.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  t.match(inst.stdout, /installed, not enabled/, 'postinst says it enabled nothing');
  const q = (f: string) => sh(['dpkg-query', `--root=${root}`, '-W', `-f=${f}`, 'metalboot']).then((r) => r.stdout);
  t.equal(await q('${Status}'), 'install ok installed');
  const conffiles = (await q('${Conffiles}')).trim();
  const installedCfg = path.join(root, 'etc/metalboot/metalboot.yaml');
  t.equal(conffiles, `/etc/metalboot/metalboot.yaml ${md5(installedCfg)}`, 'conffile recorded with its md5');

  // 3. Files where the README says.
  const listed = (await sh(['dpkg-query', `--root=${root}`, '-L', 'metalboot'], 60_000)).stdout.split('\n').filter((l) => l && l !== '/.');
  t.same(listed.filter((p) => !existsSync(path.join(root, p))), [], `all ${listed.length} listed paths exist`);
  const exec = (p: string) => (statSync(path.join(root, p)).mode & 0o777) === 0o755;
  t.ok(exec('usr/bin/metalbootd') && exec('usr/bin/metalboot'), '/usr/bin wrappers, 0755');
  for (const p of [
    'lib/systemd/system/metalboot.service',
    'etc/metalboot/metalboot.yaml',
    'usr/lib/metalboot/package.json',
    'usr/lib/metalboot/dist/src/cli/metalbootd.js',
    'usr/lib/metalboot/dist/src/cli/metalboot.js',
    'usr/lib/metalboot/dist/src/systemd/notify.js',
    'usr/lib/metalboot/build/Release/netsock.node',
    'usr/lib/metalboot/node_modules/fastify/package.json',
    'usr/lib/metalboot/node_modules/classic-level/package.json',
    'usr/lib/metalboot/boot-assets/undionly.kpxe',
    'usr/lib/metalboot/boot-assets/ipxe.efi',
    'usr/lib/metalboot/boot-assets/MANIFEST',
    'usr/lib/metalboot/status/index.html',
    'usr/lib/metalboot/status/app.js',
    'usr/share/doc/metalboot/README.md',
    'usr/share/doc/metalboot/copyright',
    'usr/share/doc/metalboot/examples/lvm-backend.conf',
  ]) t.ok(listed.includes(`/${p}`) && statSync(path.join(root, p)).isFile(), `/${p}`);
  for (const p of ['usr/lib/metalboot/node_modules/typescript', 'usr/lib/metalboot/node_modules/tap', 'usr/lib/metalboot/dist/test', 'usr/lib/metalboot/build/Release/obj.target']) {
    t.notOk(existsSync(path.join(root, p)), `no /${p} (production only)`);
  }
  const data = statSync(path.join(root, 'var/lib/metalboot'));
  t.ok(data.isDirectory() && (data.mode & 0o777) === 0o700, '/var/lib/metalboot made by postinst, 0700');
  t.notOk(listed.includes('/var/lib/metalboot'), 'the data directory is not a packaged path (dpkg never removes it)');
  t.match(readFileSync(installedCfg, 'utf8'), /^dhcp:\n {2}mode: off$/m, 'default config: DHCP off');
  t.match(readFileSync(path.join(root, 'usr/share/doc/metalboot/copyright'), 'utf8'), /^ fastify \S+: MIT$/m, 'copyright lists bundled modules');

  // The unit's directives the issue and README promise (a removed or changed one fails here).
  const unit = readFileSync(path.join(root, 'lib/systemd/system/metalboot.service'), 'utf8');
  const directives = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
  }
  const want: [string, string][] = [
    ['Type', 'notify'], ['NotifyAccess', 'main'], ['ExecStart', '/usr/bin/metalbootd --config /etc/metalboot/metalboot.yaml'],
    ['Restart', 'on-failure'], ['RestartPreventExitStatus', '2'],
    ['CapabilityBoundingSet', 'CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN'], ['NoNewPrivileges', 'yes'],
    ['ProtectSystem', 'strict'], ['StateDirectory', 'metalboot'], ['PrivateTmp', 'yes'], ['ProtectHome', 'yes'],
  ];
  for (const [k, v] of want) t.same(directives.get(k), [v], `unit: ${k}=${v}`);
  for (const k of ['User', 'DynamicUser', 'StandardOutput', 'WatchdogSec']) t.notOk(directives.has(k), `unit: no ${k}= (root with three capabilities; stdout to journald; watchdog off by default)`);

  // 4. The unit, as systemd would load it from this root (base units from the host's systemd).
  await t.test('systemd-analyze verify and security on the installed unit', { skip: hasSystemdAnalyze ? false : 'systemd-analyze not installed' }, async (t) => {
    await sh(['cp', '-rn', '/lib/systemd/system/.', path.join(root, 'lib/systemd/system/')], 60_000, [0, 1]);
    const v = await sh(['systemd-analyze', 'verify', `--root=${root}`, 'metalboot.service'], 60_000, [0, 1]);
    t.equal(v.code, 0, 'verify passes');
    t.equal(v.stderr.trim(), '', 'and warns about nothing (unknown keys, bad values, missing ExecStart)');
    const s = await sh(['systemd-analyze', 'security', '--offline=yes', `--root=${root}`, 'metalboot.service'], 60_000, [0, 1]);
    const score = Number(/Overall exposure level for metalboot\.service: ([\d.]+)/.exec(s.stdout)?.[1]);
    const recorded = Number(/\*\*([\d.]+) OK\*\* for the packaged unit/.exec(readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8'))?.[1]);
    t.equal(score, recorded, `exposure ${score}, as README records it`);
    t.match(s.stdout, /✓ NoNewPrivileges=/);
    t.match(s.stdout, /✓ ProtectSystem=.*strict/);
    t.match(s.stdout, /✓ CapabilityBoundingSet=~CAP_SYS_ADMIN/, 'no CAP_SYS_ADMIN without the lvm drop-in');
  });

  // 5. The installed daemon from the installed config, in a namespace.
  await t.test('installed metalbootd starts from the installed config, READY=1, /healthz, bundled boot assets', { timeout: 120_000 }, async (t) => {
    const net = new TestNet('deb');
    t.teardown(() => net.destroy());
    const ns = await net.addNamespace('srv');
    const original = readFileSync(installedCfg, 'utf8');
    // Overrides: data under the fake root; a tgtd control port nobody uses (never the host's tgtd).
    const controlPort = 30_000 + (process.pid % 2000);
    const cfg = original
      .replace(/^dataDir: \/var\/lib\/metalboot$/m, `dataDir: ${root}/var/lib/metalboot`)
      .replace(/^ {2}manageTgtd: false$/m, `  manageTgtd: false\n  controlPort: ${controlPort}`);
    t.equal(cfg.split('\n').length, original.split('\n').length + 1, 'only dataDir and iscsi.controlPort overridden');
    const cfgPath = path.join(work, 'metalboot.yaml');
    await writeFile(cfgPath, cfg);
    const rx = await NotifyReceiver.start(path.join(work, 'notify.sock'));
    t.teardown(() => rx.close());

    // As systemd would: a clean environment for node (no loader hooks of the test runner) plus NOTIFY_SOCKET.
    const proc = net.spawn(ns, ['env', '-u', 'NODE_OPTIONS', `NOTIFY_SOCKET=${rx.address}`, path.join(root, 'usr/bin/metalbootd'), '--config', cfgPath], 120);
    const out = new LineCollector(proc.stdout);
    const err = new LineCollector(proc.stderr);
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    const ready = await Promise.race([
      rx.waitFor('READY=1', 60_000),
      exited.then((c) => { throw new Error(`metalbootd exited ${c} before READY=1: ${err.lines.join(' | ')} ${out.lines.slice(-5).join(' | ')}`); }),
    ]);
    const logs = out.lines.flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } });
    const readyLog = logs.find((l) => l['event'] === 'daemon.ready');
    t.match(readyLog, { dhcpMode: 'off', tftp: false, dataDir: `${root}/var/lib/metalboot` }, 'daemon.ready: DHCP and TFTP off as shipped');
    t.equal(ready.pid, readyLog?.['pid'], 'READY=1 came from node itself: the wrapper execs it (NotifyAccess=main)');
    t.ok(logs.some((l) => l['event'] === 'storage.ready'), 'file storage under the data directory');

    const health = await net.exec(ns, ['curl', '-sS', '--max-time', '5', 'http://127.0.0.1:8080/healthz']);
    t.same(JSON.parse(health.stdout), { status: 'ok' }, '/healthz on the configured loopback listener');
    const got = path.join(work, 'undionly.kpxe');
    await net.exec(ns, ['curl', '-sS', '--max-time', '10', '-o', got, 'http://127.0.0.1:8080/boot-assets/undionly.kpxe']);
    t.equal(sha256(got), sha256(path.join(root, 'usr/lib/metalboot/boot-assets/undionly.kpxe')), 'serves the packaged iPXE programs');
    const page = await net.exec(ns, ['curl', '-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:8080/status/app.js']);
    t.equal(page.stdout, '200', 'serves the packaged status page');
    const cli = await sh(['env', '-u', 'NODE_OPTIONS', path.join(root, 'usr/bin/metalboot'), '--version']);
    t.equal(cli.stdout.trim(), `metalboot ${VERSION}`, 'installed CLI runs');
    t.ok(existsSync(path.join(root, 'var/lib/metalboot/api-token')), 'API token created in the data directory');

    process.kill(ready.pid!, 'SIGTERM');
    await rx.waitFor('STOPPING=1', 15_000);
    t.equal(await exited, 0, 'SIGTERM: STOPPING=1, exit 0');
  });

  // 6. Purge keeps the data (machine disks and images live there).
  const purge = await dpkg(['--purge', 'metalboot']);
  t.equal(purge.code, 0, `dpkg --purge: ${purge.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  t.match(purge.stdout, /purge kept \/var\/lib\/metalboot/, 'says the data was kept');
  t.notOk(existsSync(path.join(root, 'usr/lib/metalboot')), 'program files removed');
  t.notOk(existsSync(installedCfg), 'conffile removed on purge');
  t.ok(existsSync(path.join(root, 'var/lib/metalboot/api-token')) && existsSync(path.join(root, 'var/lib/metalboot/db')), 'data directory kept');
  const status = await readFile(path.join(root, 'var/lib/dpkg/status'), 'utf8');
  t.notMatch(status, /^Package: metalboot$/m, 'no longer known to dpkg');
});
