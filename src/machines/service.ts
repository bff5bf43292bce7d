/**
 * The product's verbs on machines: enrol, update, delete, the disk verbs (reset, deprovision,
 * checkpoint/restore, maintenance) and, through their own modules, provision (provision.ts),
 * power and boot device (power.ts), discovery (discovery.ts), reservations (reservations.ts).
 * The records and every state change live in records.ts; the record's rules in record.ts.
 */
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../log.js';
import type { Mac } from '../net/mac.js';
import type { RecordStore } from '../store/db.js';
import { DiskError, type DiskService } from '../disks/service.js';
import type { LeaseService } from '../leases/service.js';
import type { BootTarget, NextBoot, PowerAction, PowerState } from '../power/driver.js';
import type { PowerSettings } from '../power/drivers.js';
import type { PowerPool } from '../power/pool.js';
import { MachineClaims } from './claims.js';
import { watchNetwork } from './discovery.js';
import { transition, type Machine, type MachineState, type StateEvent } from './model.js';
import type { Operation, Operations } from './operations.js';
import { MachinePower } from './power.js';
import { PROVISION, settleInterruptedProvision, startProvision, type Provisioning } from './provision.js';
import { MachineError, applySpec, type MachineSpec } from './record.js';
import { MachineRecords } from './records.js';
import { syncReservation } from './reservations.js';

export interface MachineServiceOptions {
  readonly store: RecordStore;
  readonly bus: EventBus;
  readonly disks?: DiskService;
  readonly leases?: LeaseService;
  readonly power: PowerPool;
  readonly operations: Operations;
  readonly clock: () => number;
  readonly log: Logger;
  /** Record unknown PXE clients as `discovered`. */
  readonly discover: boolean;
  /** Upper bound on discovered machines kept (a MAC flood must not fill the store). */
  readonly maxDiscovered?: number;
  /** Test hook: see Provisioning.crashPoint. */
  readonly crashPoint?: (step: string) => void;
}

export class MachineService {
  private readonly records: MachineRecords;
  private readonly claims: MachineClaims;
  private readonly power_: MachinePower;
  private readonly provisioning: Provisioning;

  constructor(private readonly o: MachineServiceOptions) {
    this.records = new MachineRecords(o);
    this.claims = new MachineClaims(o.operations);
    this.claims.kind(PROVISION, 'provisioning');
    this.power_ = new MachinePower({ records: this.records, pool: o.power, log: o.log, clock: o.clock, ...(o.disks ? { disks: o.disks } : {}) });
    this.provisioning = {
      records: this.records, power: this.power_, operations: o.operations, claims: this.claims, clock: o.clock, log: o.log,
      ...(o.crashPoint ? { crashPoint: o.crashPoint } : {}),
    };
  }

  async load(): Promise<void> {
    await this.records.load();
    for (const m of [...this.records.all()]) if (m.state === 'provisioning') await settleInterruptedProvision(this.provisioning, this.o.disks, m);
    watchNetwork({ ...this.o, records: this.records });
  }

  /**
   * What an operation module beside provision.ts needs of the machines (the agent operations,
   * agent-operation.ts): the records, the power verbs, the claims. The same instances this
   * service uses, so a claim made there is refused here.
   */
  operationParts(): { readonly records: MachineRecords; readonly power: MachinePower; readonly claims: MachineClaims } {
    return { records: this.records, power: this.power_, claims: this.claims };
  }

  // ---------------------------------------------------------------- queries

  list(state?: MachineState): Machine[] {
    return [...this.records.all()].filter((m) => !state || m.state === state).sort((a, b) => a.name.localeCompare(b.name) || a.mac.localeCompare(b.mac));
  }

  get(mac: Mac): Machine | undefined {
    return this.records.get(mac);
  }

  /** Power as last read from or set through the BMC, or unknown. */
  powerOf(mac: Mac): PowerState | 'unknown' {
    return this.power_.powerOf(mac);
  }

  events(mac: Mac): StateEvent[] {
    return this.records.events(mac);
  }

  /** The one place a machine's state changes (records.ts). */
  setState(mac: Mac, to: MachineState, reason: string, actor: string): Promise<void> {
    return this.records.setState(mac, to, reason, actor);
  }

  // ---------------------------------------------------------------- enrol, update, delete

  async create(mac: Mac, spec: MachineSpec, actor: string): Promise<Machine> {
    const existing = this.records.get(mac);
    if (existing && existing.state !== 'discovered') throw new MachineError(mac, 'exists', `already enrolled as ${existing.name}`);
    const name = spec.name ?? existing?.name ?? `m-${mac.replaceAll(':', '')}`;
    const now = this.o.clock();
    const base: Machine = {
      mac, name, bootMode: 'sanboot', firmware: 'unknown', state: existing?.state ?? 'enrolled', createdAt: existing?.createdAt ?? now, updatedAt: now,
      ...(existing?.discovered ? { discovered: existing.discovered } : {}),
    };
    const m = applySpec(base, spec);
    await syncReservation(this.o.leases, m, existing);
    if (existing) {
      this.records.stage(m);
      await this.records.setState(mac, 'enrolled', 'enrolled', actor);
    } else {
      await this.records.write(m, { mac, at: now, actor, from: null, to: 'enrolled', reason: 'enrolled' });
    }
    this.o.log.info({ event: 'machines.enrolled', mac, name, actor }, 'machine enrolled');
    return this.records.require(mac);
  }

  async update(mac: Mac, spec: MachineSpec, actor: string): Promise<Machine> {
    const old = this.records.require(mac);
    const m = { ...applySpec(old, spec), updatedAt: this.o.clock() };
    await syncReservation(this.o.leases, m, old);
    if (spec.power !== undefined) await this.power_.settingsChanged(mac);
    await this.records.write(m);
    this.o.bus.publish({ type: 'machine.changed', mac, what: Object.keys(spec).join(','), actor });
    return m;
  }

  async remove(mac: Mac, force: boolean, actor: string): Promise<void> {
    const m = this.records.require(mac);
    this.claims.refuse(m, 'delete'); // even forced: the operation would recreate the disk
    const disk = this.o.disks?.get(mac);
    if (disk && !force) throw new MachineError(mac, 'conflict', `has a provisioned disk (state ${m.state}); deprovision it or delete with ?force=true`);
    if (disk) await this.sessionRefusal(mac, 'delete', () => this.o.disks!.deprovision(mac));
    if (m.ip && this.o.leases) await this.o.leases.unreserve(mac);
    await this.power_.forget(mac);
    await this.records.delete(mac);
    this.o.log.info({ event: 'machines.deleted', mac, actor }, 'machine deleted');
  }

  // ---------------------------------------------------------------- operations and disks

  provision(mac: Mac, image: string | undefined, actor: string): Operation {
    this.records.require(mac);
    return startProvision(this.provisioning, this.needDisks(mac), mac, image, actor);
  }

  async reset(mac: Mac, actor: string): Promise<Machine> {
    const m = this.records.require(mac);
    const disks = this.needDisks(mac);
    this.claims.refuse(m, 'reset');
    if (!disks.get(mac)) throw new MachineError(mac, 'conflict', `has no disk (state ${m.state})`);
    const back = m.state === 'active' ? 'ready' : m.state;
    await this.sessionRefusal(mac, 'reset', () => disks.reset(mac));
    if (back !== m.state) await this.records.setState(mac, back, 'disk reset to its image', actor);
    this.o.bus.publish({ type: 'machine.changed', mac, what: 'disk-reset', actor });
    return this.records.require(mac);
  }

  async deprovision(mac: Mac, actor: string): Promise<Machine> {
    const m = this.records.require(mac);
    this.claims.refuse(m, 'deprovision');
    transition(m, 'enrolled', 'deprovision');
    const disks = this.needDisks(mac);
    await this.sessionRefusal(mac, 'deprovision', () => disks.deprovision(mac));
    await this.records.setState(mac, 'enrolled', 'disk removed', actor);
    return this.records.require(mac);
  }

  async checkpoint(mac: Mac, name: string): Promise<{ name: string }> {
    this.records.require(mac);
    const c = await this.needDisks(mac).checkpoint(mac, name);
    return { name: c.name };
  }

  async restore(mac: Mac, checkpoint: string, actor: string): Promise<{ method: string }> {
    this.claims.refuse(this.records.require(mac), 'restore');
    const disks = this.needDisks(mac);
    const r = await this.sessionRefusal(mac, 'restore', () => disks.restore(mac, checkpoint));
    this.o.bus.publish({ type: 'machine.changed', mac, what: `restored ${checkpoint}`, actor });
    return r;
  }

  async setMaintenance(mac: Mac, on: boolean, actor: string): Promise<Machine> {
    const m = this.records.require(mac);
    const to: MachineState = on ? 'maintenance' : this.o.disks?.get(mac) ? 'ready' : 'enrolled';
    transition(m, to, on ? 'enter maintenance' : 'leave maintenance');
    await this.records.setState(mac, to, on ? 'maintenance' : 'back from maintenance', actor);
    return this.records.require(mac);
  }

  // ---------------------------------------------------------------- power (power.ts)

  power(mac: Mac, action: PowerAction, actor: string): Promise<void> {
    return this.power_.power(mac, action, actor);
  }

  powerState(mac: Mac): Promise<PowerState> {
    return this.power_.powerState(mac);
  }

  bootdev(mac: Mac, spec: { readonly device: BootTarget; readonly persistent?: boolean; readonly efi?: boolean }, actor: string): Promise<NextBoot> {
    return this.power_.bootdev(mac, spec, actor);
  }

  /** The power pool's keep: settings a driver learned (a pinned certificate) stored in the record. */
  keepLearnedPower(mac: Mac, prev: PowerSettings, next: PowerSettings): Promise<void> {
    return this.power_.keepLearned(mac, prev, next);
  }

  acceptPowerCertificate(mac: Mac, sha256: string, actor: string): Promise<Machine> {
    return this.power_.acceptCertificate(mac, sha256, actor);
  }

  // ---------------------------------------------------------------- internals

  /**
   * The disk service refuses to replace or remove a disk someone is logged in to, naming the
   * initiator; the API's 409 also names the machine's state, as every conflicting-state answer does.
   */
  private async sessionRefusal<T>(mac: Mac, action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      if (!(e instanceof DiskError) || e.code !== 'busy') throw e;
      throw new MachineError(mac, 'conflict', `cannot ${action} while ${this.records.get(mac)?.state ?? 'deleted'}: ${e.reason ?? e.message}`);
    }
  }

  private needDisks(mac: Mac): DiskService {
    if (!this.o.disks) throw new MachineError(mac, 'no-disks', 'iSCSI disks are disabled (iscsi.enabled: false)');
    return this.o.disks;
  }
}
