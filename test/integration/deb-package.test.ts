/**
 * The Debian package as an admin gets it: scripts/build-deb builds it (or
 * METALBOOT_DEB names one already built), dpkg installs it into an empty root
 * (--root, maintainer scripts run chrootless with DPKG_ROOT), the files land
 * where the README lists them and the conffile is recorded, systemd-analyze
 * verifies the installed unit, the installed daemon starts from the installed
 * configuration (in a namespace; only dataDir and tgtd's control port
 * overridden) and says READY=1 to a notify socket once /healthz answers, and
 * purge keeps the data directory. The package carries its Node.js runtime
 * (packaging/node-runtime): no nodejs in Depends; on a stock Debian 12 root
 * (debootstrap from the host's apt mirror, no nodejs, no other repository)
 * `apt-get install ./metalboot_*.deb` works and the daemon answers /healthz.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TestNet, LineCollector, netnsUnavailable, sh } from '../helpers/netns.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { toolMissing } from '../helpers/tools.js';
import { NotifyReceiver } from '../helpers/notify-receiver.js';

const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const pinned = (key: string): string => new RegExp(`^${key}=(\\S+)$`, 'm').exec(readFileSync(path.join(REPO_ROOT, 'packaging/node-runtime'), 'utf8'))?.[1] ?? '';
const NODE_VERSION = pinned('version');
const skip = netnsUnavailable() || toolMissing('dpkg-deb');
const noSystemdAnalyze = toolMissing('systemd-analyze');
// Building a stock Debian root needs debootstrap and the host's apt mirror; up to ~10 min under load.
t.setTimeout(1_800_000);

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const md5 = (file: string) => createHash('md5').update(readFileSync(file)).digest('hex');

t.test('metalboot .deb: build, install into a clean root, verify, run, purge', { skip, timeout: 1_700_000 }, async (t) => {
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
  t.notMatch(info, /^Depends: .*\bnodejs\b/m, 'no nodejs in Depends: the package carries its runtime');
  t.match(info, /^Depends: .*\btgt\b.*$/m, 'depends on tgt');
  // build-deb takes libc6's version from the GLIBC_ symbols the binaries import (node 26: 2.28; the
  // native addon: the build host's, 2.34 on Debian 12). The oldest target, Ubuntu 22.04, has 2.35.
  const libc = /^Depends: .*\blibc6 \(>= 2\.(\d+)\)/m.exec(info)?.[1];
  t.ok(libc !== undefined && Number(libc) >= 28 && Number(libc) <= 35, `libc6 (>= 2.${libc}): at least node's 2.28, at most Ubuntu 22.04's 2.35`);
  const depends = /^Depends: (.*)$/m.exec(info)?.[1] ?? '';
  t.same(depends.split(',').map((d) => d.trim().split(' ')[0]).sort(), ['libatomic1', 'libc6', 'libgcc-s1', 'libstdc++6', 'tgt'], `Depends only on what Debian 12/13 and Ubuntu 22.04/24.04 have: ${depends}`);
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
    'usr/lib/metalboot/node/bin/node',
    'usr/lib/metalboot/node/LICENSE',
    'usr/share/doc/metalboot/node-runtime',
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
  const copyright = readFileSync(path.join(root, 'usr/share/doc/metalboot/copyright'), 'utf8');
  t.match(copyright, /^ fastify \S+: MIT$/m, 'copyright lists bundled modules');
  t.match(copyright, /^Files: usr\/lib\/metalboot\/node\/\*$/m, 'copyright covers the Node.js runtime');
  t.match(copyright, /^ Node\.js is licensed for use as follows:$/m, 'with Node.js\'s licence text');
  t.match(copyright, /^ - OpenSSL, located at deps\/openssl, is licensed as follows:$/m, 'and its bundled components\' licences');

  // The runtime: the pinned version, as the registry ships it, and the wrappers run it (not /usr/bin/node).
  const shippedNode = path.join(root, 'usr/lib/metalboot/node/bin/node');
  t.equal((await sh([shippedNode, '--version'])).stdout.trim(), `v${NODE_VERSION}`, `shipped node is the pinned v${NODE_VERSION}`);
  const record = readFileSync(path.join(root, 'usr/share/doc/metalboot/node-runtime'), 'utf8');
  t.match(record, new RegExp(`^sha256=${pinned('sha256')}$`, 'm'), 'the build records the pinned tarball sha256');
  t.match(record, new RegExp(`^bin_node_sha256=${sha256(shippedNode)}$`, 'm'), 'and the shipped binary\'s sha256');
  for (const w of ['metalbootd', 'metalboot']) {
    const body = readFileSync(path.join(root, 'usr/bin', w), 'utf8');
    t.match(body, /^exec "\$here\/\.\.\/lib\/metalboot\/node\/bin\/node" /m, `${w} wrapper execs the shipped node`);
    t.notMatch(body, /\/usr\/bin\/node/, `${w} wrapper does not use a system node`);
  }

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
  await t.test('systemd-analyze verify and security on the installed unit', { skip: noSystemdAnalyze }, async (t) => {
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

  // 7. A stock Debian 12 (minbase debootstrap, the host's mirror, no nodejs, no other
  //    repository): apt-get installs the .deb and its Depends, the daemon answers.
  await t.test('stock Debian 12 root without nodejs: apt-get install ./deb, metalbootd /healthz, metalboot --version', { skip: toolMissing('debootstrap'), timeout: 1_200_000 }, async (t) => {
    const stock = path.join(work, 'stock');
    const mk = await sh(['bash', path.join(REPO_ROOT, 'scripts/debian-root.sh'), 'make', stock], 900_000, [0, 1]);
    t.equal(mk.code, 0, `debootstrap: ${mk.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    if (mk.code !== 0) return;
    const inRoot = (argv: string[], ms = 300_000) => sh(['bash', path.join(REPO_ROOT, 'scripts/debian-root.sh'), 'run', stock, '--', ...argv], ms, [0, 1, 100]);
    t.not((await inRoot(['dpkg-query', '-W', 'nodejs'])).code, 0, 'no nodejs package before');
    t.notOk(existsSync(path.join(stock, 'usr/bin/node')), 'no /usr/bin/node');
    t.same((await sh(['ls', path.join(stock, 'etc/apt/sources.list.d')])).stdout.trim().split('\n'), ['debian.sources'], 'only Debian\'s own sources');
    await sh(['cp', deb!, path.join(stock, 'root/metalboot.deb')]);
    // As on a server with no init running: the tgt package must not try to start tgtd here.
    await writeFile(path.join(stock, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    const up = await inRoot(['apt-get', 'update', '-qq'], 600_000);
    t.equal(up.code, 0, `apt-get update: ${up.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    const inst = await inRoot(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', '--no-install-recommends', '/root/metalboot.deb'], 900_000);
    t.equal(inst.code, 0, `apt-get install ./metalboot.deb: ${(inst.stdout + inst.stderr).trim().split('\n').slice(-3).join(' | ')}`);
    const size = statSync(deb!).size;
    t.comment(`package ${path.basename(deb!)}: ${(size / 1048576).toFixed(1)} MiB; apt installed: ${/(\d+) newly installed/.exec(inst.stdout)?.[0] ?? '?'}`);
    t.equal((await inRoot(['dpkg-query', '-W', '-f=${Status}', 'metalboot'])).stdout, 'install ok installed', 'metalboot installed');
    t.not((await inRoot(['dpkg-query', '-W', '-f=${Status}', 'nodejs'])).stdout, 'install ok installed', 'still no nodejs package after');
    const ver = await inRoot(['metalboot', '--version']);
    t.equal(ver.stdout.trim(), `metalboot ${VERSION}`, 'metalboot --version in the stock root');

    // The shipped configuration (DHCP and TFTP off, API on 127.0.0.1:8080), in a namespace of
    // its own; only tgtd's control port moved to one nobody uses (never the host's tgtd).
    const cfgFile = path.join(stock, 'etc/metalboot/metalboot.yaml');
    const controlPort = 30_000 + ((process.pid + 977) % 2000);
    await writeFile(cfgFile, readFileSync(cfgFile, 'utf8').replace(/^ {2}manageTgtd: false$/m, `  manageTgtd: false\n  controlPort: ${controlPort}`));
    const net = new TestNet('dst');
    t.teardown(() => net.destroy());
    const ns = await net.addNamespace('srv');
    const proc = net.spawn(ns, ['bash', path.join(REPO_ROOT, 'scripts/debian-root.sh'), 'run', stock, '--', '/usr/bin/metalbootd', '--config', '/etc/metalboot/metalboot.yaml'], 180);
    const out = new LineCollector(proc.stdout);
    const err = new LineCollector(proc.stderr);
    let health = '';
    for (let i = 0; i < 120 && proc.exitCode === null; i++) {
      const r = await net.exec(ns, ['curl', '-sS', '--max-time', '2', 'http://127.0.0.1:8080/healthz'], 10_000, [0, 7, 28]);
      if (r.code === 0) { health = r.stdout; break; }
      await new Promise((r) => setTimeout(r, 500));
    }
    t.same(health ? JSON.parse(health) : undefined, { status: 'ok' }, `/healthz from metalbootd in the stock root ${health ? '' : `(exit ${proc.exitCode}: ${err.lines.slice(-3).join(' | ')} ${out.lines.slice(-3).join(' | ')})`}`);
    const logs = out.lines.flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } });
    t.match(logs.find((l) => l['event'] === 'daemon.ready'), { dhcpMode: 'off', tftp: false }, 'daemon.ready with DHCP and TFTP off');
    const nodeUsed = await net.exec(ns, ['sh', '-c', 'readlink /proc/$(pgrep -f "metalboot/dist/src/cli/metalbootd.js" | head -n 1)/exe'], 10_000, [0, 1]);
    t.match(nodeUsed.stdout.trim(), /\/usr\/lib\/metalboot\/node\/bin\/node$/, 'the daemon runs on the shipped node');
  });
});
