/**
 * The power seam: IPMI errors (the real classes, and the real client against a closed port and
 * an ipmi_sim BMC) become PowerErrors of the right kind with the IPMI error as cause; the settings
 * factory names the field at fault and never shows a password; the pool makes one driver per
 * machine, reuses it while the settings stay, replaces and closes it, and publishes one
 * power.command event per command.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { DEFAULT_IPMI, DEFAULT_REDFISH } from '../../src/config/defaults.js';
import { EventBus, type MetalbootEvent } from '../../src/events/bus.js';
import {
  IpmiAuthError, IpmiClosedError, IpmiCompletionError, IpmiCorruptRepliesError, IpmiNegotiationError, IpmiPortClosedError, IpmiProtocolError, IpmiTimeoutError,
} from '../../src/ipmi/errors.js';
import { parseMac } from '../../src/net/mac.js';
import { PowerError, type PowerDriver } from '../../src/power/driver.js';
import { createPowerDriver, parsePowerSettings, publicPowerSettings, type PowerSettings } from '../../src/power/drivers.js';
import { IpmiPowerDriver, ipmiPowerError } from '../../src/power/ipmi.js';
import { PowerPool } from '../../src/power/pool.js';
import { ipmiSimUnavailable, startIpmiSim } from '../helpers/ipmi-sim.js';

const BMC = '10.0.0.5:623';
const quiet = { debug() {}, warn() {} };
const fast = { ...DEFAULT_IPMI, timeoutMs: 100, retries: 0, keepAliveMs: 0 };
const ctx = { defaults: { ipmi: fast, redfish: DEFAULT_REDFISH }, log: quiet, keep: async () => { throw new Error('nothing to keep in these tests'); } };
const MAC = parseMac('52:54:00:00:70:01');
/** The PowerError kind a command failed with. */
const kindOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'resolved', (e: unknown) => (e instanceof PowerError ? e.kind : String(e)));

async function closedPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port; // nothing listens now: ICMP port unreachable
}

const ipmi = (over: Partial<Record<string, unknown>> = {}): PowerSettings =>
  parsePowerSettings({ driver: 'ipmi', host: '127.0.0.1', user: 'admin', password: 'pw', ...over }, (f, why) => new Error(`${f}: ${why}`));

t.test('every IPMI error class maps to its kind; the IPMI error is the cause and its message is kept', async (t) => {
  const cases: [Error, string][] = [
    [new IpmiAuthError(BMC, 'wrong-password', 'RAKP 2 code does not match'), 'auth'],
    [new IpmiAuthError(BMC, 'privilege', 'Set Session Privilege Level'), 'auth'],
    [new IpmiTimeoutError(BMC, 'Get Chassis Status', 4, 11_000, 0), 'unreachable'],
    [new IpmiCorruptRepliesError(BMC, 'Get Chassis Status', 4, 11_000, 3), 'unreachable'],
    [new IpmiPortClosedError(BMC), 'unreachable'],
    [new IpmiClosedError(BMC), 'unreachable'],
    [new IpmiCompletionError(BMC, 'Chassis Control on', 0xc1), 'refused'],
    [IpmiProtocolError.rakp(BMC, 'RAKP 2', 0x01), 'refused'],
    [new IpmiNegotiationError(BMC, 'no cipher suite in common (offered 1, 2)'), 'unsupported'],
  ];
  for (const [e, kind] of cases) {
    const p = ipmiPowerError(e, BMC);
    t.ok(p instanceof PowerError, `${e.name}: a PowerError`);
    const pe = p as PowerError;
    t.equal(pe.kind, kind, `${e.name} → ${kind}`);
    t.equal(pe.cause, e, `${e.name}: the IPMI error is the cause`);
    t.equal(pe.driver, 'ipmi');
    t.equal(pe.target, BMC);
    // "BMC 10.0.0.5:623: <what>" becomes "ipmi BMC 10.0.0.5:623: <what>": the same words, once.
    t.equal(pe.message, `ipmi ${e.message}`, `${e.name}: message kept`);
  }
  const dns = Object.assign(new Error('getaddrinfo ENOTFOUND bmc.invalid'), { code: 'ENOTFOUND' });
  t.match(ipmiPowerError(dns, 'bmc.invalid:623'), { kind: 'unreachable', cause: dns, message: 'ipmi BMC bmc.invalid:623: getaddrinfo ENOTFOUND bmc.invalid' });
  const bug = new TypeError('x is undefined');
  t.equal(ipmiPowerError(bug, BMC), bug, 'not a BMC error: passed on unchanged');
});

t.test('the IPMI driver: a closed port is unreachable; HTTP boot is unsupported before any packet', async (t) => {
  const port = await closedPort();
  const d = createPowerDriver(ipmi({ port }), ctx);
  t.teardown(() => d.close());
  t.ok(d instanceof IpmiPowerDriver);
  t.equal(d.driver, 'ipmi');
  t.equal(d.target, `127.0.0.1:${port}`);
  const e = await d.powerState().catch((x: unknown) => x);
  t.match(e, { kind: 'unreachable', name: 'PowerError' });
  t.ok((e as PowerError).cause instanceof IpmiPortClosedError, 'cause: the IPMI error');
  t.match((e as Error).message, /^ipmi BMC 127\.0\.0\.1:\d+: connection refused/);
  const u = await d.setNextBoot({ device: 'http', persistent: false, efi: true }).catch((x: unknown) => x);
  t.match(u, { kind: 'unsupported', message: /IPMI has no boot device for http boot/ }, 'unsupported, not unreachable: nothing was sent');
});

t.test('settings: parsed per driver, faults name the field, the public view has no password', async (t) => {
  const fault = (f: string, why: string) => new Error(`power.${f}: ${why}`);
  t.same(ipmi(), { driver: 'ipmi', host: '127.0.0.1', port: 623, user: 'admin', password: 'pw' }, 'port defaults to 623');
  t.same(ipmi({ port: 6230, cipherSuite: 17, privilege: 'operator', extra: 1 }), { driver: 'ipmi', host: '127.0.0.1', port: 6230, user: 'admin', password: 'pw', cipherSuite: 17, privilege: 'operator' }, 'only the known fields are kept');
  t.throws(() => parsePowerSettings({ driver: 'telnet' }, fault), /^power\.driver: "telnet" is not a power driver \(ipmi, redfish\)$/);
  t.throws(() => parsePowerSettings({ driver: 'ipmi', host: 'bmc 1', user: 'u', password: '' }, fault), /^power\.host: not a host name or address$/);
  t.throws(() => parsePowerSettings({ driver: 'ipmi', host: 'h', user: 'u', password: 'ü'.repeat(11) }, fault), /^power\.password: at most 20 bytes/, '11 characters, 22 bytes');
  const pub = publicPowerSettings(ipmi({ password: 'secret-pw' }));
  t.same(pub, { driver: 'ipmi', host: '127.0.0.1', port: 623, user: 'admin', passwordSet: true });
  t.notMatch(JSON.stringify(pub), 'secret-pw');
});

t.test('pool: one driver per machine, reused while its settings stay, replaced and closed when they change, closed on drop and closeAll; one power.command event per command', async (t) => {
  const port = await closedPort();
  const bus = new EventBus(() => 0);
  const events: MetalbootEvent[] = [];
  bus.subscribe((e) => { if (e.type === 'power.command') events.push(e); });
  const made: { driver: PowerDriver; closed: boolean }[] = [];
  const pool = new PowerPool((s) => {
    const driver = createPowerDriver(s, ctx);
    const rec = { driver, closed: false };
    const close = driver.close.bind(driver);
    driver.close = async () => { rec.closed = true; await close(); };
    made.push(rec);
    return driver;
  }, bus);
  t.teardown(() => pool.closeAll());
  const a = ipmi({ port });
  t.equal(await kindOf(pool.powerState(MAC, a)), 'unreachable');
  t.equal(await kindOf(pool.power(MAC, { ...a }, 'on')), 'unreachable');
  t.equal(made.length, 1, 'equal settings (another object): the same driver');
  t.equal(await kindOf(pool.power(MAC, ipmi({ port, password: 'changed' }), 'cycle')), 'unreachable');
  t.equal(made.length, 2, 'changed settings: a new driver');
  t.ok(made[0]!.closed, 'the old one closed');
  t.notOk(made[1]!.closed);
  const other = parseMac('52:54:00:00:70:02');
  t.equal(await kindOf(pool.setNextBoot(other, a, { device: 'http', persistent: true, efi: true })), 'unsupported');
  t.equal(made.length, 3, 'another machine: its own driver');
  await pool.drop(MAC);
  t.ok(made[1]!.closed, 'drop closes the machine\'s driver');
  t.notOk(made[2]!.closed, 'and no other');
  await pool.closeAll();
  t.ok(made[2]!.closed, 'closeAll closes the rest');

  t.equal(events.length, 4, 'one event per command');
  const target = `127.0.0.1:${port}`;
  t.same(events.map((e) => e.type === 'power.command' && [e.mac, e.driver, e.target, e.command, e.ok, e.error]), [
    [MAC, 'ipmi', target, 'power status', false, 'unreachable'],
    [MAC, 'ipmi', target, 'power on', false, 'unreachable'],
    [MAC, 'ipmi', target, 'power cycle', false, 'unreachable'],
    [other, 'ipmi', target, 'bootdev http', false, 'unsupported'],
  ]);
  t.ok(events.every((e) => e.type === 'power.command' && typeof e.ms === 'number' && e.ms >= 0));
  t.notMatch(JSON.stringify(events), /"pw"|changed/, 'no password on the bus');
});

t.test('against a real BMC (ipmi_sim): power and boot device through the pool; a wrong password is auth', { skip: ipmiSimUnavailable() }, async (t) => {
  const sim = await startIpmiSim(t, { password: 'sim-Pass-1' });
  const bus = new EventBus(() => 0);
  const events: MetalbootEvent[] = [];
  bus.subscribe((e) => { if (e.type === 'power.command') events.push(e); });
  const pool = new PowerPool((s, keep) => createPowerDriver(s, { defaults: { ipmi: { ...DEFAULT_IPMI, keepAliveMs: 0 }, redfish: DEFAULT_REDFISH }, log: quiet, keep }), bus);
  t.teardown(() => pool.closeAll());
  const s = ipmi({ port: sim.port, user: sim.user, password: 'sim-Pass-1' });
  await pool.power(MAC, s, 'on');
  t.equal(await pool.powerState(MAC, s), 'on');
  t.equal(sim.power(), 1, 'the BMC says on');
  t.same(await pool.setNextBoot(MAC, s, { device: 'pxe', persistent: false, efi: false }), { device: 'pxe', persistent: false, efi: false }, 'what the BMC reads back');
  t.equal(sim.bootDevice(), 'pxe', 'the BMC\'s boot device');
  t.match(events.at(-1), { type: 'power.command', mac: MAC, driver: 'ipmi', target: `127.0.0.1:${sim.port}`, command: 'bootdev pxe', ok: true });
  t.notOk('error' in events.at(-1)!, 'no error kind on success');
  const wrong = await pool.powerState(MAC, { ...s, password: 'not-it' }).catch((e: unknown) => e);
  t.match(wrong, { name: 'PowerError', kind: 'auth', message: /^ipmi BMC 127\.0\.0\.1:\d+: wrong password/ });
  t.ok((wrong as PowerError).cause instanceof IpmiAuthError);
  t.match(events.at(-1), { command: 'power status', ok: false, error: 'auth' });
});
