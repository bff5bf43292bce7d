/**
 * The status page in a real browser: Debian's headless Chromium driven by playwright-core, run
 * inside the daemon's namespace (test/helpers/chromium-in-ns.sh). metalbootd in DHCP server mode
 * with tgtd (file backend) and an ipmi_sim BMC; busybox udhcpc, curl and qemu-io play the machine
 * in a client namespace.
 *
 * Public page (status.public: true), no token: the page lists the machine enrolled through the
 * API; the machine's DHCP exchange updates its row live (SSE) within a second of the daemon's
 * event; its view draws the boot timeline DHCP → script → iSCSI → active in that order; no
 * power/provision buttons. Then the same data directory with status.public: false: the page asks
 * for the token, shows nothing without it, and with the rw token shows the buttons, each asking
 * for confirmation (dismissed: nothing happens; accepted: the BMC powers off).
 *
 * Screenshots go to <repo>/test-artifacts/ (gitignored) for a person to look at.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { ARTIFACTS, chromiumUnavailable, drawnBoxes, drawnSteps, launchChromiumInNs } from '../helpers/browser.js';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { REPO_ROOT, startDaemon, type DaemonUnderTest } from '../helpers/daemon.js';
import { apiToken } from '../helpers/dhcp-tools.js';
import { freeControlPort, removeControlSocket, tgtdUnavailable } from '../helpers/tgtd.js';
import { ipmiSimUnavailable, startIpmiSim } from '../helpers/ipmi-sim.js';
import { runCommand } from '../../src/exec/run.js';
import { Tgtd } from '../../src/iscsi/tgtd.js';

const skip = netnsUnavailable() || tgtdUnavailable() || ipmiSimUnavailable() || chromiumUnavailable();
// The page functions below run in the browser; the project compiles without the DOM library.
interface PageEl { readonly textContent: string | null; querySelector(sel: string): PageEl | null; querySelectorAll(sel: string): Iterable<PageEl>; getAttribute(name: string): string | null }
declare const document: { querySelector(sel: string): PageEl | null; querySelectorAll(sel: string): Iterable<PageEl>; getElementById(id: string): PageEl | null };

const MAC = '52:54:00:95:00:21';
const SRV_IP = '10.95.0.1';
const BASE = `http://${SRV_IP}:8080`;
const BMC_PW = 'bmc-Browser-42';

t.test('status page in headless Chromium: live rows, boot timeline, buttons only with a token', { skip, timeout: 600_000 }, async (t) => {
  await mkdir(ARTIFACTS, { recursive: true });
  const net = new TestNet('stb');
  const dir = await mkdtemp(path.join(tmpdir(), 'mbt-stb-'));
  net.removeOnDestroy(dir);
  const controlPort = freeControlPort();
  const dataDir = path.join(dir, 'data');
  const tgtd = new Tgtd({ runner: runCommand, controlPort, manageTgtd: true, pidFile: path.join(dataDir, 'tgtd.pid') });
  let d: DaemonUnderTest | undefined;
  let browser: Browser | undefined;
  t.teardown(async () => {
    await browser?.close().catch(() => undefined);
    await d?.stop().catch(() => undefined);
    await tgtd.stop().catch(() => undefined);
    await removeControlSocket(controlPort);
    await net.destroy();
  });

  const srv = await net.addNamespace('s');
  const cli = await net.addNamespace('c');
  const sdev = `${net.tag}s`, cdev = `${net.tag}c`;
  await net.veth(srv, sdev, cli, cdev, `${SRV_IP}/24`);
  await net.ip(cli, ['link', 'set', cdev, 'address', MAC]);
  const sim = await startIpmiSim(t, { netns: srv, password: BMC_PW });
  const config = (pub: boolean) => `
dataDir: ${dataDir}
http: { listen: "${SRV_IP}:8080", publicUrl: "${BASE}" }
status: { public: ${pub} }
dhcp:
  mode: server
  interface: ${sdev}
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.95.0.0/24
      pool: [10.95.0.100, 10.95.0.150]
      leaseTime: 600
tftp: { enabled: true, root: ${dir}/tftp }
storage: { backend: file, file: { dir: ${dir}/volumes } }
iscsi: { portal: "${SRV_IP}:3260", manageTgtd: true, controlPort: ${controlPort}, checkIntervalMs: 300 }
`;
  // A file to watch being downloaded over TFTP.
  await mkdir(path.join(dir, 'tftp'), { recursive: true });
  await writeFile(path.join(dir, 'tftp', 'slow.bin'), randomBytes(256 << 10));
  d = await startDaemon(net, srv, config(true), { dataDir, readyTimeoutMs: 30_000 });
  const token = apiToken(dataDir);
  const api = async (method: string, url: string, body?: unknown) => {
    const argv = ['curl', '-sS', '-m', '60', '-X', method, '-o', '-', '-w', '\n%{http_code}', '-H', `Authorization: Bearer ${token}`, `${BASE}${url}`];
    if (body !== undefined) argv.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
    const r = await net.exec(srv, argv, 70_000);
    const i = r.stdout.lastIndexOf('\n');
    const text = r.stdout.slice(0, i);
    return { status: Number(r.stdout.slice(i + 1)), text, json: () => JSON.parse(text) };
  };

  // An image, and the machine enrolled through the API.
  await writeFile(path.join(dir, 'golden.raw'), randomBytes(4 << 20));
  const up = await net.exec(srv, ['curl', '-sS', '-X', 'PUT', '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/octet-stream',
    '--data-binary', `@${path.join(dir, 'golden.raw')}`, '-o', '/dev/null', '-w', '%{http_code}', `${BASE}/api/v1/images/golden`], 60_000);
  t.equal(up.stdout, '201', 'image uploaded');
  const enrol = await api('PUT', `/api/v1/machines/${MAC}`, { name: 'web-node-1', firmware: 'bios', bmc: { host: '127.0.0.1', port: sim.port, user: sim.user, password: BMC_PW } });
  t.equal(enrol.status, 201, `machine enrolled with its BMC: ${enrol.status === 201 ? '' : enrol.text}`);

  // ---------------------------------------------------------------- public page, no token
  browser = await launchChromiumInNs(srv);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${BASE}/`);
  const row = page.locator(`tr[data-mac="${MAC}"]`);
  await row.waitFor({ timeout: 10_000 });
  t.equal((await row.locator('td[data-label="Name"]').textContent())?.trim(), 'web-node-1', 'the enrolled machine is listed by name');
  t.equal((await row.locator('td[data-label="State"]').textContent())?.trim(), 'enrolled', 'in state enrolled');
  t.equal((await row.locator('td[data-label="IP"]').textContent())?.trim(), '', 'no address yet');
  await page.locator('#live.on').waitFor({ timeout: 10_000 });
  t.ok(await page.locator('#signin').isVisible(), 'public view: a Sign in button, no token');

  // Provision (BMC: boot device PXE, power on); the row follows the machine's state.
  const prov = await api('POST', `/api/v1/machines/${MAC}/provision`, { image: 'golden' });
  t.equal(prov.status, 202, `provision accepted: ${prov.status === 202 ? '' : prov.text}`);
  const opId = prov.json().operation.id as string;
  let op: { status: string; error?: string } = { status: 'running' };
  for (let i = 0; i < 150 && op.status === 'running'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    op = (await api('GET', `/api/v1/operations/${opId}`)).json();
  }
  t.equal(op.status, 'succeeded', `provisioned ${op.error ?? ''}`);
  await page.waitForFunction((mac) => document.querySelector(`tr[data-mac="${mac}"] td[data-label="State"]`)?.textContent?.trim() === 'ready', MAC, { timeout: 5000 });
  t.pass('the row shows state ready after provisioning, without a reload');
  await new Promise((r) => setTimeout(r, 1500)); // let the page's delayed refresh after the state change land

  // A real DHCP exchange: the row gets its address live. The page stamps when it first shows it.
  const shown = page.waitForFunction((mac) => {
    const ip = document.querySelector(`tr[data-mac="${mac}"] td[data-label="IP"]`)?.textContent?.trim();
    return ip ? { at: Date.now(), ip } : false;
  }, MAC, { polling: 'raf', timeout: 20_000 });
  const lease = await net.exec(cli, ['udhcpc', '-i', cdev, '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', '/bin/true'], 30_000);
  const ip = /lease of (\S+) obtained/.exec(lease.stdout + lease.stderr)?.[1];
  t.ok(ip, `the client leased ${ip}`);
  const seen = (await (await shown).jsonValue()) as { at: number; ip: string };
  const dhcpEvents = (await api('GET', `/api/v1/events?mac=${MAC}&type=dhcp`)).json().events as { type: string; at: number; ip: string }[];
  const first = dhcpEvents.find((e) => e.type === 'dhcp.offer' || e.type === 'dhcp.ack')!;
  t.ok(first, `DHCP events for the machine: ${dhcpEvents.map((e) => e.type).join(' ')}`);
  const lag = seen.at - first.at;
  t.ok(lag >= 0 && lag < 1000, `the row showed ${seen.ip} ${lag} ms after the daemon's ${first.type} event (< 1 s)`);
  await page.waitForFunction(({ mac, ip }) => {
    const r = document.querySelector(`tr[data-mac="${mac}"]`);
    return r?.querySelector('td[data-label="IP"]')?.textContent?.trim() === ip && /^dhcp\b/.test(r.querySelector('td[data-label="Last step"]')?.textContent?.trim() ?? '');
  }, { mac: MAC, ip: ip! }, { timeout: 1000 });
  t.pass('after the ACK the row shows the leased address and last step dhcp');

  // The machine boots: its sanboot script from its own address, then an iSCSI session held open.
  await net.ip(cli, ['addr', 'add', `${ip}/24`, 'dev', cdev]);
  const script = (await net.exec(cli, ['curl', '-sS', '-f', `${BASE}/boot/${MAC}.ipxe`], 20_000)).stdout;
  const get = (re: RegExp) => re.exec(script)?.[1] ?? '';
  const initiator = get(/^set initiator-iqn (\S+)$/m);
  const user = get(/^set username (\S+)$/m);
  const secret = get(/^set password (\S+)$/m);
  const target = /^sanboot iscsi:\S+?::\d+:\w+:(\S+) /m.exec(script)?.[1];
  t.ok(initiator && user && secret && target, 'the sanboot script names initiator, CHAP and target');
  const secretFile = path.join(dir, 'secret');
  await writeFile(secretFile, secret, { mode: 0o600 });
  const q = spawn('ip', ['netns', 'exec', cli, 'timeout', '-k', '2', '120', 'qemu-io', '-r', '--object', `secret,id=s0,file=${secretFile}`, '--image-opts',
    `driver=iscsi,transport=tcp,portal=${SRV_IP}:3260,target=${target},lun=1,initiator-name=${initiator},user=${user},password-secret=s0`], { stdio: ['pipe', 'pipe', 'pipe'] });
  net.track(q);
  q.stdin.write('read 0 512\n');
  await d.waitForEvent('machines.state', 20_000, (l) => l.to === 'active');
  await page.waitForFunction((mac) => document.querySelector(`tr[data-mac="${mac}"] td[data-label="State"]`)?.textContent?.trim() === 'active', MAC, { timeout: 5000 });
  t.pass('the row shows the machine active');
  // Leases and sessions come with the snapshot the page fetches again after such events.
  await page.waitForFunction(({ ip }) => {
    const h = [...document.querySelectorAll('h2')].map((x) => x.textContent ?? '');
    return h.includes('Leases 1') && h.includes('iSCSI sessions 1') && [...document.querySelectorAll('td')].some((td) => td.textContent === ip);
  }, { ip: ip! }, { timeout: 5000 });
  t.pass('the lease and the iSCSI session are listed without a reload');

  // A TFTP download in progress (the test's socket-level client, 8 ms before each ACK: ~4 s for
  // 256 KiB): its row in "TFTP transfers" and its progress bar move while it runs, and the row
  // goes when it is done. The storage pool's bar shows the file backend's use.
  const transferRow = () => page.evaluate(() => {
    const sec = [...document.querySelectorAll('section')].find((x) => (x.querySelector('h2')?.textContent ?? '').startsWith('TFTP transfers'));
    const row = sec ? [...sec.querySelectorAll('tr')].find((tr) => (tr.textContent ?? '').includes('slow.bin')) : undefined;
    const v = row?.querySelector('[role=progressbar]')?.getAttribute('aria-valuenow');
    return row ? Number(v ?? NaN) : null;
  });
  const slow = net.spawn(cli, ['node', path.join(REPO_ROOT, 'dist/test/helpers/tftp-client.js'), 'get', SRV_IP, JSON.stringify({ file: 'slow.bin', ackDelayMs: 8, timeoutMs: 5000 })], 60);
  let slowOut = '';
  slow.stdout?.on('data', (b: Buffer) => { slowOut += b.toString(); });
  const slowDone = new Promise<void>((r) => slow.once('exit', () => r()));
  const progress: number[] = [];
  for (let i = 0; i < 40 && (progress.length === 0 || progress.at(-1)! < 50); i++) {
    const v = await transferRow();
    if (v !== null) progress.push(v);
    await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(progress.length >= 2 && progress.at(-1)! > progress[0]!, `the transfer's row and progress bar move without a reload (${progress.join(' → ')} %)`);
  await slowDone;
  t.match(JSON.parse(slowOut || '{}'), { ok: true, bytes: 256 << 10 }, 'the client got the whole file');
  await page.waitForFunction(() => {
    const sec = [...document.querySelectorAll('section')].find((x) => (x.querySelector('h2')?.textContent ?? '').startsWith('TFTP transfers'));
    return (sec?.querySelector('h2')?.textContent ?? '') === 'TFTP transfers 0';
  }, undefined, { timeout: 5000 });
  t.pass('and the row goes once it is done');
  const pool = await page.evaluate(() => {
    const sec = [...document.querySelectorAll('section')].find((x) => (x.querySelector('h2')?.textContent ?? '').startsWith('Storage pool'));
    return { bar: sec?.querySelector('[role=progressbar]')?.getAttribute('aria-valuenow') ?? null, text: sec?.textContent ?? '' };
  });
  t.ok(pool.bar !== null && Number(pool.bar) > 0 && Number(pool.bar) < 100, `the storage pool bar: ${pool.bar} %`);
  t.match(pool.text, /file, .*new disks refused above 90 %/, 'with the backend, size and threshold');
  await page.screenshot({ path: path.join(ARTIFACTS, 'status-page.png'), fullPage: true });
  const phone = await ctx.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(`${BASE}/`);
  await phone.locator(`tr[data-mac="${MAC}"]`).waitFor({ timeout: 10_000 });
  await phone.screenshot({ path: path.join(ARTIFACTS, 'status-page-phone.png'), fullPage: true });
  await phone.close();

  // The machine's view: its timeline in order, and no buttons without a token.
  await page.click(`tr[data-mac="${MAC}"] a[data-nav]`);
  await page.waitForURL(`${BASE}/machines/${encodeURIComponent(MAC)}`);
  await page.locator('.attempt .timeline').first().waitFor({ timeout: 10_000 });
  await page.waitForFunction(() => [...document.querySelectorAll('.attempt .timeline b')].some((b) => b.textContent === 'active'), undefined, { timeout: 5000 });
  const attempts = await drawnSteps(page);
  t.equal(attempts.length, 1, 'one boot attempt drawn');
  t.same(attempts[0], ['dhcp', 'script', 'iscsi', 'active'], 'the timeline: DHCP → script → iSCSI → active, left to right');
  const boxes = await drawnBoxes(page);
  t.ok(boxes.every((b, i) => i === 0 || b.x >= boxes[i - 1]!.x + boxes[i - 1]!.w - 1), 'steps laid out left to right without overlap');
  t.ok(boxes.every((b) => b.cls === 's-done'), `every step done: ${boxes.map((b) => b.cls).join(' ')}`);
  t.match(await page.locator('main').textContent(), /Events[\s\S]*iscsi\.login/, 'the event history lists the iSCSI login');
  t.equal(await page.locator('#actions, button[data-power], button[data-provision]').count(), 0, 'no power/provision buttons without a token');
  await page.screenshot({ path: path.join(ARTIFACTS, 'machine-timeline.png'), fullPage: true });
  q.stdin.end('quit\n');
  await d.waitForEvent('machines.state', 15_000, (l) => l.to === 'ready' && l.from === 'active');
  t.same(pageErrors, [], 'no script errors on the page');
  await ctx.close();

  // ---------------------------------------------------------------- status.public: false
  await d.stop();
  d = await startDaemon(net, srv, config(false), { dataDir, readyTimeoutMs: 30_000 });
  const pub = await net.exec(srv, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${BASE}/status/api/v1/status`], 10_000);
  t.equal(pub.stdout, '404', 'no public data routes');
  const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p2 = await ctx2.newPage();
  p2.on('pageerror', (e) => pageErrors.push(e.message));
  await p2.goto(`${BASE}/machines/${MAC}`);
  await p2.locator('#tokendlg[open]').waitFor({ timeout: 10_000 });
  t.match(await p2.locator('#tokenwhy').textContent(), /not public.*token/, 'the page asks for the token');
  t.equal(await p2.locator('.attempt, tr[data-mac]').count(), 0, 'and shows no data without it');
  t.equal(await p2.locator('button[data-power]').count(), 0, 'no buttons without it');
  await p2.screenshot({ path: path.join(ARTIFACTS, 'token-prompt.png') });
  await p2.fill('#token', token);
  await p2.click('#tokenok');
  await p2.locator('#actions button[data-power="on"]').waitFor({ timeout: 10_000 });
  t.same(await p2.$$eval('#actions button', (bs) => bs.map((b) => b.textContent)), ['Power on', 'Power off', 'Power cycle', 'Reset', 'Provision…'], 'with the rw token: power and provision buttons');
  // (Boot timelines live in the daemon's memory: after the restart this machine has none to draw.)
  t.ok(await p2.locator('#signout').isVisible(), 'signed in');

  // Each button asks first: dismissed, nothing is sent; accepted, the BMC does it.
  const asked: string[] = [];
  p2.once('dialog', (dlg) => { asked.push(dlg.message()); void dlg.dismiss(); });
  await p2.click('#actions button[data-power="off"]');
  await new Promise((r) => setTimeout(r, 500));
  t.same(asked, [`Power off ${MAC}?`], 'power off asks for confirmation');
  t.equal(sim.power(), 1, 'dismissed: still on');
  t.equal((await p2.locator('#actionmsg').textContent())?.trim(), '', 'and nothing was sent');
  p2.once('dialog', (dlg) => { asked.push(dlg.message()); void dlg.accept(); });
  await p2.click('#actions button[data-power="off"]');
  await p2.waitForFunction(() => /Accepted|HTTP 2/.test(document.getElementById('actionmsg')?.textContent ?? ''), undefined, { timeout: 20_000 });
  t.equal(sim.power(), 0, 'accepted: the BMC powered the machine off');
  p2.once('dialog', (dlg) => { asked.push(dlg.message()); void dlg.dismiss(); });
  await p2.click('#actions button[data-provision]');
  await new Promise((r) => setTimeout(r, 300));
  t.match(asked[2], /Provision .* with which image\?/, 'provision asks which image (dismissed)');
  await p2.screenshot({ path: path.join(ARTIFACTS, 'machine-signed-in.png'), fullPage: true });
  t.same(pageErrors, [], 'no script errors on the page');
  await ctx2.close();
  for (const f of ['status-page.png', 'status-page-phone.png', 'machine-timeline.png', 'token-prompt.png', 'machine-signed-in.png']) t.ok(existsSync(path.join(ARTIFACTS, f)), `screenshot test-artifacts/${f}`);
});
