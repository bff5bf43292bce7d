/**
 * A store written by metalboot before the power seam (test/fixtures/store-v1, made by main d0ce5b5's
 * own code; its README says how) opened by today's: migrated once to schema 2, every machine's BMC
 * intact as `power: {driver: 'ipmi', …}`, nothing else changed, the machine service loads it.
 */
import t from 'tap';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { DEFAULT_IPMI, DEFAULT_REDFISH } from '../../src/config/defaults.js';
import { EventBus } from '../../src/events/bus.js';
import { createLogger } from '../../src/log.js';
import { publicMachine } from '../../src/machines/model.js';
import { Operations } from '../../src/machines/operations.js';
import { MachineService } from '../../src/machines/service.js';
import { parseMac } from '../../src/net/mac.js';
import { createPowerDriver } from '../../src/power/drivers.js';
import { PowerPool } from '../../src/power/pool.js';
import { SCHEMA_VERSION, openStore } from '../../src/store/db.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/store-v1/data', import.meta.url));

/** What make.mjs wrote, machine by machine: the old `bmc` field (null: none). */
const BMCS: Record<string, { name: string; state: string; bmc: Record<string, unknown> | null }> = {
  '52:54:00:f1:00:01': { name: 'full', state: 'enrolled', bmc: { host: 'bmc1.lab', port: 6230, user: 'root', password: 'pw-full-1', cipherSuite: 17, privilege: 'operator' } },
  '52:54:00:f1:00:02': { name: 'plain', state: 'enrolled', bmc: { host: '10.0.9.2', port: 623, user: 'admin', password: 'pw-plain-2' } },
  '52:54:00:f1:00:03': { name: 'v15', state: 'enrolled', bmc: { host: 'fe80::1', port: 623, user: 'u', password: '', cipherSuite: '1.5' } },
  '52:54:00:f1:00:04': { name: 'utf8', state: 'enrolled', bmc: { host: '10.0.9.4', port: 1623, user: 'ädmin', password: 'pässwörd-ü', cipherSuite: 'auto', privilege: 'administrator' } },
  '52:54:00:f1:00:05': { name: 'nobmc', state: 'enrolled', bmc: null },
  '52:54:00:f1:00:06': { name: 'maint', state: 'maintenance', bmc: { host: '10.0.9.6', port: 623, user: 'admin', password: 'pw-maint-6', cipherSuite: 3 } },
  '52:54:00:f1:00:07': { name: 'removed', state: 'enrolled', bmc: null },
  '52:54:00:f1:00:08': { name: 'm-525400f10008', state: 'discovered', bmc: null },
};

t.test('a store written by the code before the power seam: every BMC intact as power {driver: ipmi}', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-migrate-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp(FIXTURE, dir, { recursive: true });

  // As the old code left it: schema 1, `bmc` on the machines.
  const raw = new ClassicLevel<string, unknown>(path.join(dir, 'db'), { valueEncoding: 'json' });
  t.equal(await raw.sublevel<string, unknown>('meta', { valueEncoding: 'json' }).get('schemaVersion'), 1, 'the fixture is schema 1');
  const before = new Map<string, Record<string, unknown>>();
  for await (const [k, v] of raw.sublevel<string, Record<string, unknown>>('machines', { valueEncoding: 'json' }).iterator()) before.set(k, v);
  let eventsBefore = 0;
  for await (const _ of raw.sublevel('machine-events').keys()) eventsBefore++;
  await raw.close();
  t.same([...before.keys()].sort(), Object.keys(BMCS).sort(), 'the fixture holds the machines make.mjs wrote');
  t.ok([...before.values()].some((m) => 'bmc' in m) && ![...before.values()].some((m) => 'power' in m), 'old shape: bmc, no power');

  const migrated: [number, string, number][] = [];
  const store = await openStore(dir, { onMigrated: (to, what, n) => migrated.push([to, what, n]) });
  t.same(migrated, [[2, 'machines: bmc → power {driver: ipmi}', 5]], 'one migration, the five machines with a BMC rewritten');
  const after = new Map((await store.loadRecords('machines')).map((r) => [r.key, r.value]));
  for (const [mac, want] of Object.entries(BMCS)) {
    const m = after.get(mac)!;
    t.notOk('bmc' in m, `${want.name}: no bmc left`);
    if (want.bmc) t.same(m['power'], { driver: 'ipmi', ...want.bmc }, `${want.name}: the BMC intact as power`);
    else t.notOk('power' in m, `${want.name}: no BMC, no power`);
    const { bmc: _b, ...oldRest } = before.get(mac)!;
    const { power: _p, ...newRest } = m;
    t.same(newRest, oldRest, `${want.name}: everything else unchanged`);
    t.equal(m['state'], want.state);
  }
  t.equal((await store.loadRecords('machine-events')).length, eventsBefore, 'state history untouched');

  // The service loads the migrated records; the API's view hides the passwords.
  const bus = new EventBus();
  const svc = new MachineService({
    store, bus, power: new PowerPool((s, keep) => createPowerDriver(s, { defaults: { ipmi: DEFAULT_IPMI, redfish: DEFAULT_REDFISH }, log: { debug() {}, warn() {} }, keep }), bus),
    operations: new Operations(store, bus, Date.now), clock: Date.now, log: createLogger({ level: 'fatal' }), discover: false,
  });
  await svc.load();
  t.equal(svc.list().length, 8, 'all eight machines loaded');
  const full = svc.get(parseMac('52:54:00:f1:00:01'))!;
  t.same(full.power, { driver: 'ipmi', host: 'bmc1.lab', port: 6230, user: 'root', password: 'pw-full-1', cipherSuite: 17, privilege: 'operator' });
  t.same(publicMachine(full).power, { driver: 'ipmi', host: 'bmc1.lab', port: 6230, user: 'root', cipherSuite: 17, privilege: 'operator', passwordSet: true });
  t.equal(svc.events(full.mac).length, 1, 'its enrolment event');
  await store.close();

  // Reopened: already at the current schema, nothing migrated again.
  const again: unknown[] = [];
  const s2 = await openStore(dir, { onMigrated: (...a) => again.push(a) });
  t.same(again, [], 'no second migration');
  t.equal(SCHEMA_VERSION, 2);
  t.same((await s2.loadRecords('machines')).find((r) => r.key === '52:54:00:f1:00:04')?.value['power'], { driver: 'ipmi', ...BMCS['52:54:00:f1:00:04']!.bmc });
  await s2.close();
});
