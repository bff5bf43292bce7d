/**
 * Issue 13 items 2 and 6 against the real daemon, from a hostile host on the lab segment (its own
 * namespace behind a veth), over real HTTP with curl --path-as-is (curl would otherwise squash
 * dot segments itself):
 *  - the API read without a token by percent-encoding or otherwise respelling the path
 *    (`/%61pi/v1/disks` was 200 with IQNs and CHAP user names; `GET /%61pi/v1/machines/<mac>/power`
 *    made the daemon query the BMC): now 401 (or 404 for a spelling that matches nothing), no data,
 *    and the BMC (a real ipmi_sim) is not asked; a read-only token writing through encoded paths: 403;
 *  - `/boot/files/<name>` following a symlink out of netbootDir (to a secret file, to /etc/shadow):
 *    now 404; a regular file is still served, whole and by Range.
 * Meanwhile the legitimate client (the read-write token, from the same segment) keeps working.
 * Tokens travel in a 0600 header file (`curl -H @file`), never on argv.
 */
import t from 'tap';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { startDaemon, type DaemonUnderTest } from '../helpers/daemon.js';
import { apiToken } from '../helpers/dhcp-tools.js';
import { freeControlPort, removeControlSocket, tgtdUnavailable } from '../helpers/tgtd.js';
import { ipmiSimUnavailable, startIpmiSim } from '../helpers/ipmi-sim.js';
import { runCommand } from '../../src/exec/run.js';
import { Tgtd } from '../../src/iscsi/tgtd.js';

const skip = netnsUnavailable() || tgtdUnavailable() || ipmiSimUnavailable();
const MAC = '52:54:00:8d:00:07';
const SRV_IP = '10.141.0.1';
const EVIL_IP = '10.141.0.66';
const BASE = `http://${SRV_IP}:8080`;
const RO_TOKEN = 'ro-token-sec-http-auth-0123456789';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('encoded API paths get no data and no BMC query without a token, no writes with a read-only one; /boot/files never leaves netbootDir', { skip, timeout: 300_000 }, async (t) => {
  const net = new TestNet('sha');
  const dir = await mkdtemp(path.join(tmpdir(), 'mbt-sha-'));
  net.removeOnDestroy(dir);
  const controlPort = freeControlPort();
  const dataDir = path.join(dir, 'data');
  const tgtd = new Tgtd({ runner: runCommand, controlPort, manageTgtd: true, pidFile: path.join(dataDir, 'tgtd.pid') });
  let d: DaemonUnderTest | undefined;
  t.teardown(async () => {
    await d?.stop().catch(() => undefined);
    await tgtd.stop().catch(() => undefined);
    await removeControlSocket(controlPort);
    await net.destroy();
  });
  const srv = await net.addNamespace('s');
  const evil = await net.addNamespace('e');
  await net.ip(srv, ['link', 'set', 'lo', 'up']);
  await net.veth(srv, `${net.tag}s`, evil, `${net.tag}e`, `${SRV_IP}/24`);
  await net.ip(evil, ['addr', 'add', `${EVIL_IP}/24`, 'dev', `${net.tag}e`]).catch(() => undefined);
  const sim = await startIpmiSim(t, { netns: srv, user: 'bmcwalker', password: 'bmc-Pass-4711' });

  // netbootDir: a kernel, a link inside (served), links out to a secret, to /etc/shadow, a chain out.
  const netboot = path.join(dir, 'netboot');
  await mkdir(netboot);
  const kernel = randomBytes(200_000);
  await writeFile(path.join(netboot, 'vmlinuz'), kernel);
  await writeFile(path.join(dir, 'secret.txt'), 'TOP-SECRET-OUTSIDE-NETBOOT\n', { mode: 0o600 });
  await symlink(path.join(dir, 'secret.txt'), path.join(netboot, 'secret-link'));
  await symlink('../secret.txt', path.join(netboot, 'rel-link'));
  await symlink('secret-link', path.join(netboot, 'chain-link'));
  await symlink('/etc/shadow', path.join(netboot, 'shadow'));
  await symlink('vmlinuz', path.join(netboot, 'kernel-link'));
  await writeFile(path.join(dir, 'ro-token'), `${RO_TOKEN}\n`, { mode: 0o600 });

  d = await startDaemon(net, srv, `
dataDir: ${dataDir}
http: { listen: "${SRV_IP}:8080", publicUrl: "${BASE}", readOnlyTokenFile: ${path.join(dir, 'ro-token')} }
dhcp: { mode: off }
tftp: { enabled: false }
status: { public: false }
machines: { netbootDir: ${netboot} }
storage: { backend: file, file: { dir: ${path.join(dir, 'volumes')} } }
iscsi: { portal: "${SRV_IP}:3260", manageTgtd: true, controlPort: ${controlPort}, checkIntervalMs: 300 }
`, { dataDir, readyTimeoutMs: 30_000 });

  // Header files, 0600: no token on any argv.
  const hdr = async (name: string, token: string) => { const f = path.join(dir, name); await writeFile(f, `Authorization: Bearer ${token}\n`, { mode: 0o600 }); return f; };
  const RW = await hdr('rw.hdr', apiToken(dataDir));
  const RO = await hdr('ro.hdr', RO_TOKEN);
  const curl = async (ns: string, method: string, url: string, o: { auth?: string; body?: unknown; range?: string; raw?: boolean } = {}) => {
    const argv = ['curl', '-sS', '--path-as-is', '-m', '30', '-X', method, '-o', '-', '-w', '\n%{http_code}'];
    if (method === 'HEAD') argv.splice(argv.indexOf('-X'), 2, '-I');
    if (o.auth) argv.push('-H', `@${o.auth}`);
    if (o.range) argv.push('-H', `Range: ${o.range}`);
    if (o.body !== undefined) argv.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(o.body));
    const r = await net.exec(ns, [...argv, `${BASE}${url}`], 40_000);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), text: r.stdout.slice(0, i) };
  };

  // What a leak would show: the machine's name, its BMC user, the disk's IQN and CHAP user.
  let r = await curl(srv, 'PUT', `/api/v1/machines/${MAC}`, { auth: RW, body: { name: 'secnode1', bmc: { host: '127.0.0.1', port: sim.port, user: sim.user, password: sim.password } } });
  t.equal(r.status, 201, r.text);
  await writeFile(path.join(dir, 'img.raw'), randomBytes(1 << 20));
  const up = await net.exec(srv, ['curl', '-sS', '-X', 'PUT', '-H', `@${RW}`, '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${path.join(dir, 'img.raw')}`,
    '-o', '/dev/null', '-w', '%{http_code}', `${BASE}/api/v1/images/golden`], 60_000);
  t.equal(up.stdout, '201', 'image uploaded');
  r = await curl(srv, 'PUT', `/api/v1/disks/${MAC}`, { auth: RW, body: { image: 'golden' } });
  t.equal(r.status, 201, r.text);
  const iqn = JSON.parse(r.text).targetIqn as string;
  t.match(iqn, /^iqn\./);
  const leak = new RegExp(`secnode1|bmcwalker|${iqn.replace(/[.:]/g, '\\$&')}|"chap"|"user"`);

  // The legitimate client reads everything, and its power query reaches the BMC.
  const reads = ['/api/v1/disks', '/api/v1/machines', `/api/v1/machines/${MAC}`, '/api/v1/leases', '/api/v1/operations', '/api/v1/storage',
    '/api/v1/events', `/api/v1/machines/${MAC}/timeline`, '/api/v1/status', '/api/v1/images', `/api/v1/disks/${MAC}`];
  for (const u of reads) t.equal((await curl(evil, 'GET', u, { auth: RW })).status, 200, `GET ${u} with the token: 200`);
  t.match((await curl(evil, 'GET', '/api/v1/disks', { auth: RW })).text, iqn, 'the token reads the IQN');
  const asked = () => sim.hookLog().split('\n').filter((l) => l.startsWith('get power')).length;
  const before = asked();
  r = await curl(evil, 'GET', `/api/v1/machines/${MAC}/power`, { auth: RW });
  t.equal(r.status, 200, r.text);
  t.ok(asked() > before, 'with the token, the power query reached the BMC');

  // The attack, from the hostile namespace, with the legitimate client polling at the same time.
  const spell = (u: string): { url: string; exact: boolean }[] => [
    { url: u.replace('/api/', '/%61pi/'), exact: true }, { url: u.replace('/api/', '/a%70i/'), exact: true }, { url: u.replace('/api/', '/ap%69/'), exact: true },
    { url: u.replace('/api/v1/', '/%61%70%69/%76%31/'), exact: true }, { url: u.replace('/api/v1/', '/api/%761/'), exact: true },
    { url: u.replace(/\/api\/v1\/(\w)/, (_m, c: string) => `/api/v1/%${c.charCodeAt(0).toString(16).toUpperCase()}`), exact: true },
    { url: u.replace('/api/', '/%2561pi/'), exact: false }, { url: `/${u}`, exact: false }, { url: `/.${u}`, exact: false },
    { url: u.replace('/api/', '/api/../api/'), exact: false }, { url: u.replace('/api/', '/API/'), exact: false }, { url: `${u}/`, exact: false }, { url: `${u};x=1`, exact: false },
  ];
  let legit = 0, legitOk = 0, stop = false;
  const poller = (async () => {
    for (let i = 0; i < 200 && !stop; i++) { legit++; if ((await curl(evil, 'GET', `/api/v1/machines/${MAC}`, { auth: RW })).status === 200) legitOk++; }
  })();
  const bmcBefore = asked();
  let probes = 0;
  for (const u of [...reads, `/api/v1/machines/${MAC}/power`]) {
    for (const v of spell(u)) {
      for (const method of ['GET', 'HEAD']) {
        probes++;
        const x = await curl(evil, method, v.url);
        if (v.exact) t.equal(x.status, 401, `${method} ${v.url}: 401`);
        else t.ok(x.status === 401 || x.status === 404, `${method} ${v.url}: ${x.status}`);
        t.notMatch(x.text, leak, `${method} ${v.url}: no API data`);
      }
    }
  }
  t.equal(asked(), bmcBefore, `${probes} probes: the BMC was never queried for the attacker`);
  const powerBefore = sim.power();
  const writes: [string, string, unknown][] = [
    ['POST', `/%61pi/v1/machines/${MAC}/power`, { action: powerBefore ? 'off' : 'on' }], ['POST', `/api/v1/m%61chines/${MAC}/power`, { action: 'cycle' }],
    ['DELETE', `/%61pi/v1/machines/${MAC}`, undefined], ['DELETE', `/%61pi/v1/disks/${MAC}`, undefined], ['POST', `/%61pi/v1/disks/${MAC}/reset`, undefined],
    ['PUT', `/%61pi/v1/machines/${MAC}`, { name: 'pwned' }], ['POST', `/%61pi/v1/machines/${MAC}/bootdev`, { device: 'disk' }], ['DELETE', '/%61pi/v1/images/golden', undefined],
  ];
  for (const [method, url, body] of writes) {
    t.equal((await curl(evil, method, url, { auth: RO, body })).status, 403, `${method} ${url} with the read-only token: 403`);
    t.equal((await curl(evil, method, url, { body })).status, 401, `${method} ${url} without a token: 401`);
  }
  stop = true;
  await poller;
  t.ok(legit > 0 && legitOk === legit, `the legitimate client was served throughout (${legitOk}/${legit})`);
  t.equal(sim.power(), powerBefore, 'power unchanged');
  t.match(JSON.parse((await curl(srv, 'GET', `/api/v1/machines/${MAC}`, { auth: RW })).text), { name: 'secnode1' }, 'the machine is unchanged');
  t.equal((await curl(srv, 'GET', `/api/v1/disks/${MAC}`, { auth: RW })).status, 200, 'its disk is still there');

  // /boot/files: links out of netbootDir are 404 with nothing of the target; the kernel is served.
  for (const name of ['secret-link', 'rel-link', 'chain-link', 'shadow', '..%2Fsecret.txt', '%2e%2e%2fsecret.txt']) {
    for (const range of [undefined, 'bytes=0-9']) {
      const x = await curl(evil, 'GET', `/boot/files/${name}`, range ? { range } : {});
      t.equal(x.status, 404, `/boot/files/${name}${range ? ` (${range})` : ''}: 404`);
      t.notMatch(x.text, /TOP-SECRET|root:/, `/boot/files/${name}: nothing of the target`);
    }
  }
  t.ok(d.events('http.netboot-file-refused').some((l) => l.file === 'secret-link' && /outside the root/.test(String(l.reason))), 'refusals are logged with the reason');
  const wholeFile = path.join(dir, 'whole.bin');
  t.equal((await net.exec(evil, ['curl', '-sS', '-m', '30', '-o', wholeFile, '-w', '%{http_code}', `${BASE}/boot/files/vmlinuz`], 40_000)).stdout, '200', 'the kernel: 200');
  t.equal(sha(await readFile(wholeFile)), sha(kernel), 'the kernel whole');
  const part = path.join(dir, 'part.bin');
  const rr = await net.exec(evil, ['curl', '-sS', '-m', '30', '-H', 'Range: bytes=1000-1999', '-o', part, '-w', '%{http_code}', `${BASE}/boot/files/vmlinuz`], 40_000);
  t.equal(rr.stdout, '206', 'a range: 206');
  t.ok((await readFile(part)).equals(kernel.subarray(1000, 2000)), 'the right bytes');
  const linked = path.join(dir, 'linked.bin');
  t.equal((await net.exec(evil, ['curl', '-sS', '-m', '30', '-o', linked, '-w', '%{http_code}', `${BASE}/boot/files/kernel-link`], 40_000)).stdout, '200', 'a link inside netbootDir is followed');
  t.ok((await readFile(linked)).equals(kernel));
});
