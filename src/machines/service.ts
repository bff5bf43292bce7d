/**
 * The product's verbs on machines: enrol, discover, update, delete, provision (disk → target →
 * sanboot → boot device PXE → power), reset, checkpoint/restore, power and boot device. Every
 * state change goes through model.ts's transition table and is stored with an event (time,
 * actor, from, to, reason) in the same synced write as the machine.
 */
import { errorMessage } from '../errors/message.js';
import type { EventBus, MetalbootEvent } from '../events/bus.js';
import type { Logger } from '../log.js';
import type { Mac } from '../net/mac.js';
import type { RecordStore } from '../store/db.js';
import { DiskError, type DiskService } from '../disks/service.js';
import { checkId } from '../storage/backend.js';
import type { LeaseService } from '../leases/service.js';
import { parseIpv4 } from '../net/ipv4.js';
import { tryParseMac } from '../net/mac.js';
import type { BootDevice, ChassisAction } from '../ipmi/commands.js';
import type { BmcPool } from './bmc.js';
import type { Operation, Operations } from './operations.js';
import {
  BOOT_MODES, MACHINE_STATES, isMachineName, transition,
  type BmcSettings, type BootMode, type Firmware, type Machine, type MachineState, type NetbootSettings, type StateEvent,
} from './model.js';

export type MachineErrorCode = 'not-found' | 'exists' | 'invalid' | 'conflict' | 'no-bmc' | 'no-disks';

export class MachineError extends Error {
  constructor(readonly mac: Mac | string, readonly code: MachineErrorCode, detail: string) {
    super(`machine ${mac}: ${detail}`);
    this.name = 'MachineError';
  }
}

/** What an admin may set; everything optional on update. */
export interface MachineSpec {
  readonly name?: string;
  readonly ip?: string | null;
  readonly bmc?: BmcSettings | null;
  readonly image?: string | null;
  readonly bootMode?: BootMode;
  readonly firmware?: Firmware;
  readonly uefiFilename?: string | null;
  readonly netboot?: NetbootSettings | null;
}

export interface MachineServiceOptions {
  readonly store: RecordStore;
  readonly bus: EventBus;
  readonly disks?: DiskService;
  readonly leases?: LeaseService;
  readonly bmcs: BmcPool;
  readonly operations: Operations;
  readonly clock: () => number;
  readonly log: Logger;
  /** Record unknown PXE clients as `discovered`. */
  readonly discover: boolean;
  /** Upper bound on discovered machines kept (a MAC flood must not fill the store). */
  readonly maxDiscovered?: number;
  /**
   * Test hook (METALBOOT_TEST_CRASH_AT, wired in daemon.ts): called with `machine-provision:<step>`
   * once that step of a provision is stored and before it runs. A no-op otherwise.
   */
  readonly crashPoint?: (step: string) => void;
}

const EVENTS_KEPT = 200;

export class MachineService {
  private readonly machines = new Map<Mac, Machine>();
  /** Each machine's state events with their store keys (older ones are trimmed by key). */
  private readonly history = new Map<Mac, { readonly key: string; readonly event: StateEvent }[]>();
  /** Power as last read from or set through the BMC (for the status page; not polled). */
  private readonly power_ = new Map<Mac, 'on' | 'off'>();
  private seq = 0;
  /**
   * Machines with a provision operation under way, marked synchronously when it is accepted (its
   * `provisioning` state is stored a moment later): nothing else may take the disk meanwhile.
   */
  private readonly provisioningNow = new Set<Mac>();

  constructor(private readonly o: MachineServiceOptions) {}

  async load(): Promise<void> {
    for (const { key, value } of await this.o.store.loadRecords('machines')) {
      const mac = tryParseMac(key);
      if (!mac || value['mac'] !== mac || typeof value['state'] !== 'string' || !(MACHINE_STATES as readonly string[]).includes(value['state'] as string)) {
        this.o.log.error({ event: 'machines.corrupt-record', key }, 'machine record skipped');
        continue;
      }
      this.machines.set(mac, value as unknown as Machine);
    }
    for (const { key, value } of await this.o.store.loadRecords('machine-events')) {
      const e = value as unknown as StateEvent;
      if (typeof e.mac !== 'string' || !this.machines.has(e.mac)) continue;
      const list = this.history.get(e.mac) ?? [];
      list.push({ key, event: e });
      this.history.set(e.mac, list);
    }
    for (const m of [...this.machines.values()]) if (m.state === 'provisioning') await this.settleInterruptedProvision(m);
    this.o.bus.subscribe((e) => {
      // Cheap checks first: this runs for every DHCP packet of a storm.
      if (!e.mac) return;
      const known = this.machines.has(e.mac);
      if (known) {
        if (e.type !== 'iscsi.login' && e.type !== 'iscsi.logout') return;
      } else {
        if (!this.o.discover || (e.type !== 'dhcp.offer' && e.type !== 'dhcp.ack' && e.type !== 'dhcp.proxy-offer' && e.type !== 'dhcp.proxy-ack')) return;
        if (!e.ipxe && !e.vendorClass?.startsWith('PXEClient') && !e.vendorClass?.startsWith('HTTPClient')) return;
      }
      void this.observe(e).catch((err: unknown) => this.o.log.error({ event: 'machines.observe-error', err: String(err) }, 'event handling failed'));
    });
  }

  /**
   * A machine caught in `provisioning` by a restart: its operation died with the daemon. The disk
   * journal (disks/service.ts recover(), run before this) has already finished or rolled back the
   * disk step, so the disk is consistent; what the operation's stored step says decides the rest:
   * - no disk: `error` (the disk was rolled back; provision again);
   * - a disk and no BMC: only the boot-mode store write was left, so it is done here, the machine
   *   is `ready` and the operation is rewritten as succeeded (finished at restart);
   * - a disk and a BMC: the boot device and power may not have been set, and a power cycle must not
   *   happen behind the admin's back after a restart, so `error` naming the step. The disk is kept:
   *   provisioning again (allowed from `error`) skips the disk step and runs bootdev and power.
   */
  private async settleInterruptedProvision(m: Machine): Promise<void> {
    const op = this.o.operations.interrupted('provision', m.mac)[0];
    const step = op?.step ?? 'unknown';
    const disk = this.o.disks?.get(m.mac);
    if (disk && !m.bmc) {
      await this.write({ ...m, image: disk.imageId, bootMode: 'sanboot', updatedAt: this.o.clock() });
      await this.setState(m.mac, 'ready', `provision finished at restart (interrupted at step ${step}; disk completed by the disk journal, no BMC steps)`, 'metalboot');
      if (op) await this.o.operations.finishInterrupted(op.id, { image: disk.imageId, targetIqn: disk.targetIqn }, `interrupted at step ${step}; finished at restart`);
    } else {
      const why = disk
        ? `provision interrupted by a restart at step ${step}; the disk is kept, boot device and power were not confirmed: provision again to finish`
        : `provision interrupted by a restart at step ${step}; the disk was rolled back: provision again`;
      await this.setState(m.mac, 'error', why, 'metalboot');
    }
    this.o.log.warn({ event: 'machines.provision-interrupted', mac: m.mac, step, ...(op ? { operation: op.id } : {}), state: this.machines.get(m.mac)?.state }, 'provision interrupted by a restart settled');
  }

  // ---------------------------------------------------------------- queries

  list(state?: MachineState): Machine[] {
    return [...this.machines.values()].filter((m) => !state || m.state === state).sort((a, b) => a.name.localeCompare(b.name) || a.mac.localeCompare(b.mac));
  }

  get(mac: Mac): Machine | undefined {
    return this.machines.get(mac);
  }

  /** Power as last read from or set through the machine's BMC, or unknown. */
  powerOf(mac: Mac): 'on' | 'off' | 'unknown' {
    return this.power_.get(mac) ?? 'unknown';
  }

  events(mac: Mac): StateEvent[] {
    this.require(mac);
    return (this.history.get(mac) ?? []).map((h) => h.event);
  }

  // ---------------------------------------------------------------- enrol, update, delete

  async create(mac: Mac, spec: MachineSpec, actor: string): Promise<Machine> {
    const existing = this.machines.get(mac);
    if (existing && existing.state !== 'discovered') throw new MachineError(mac, 'exists', `already enrolled as ${existing.name}`);
    const name = spec.name ?? existing?.name ?? `m-${mac.replaceAll(':', '')}`;
    const now = this.o.clock();
    const base: Machine = {
      mac, name, bootMode: 'sanboot', firmware: 'unknown', state: existing?.state ?? 'enrolled', createdAt: existing?.createdAt ?? now, updatedAt: now,
      ...(existing?.discovered ? { discovered: existing.discovered } : {}),
    };
    const m = this.apply(base, spec);
    await this.reserve(m, existing);
    if (existing) {
      this.machines.set(mac, m);
      await this.setState(mac, 'enrolled', 'enrolled', actor);
    } else {
      await this.write(m, { mac, at: now, actor, from: null, to: 'enrolled', reason: 'enrolled' });
    }
    this.o.log.info({ event: 'machines.enrolled', mac, name, actor }, 'machine enrolled');
    return this.machines.get(mac)!;
  }

  async update(mac: Mac, spec: MachineSpec, actor: string): Promise<Machine> {
    const old = this.require(mac);
    const m = { ...this.apply(old, spec), updatedAt: this.o.clock() };
    await this.reserve(m, old);
    if (spec.bmc !== undefined) await this.o.bmcs.drop(mac);
    await this.write(m);
    this.o.bus.publish({ type: 'machine.changed', mac, what: Object.keys(spec).join(','), actor });
    return m;
  }

  async remove(mac: Mac, force: boolean, actor: string): Promise<void> {
    const m = this.require(mac);
    this.refuseWhileProvisioning(m, 'delete'); // even forced: the operation would recreate the disk
    const disk = this.o.disks?.get(mac);
    if (disk && !force) throw new MachineError(mac, 'conflict', `has a provisioned disk (state ${m.state}); deprovision it or delete with ?force=true`);
    if (disk) await this.sessionRefusal(mac, 'delete', () => this.o.disks!.deprovision(mac));
    if (m.ip && this.o.leases) await this.o.leases.unreserve(mac);
    await this.o.bmcs.drop(mac);
    const evs = this.history.get(mac) ?? [];
    await this.o.store.writeRecords([
      { type: 'del', kind: 'machines', key: mac },
      ...evs.map((h) => ({ type: 'del' as const, kind: 'machine-events' as const, key: h.key })),
    ]);
    this.machines.delete(mac);
    this.history.delete(mac);
    this.power_.delete(mac);
    this.o.log.info({ event: 'machines.deleted', mac, actor }, 'machine deleted');
  }

  // ---------------------------------------------------------------- provisioning

  /** 202-style: returns the operation; the steps run in the background. */
  provision(mac: Mac, image: string | undefined, actor: string): Operation {
    const m = this.require(mac);
    const disks = this.needDisks(mac);
    const img = image ?? m.image;
    if (!img) throw new MachineError(mac, 'invalid', 'no image given and none set on the machine');
    const bad = checkId(img);
    if (!bad.ok) throw new MachineError(mac, 'invalid', `image ${JSON.stringify(img.slice(0, 60))}: ${bad.reason}`);
    this.refuseWhileProvisioning(m, 'provision');
    transition(m, 'provisioning', 'provision'); // throws TransitionError (409) before anything starts
    if (disks.get(mac) && disks.get(mac)!.imageId !== img) throw new MachineError(mac, 'conflict', `has a disk from image ${disks.get(mac)!.imageId}; deprovision it first`);
    this.provisioningNow.add(mac);
    return this.o.operations.start('provision', mac, async (stored) => {
      // Each step is stored before it runs, so a restart can name where this one stopped.
      const step = async (name: string): Promise<void> => {
        await stored(name);
        this.o.crashPoint?.(`machine-provision:${name}`);
      };
      try {
        await this.setState(mac, 'provisioning', `provision ${img}`, actor);
      } catch (e) {
        this.provisioningNow.delete(mac);
        throw e;
      }
      try {
        if (!disks.get(mac)) {
          await step('disk');
          await disks.provision(mac, { imageId: img });
        }
        await step('boot-mode');
        const cur = this.require(mac);
        if (cur.image !== img || cur.bootMode !== 'sanboot') await this.write({ ...cur, image: img, bootMode: 'sanboot', updatedAt: this.o.clock() });
        if (cur.bmc) {
          await step('bootdev');
          await this.o.bmcs.call(mac, cur.bmc, 'bootdev pxe', (c) => c.setBootDevice({ device: 'pxe', efi: cur.firmware === 'uefi' }));
          await step('power');
          const state = await this.o.bmcs.call(mac, cur.bmc, 'power status', (c) => c.powerState());
          await this.o.bmcs.call(mac, cur.bmc, state === 'on' ? 'power cycle' : 'power on', (c) => c.power(state === 'on' ? 'cycle' : 'on'));
          this.power_.set(mac, 'on');
        }
        await this.setState(mac, 'ready', 'disk and target ready', actor);
        return { image: img, targetIqn: disks.get(mac)?.targetIqn };
      } catch (e) {
        await this.setState(mac, 'error', errorMessage(e), actor).catch(() => undefined);
        throw e;
      } finally {
        this.provisioningNow.delete(mac);
      }
    });
  }

  async reset(mac: Mac, actor: string): Promise<Machine> {
    const m = this.require(mac);
    const disks = this.needDisks(mac);
    this.refuseWhileProvisioning(m, 'reset');
    if (!disks.get(mac)) throw new MachineError(mac, 'conflict', `has no disk (state ${m.state})`);
    const back = m.state === 'active' ? 'ready' : m.state;
    await this.sessionRefusal(mac, 'reset', () => disks.reset(mac));
    if (back !== m.state) await this.setState(mac, back, 'disk reset to its image', actor);
    this.o.bus.publish({ type: 'machine.changed', mac, what: 'disk-reset', actor });
    return this.require(mac);
  }

  async deprovision(mac: Mac, actor: string): Promise<Machine> {
    const m = this.require(mac);
    this.refuseWhileProvisioning(m, 'deprovision');
    transition(m, 'enrolled', 'deprovision');
    const disks = this.needDisks(mac);
    await this.sessionRefusal(mac, 'deprovision', () => disks.deprovision(mac));
    await this.setState(mac, 'enrolled', 'disk removed', actor);
    return this.require(mac);
  }

  async checkpoint(mac: Mac, name: string): Promise<{ name: string }> {
    this.require(mac);
    const c = await this.needDisks(mac).checkpoint(mac, name);
    return { name: c.name };
  }

  async restore(mac: Mac, checkpoint: string, actor: string): Promise<{ method: string }> {
    this.refuseWhileProvisioning(this.require(mac), 'restore');
    const disks = this.needDisks(mac);
    const r = await this.sessionRefusal(mac, 'restore', () => disks.restore(mac, checkpoint));
    this.o.bus.publish({ type: 'machine.changed', mac, what: `restored ${checkpoint}`, actor });
    return r;
  }

  async setMaintenance(mac: Mac, on: boolean, actor: string): Promise<Machine> {
    const m = this.require(mac);
    const to: MachineState = on ? 'maintenance' : this.o.disks?.get(mac) ? 'ready' : 'enrolled';
    transition(m, to, on ? 'enter maintenance' : 'leave maintenance');
    await this.setState(mac, to, on ? 'maintenance' : 'back from maintenance', actor);
    return this.require(mac);
  }

  // ---------------------------------------------------------------- BMC

  async power(mac: Mac, action: Exclude<ChassisAction, 'diag'>, actor: string): Promise<void> {
    const m = this.require(mac);
    const bmc = this.needBmc(m);
    const disks = this.o.disks;
    // Sessions open before a hard off, cycle or reset belong to an OS that is gone afterwards.
    const hard = action === 'off' || action === 'cycle' || action === 'reset';
    const before = hard && disks?.get(mac) ? await disks.sessionIds(mac).catch(() => new Set<number>()) : new Set<number>();
    await this.o.bmcs.call(mac, bmc, `power ${action}`, (c) => c.power(action));
    this.power_.set(mac, action === 'off' || action === 'soft' ? 'off' : 'on');
    this.o.log.info({ event: 'machines.power', mac, action, actor }, `power ${action}`);
    if (before.size > 0) {
      await disks!.dropSessions(mac, before).catch((e: unknown) => this.o.log.warn({ event: 'machines.session-close-failed', mac, err: String(e) }, 'could not close the stale iSCSI session'));
    }
  }

  async powerState(mac: Mac): Promise<'on' | 'off'> {
    const m = this.require(mac);
    const p = await this.o.bmcs.call(mac, this.needBmc(m), 'power status', (c) => c.powerState());
    this.power_.set(mac, p);
    return p;
  }

  async bootdev(mac: Mac, spec: { device: BootDevice; persistent?: boolean; efi?: boolean }, actor: string): Promise<{ device: string; persistent: boolean; efi: boolean }> {
    const m = this.require(mac);
    const back = await this.o.bmcs.call(mac, this.needBmc(m), `bootdev ${spec.device}`, (c) => c.setBootDevice(spec));
    this.o.log.info({ event: 'machines.bootdev', mac, device: spec.device, actor }, 'boot device set');
    return { device: back.device, persistent: back.persistent, efi: back.efi };
  }

  // ---------------------------------------------------------------- what the network tells us

  private async observe(e: MetalbootEvent): Promise<void> {
    if (!e.mac) return;
    const m = this.machines.get(e.mac);
    if (e.type === 'iscsi.login' && m && m.state === 'ready') await this.setState(m.mac, 'active', `iSCSI login from ${e.address ?? e.initiator}`, 'tgtd');
    else if (e.type === 'iscsi.logout' && m && m.state === 'active') await this.setState(m.mac, 'ready', 'iSCSI session ended', 'tgtd');
    else if (!m && this.o.discover && (e.type === 'dhcp.offer' || e.type === 'dhcp.ack' || e.type === 'dhcp.proxy-offer' || e.type === 'dhcp.proxy-ack')
      && (e.vendorClass?.startsWith('PXEClient') || e.vendorClass?.startsWith('HTTPClient') || e.ipxe)) {
      const discovered = [...this.machines.values()].filter((x) => x.state === 'discovered').length;
      if (discovered >= (this.o.maxDiscovered ?? 1000)) return;
      const now = this.o.clock();
      const firmware: Firmware = e.arch === 'bios' ? 'bios' : e.arch && e.arch !== 'unknown' ? 'uefi' : 'unknown';
      const dm: Machine = {
        mac: e.mac, name: `m-${e.mac.replaceAll(':', '')}`, bootMode: 'sanboot', firmware, state: 'discovered', createdAt: now, updatedAt: now,
        discovered: { at: now, ...(e.arch ? { arch: e.arch } : {}), ...(e.vendorClass ? { vendorClass: e.vendorClass } : {}), ...(e.uuid ? { uuid: e.uuid } : {}), ...(e.hostname ? { hostname: e.hostname } : {}) },
      };
      if (this.machines.has(e.mac)) return;
      await this.write(dm, { mac: e.mac, at: now, actor: 'dhcp', from: null, to: 'discovered', reason: `PXE boot seen (${e.vendorClass ?? 'iPXE'})` });
      this.o.log.info({ event: 'machines.discovered', mac: e.mac, arch: e.arch }, 'unknown PXE client recorded as discovered');
    }
  }

  // ---------------------------------------------------------------- internals

  private require(mac: Mac): Machine {
    const m = this.machines.get(mac);
    if (!m) throw new MachineError(mac, 'not-found', 'not known');
    return m;
  }

  /** A running provision owns the disk until it ends: 409 naming the state and the operation. */
  private refuseWhileProvisioning(m: Machine, action: string): void {
    if (!this.provisioningNow.has(m.mac) && m.state !== 'provisioning') return;
    const op = this.o.operations.list({ mac: m.mac, status: 'running' }).find((o) => o.kind === 'provision');
    throw new MachineError(m.mac, 'conflict', `cannot ${action} while provisioning${op ? ` (operation ${op.id} is running)` : ''}`);
  }

  /**
   * The disk service refuses to replace or remove a disk someone is logged in to, naming the
   * initiator; the API's 409 also names the machine's state, as every conflicting-state answer does.
   */
  private async sessionRefusal<T>(mac: Mac, action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      if (!(e instanceof DiskError) || e.code !== 'busy') throw e;
      throw new MachineError(mac, 'conflict', `cannot ${action} while ${this.machines.get(mac)?.state ?? 'deleted'}: ${e.reason ?? e.message}`);
    }
  }

  private needDisks(mac: Mac): DiskService {
    if (!this.o.disks) throw new MachineError(mac, 'no-disks', 'iSCSI disks are disabled (iscsi.enabled: false)');
    return this.o.disks;
  }

  private needBmc(m: Machine): BmcSettings {
    if (!m.bmc) throw new MachineError(m.mac, 'no-bmc', 'has no BMC configured');
    return m.bmc;
  }

  private apply(base: Machine, s: MachineSpec): Machine {
    const mac = base.mac;
    const out: Record<string, unknown> = { ...base };
    const bad = (field: string, why: string) => new MachineError(mac, 'invalid', `${field}: ${why}`);
    if (s.name !== undefined) { if (!isMachineName(s.name)) throw bad('name', 'must be a host name label'); out['name'] = s.name; }
    if (s.ip !== undefined) {
      if (s.ip === null) delete out['ip'];
      else { try { parseIpv4(s.ip); } catch { throw bad('ip', `${JSON.stringify(s.ip)} is not an IPv4 address`); } out['ip'] = s.ip; }
    }
    if (s.bmc !== undefined) {
      if (s.bmc === null) delete out['bmc'];
      else {
        const b = s.bmc;
        if (!b.host || !/^[A-Za-z0-9.:-]{1,253}$/.test(b.host)) throw bad('bmc.host', 'not a host name or address');
        if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535) throw bad('bmc.port', 'out of range 1..65535');
        if (!b.user || b.user.length > 16) throw bad('bmc.user', '1 to 16 characters');
        if (Buffer.byteLength(b.password) > 20) throw bad('bmc.password', 'at most 20 bytes (IPMI v2.0)');
        out['bmc'] = { host: b.host, port: b.port, user: b.user, password: b.password, ...(b.cipherSuite !== undefined ? { cipherSuite: b.cipherSuite } : {}), ...(b.privilege ? { privilege: b.privilege } : {}) };
      }
    }
    if (s.image !== undefined) {
      if (s.image === null) delete out['image'];
      else { const c = checkId(s.image); if (!c.ok) throw bad('image', c.reason); out['image'] = s.image; }
    }
    if (s.bootMode !== undefined) { if (!(BOOT_MODES as readonly string[]).includes(s.bootMode)) throw bad('bootMode', `one of ${BOOT_MODES.join(', ')}`); out['bootMode'] = s.bootMode; }
    if (s.firmware !== undefined) out['firmware'] = s.firmware;
    if (s.uefiFilename !== undefined) {
      if (s.uefiFilename === null) delete out['uefiFilename'];
      else { if (!/^[A-Za-z0-9._\\/-]{1,255}$/.test(s.uefiFilename)) throw bad('uefiFilename', 'letters, digits, . _ - / \\ only'); out['uefiFilename'] = s.uefiFilename; }
    }
    if (s.netboot !== undefined) {
      if (s.netboot === null) delete out['netboot'];
      else {
        const n = s.netboot;
        const file = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
        if (!file.test(n.kernel)) throw bad('netboot.kernel', 'a file name in the netboot directory');
        if (n.initrd !== undefined && !file.test(n.initrd)) throw bad('netboot.initrd', 'a file name in the netboot directory');
        if (n.cmdline !== undefined && !/^[A-Za-z0-9._:\-/=+~@, "']{0,2048}$/.test(n.cmdline)) throw bad('netboot.cmdline', 'unsupported characters');
        out['netboot'] = n;
      }
    }
    return out as unknown as Machine;
  }

  private async reserve(m: Machine, old: Machine | undefined): Promise<void> {
    const leases = this.o.leases;
    // The reservation carries the name as its DHCP host name: a rename updates it too.
    if (!leases || (m.ip === old?.ip && (!m.ip || m.name === old?.name))) return;
    if (!m.ip) { await leases.unreserve(m.mac); return; }
    // reserve() replaces this MAC's reservation, so a refused change keeps the old one.
    const r = await leases.reserve({ mac: m.mac, ip: parseIpv4(m.ip), hostname: m.name });
    if (!r.ok) {
      const why = { 'config-owned': 'this MAC is reserved in the config file', 'not-in-subnet': 'not a host address of any configured subnet', reserved: 'reserved for another MAC', 'in-use': 'leased to another client now' }[r.reason];
      throw new MachineError(m.mac, r.reason === 'not-in-subnet' ? 'invalid' : 'conflict', `ip ${m.ip}: ${why}`);
    }
  }

  /**
   * The one place a machine's state changes: checked against model.ts's table, stored with its
   * event (time, actor, from, to, reason) in one synced write, published. The verbs above and the
   * network observer call it; a refused change throws TransitionError and stores nothing.
   */
  async setState(mac: Mac, to: MachineState, reason: string, actor: string): Promise<void> {
    const m = this.require(mac);
    if (m.state === to) return;
    transition(m, to, reason);
    const now = this.o.clock();
    const next: Machine = { ...m, state: to, stateReason: reason, updatedAt: now };
    await this.write(next, { mac, at: now, actor, from: m.state, to, reason });
    this.o.log.info({ event: 'machines.state', mac, from: m.state, to, reason, actor }, `${m.state} → ${to}`);
  }

  /**
   * One synced batch: the machine and, when given, its state event (older events trimmed).
   * Memory is updated first, synchronously, so a second change of the same machine made while
   * this one syncs starts from it (updating after the await lost the earlier event from memory:
   * a discovery still syncing when the machine was enrolled vanished from GET .../events).
   */
  private async write(m: Machine, ev?: StateEvent): Promise<void> {
    const ops: Parameters<RecordStore['writeRecords']>[0][number][] = [{ type: 'put', kind: 'machines', key: m.mac, value: m }];
    const prevMachine = this.machines.get(m.mac);
    const prevList = this.history.get(m.mac);
    let list = prevList ?? [];
    if (ev) {
      const key = `${m.mac}/${ev.at.toString(36).padStart(9, '0')}-${(this.seq++).toString(36).padStart(4, '0')}`;
      ops.push({ type: 'put', kind: 'machine-events', key, value: ev });
      list = [...list, { key, event: ev }];
      while (list.length > EVENTS_KEPT) {
        ops.push({ type: 'del', kind: 'machine-events', key: list.shift()!.key });
      }
    }
    this.machines.set(m.mac, m);
    this.history.set(m.mac, list);
    try {
      await this.o.store.writeRecords(ops);
    } catch (e) {
      // Not stored: undo, unless a later change already built on this one.
      if (this.machines.get(m.mac) === m) { if (prevMachine) this.machines.set(m.mac, prevMachine); else this.machines.delete(m.mac); }
      if (this.history.get(m.mac) === list) { if (prevList) this.history.set(m.mac, prevList); else this.history.delete(m.mac); }
      throw e;
    }
    if (ev) this.o.bus.publish({ type: 'machine.state', mac: m.mac, from: ev.from ?? 'none', to: ev.to, reason: ev.reason, actor: ev.actor });
  }
}
