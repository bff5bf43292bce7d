import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MACHINE_STATES, canTransition, transition, TransitionError, publicMachine, type MachineState, type Machine } from '../../src/machines/model.js';
import { MachineService, MachineError } from '../../src/machines/service.js';
import { Operations } from '../../src/machines/operations.js';
import { BmcPool } from '../../src/machines/bmc.js';
import { EventBus } from '../../src/events/bus.js';
import { openStore } from '../../src/store/db.js';
import { parseMac } from '../../src/net/mac.js';
import { createLogger } from '../../src/log.js';
import { DEFAULT_IPMI } from '../../src/config/defaults.js';

const ALLOWED: Record<MachineState, MachineState[]> = {
  discovered: ['enrolled', 'maintenance', 'error'],
  enrolled: ['provisioning', 'maintenance', 'error'],
  provisioning: ['ready', 'error', 'enrolled'],
  ready: ['active', 'provisioning', 'enrolled', 'maintenance', 'error'],
  active: ['ready', 'provisioning', 'maintenance', 'error'],
  error: ['enrolled', 'provisioning', 'maintenance'],
  maintenance: ['enrolled', 'ready'],
};

t.test('transition table: exactly the allowed pairs pass, every other one names the current state', async (t) => {
  const mac = parseMac('52:54:00:00:00:01');
  let allowed = 0;
  for (const from of MACHINE_STATES) {
    for (const to of MACHINE_STATES) {
      const ok = ALLOWED[from].includes(to);
      t.equal(canTransition(from, to), ok, `${from} → ${to}`);
      if (ok) { allowed++; t.equal(transition({ mac, state: from }, to, 'x'), to); continue; }
      t.throws(() => transition({ mac, state: from }, to, 'do it'), new TransitionError(mac, from, to, 'do it'));
      try { transition({ mac, state: from }, to, 'do it'); } catch (e) { t.equal((e as Error).message, `machine ${mac}: cannot do it while ${from}`); }
    }
  }
  t.equal(allowed, 23);
  t.notOk(canTransition('discovered', 'ready'), 'ready only through provisioning');
  t.notOk(canTransition('enrolled', 'active'));
});

t.test('publicMachine never carries the BMC password', async (t) => {
  const m: Machine = { mac: parseMac('52:54:00:00:00:02'), name: 'n', bootMode: 'sanboot', firmware: 'bios', state: 'enrolled', createdAt: 0, updatedAt: 0, bmc: { host: '10.0.0.9', port: 623, user: 'admin', password: 'hunter2-bmc' } };
  const p = publicMachine(m);
  t.notMatch(JSON.stringify(p), 'hunter2-bmc');
  t.same(p.bmc, { host: '10.0.0.9', port: 623, user: 'admin', passwordSet: true });
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
  const mk = () => new MachineService({ store, bus, bmcs: new BmcPool(DEFAULT_IPMI, bus, { debug() {}, warn() {} }), operations: new Operations(store, bus, () => now), clock: () => ++now, log, discover: true });
  const svc = mk();
  await svc.load();
  const mac = parseMac('52:54:00:00:00:03');
  await svc.create(mac, { name: 'node3', bmc: { host: '10.0.0.3', port: 623, user: 'admin', password: 'pw' } }, 'test');
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
  t.equal(again.get(mac)!.bmc!.password, 'pw', 'the BMC password is kept for the IPMI client');
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
