/**
 * The power and boot-device verbs on machines, over the power pool (whatever driver each
 * machine's settings name), and the power state as last read or set (for the status page; not
 * polled). A hard power action also closes the iSCSI sessions of the OS it took away.
 */
import type { DiskService } from '../disks/service.js';
import type { Logger } from '../log.js';
import type { Mac } from '../net/mac.js';
import type { BootTarget, NextBoot, PowerAction, PowerState } from '../power/driver.js';
import { acceptPowerCertificate, publicPowerSettings, type PowerSettings } from '../power/drivers.js';
import type { PowerPool } from '../power/pool.js';
import type { Machine } from './model.js';
import { MachineError } from './record.js';
import type { MachineRecords } from './records.js';

export interface MachinePowerOptions {
  readonly records: MachineRecords;
  readonly pool: PowerPool;
  readonly disks?: DiskService;
  readonly log: Logger;
  readonly clock: () => number;
}

export class MachinePower {
  private readonly last = new Map<Mac, PowerState>();

  constructor(private readonly o: MachinePowerOptions) {}

  /** Power as last read from or set through the machine's BMC, or unknown. */
  powerOf(mac: Mac): PowerState | 'unknown' {
    return this.last.get(mac) ?? 'unknown';
  }

  async powerState(mac: Mac): Promise<PowerState> {
    const p = await this.o.pool.powerState(mac, this.settings(this.o.records.require(mac)));
    this.last.set(mac, p);
    return p;
  }

  async power(mac: Mac, action: PowerAction, actor: string): Promise<void> {
    const s = this.settings(this.o.records.require(mac));
    const disks = this.o.disks;
    // Sessions open before a hard off, cycle or reset belong to an OS that is gone afterwards.
    const hard = action === 'off' || action === 'cycle' || action === 'reset';
    const before = hard && disks?.get(mac) ? await disks.sessionIds(mac).catch(() => new Set<number>()) : new Set<number>();
    await this.o.pool.power(mac, s, action);
    this.last.set(mac, action === 'off' || action === 'soft' ? 'off' : 'on');
    this.o.log.info({ event: 'machines.power', mac, action, actor }, `power ${action}`);
    if (before.size > 0) {
      await disks!.dropSessions(mac, before).catch((e: unknown) => this.o.log.warn({ event: 'machines.session-close-failed', mac, err: String(e) }, 'could not close the stale iSCSI session'));
    }
  }

  /** Sets the next boot device; answers what the BMC reports back. Once and legacy BIOS unless asked. */
  async bootdev(mac: Mac, spec: { readonly device: BootTarget; readonly persistent?: boolean; readonly efi?: boolean }, actor: string): Promise<NextBoot> {
    const s = this.settings(this.o.records.require(mac));
    const back = await this.o.pool.setNextBoot(mac, s, { device: spec.device, persistent: spec.persistent ?? false, efi: spec.efi ?? false });
    this.o.log.info({ event: 'machines.bootdev', mac, device: spec.device, actor }, 'boot device set');
    return back;
  }

  /** Next boot from the network, once, in the machine's firmware mode: what a provision sets. */
  nextBootNetwork(m: Machine & { power: PowerSettings }): Promise<NextBoot> {
    return this.o.pool.setNextBoot(m.mac, this.current(m), { device: 'pxe', persistent: false, efi: m.firmware === 'uefi' });
  }

  /** On, or cycled when already on, so the machine boots what was just set up. */
  async startFresh(m: Machine & { power: PowerSettings }): Promise<void> {
    const state = await this.o.pool.powerState(m.mac, this.current(m));
    await this.o.pool.power(m.mac, this.current(m), state === 'on' ? 'cycle' : 'on');
    this.last.set(m.mac, 'on');
  }

  /**
   * Stores settings the machine's driver learned (a certificate pinned on first use), unless the
   * record's power settings changed meanwhile (the admin's change wins; the driver is not trusted).
   */
  async keepLearned(mac: Mac, prev: PowerSettings, next: PowerSettings): Promise<void> {
    const m = this.o.records.require(mac);
    if (JSON.stringify(m.power) === JSON.stringify(next)) return;
    if (JSON.stringify(m.power) !== JSON.stringify(prev)) throw new MachineError(mac, 'conflict', 'its power settings changed while its BMC was being asked; what the driver learned is not stored');
    await this.o.records.write({ ...m, power: next, updatedAt: this.o.clock() });
    this.o.log.info({ event: 'machines.power-learned', mac, power: publicPowerSettings(next) }, 'power settings learned from the BMC stored');
  }

  /** Trusts the BMC certificate with this SHA-256 fingerprint from now on (a changed certificate, or a first one set ahead). */
  async acceptCertificate(mac: Mac, sha256: string, actor: string): Promise<Machine> {
    const m = this.o.records.require(mac);
    const s = this.settings(m);
    let next: PowerSettings | undefined;
    try {
      next = acceptPowerCertificate(s, sha256);
    } catch {
      throw MachineError.invalid(mac, 'sha256', 'not a SHA-256 fingerprint (64 hex digits, colons allowed)');
    }
    if (!next) throw new MachineError(mac, 'conflict', `its ${s.driver} BMC has no certificate to accept`);
    const updated: Machine = { ...m, power: next, updatedAt: this.o.clock() };
    await this.o.records.write(updated);
    this.o.log.info({ event: 'machines.power-certificate', mac, power: publicPowerSettings(next), actor }, 'BMC certificate accepted');
    // The driver holding the old pin (or CA) goes; the next command makes one with this pin.
    await this.o.pool.drop(mac);
    return updated;
  }

  /** The machine's power settings changed or went: its driver is closed (a new one is made on next use). */
  async settingsChanged(mac: Mac): Promise<void> {
    await this.o.pool.drop(mac);
  }

  /** The machine was deleted. */
  async forget(mac: Mac): Promise<void> {
    this.last.delete(mac);
    await this.o.pool.drop(mac);
  }

  /**
   * The settings as stored now, not as in the caller's copy of the record: a provision holds its
   * copy across commands, and the first of them may have stored a pin (an unpinned copy would make
   * the pool replace the pinned driver and pin again).
   */
  private current(m: Machine & { power: PowerSettings }): PowerSettings {
    return this.o.records.get(m.mac)?.power ?? m.power;
  }

  private settings(m: Machine): PowerSettings {
    if (!m.power) throw new MachineError(m.mac, 'no-power', 'has no BMC configured');
    return m.power;
  }
}
