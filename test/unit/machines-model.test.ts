import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MACHINE_STATES, canTransition, transition, TransitionError, publicMachine, type MachineState, type Machine } from '../../src/machines/model.js';
import type { Mac } from '../../src/net/mac.js';
import { MachineService } from '../../src/machines/service.js';
import { MachineError } from '../../src/machines/record.js';
import { Operations } from '../../src/machines/operations.js';
import { PowerPool } from '../../src/power/pool.js';
import { createPowerDriver } from '../../src/power/drivers.js';
import { EventBus } from '../../src/events/bus.js';
import { openStore } from '../../src/store/db.js';
import { parseMac } from '../../src/net/mac.js';
import { createLogger } from '../../src/log.js';
import { DEFAULT_IPMI, DEFAULT_REDFISH } from '../../src/config/defaults.js';

const ALL = MACHINE_STATES;
const pairs = ALL.flatMap((from) => ALL.map((to) => [from, to] as const));

t.test('transition table: what the issue says, and every refusal names the current state', async (t) => {
  const mac = parseMac('52:54:00:00:00:01');
  const into = (to: MachineState) => ALL.filter((f) => canTransition(f, to));
  const outOf = (from: MachineState) => ALL.filter((to) => canTransition(from, to));
  // Stated from the design (issue 6, model.ts; the agent operations' states from issue 16), not copied from the table.
  t.same(into('discovered'), ['inspecting'], 'nothing becomes discovered: only a PXE sighting creates it (an inspection of a discovered machine ends where it started)');
  t.same(into('ready'), ['provisioning', 'active', 'maintenance'], 'ready only through provisioning (or back: the session ended, or from maintenance with the disk)');
  t.same(into('active'), ['ready'], 'active only when a ready machine\'s session is seen');
  t.same(outOf('active'), ['provisioning', 'ready', 'error', 'maintenance'], 'active falls back to ready, or is re-provisioned, fails or is taken out');
  t.same(outOf('provisioning'), ['ready', 'error'], 'provisioning ends as its operation ends: never enrolled under it (no deprovision)');
  t.same(into('provisioning'), ['enrolled', 'ready', 'active', 'error'], 'provision from enrolled, or again from ready, active, error');
  t.same(outOf('maintenance'), ['enrolled', 'ready'], 'maintenance is left towards enrolled or ready');
  t.same(outOf('error'), ['enrolled', 'provisioning', 'maintenance', 'inspecting', 'deploying', 'erasing', 'capturing'], 'error is left towards enrolled, a new provision or maintenance, or a new agent operation');
  // The agent operations (issue 16): each busy state ends as its operation ends.
  t.same(outOf('inspecting'), ['discovered', 'enrolled', 'error', 'deployed'], 'inspecting ends where it started, or in error');
  t.same(outOf('deploying'), ['error', 'deployed'], 'deploying ends deployed or in error');
  t.same(outOf('erasing'), ['enrolled', 'error'], 'erasing ends enrolled (nothing of ours on its disks) or in error');
  t.same(outOf('capturing'), ['enrolled', 'error', 'deployed'], 'capturing ends where it started, or in error');
  t.same(into('deployed'), ['inspecting', 'deploying', 'capturing'], 'deployed only through a deploy (or back from an inspection or capture of a deployed machine)');
  const busy: readonly MachineState[] = ['provisioning', 'inspecting', 'deploying', 'erasing', 'capturing'];
  for (const s of ALL) {
    if (s !== 'maintenance' && s !== 'error') t.ok(canTransition(s, 'error'), `${s} → error`);
    if (s !== 'maintenance' && !busy.includes(s)) t.ok(canTransition(s, 'maintenance'), `${s} → maintenance`);
    if (busy.includes(s)) t.notOk(canTransition(s, 'maintenance'), `${s} → maintenance is refused: its operation runs`);
    t.notOk(canTransition(s, s), `${s} → ${s} is not a transition`);
  }
  let allowed = 0;
  for (const [from, to] of pairs) {
    if (canTransition(from, to)) { allowed++; t.equal(transition({ mac, state: from }, to, 'x'), to); continue; }
    t.throws(() => transition({ mac, state: from }, to, 'do it'), new TransitionError(mac, from, to, 'do it'));
    try { transition({ mac, state: from }, to, 'do it'); } catch (e) { t.equal((e as Error).message, `machine ${mac}: cannot do it while ${from}`); }
  }
  t.equal(allowed, 49, '22 of issue 6, 27 of the agent operations');
});

t.test('service: every allowed transition, through the one function all state changes go through, stores an event (time, actor, from, to, reason); every other is refused and stores nothing', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-sm-'));
  const store = await openStore(dir);
  t.teardown(async () => { await store.close(); await rm(dir, { recursive: true, force: true }); });
  let now = 5000;
  const bus = new EventBus(() => now);
  const published: string[] = [];
  bus.subscribe((e) => { if (e.type === 'machine.state') published.push(`${e.mac} ${e.from}>${e.to} ${e.actor}`); });
  const log = createLogger({ level: 'fatal' });
  const mk = () => new MachineService({ store, bus, power: new PowerPool((s, keep) => createPowerDriver(s, { defaults: { ipmi: DEFAULT_IPMI, redfish: DEFAULT_REDFISH }, log: { debug() {}, warn() {} }, keep }), bus), operations: new Operations(store, bus, () => now), clock: () => ++now, log, discover: true });
  const svc = mk();
  await svc.load();
  // Shortest path of allowed transitions from enrolled to each state (discovered comes from DHCP).
  const pathTo = (target: MachineState): MachineState[] => {
    const prev = new Map<MachineState, MachineState | null>([['enrolled', null]]);
    const queue: MachineState[] = ['enrolled'];
    while (queue.length) {
      const s = queue.shift()!;
      for (const n of ALL) if (canTransition(s, n) && !prev.has(n)) { prev.set(n, s); queue.push(n); }
    }
    const out: MachineState[] = [];
    for (let s: MachineState | null | undefined = target; s && s !== 'enrolled'; s = prev.get(s)) out.unshift(s);
    return out;
  };
  let i = 0;
  const machineIn = async (from: MachineState): Promise<Mac> => {
    const mac = parseMac(`52:54:00:10:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
    i++;
    if (from === 'discovered') {
      bus.publish({ type: 'dhcp.offer', mac, ip: '10.0.0.9', arch: 'bios', vendorClass: 'PXEClient:Arch:00000:UNDI:002001' });
      for (let k = 0; k < 100 && !svc.get(mac); k++) await new Promise((r) => setTimeout(r, 5));
    } else {
      await svc.create(mac, { name: `n${i}` }, 'setup');
      for (const s of pathTo(from)) await svc.setState(mac, s, `to ${s}`, 'setup');
    }
    t.equal(svc.get(mac)?.state, from, `a machine in ${from}`);
    return mac;
  };
  let stored = 0;
  for (const [from, to] of pairs) {
    const mac = await machineIn(from);
    const before = svc.events(mac).length;
    if (from === to) {
      await svc.setState(mac, to, 'same', 'tester');
      t.equal(svc.events(mac).length, before, `${from} → ${from}: no change, no event`);
    } else if (canTransition(from, to)) {
      await svc.setState(mac, to, `because ${from}>${to}`, `tester-${from}`);
      const evs = svc.events(mac);
      t.equal(evs.length, before + 1, `${from} → ${to}: one event`);
      t.same(evs.at(-1), { mac, at: now, actor: `tester-${from}`, from, to, reason: `because ${from}>${to}` }, `${from} → ${to}: time, actor, from, to, reason`);
      t.match(svc.get(mac), { state: to, stateReason: `because ${from}>${to}` });
      t.equal(published.at(-1), `${mac} ${from}>${to} tester-${from}`, `${from} → ${to}: published`);
      stored++;
    } else {
      await t.rejects(svc.setState(mac, to, 'nope', 'tester'), new TransitionError(mac, from, to, 'nope'), `${from} → ${to}: refused naming ${from}`);
      t.equal(svc.get(mac)!.state, from, `${from} → ${to}: state unchanged`);
      t.equal(svc.events(mac).length, before, `${from} → ${to}: no event`);
    }
  }
  t.equal(stored, 49, 'all 49 allowed transitions recorded');
  // In the store, not only in memory: a fresh service reads back every event (a machine left in
  // provisioning gets one more, provisioning → error: its operation died with the old service).
  const again = mk();
  await again.load();
  for (const m of svc.list()) {
    const old = svc.events(m.mac);
    const back = again.events(m.mac);
    t.same(back.slice(0, old.length), old, `${m.mac}: history persisted`);
    if (m.state === 'provisioning') t.match(back.at(-1), { from: 'provisioning', to: 'error', actor: 'metalboot' });
    else t.equal(back.length, old.length);
  }
});

t.test('publicMachine never carries the BMC password', async (t) => {
  const m: Machine = { mac: parseMac('52:54:00:00:00:02'), name: 'n', bootMode: 'sanboot', firmware: 'bios', state: 'enrolled', createdAt: 0, updatedAt: 0, power: { driver: 'ipmi', host: '10.0.0.9', port: 623, user: 'admin', password: 'hunter2-bmc' } };
  const p = publicMachine(m);
  t.notMatch(JSON.stringify(p), 'hunter2-bmc');
  t.same(p.power, { driver: 'ipmi', host: '10.0.0.9', port: 623, user: 'admin', passwordSet: true });
});

t.test('service: every change is an event in the store; refused transitions change nothing', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-mach-'));
  const store = await openStore(dir);
  t.teardown(async () => { await store.close(); await rm(dir, { recursive: true, force: true }); });
  let now = 1000;
  const bus = new EventBus(() => now);
  const seen: string[] = [];
  bus.subscribe((e) => { if (e.type === 'machine.state') seen.push(`${e.from}>${e.to}`); });
  const log = createLogger({ level: 'fatal' });
  const mk = () => new MachineService({ store, bus, power: new PowerPool((s, keep) => createPowerDriver(s, { defaults: { ipmi: DEFAULT_IPMI, redfish: DEFAULT_REDFISH }, log: { debug() {}, warn() {} }, keep }), bus), operations: new Operations(store, bus, () => now), clock: () => ++now, log, discover: true });
  const svc = mk();
  await svc.load();
  const mac = parseMac('52:54:00:00:00:03');
  await svc.create(mac, { name: 'node3', power: { driver: 'ipmi', host: '10.0.0.3', port: 623, user: 'admin', password: 'pw' } }, 'test');
  await svc.setMaintenance(mac, true, 'test');
  await svc.setMaintenance(mac, false, 'test');
  t.same(seen, ['none>enrolled', 'enrolled>maintenance', 'maintenance>enrolled']);
  await t.rejects(svc.deprovision(mac, 'test'), TransitionError, 'enrolled cannot be deprovisioned');
  await t.rejects(svc.create(mac, {}, 'test'), MachineError, 'enrolled twice');
  await t.rejects(svc.update(mac, { name: 'bad name!' }, 'test'), /name: must be a host name label/);
  await t.rejects(svc.update(mac, { ip: '10.0.0.300' }, 'test'), /ip: "10.0.0.300" is not an IPv4 address/);
  t.throws(() => svc.provision(mac, 'img', 'test'), /iSCSI disks are disabled/, 'no disks configured');
  t.equal(svc.get(mac)!.state, 'enrolled', 'unchanged by the refusals');
  const evs = svc.events(mac);
  t.same(evs.map((e) => [e.from, e.to, e.actor]), [[null, 'enrolled', 'test'], ['enrolled', 'maintenance', 'test'], ['maintenance', 'enrolled', 'test']]);
  // A fresh service on the same store sees the same machine and history.
  const again = mk();
  await again.load();
  t.equal(again.get(mac)!.name, 'node3');
  t.equal(again.events(mac).length, 3, 'history persisted');
  t.equal(again.get(mac)!.power!.password, 'pw', 'the BMC password is kept for the power driver');
  // Discovery: a PXE client nobody enrolled becomes `discovered`; enrolling it keeps what DHCP said.
  const d = parseMac('52:54:00:00:00:04');
  bus.publish({ type: 'dhcp.offer', mac: d, ip: '10.0.0.44', arch: 'efi-x64', vendorClass: 'PXEClient:Arch:00007:UNDI:003016' });
  await new Promise((r) => setTimeout(r, 50));
  t.match(again.get(d), { state: 'discovered', firmware: 'uefi', discovered: { arch: 'efi-x64' } });
  bus.publish({ type: 'dhcp.offer', mac: parseMac('52:54:00:00:00:05'), ip: '10.0.0.45', arch: 'bios', vendorClass: 'udhcp 1.36' });
  await new Promise((r) => setTimeout(r, 50));
  t.equal(again.get(parseMac('52:54:00:00:00:05')), undefined, 'non-PXE clients are not discovered');
  const e = await again.create(d, { name: 'found' }, 'admin');
  t.match(e, { state: 'enrolled', name: 'found', discovered: { vendorClass: /^PXEClient/ } });
  await again.remove(d, false, 'admin');
  t.equal(again.get(d), undefined);
});
