/**
 * The provisioning flow with the real pieces: metalbootd in DHCP server mode in one namespace,
 * a client namespace behind a veth (busybox udhcpc takes the machine's lease), tgtd managed by
 * the daemon, the file backend on a btrfs loop mount (reflink clones), ipmi_sim as the
 * machine's BMC. enrol → provision → the BMC says boot device PXE and power on → the sanboot
 * script is served only to the machine's own address → libiscsi's iscsi-inq logs in with what
 * that script says → the session makes the machine `active` → reset gives a fresh disk. No
 * secret appears in any API response or log line.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { startDaemon, type DaemonUnderTest } from '../helpers/daemon.js';
import { apiToken } from '../helpers/dhcp-tools.js';
import { freeControlPort, removeControlSocket, tgtdUnavailable } from '../helpers/tgtd.js';
import { ipmiSimUnavailable, startIpmiSim } from '../helpers/ipmi-sim.js';
import { sha256 } from '../helpers/disks.js';
import { runCommand } from '../../src/exec/run.js';
import { Tgtd } from '../../src/iscsi/tgtd.js';

const skip = netnsUnavailable() || tgtdUnavailable() || ipmiSimUnavailable();
const MAC = '52:54:00:88:00:07';
const SRV_IP = '10.88.0.1';
const BMC_PW = 'bmc-Pass-0815';
/** Reserved through the machine (outside the pool): DHCP must hand out exactly this. */
const RESERVED_IP = '10.88.0.77';

t.test('enrol → provision → PXE + power on via IPMI → sanboot script only to the machine → iSCSI login → active → reset', { skip, timeout: 600_000 }, async (t) => {
  const net = new TestNet('mfl');
  const dir = await mkdtemp(path.join(tmpdir(), 'mbt-mfl-'));
  net.removeOnDestroy(dir);
  const controlPort = freeControlPort();
  const dataDir = path.join(dir, 'data');
  const tgtd = new Tgtd({ runner: runCommand, controlPort, manageTgtd: true, pidFile: path.join(dataDir, 'tgtd.pid') });
  let d: DaemonUnderTest | undefined;
  const mnt = path.join(dir, 'btrfs');
  t.teardown(async () => {
    await d?.stop().catch(() => undefined);
    await tgtd.stop().catch(() => undefined);
    await removeControlSocket(controlPort);
    await runCommand(['umount', '-l', mnt], { timeoutMs: 10_000, okCodes: [0, 32] }).catch(() => undefined);
    await net.destroy();
  });
  // The file backend on btrfs: clones are reflinks.
  await runCommand(['truncate', '-s', '1G', path.join(dir, 'btrfs.img')], { timeoutMs: 5000 });
  await runCommand(['mkfs.btrfs', '-q', path.join(dir, 'btrfs.img')], { timeoutMs: 30_000 });
  await runCommand(['mkdir', '-p', mnt], { timeoutMs: 5000 });
  await runCommand(['mount', '-o', 'loop', path.join(dir, 'btrfs.img'), mnt], { timeoutMs: 30_000 });

  const srv = await net.addNamespace('s');
  const cli = await net.addNamespace('c');
  await net.ip(srv, ['link', 'set', 'lo', 'up']);
  await net.ip(cli, ['link', 'set', 'lo', 'up']);
  await net.veth(srv, 'mfl-s', cli, 'mfl-c', `${SRV_IP}/24`);
  await net.ip(cli, ['link', 'set', 'mfl-c', 'address', MAC]);
  const sim = await startIpmiSim(t, { netns: srv, password: BMC_PW });

  d = await startDaemon(net, srv, `
dataDir: ${dataDir}
http: { listen: "${SRV_IP}:8080", publicUrl: "http://${SRV_IP}:8080" }
dhcp:
  mode: server
  interface: mfl-s
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.88.0.0/24
      pool: [10.88.0.100, 10.88.0.150]
      leaseTime: 600
tftp: { enabled: false }
storage: { backend: file, file: { dir: ${mnt}/volumes } }
iscsi: { portal: "${SRV_IP}:3260", manageTgtd: true, controlPort: ${controlPort}, checkIntervalMs: 300 }
`, { dataDir, readyTimeoutMs: 30_000 });
  t.match(d.events('storage.ready')[0], { cloneMode: 'reflink' }, 'btrfs: reflink clones');
  const token = apiToken(dataDir);
  const bodies: string[] = [];
  const api = async (ns: string, method: string, url: string, body?: unknown, auth = true) => {
    const argv = ['curl', '-sS', '-m', '60', '-X', method, '-o', '-', '-w', '\n%{http_code}', `http://${SRV_IP}:8080${url}`];
    if (auth) argv.push('-H', `Authorization: Bearer ${token}`);
    if (body !== undefined) argv.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
    const r = await net.exec(ns, argv, 70_000);
    const i = r.stdout.lastIndexOf('\n');
    const text = r.stdout.slice(0, i);
    bodies.push(text);
    return { status: Number(r.stdout.slice(i + 1)), text, json: () => JSON.parse(text) };
  };

  const image = randomBytes(16 << 20);
  await writeFile(path.join(dir, 'golden.raw'), image);
  const up = await net.exec(srv, ['curl', '-sS', '-X', 'PUT', '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/octet-stream',
    '--data-binary', `@${path.join(dir, 'golden.raw')}`, '-o', '/dev/null', '-w', '%{http_code}', `http://${SRV_IP}:8080/api/v1/images/golden`], 60_000);
  t.equal(up.stdout, '201', 'image uploaded');

  t.equal((await api(srv, 'GET', '/api/v1/machines', undefined, false)).status, 401, 'no token: 401');
  const enrol = await api(srv, 'PUT', `/api/v1/machines/${MAC}`, { name: 'node7', firmware: 'bios', ip: RESERVED_IP, bmc: { host: '127.0.0.1', port: sim.port, user: sim.user, password: BMC_PW } });
  t.equal(enrol.status, 201, enrol.text);
  t.match(enrol.json(), { mac: MAC, name: 'node7', state: 'enrolled', bmc: { host: '127.0.0.1', passwordSet: true } });
  t.match(enrol.json(), { power: { driver: 'ipmi', host: '127.0.0.1', port: sim.port, passwordSet: true } }, 'enrolled through the bmc alias, shown as power');
  t.notMatch(enrol.text, BMC_PW, 'the BMC password is write-only');
  t.equal((await api(srv, 'POST', `/api/v1/machines/${MAC}/reset`)).status, 409, 'reset before provision: 409 naming the state');
  t.same((await api(srv, 'GET', '/api/v1/reservations')).json().reservations.filter((r: { mac: string }) => r.mac === MAC),
    [{ mac: MAC, ip: RESERVED_IP, hostname: 'node7', source: 'api' }], 'the machine\'s ip is a DHCP reservation');
  const ghost = await api(srv, 'POST', `/api/v1/machines/${MAC}/provision`, { image: 'ghost' });
  t.equal(ghost.status, 404, 'an image that does not exist: 404 before any operation');
  t.match(ghost.json().error, /^image ghost: does not exist/);
  t.same((await api(srv, 'GET', `/api/v1/operations?mac=${MAC}`)).json().operations, [], 'no operation started');

  const prov = await api(srv, 'POST', `/api/v1/machines/${MAC}/provision`, { image: 'golden' });
  t.equal(prov.status, 202, prov.text);
  const opId = prov.json().operation.id as string;
  let op: { status: string; steps: { step: string }[]; error?: string } = { status: 'running', steps: [] };
  for (let i = 0; i < 100 && op.status === 'running'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    op = (await api(srv, 'GET', `/api/v1/operations/${opId}`)).json();
  }
  t.equal(op.status, 'succeeded', `provision operation: ${op.error ?? ''}`);
  t.same(op.steps.map((s) => s.step), ['queued', 'disk', 'boot-mode', 'bootdev', 'power'], 'each step visible');
  t.equal(sim.bootDevice(), 'pxe', 'the BMC reports boot device PXE');
  t.equal(sim.power(), 1, 'and power on');
  t.match(sim.ipmitool(['chassis', 'power', 'status']), /is on/, 'ipmitool agrees');
  t.equal((await api(srv, 'GET', `/api/v1/machines/${MAC}`)).json().state, 'ready');
  t.same((await api(srv, 'GET', `/api/v1/machines/${MAC}/power`)).json(), { power: 'on' });
  const row = (await api(srv, 'GET', '/api/v1/status')).json().machines.find((m: { mac: string }) => m.mac === MAC);
  t.match(row, { name: 'node7', state: 'ready', power: 'on', image: 'golden' }, 'the status page\'s row: state, power as last seen through the BMC, image');

  // The machine takes its lease; only its address gets the secret-bearing script.
  const lease = await net.exec(cli, ['udhcpc', '-i', 'mfl-c', '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', '/bin/true'], 30_000);
  const ip = /lease of (\S+) obtained/.exec(lease.stdout + lease.stderr)?.[1];
  t.equal(ip, RESERVED_IP, 'DHCP hands the machine its reserved address');
  await net.ip(cli, ['addr', 'add', `${ip}/24`, 'dev', 'mfl-c']);
  const fromOther = await net.exec(srv, ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${SRV_IP}:8080/boot/${MAC}.ipxe`], 20_000);
  t.equal(fromOther.stdout, '403', 'another address gets 403');
  await d.waitForEvent('http.boot-script-refused', 5000);
  const script = (await net.exec(cli, ['curl', '-sS', `http://${SRV_IP}:8080/boot/${MAC}.ipxe`], 20_000)).stdout;
  t.match(script, /^#!ipxe\n/);
  const get = (re: RegExp) => re.exec(script)?.[1] ?? '';
  const initiator = get(/^set initiator-iqn (\S+)$/m);
  const user = get(/^set username (\S+)$/m);
  const secret = get(/^set password (\S+)$/m);
  const uri = /^sanboot (iscsi:(\S+?)::(\d+):(\w+):(\S+)) /m.exec(script);
  t.ok(initiator && user && secret && uri, 'the script names initiator, CHAP and the iSCSI URI');
  t.equal(uri![2], SRV_IP);
  t.equal(uri![4], '1', 'LUN 1');

  // iscsi-inq with exactly what the script says, from the machine's address.
  const url = `iscsi://${user}%${secret}@${uri![2]}:${uri![3]}/${uri![5]}/1`;
  const inq = await net.exec(cli, ['iscsi-inq', '-i', initiator, url], 30_000, [0, 10]);
  t.equal(inq.code, 0, `iscsi-inq logs in with the script's credentials: ${inq.stderr}`);

  // A session held open makes the machine active; closing it makes it ready again.
  const secretFile = path.join(dir, 'secret');
  await writeFile(secretFile, secret, { mode: 0o600 });
  const opts = ['--object', `secret,id=s0,file=${secretFile}`, '--image-opts', `driver=iscsi,transport=tcp,portal=${SRV_IP}:3260,target=${uri![5]},lun=1,initiator-name=${initiator},user=${user},password-secret=s0`];
  await net.exec(cli, ['qemu-io', '-c', 'write -P 0xcd 0 1M', ...opts], 30_000);
  const q = spawn('ip', ['netns', 'exec', cli, 'timeout', '-k', '2', '60', 'qemu-io', '-r', ...opts], { stdio: ['pipe', 'pipe', 'pipe'] });
  net.track(q);
  q.stdin.write('read 0 512\n');
  await d.waitForEvent('machines.state', 15_000, (l) => l.to === 'active');
  t.equal((await api(srv, 'GET', `/api/v1/machines/${MAC}`)).json().state, 'active', 'iSCSI login seen: active');
  const busy = await api(srv, 'POST', `/api/v1/machines/${MAC}/reset`);
  t.equal(busy.status, 409, 'no reset under an open session');
  t.match(busy.json().error, `cannot reset while active: iSCSI session open from ${initiator} (${ip}`, 'the 409 names the state, the initiator and its address');
  q.stdin.end('quit\n');
  await d.waitForEvent('machines.state', 15_000, (l) => l.to === 'ready' && l.from === 'active');

  const reset = await api(srv, 'POST', `/api/v1/machines/${MAC}/reset`);
  t.equal(reset.status, 200, reset.text);
  // Before the read-back below: that is an iSCSI session with the machine's own IQN, which the
  // session poll may (rightly) see as ready>active>ready.
  const events = (await api(srv, 'GET', `/api/v1/machines/${MAC}/events`)).json().events as { from: string | null; to: string }[];
  t.same(events.map((e) => `${e.from}>${e.to}`), ['null>enrolled', 'enrolled>provisioning', 'provisioning>ready', 'ready>active', 'active>ready'], 'every transition recorded');
  const out = path.join(dir, 'after-reset.raw');
  await net.exec(cli, ['qemu-img', 'convert', ...opts, '-O', 'raw', out], 60_000);
  t.equal(sha256(await readFile(out)), sha256(image), 'reset: a fresh disk with the image\'s bytes');
  const boots = (await api(srv, 'GET', `/api/v1/machines/${MAC}/timeline`)).json().boots as { steps: { name: string }[] }[];
  t.ok(boots.length >= 1, `${boots.length} boot(s) on the timeline`);
  t.same(boots.at(-1)!.steps.map((s) => s.name).filter((n) => n !== 'tftp'), ['dhcp', 'script', 'iscsi', 'active'], 'the timeline: DHCP → script → iSCSI → active');
  t.equal((await api(srv, 'DELETE', `/api/v1/machines/${MAC}`)).status, 409, 'delete refused while provisioned');
  t.equal((await api(srv, 'DELETE', `/api/v1/machines/${MAC}?force=true`)).status, 204, 'forced delete deprovisions');
  t.same(await tgtd.show(), [], 'its target is gone');

  const everything = bodies.join('\n') + d.out.lines.join('\n') + d.err.lines.join('\n');
  t.notMatch(everything, secret, 'the CHAP secret is in no API response and no log line');
  t.notMatch(everything, BMC_PW, 'nor the BMC password');
  t.notMatch(d.out.lines.join('\n'), token, 'nor the API token');
});
