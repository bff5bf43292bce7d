/**
 * The Redfish driver against the lab Redfish BMC (a child process on loopback, machine in memory),
 * cross-checked with Debian's redfishtool and python3-sushy as independent clients; then the
 * failures as a BMC really produces them: wrong password, a changed certificate, the session
 * limit reached, a session the BMC dropped, 503 for a while and for too long, the BMC down.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PowerError, type PowerAction } from '../../src/power/driver.js';
import { RedfishDriver, type RedfishSettings } from '../../src/power/redfish.js';
import { acceptCertificate, checkRedfishSettings, createRedfishDriver, publicRedfishSettings, type RedfishPowerSettings } from '../../src/power/redfish-settings.js';
import { REPO } from '../helpers/lab.js';
import { redfishSimUnavailable, startRedfishSim, type RedfishSim, type RedfishSimOptions } from '../helpers/redfish-sim.js';
import { toolMissing } from '../helpers/tools.js';

const skip = redfishSimUnavailable();
const CLI = path.join(REPO, 'dist', 'src', 'cli', 'metalboot.js');

async function sim(t: Test, o: RedfishSimOptions = {}): Promise<RedfishSim> {
  const s = await startRedfishSim(o);
  t.teardown(() => s.destroy());
  return s;
}

function driver(t: Test, s: RedfishSim, o: Partial<RedfishSettings> = {}): RedfishDriver {
  const d = new RedfishDriver({
    host: s.host, port: s.port, user: s.user, password: Buffer.from(s.password), trust: { certSha256: s.fingerprint() },
    timeoutMs: 2000, retries: 2, maxRequestsPerSecond: 0, ...o,
  });
  t.teardown(() => d.close());
  return d;
}

/** The BMC's own list of sessions, asked with Basic auth (not one of ours). */
function sessionCount(s: RedfishSim): number {
  const r = spawnSync('curl', ['-sS', '--cacert', s.certFile, '-u', `${s.user}:${s.password}`, `https://${s.host}:${s.port}/redfish/v1/SessionService/Sessions`], { encoding: 'utf8', timeout: 10_000 });
  return (JSON.parse(r.stdout) as { Members: unknown[] }).Members.length;
}

function curlJson(s: RedfishSim, method: string, p: string, body?: unknown): { status: number; headers: string; body: string } {
  const r = spawnSync('curl', ['-sS', '-D', '-', '--cacert', s.certFile, '-X', method, ...(body ? ['-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body)] : []),
    `https://${s.host}:${s.port}${p}`], { encoding: 'utf8', timeout: 10_000 });
  const status = Number(/^HTTP\/\S+ (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const [headers = '', text = ''] = r.stdout.split(/\r\n\r\n/);
  return { status, headers, body: text };
}

async function kindOf(p: Promise<unknown>): Promise<PowerError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PowerError) return e;
    throw e;
  }
  throw new Error('expected a PowerError');
}

async function waitPower(d: RedfishDriver, want: 'on' | 'off'): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if ((await d.powerState()) === want) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

t.test('every action on every vendor profile, with the values that profile allows', { skip }, async (t) => {
  for (const profile of ['generic', 'dell', 'hpe', 'supermicro']) {
    const s = await sim(t, { profile });
    const d = driver(t, s);
    t.equal(await d.powerState(), 'off', `${profile}: off at start`);
    const seq: Array<[PowerAction, 'on' | 'off']> = [['on', 'on'], ['cycle', 'on'], ['reset', 'on'], ['soft', 'off'], ['on', 'on'], ['off', 'off']];
    for (const [action, after] of seq) {
      await d.power(action);
      t.equal(await d.powerState(), after, `${profile}: ${action} → ${after} (task followed to its end before returning)`);
    }
    const back = await d.setNextBoot({ device: 'pxe', persistent: false, efi: true });
    t.same(back, { device: 'pxe', persistent: false, efi: true }, `${profile}: next boot pxe once, read back`);
    const back2 = await d.setNextBoot({ device: 'disk', persistent: true, efi: false });
    t.match(back2, { device: 'disk', persistent: true }, `${profile}: disk continuous`);
    if (profile !== 'supermicro') t.equal(back2.efi, false, `${profile}: Legacy mode read back`);
    if (profile === 'supermicro') {
      const e = await kindOf(d.setNextBoot({ device: 'http', persistent: false, efi: true }));
      t.equal(e.kind, 'unsupported', `supermicro offers no UefiHttp: ${e.message}`);
    }
    await d.close();
    t.equal(sessionCount(s), 0, `${profile}: our session deleted on close`);
  }
});

t.test('sessions: reused over 200 commands, one at most, deleted on close, re-created when the BMC drops it', { skip }, async (t) => {
  const s = await sim(t);
  const d = driver(t, s);
  for (let i = 0; i < 200; i++) await d.powerState();
  t.equal(d.stats.sessionsCreated, 1, '200 commands, one session');
  t.equal(sessionCount(s), 1, 'the BMC holds one session of ours');
  // A "daemon restart": the old driver closes, a new one opens its own.
  await d.close();
  const d2 = driver(t, s);
  await d2.powerState();
  t.equal(sessionCount(s), 1, 'after a restart the BMC still holds one session of ours');
  // The BMC drops the session (expiry, an admin logging everyone out): the next command just works.
  const list = JSON.parse(spawnSync('curl', ['-sS', '--cacert', s.certFile, '-u', `${s.user}:${s.password}`, `https://${s.host}:${s.port}/redfish/v1/SessionService/Sessions`], { encoding: 'utf8' }).stdout) as { Members: { '@odata.id': string }[] };
  for (const m of list.Members) spawnSync('curl', ['-sS', '--cacert', s.certFile, '-u', `${s.user}:${s.password}`, '-X', 'DELETE', `https://${s.host}:${s.port}${m['@odata.id']}`]);
  t.equal(sessionCount(s), 0, 'the BMC dropped our session');
  t.equal(await d2.powerState(), 'off', 'the next command succeeds without an error reaching the caller');
  t.equal(d2.stats.sessionsCreated, 2, 'by opening a new session');
  await d2.close();
  t.equal(sessionCount(s), 0, 'closed: nothing left');
});

t.test('a BMC without a session service gets Basic auth', { skip }, async (t) => {
  const s = await sim(t, { sessionService: false });
  const d = driver(t, s);
  await d.power('on');
  t.equal(await d.powerState(), 'on', 'power on and status over Basic auth');
  t.equal(d.stats.sessionsCreated, 0, 'no session made');
  const bad = await kindOf(driver(t, s, { password: Buffer.from('wrong') }).powerState());
  t.equal(bad.kind, 'auth', `wrong password over Basic: ${bad.message}`);
});

t.test('session limit reached: refused, with the BMC\'s message', { skip }, async (t) => {
  const s = await sim(t);
  // 4 sessions taken by others: creation is refused with the BMC's message...
  for (let i = 0; i < 4; i++) t.equal(curlJson(s, 'POST', '/redfish/v1/SessionService/Sessions', { UserName: s.user, Password: s.password }).status, 201, `someone else's session ${i + 1}`);
  const d = driver(t, s);
  const e = await kindOf(d.powerState());
  t.equal(e.kind, 'refused', 'session limit reached: refused');
  t.match(e.message, /simultaneous sessions exceeding the limit/, `with the BMC's @Message.ExtendedInfo: ${e.message}`);
  t.match(e.message, /127\.0\.0\.1:\d+/, 'naming the BMC');
});

t.test('wrong password, changed certificate, CA file, BMC down, 503 for a while and for too long', { skip }, async (t) => {
  const s = await sim(t);
  const bad = await kindOf(driver(t, s, { password: Buffer.from('wrong') }).powerState());
  t.equal(bad.kind, 'auth', `wrong password: ${bad.message}`);
  t.match(bad.message, /authentication/, 'says authentication');
  t.notMatch(bad.message, /wrong|sim-Pw-1/, 'no password in the message');

  const ca = driver(t, s, { trust: { ca: readFileSync(s.certFile) } });
  t.equal(await ca.powerState(), 'off', 'verified against the CA file');
  const none = await kindOf(driver(t, s, { trust: {} }).powerState());
  t.equal(none.kind, 'refused', `no CA, no pin: refused, never accepted silently: ${none.message}`);
  t.match(none.message, new RegExp(s.fingerprint()), 'naming the presented fingerprint');

  const pinned = s.fingerprint();
  await s.restart({ newCert: true });
  t.not(s.fingerprint(), pinned, 'the BMC now presents another certificate');
  const changed = await kindOf(driver(t, s, { trust: { certSha256: pinned } }).powerState());
  t.equal(changed.kind, 'refused', `changed certificate: ${changed.message}`);
  t.match(changed.message, /not the pinned one/, 'says the certificate changed');
  const caOld = await kindOf(driver(t, s, { trust: { ca: readFileSync(s.certFile.replace(/cert\d+/, 'cert0')) } }).powerState());
  t.equal(caOld.kind, 'refused', `a CA that does not vouch for it: ${caOld.message}`);

  const d = driver(t, s);
  t.equal(await d.powerState(), 'off', 'pinned to the new certificate');
  t.equal(curlJson(s, 'POST', '/lab/unavailable?count=2', undefined).status, 401, 'the lab control needs credentials');
  spawnSync('curl', ['-sS', '--cacert', s.certFile, '-u', `${s.user}:${s.password}`, '-X', 'POST', `https://${s.host}:${s.port}/lab/unavailable?count=2`]);
  const t0 = Date.now();
  t.equal(await d.powerState(), 'off', 'two 503s (Retry-After: 1) then the answer: retried within bounds');
  t.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  spawnSync('curl', ['-sS', '--cacert', s.certFile, '-u', `${s.user}:${s.password}`, '-X', 'POST', `https://${s.host}:${s.port}/lab/unavailable?count=50`]);
  const t1 = Date.now();
  const busy = await kindOf(d.powerState());
  t.equal(busy.kind, 'unreachable', `503 for longer than the retries: ${busy.message}`);
  t.ok(Date.now() - t1 < 8000, `gave up within bounds (${Date.now() - t1} ms)`);
  spawnSync('curl', ['-sS', '--cacert', s.certFile, '-u', `${s.user}:${s.password}`, '-X', 'POST', `https://${s.host}:${s.port}/lab/unavailable?count=0`]);

  await s.stop();
  const t2 = Date.now();
  const down = await kindOf(d.powerState());
  t.equal(down.kind, 'unreachable', `BMC down: ${down.message}`);
  t.ok(Date.now() - t2 < 8000, `within bounds (${Date.now() - t2} ms)`);
});

t.test('metalboot redfish (one-shot CLI): power, bootdev, errors and exit codes', { skip }, async (t) => {
  const s = await sim(t, { profile: 'dell' });
  const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [CLI, 'redfish', '--host', s.host, '--port', String(s.port), '--user', s.user,
    '--password-env', 'RF_PW', ...args], { encoding: 'utf8', env: { ...process.env, RF_PW: s.password, ...env }, timeout: 30_000 });
  const fp = ['--cert-sha256', s.fingerprint().replace(/:/g, '').toLowerCase()];
  t.match(run([...fp, 'power', 'status']).stdout, /Chassis Power is off/, 'status');
  t.equal(run([...fp, 'power', 'cycle']).status, 0, 'cycle on a BMC without PowerCycle (ForceOff + On)');
  t.match(run(['--ca-file', s.certFile, 'power', 'status']).stdout, /Chassis Power is on/, 'on after the cycle (CA file)');
  t.match(run([...fp, 'bootdev', 'pxe', '--efi']).stdout, /the BMC reports pxe \(EFI\)/, 'bootdev read back');
  const unpinned = run(['power', 'status']);
  t.equal(unpinned.status, 1, 'no trust given: exit 1');
  t.match(unpinned.stderr, /SHA-256 [0-9A-F:]{95}.*\(refused\)/, `names the fingerprint to accept: ${unpinned.stderr.trim()}`);
  const wrong = run([...fp, 'power', 'status'], { RF_PW: 'nope' });
  t.match(wrong.stderr, /authentication refused.*\(auth\)/, `wrong password: ${wrong.stderr.trim()}`);
  t.equal(run([...fp, '--password', 'x', 'power', 'status']).status, 2, 'no password on argv');
  t.equal(sessionCount(s), 0, 'no session left behind by the one-shot calls');
  const probe = spawnSync(process.execPath, [CLI, 'bmc', 'probe', s.host, '--redfish-port', String(s.port), '--ipmi-port', '9', '--timeout-ms', '300'], { encoding: 'utf8', timeout: 30_000 });
  t.match(probe.stdout, /Redfish   : yes/, 'probe: Redfish found');
  t.match(probe.stdout, new RegExp(`certSha256: "${s.fingerprint()}"`), 'probe: suggests the settings with the pin');
  t.match(probe.stdout, /IPMI      : no/, 'probe: no IPMI there');
});

t.test('redfishtool and python3-sushy drive the lab BMC as a real one', { skip: skip || toolMissing('redfishtool', 'sushy') }, async (t) => {
  const s = await sim(t, { profile: 'hpe' });
  const rt = (args: string[]) => spawnSync('redfishtool', ['-r', `${s.host}:${s.port}`, '-u', s.user, '-p', s.password, '-S', 'Always', ...args], { encoding: 'utf8', timeout: 60_000 });
  let r = rt(['-A', 'Session', 'Systems', 'reset', 'On']);
  t.equal(r.status, 0, `redfishtool Systems reset On (session auth) ${r.stderr}`);
  const d = driver(t, s);
  t.ok(await waitPower(d, 'on'), 'metalboot sees redfishtool\'s power on');
  r = rt(['Systems', 'setBootOverride', 'Continuous', 'Pxe']);
  t.equal(r.status, 0, `redfishtool setBootOverride (PATCH with If-Match) ${r.stderr}`);
  r = rt(['Systems', 'reset', 'PowerCycle']);
  t.not(r.status, 0, 'redfishtool refuses PowerCycle: the hpe profile does not list it (via ActionInfo)');
  r = rt(['Systems', 'get']);
  t.match(JSON.parse(r.stdout), { PowerState: 'On', Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Continuous' } }, 'redfishtool reads it back');
  await d.setNextBoot({ device: 'disk', persistent: false, efi: true });
  await d.power('off');
  // requests lets REQUESTS_CA_BUNDLE override sushy's verify=; give it the BMC's CA only.
  const py = `
import sushy, json
s = sushy.Sushy('https://${s.host}:${s.port}/redfish/v1', username='${s.user}', password='${s.password}', verify='${s.certFile}')
m = s.get_system()
out = {'power': str(m.power_state.value), 'target': str(m.boot.target.value), 'enabled': str(m.boot.enabled.value),
       'allowed': sorted(v.value for v in m.get_allowed_reset_system_values())}
m.reset_system(sushy.RESET_ON)
m.set_system_boot_options(sushy.BOOT_SOURCE_TARGET_PXE, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE, mode=sushy.BOOT_SOURCE_MODE_UEFI)
print(json.dumps(out))
`;
  const env = { ...process.env };
  delete env['REQUESTS_CA_BUNDLE'];
  delete env['CURL_CA_BUNDLE'];
  const p = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8', env, timeout: 60_000 });
  t.equal(p.status, 0, `sushy ran ${p.stderr.slice(-500)}`);
  const out = JSON.parse(p.stdout || '{}') as Record<string, unknown>;
  t.match(out, { power: 'Off', target: 'Hdd', enabled: 'Once' }, 'sushy reads what metalboot set');
  // sushy 4.3 does not follow @Redfish.ActionInfo: with no inline AllowableValues it offers every
  // ResetType (metalboot reads the ActionInfo and would not send PowerCycle here).
  t.ok(['On', 'ForceOff', 'GracefulShutdown'].every((v) => (out['allowed'] as string[]).includes(v)), `sushy's reset values: ${String(out['allowed'])}`);
  t.ok(await waitPower(d, 'on'), 'metalboot sees sushy\'s power on');
  const d2 = driver(t, s);
  const boot = await d2.setNextBoot({ device: 'pxe', persistent: false, efi: true });
  t.same(boot, { device: 'pxe', persistent: false, efi: true }, 'and sushy\'s boot override round-trips through metalboot');
});

t.test('pin on first use: the first certificate is stored before it is trusted; a changed one is refused until accepted', { skip }, async (t) => {
  const s = await sim(t);
  let stored: RedfishPowerSettings = checkRedfishSettings({ driver: 'redfish', host: s.host, port: s.port, user: s.user, password: s.password }, (f, w) => new Error(`${f}: ${w}`));
  t.match(publicRedfishSettings(stored), { certSha256: null, passwordSet: true }, 'record: nothing pinned yet');
  const d = createRedfishDriver(stored, { maxRequestsPerSecond: 0 }, async (fp) => { stored = { ...stored, certSha256: fp }; });
  t.teardown(() => d.close());
  t.equal(await d.powerState(), 'off', 'first use works');
  t.equal(stored.certSha256, s.fingerprint(), 'the presented certificate was stored');
  t.equal((publicRedfishSettings(stored) as { certSha256: string }).certSha256, s.fingerprint(), 'and is shown in the record');
  t.notOk('password' in publicRedfishSettings(stored), 'never the password');
  await d.close();
  await s.restart({ newCert: true });
  const d2 = createRedfishDriver(stored, { maxRequestsPerSecond: 0 }, async () => { t.fail('a pinned BMC is never re-pinned'); });
  t.teardown(() => d2.close());
  const e = await kindOf(d2.powerState());
  t.equal(e.kind, 'refused', `changed certificate refused: ${e.message}`);
  stored = acceptCertificate(stored, s.fingerprint());
  const d3 = createRedfishDriver(stored, { maxRequestsPerSecond: 0 }, async () => { t.fail('accepted, not re-pinned'); });
  t.teardown(() => d3.close());
  t.equal(await d3.powerState(), 'off', 'after the admin accepts the new certificate');
});

t.test('a session the BMC expires (SessionTimeout) is re-created without an error reaching the caller', { skip }, async (t) => {
  const s = await sim(t, { sessionTimeoutS: 1 });
  const d = driver(t, s);
  t.equal(await d.powerState(), 'off');
  await new Promise((r) => setTimeout(r, 1300));
  t.equal(await d.powerState(), 'off', 'after the BMC expired the session');
  t.equal(d.stats.sessionsCreated, 2, 'a second session was opened');
  await d.close();
  t.equal(sessionCount(s), 0, 'and deleted on close');
});
