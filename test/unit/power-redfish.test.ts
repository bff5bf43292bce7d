/**
 * Redfish in the power seam: its settings parsed through the factory (faults name the field), its
 * public view without the password, a driver made for `power: {driver: 'redfish', …}`; and, with
 * the machines service and the pool wired as the daemon wires them against the lab Redfish BMC
 * (a child process on 127.0.0.1, test/helpers/redfish-sim.ts), a certificate pinned on first use
 * stored in the machine's record (and in the store), a changed certificate refused until accepted,
 * and a pin that cannot be stored stopping the command.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_IPMI, DEFAULT_REDFISH } from '../../src/config/defaults.js';
import { EventBus } from '../../src/events/bus.js';
import { createLogger } from '../../src/log.js';
import { MachineError } from '../../src/machines/record.js';
import type { Machine } from '../../src/machines/model.js';
import { MachinePower } from '../../src/machines/power.js';
import { MachineRecords } from '../../src/machines/records.js';
import { MachineService } from '../../src/machines/service.js';
import { Operations } from '../../src/machines/operations.js';
import { parseMac } from '../../src/net/mac.js';
import { PowerError, type PowerDriver } from '../../src/power/driver.js';
import { acceptPowerCertificate, createPowerDriver, parsePowerSettings, publicPowerSettings, type PowerSettings } from '../../src/power/drivers.js';
import { PowerPool, type KeepPowerSettings } from '../../src/power/pool.js';
import { RedfishDriver } from '../../src/power/redfish.js';
import { openStore } from '../../src/store/db.js';
import { redfishSimUnavailable, startRedfishSim } from '../helpers/redfish-sim.js';

const quiet = { debug() {}, warn() {} };
const defaults = { ipmi: DEFAULT_IPMI, redfish: { ...DEFAULT_REDFISH, timeoutMs: 3000, retries: 0 } };
const fault = (f: string, why: string) => new Error(`power.${f}: ${why}`);
const FP = Array(32).fill('AB').join(':');

/** The lab Redfish BMC on 127.0.0.1 and a store in a temporary directory, removed at the end of `t`. */
async function labBmcAndStore(t: Test) {
  const sim = await startRedfishSim({ taskDelayMs: 10 });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-power-redfish-'));
  const store = await openStore(dir);
  t.teardown(async () => { await store.close(); await sim.destroy(); await rm(dir, { recursive: true, force: true }); });
  return { sim, store, bus: new EventBus(), log: createLogger({ level: 'fatal' }) };
}

t.test('settings through the factory: parsed per driver, faults name the field, the public view has no password', async (t) => {
  const s = parsePowerSettings({ driver: 'redfish', host: '10.0.0.5', user: 'root', password: 'secret-pw', system: '1' }, fault);
  t.same(s, { driver: 'redfish', host: '10.0.0.5', port: 443, user: 'root', password: 'secret-pw', system: '1' }, 'port defaulted, nothing pinned yet');
  t.throws(() => parsePowerSettings({ driver: 'redfish', host: 'bmc one', user: 'u', password: 'p' }, fault), /^power\.host: not a host name or address$/);
  t.throws(() => parsePowerSettings({ driver: 'redfish', host: 'h', user: 'u', password: 'p', certSha256: 'z'.repeat(64) }, fault), /^power\.certSha256: not a SHA-256 fingerprint/);
  t.throws(() => parsePowerSettings({ driver: 'redfish', host: 'h', user: 'u', password: 'p', certSha256: 'ab'.repeat(32), caPem: '-----BEGIN CERTIFICATE-----\n' }, fault), /^power\.certSha256: give caPem or certSha256, not both$/);
  const shown = publicPowerSettings(s);
  t.same(shown, { driver: 'redfish', host: '10.0.0.5', port: 443, user: 'root', system: '1', passwordSet: true, certSha256: null });
  t.notMatch(JSON.stringify(shown), /secret-pw/, 'no password in the public view');
  const pinned = parsePowerSettings({ driver: 'redfish', host: 'h', user: 'u', password: 'secret-pw', certSha256: 'ab'.repeat(32) }, fault);
  t.match(publicPowerSettings(pinned), { certSha256: FP, passwordSet: true }, 'the pin is shown, normalised');
  t.same(acceptPowerCertificate(pinned, 'cd'.repeat(32)), { ...pinned, certSha256: Array(32).fill('CD').join(':') }, 'accepting replaces the pin');
  const ipmi = parsePowerSettings({ driver: 'ipmi', host: 'h', user: 'u', password: 'p' }, fault);
  t.equal(acceptPowerCertificate(ipmi, 'cd'.repeat(32)), undefined, 'IPMI has no certificate to accept');
  const d = createPowerDriver(s, { defaults, log: quiet, keep: async () => undefined });
  t.teardown(() => d.close());
  t.ok(d instanceof RedfishDriver, 'the factory makes the Redfish driver');
  t.equal(d.driver, 'redfish');
  t.equal(d.target, '10.0.0.5:443');
});

t.test('the daemon\'s wiring: the first certificate is pinned into the machine\'s record before the password goes; a changed one is refused until accepted', { skip: redfishSimUnavailable() }, async (t) => {
  const { sim, store, bus, log } = await labBmcAndStore(t);
  let created = 0;
  const wire = (keep?: KeepPowerSettings) => {
    const pool = new PowerPool((s, k): PowerDriver => { created++; return createPowerDriver(s, { defaults, log: quiet, keep: k }); }, bus, Date.now, keep);
    return pool;
  };
  let machines: MachineService | undefined;
  const pool = wire((mac, prev, next): Promise<void> => machines!.keepLearnedPower(mac, prev, next));
  machines = new MachineService({ store, bus, power: pool, operations: new Operations(store, bus, Date.now), clock: Date.now, log, discover: false });
  t.teardown(() => pool.closeAll());
  await machines.load();
  const mac = parseMac('52:54:00:00:71:01');
  await machines.create(mac, { name: 'rf1', power: { driver: 'redfish', host: sim.host, port: sim.port, user: sim.user, password: sim.password } }, 'test');
  t.equal((machines.get(mac)!.power as PowerSettings & { certSha256?: string }).certSha256, undefined, 'nothing pinned at enrolment');

  t.equal(await machines.powerState(mac), 'off', 'the first command works');
  const first = sim.fingerprint();
  t.equal((machines.get(mac)!.power as { certSha256?: string }).certSha256, first, 'the certificate presented is pinned in the record');
  t.match(publicPowerSettings(machines.get(mac)!.power!), { certSha256: first, passwordSet: true });
  await machines.power(mac, 'on', 'test');
  t.equal(await machines.powerState(mac), 'on');
  t.equal(created, 1, 'the driver that pinned is kept for the settings with the pin (no second driver, no second session)');

  // The pin is in the store: a daemon started again reads it.
  const again = new MachineService({ store, bus, power: wire(), operations: new Operations(store, bus, Date.now), clock: Date.now, log, discover: false });
  await again.load();
  t.equal((again.get(mac)!.power as { certSha256?: string }).certSha256, first, 'stored');

  // The BMC now presents another certificate: refused, named, until the admin accepts it.
  await sim.restart({ newCert: true });
  const second = sim.fingerprint();
  t.not(second, first);
  const refused = await machines.powerState(mac).catch((e: unknown) => e);
  t.ok(refused instanceof PowerError, 'a PowerError');
  t.equal((refused as PowerError).kind, 'refused');
  t.match((refused as Error).message, new RegExp(`^redfish BMC 127\\.0\\.0\\.1:${sim.port}: its certificate \\(SHA-256 ${second}\\) is not the pinned one \\(${first}\\); refused until an admin accepts`));
  t.equal((machines.get(mac)!.power as { certSha256?: string }).certSha256, first, 'a refused certificate does not replace the pin');
  await t.rejects(machines.acceptPowerCertificate(mac, 'not-hex', 'test'), MachineError.invalid(mac, 'sha256', 'not a SHA-256 fingerprint (64 hex digits, colons allowed)'));
  const m = await machines.acceptPowerCertificate(mac, second.replace(/:/g, '').toLowerCase(), 'test');
  t.equal((m.power as { certSha256?: string }).certSha256, second, 'accepted (normalised)');
  t.equal(await machines.powerState(mac), 'off', 'the accepted certificate is trusted (the restarted simulator\'s machine is off)');

  // New settings for the same BMC (a new password) keep the pin; another BMC starts without one.
  const same = { driver: 'redfish', host: sim.host, port: sim.port, user: sim.user, password: sim.password } as const;
  await machines.update(mac, { power: { ...same, password: 'rotated-pw' } }, 'test');
  t.equal((machines.get(mac)!.power as { certSha256?: string }).certSha256, second, 'a new password keeps the pin');
  await machines.update(mac, { power: { ...same, port: sim.port + 1 } }, 'test');
  t.equal((machines.get(mac)!.power as { certSha256?: string }).certSha256, undefined, 'another port: nothing pinned');

  // A pin that cannot be stored stops the command before anything is sent with the password.
  const mac2 = parseMac('52:54:00:00:71:02');
  await machines.create(mac2, { name: 'rf2', power: { driver: 'redfish', host: sim.host, port: sim.port, user: sim.user, password: sim.password } }, 'test');
  const lonely = wire(); // no keep: nowhere to store a pin
  t.teardown(() => lonely.closeAll());
  const e = await lonely.powerState(mac2, machines.get(mac2)!.power!).catch((x: unknown) => x);
  t.match(e, { name: 'PowerError', kind: 'refused' });
  t.match((e as Error).message, /cannot be stored/);
  // A record changed while the BMC was being asked: the admin's settings win, the pin is not stored.
  const prev = machines.get(mac2)!.power!;
  await machines.update(mac2, { power: { driver: 'redfish', host: sim.host, port: sim.port, user: sim.user, password: 'changed-pw' } }, 'test');
  await t.rejects(machines.keepLearnedPower(mac2, prev, { ...prev, certSha256: second } as PowerSettings), { code: 'conflict' });
  t.equal((machines.get(mac2)!.power as { certSha256?: string }).certSha256, undefined);
  // IPMI machines have no certificate to accept.
  const mac3 = parseMac('52:54:00:00:71:03');
  await machines.create(mac3, { name: 'ip3', power: { driver: 'ipmi', host: '127.0.0.1', user: 'u', password: 'p' } }, 'test');
  await t.rejects(machines.acceptPowerCertificate(mac3, second, 'test'), { code: 'conflict', message: /no certificate to accept/ });
});

t.test('a provision\'s copy of the record, taken before the pin: its later commands use the pinned settings (one driver, pinned once)', { skip: redfishSimUnavailable() }, async (t) => {
  const { sim, store, bus, log } = await labBmcAndStore(t);
  const records = new MachineRecords({ store, bus, clock: Date.now, log });
  let created = 0, kept = 0;
  let mp: MachinePower | undefined;
  const pool = new PowerPool((s, k): PowerDriver => { created++; return createPowerDriver(s, { defaults, log: quiet, keep: k }); }, bus, Date.now,
    (mac, prev, next): Promise<void> => { kept++; return mp!.keepLearned(mac, prev, next); });
  mp = new MachinePower({ records, pool, log, clock: Date.now });
  t.teardown(() => pool.closeAll());
  const mac = parseMac('52:54:00:00:71:09');
  const power = parsePowerSettings({ driver: 'redfish', host: sim.host, port: sim.port, user: sim.user, password: sim.password }, fault);
  await records.write({ mac, name: 'rf9', state: 'enrolled', firmware: 'uefi', bootMode: 'sanboot', createdAt: 1, updatedAt: 1, power } as Machine);
  const copy = records.require(mac) as Machine & { power: PowerSettings };
  t.match(await mp.nextBootNetwork(copy), { device: 'pxe', persistent: false, efi: true }, 'bootdev (the first use: the pin)');
  t.equal((records.require(mac).power as { certSha256?: string }).certSha256, sim.fingerprint(), 'pinned in the record');
  await mp.startFresh(copy);
  t.equal(mp.powerOf(mac), 'on');
  t.equal(created, 1, 'the pinned driver served the copy\'s later commands');
  t.equal(kept, 1, 'pinned once');
});
