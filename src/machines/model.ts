/**
 * Machines: what metalboot knows about each one, keyed by MAC, and the one place that says
 * which state changes are allowed. Pure; the service records every change as an event.
 */
import type { Mac } from '../net/mac.js';
import { publicPowerSettings, type PowerSettings } from '../power/drivers.js';

export const MACHINE_STATES = ['discovered', 'enrolled', 'provisioning', 'ready', 'active', 'error', 'maintenance', 'inspecting', 'deploying', 'deployed', 'erasing', 'capturing'] as const;
export type MachineState = (typeof MACHINE_STATES)[number];

export const BOOT_MODES = ['sanboot', 'local', 'netboot', 'menu'] as const;
export type BootMode = (typeof BOOT_MODES)[number];

export type Firmware = 'bios' | 'uefi' | 'unknown';

export interface NetbootSettings {
  /** File names under the netboot directory, served over HTTP (with Range). */
  readonly kernel: string;
  readonly initrd?: string;
  readonly cmdline?: string;
}

export interface Discovery {
  readonly at: number;
  readonly arch?: string;
  readonly vendorClass?: string;
  readonly uuid?: string;
  readonly hostname?: string;
}

export interface Machine {
  readonly mac: Mac;
  readonly name: string;
  /** Reserved address (DHCP server mode). */
  readonly ip?: string;
  /** How its BMC is reached (power/drivers.ts); the password is write-only through the API. */
  readonly power?: PowerSettings;
  readonly image?: string;
  readonly bootMode: BootMode;
  readonly firmware: Firmware;
  /** UEFI sanboot: the EFI program to run from the disk (iPXE `sanboot --filename`). */
  readonly uefiFilename?: string;
  readonly netboot?: NetbootSettings;
  readonly state: MachineState;
  readonly stateReason?: string;
  readonly discovered?: Discovery;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface StateEvent {
  readonly mac: Mac;
  readonly at: number;
  readonly actor: string;
  readonly from: MachineState | null;
  readonly to: MachineState;
  readonly reason: string;
}

/**
 * Allowed transitions. Provisioning is the only way to `ready`; `active` follows `ready` when the
 * machine's iSCSI session is seen, and falls back when it ends; `error` and `maintenance` can be
 * entered from anywhere and left only towards `enrolled` (or back to `ready` when the disk is fine).
 * `provisioning` ends only as its operation ends (`ready` or `error`): deprovisioning under a
 * running provision would pull the disk from under it, so that is refused (not `enrolled`).
 * `inspecting` (the agent ramdisk collects the inventory) starts from a machine that boots nothing
 * of metalboot's yet and ends where it started (`discovered`, `enrolled`, `deployed`), or in `error`.
 * `deploying` (the agent writes an image to a local disk) ends `deployed` (the machine boots its
 * local disk) or `error`; `erasing` ends `enrolled` (nothing of ours is on its disks) or `error`;
 * `capturing` (a disk uploaded into a new image) ends where it started, or `error`.
 */
const ALLOWED: Readonly<Record<MachineState, readonly MachineState[]>> = {
  discovered: ['enrolled', 'inspecting', 'maintenance', 'error'],
  enrolled: ['provisioning', 'inspecting', 'deploying', 'erasing', 'capturing', 'maintenance', 'error'],
  provisioning: ['ready', 'error'],
  ready: ['active', 'provisioning', 'enrolled', 'maintenance', 'error'],
  active: ['ready', 'provisioning', 'maintenance', 'error'],
  error: ['enrolled', 'provisioning', 'inspecting', 'deploying', 'erasing', 'capturing', 'maintenance'],
  maintenance: ['enrolled', 'ready'],
  inspecting: ['discovered', 'enrolled', 'deployed', 'error'],
  deploying: ['deployed', 'error'],
  deployed: ['enrolled', 'inspecting', 'deploying', 'erasing', 'capturing', 'maintenance', 'error'],
  erasing: ['enrolled', 'error'],
  capturing: ['enrolled', 'deployed', 'error'],
};

export function canTransition(from: MachineState, to: MachineState): boolean {
  return ALLOWED[from].includes(to);
}

export class TransitionError extends Error {
  constructor(readonly mac: Mac, readonly from: MachineState, readonly to: MachineState, readonly action: string) {
    super(`machine ${mac}: cannot ${action} while ${from}`);
    this.name = 'TransitionError';
  }
}

/** The next state, or a TransitionError naming the current one. */
export function transition(m: Pick<Machine, 'mac' | 'state'>, to: MachineState, action: string): MachineState {
  if (!canTransition(m.state, to)) throw new TransitionError(m.mac, m.state, to, action);
  return to;
}

/** What the API may show: never the BMC password (each driver's public view). */
export type PublicMachine = Omit<Machine, 'power'> & { power?: object };

export function publicMachine(m: Machine): PublicMachine {
  const { power, ...rest } = m;
  return power ? { ...rest, power: publicPowerSettings(power) } : rest;
}

const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A host-name label: it names the machine in IQNs, logs and the status page. */
export function isMachineName(s: string): boolean {
  return NAME_RE.test(s);
}
