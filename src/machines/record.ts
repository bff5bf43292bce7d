/**
 * What an admin may set on a machine (MachineSpec) and the domain's rules for it, as pure code.
 * The API's JSON schema (http/routes/machines.ts) is the first gate: shapes, types, enums and
 * bounds are stated there once; this file holds the rules a schema cannot state (a host-name
 * label, an IPv4 address, an image name, file names, a driver's own rules) and makes the record.
 */
import type { Mac } from '../net/mac.js';
import { parseIpv4 } from '../net/ipv4.js';
import { checkId } from '../storage/backend.js';
import { carryLearnedPower, parsePowerSettings } from '../power/drivers.js';
import { isMachineName, type BootMode, type Firmware, type Machine, type NetbootSettings } from './model.js';

export type MachineErrorCode = 'not-found' | 'exists' | 'invalid' | 'conflict' | 'no-power' | 'no-disks';

export class MachineError extends Error {
  constructor(
    readonly mac: Mac | string,
    readonly code: MachineErrorCode,
    detail: string,
    /** For `invalid`: the spec field at fault ("ip", "power.host"). */
    readonly field?: string,
    /** For `invalid`: why, without the field. */
    readonly reason?: string,
  ) {
    super(`machine ${mac}: ${detail}`);
    this.name = 'MachineError';
  }

  static invalid(mac: Mac, field: string, why: string): MachineError {
    return new MachineError(mac, 'invalid', `${field}: ${why}`, field, why);
  }
}

/** Power settings as the API's schema passed them: a driver's name and its fields (power/drivers.ts). */
export interface PowerSpec {
  readonly driver: string;
  readonly [field: string]: unknown;
}

/** What an admin may set; everything optional on update, null removes. */
export interface MachineSpec {
  readonly name?: string;
  readonly ip?: string | null;
  readonly power?: PowerSpec | null;
  readonly image?: string | null;
  readonly bootMode?: BootMode;
  readonly firmware?: Firmware;
  readonly uefiFilename?: string | null;
  readonly netboot?: NetbootSettings | null;
}

const NETBOOT_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `base` with the spec applied, or MachineError `invalid` naming the field and why. */
export function applySpec(base: Machine, s: MachineSpec): Machine {
  const mac = base.mac;
  const out: Record<string, unknown> = { ...base };
  const bad = (field: string, why: string) => MachineError.invalid(mac, field, why);
  const set = <T>(key: string, v: T | null | undefined, check?: (v: T) => unknown) => {
    if (v === undefined) return;
    if (v === null) { delete out[key]; return; }
    out[key] = check ? check(v) ?? v : v;
  };
  set('name', s.name, (n) => { if (!isMachineName(n)) throw bad('name', 'must be a host name label'); });
  set('ip', s.ip, (ip) => { try { parseIpv4(ip); } catch { throw bad('ip', `${JSON.stringify(ip)} is not an IPv4 address`); } });
  set('power', s.power, (p) => carryLearnedPower(base.power, parsePowerSettings(p, (field, why) => bad(`power.${field}`, why))));
  set('image', s.image, (img) => { const c = checkId(img); if (!c.ok) throw bad('image', `${JSON.stringify(img.slice(0, 60))}: ${c.reason}`); });
  set('bootMode', s.bootMode);
  set('firmware', s.firmware);
  set('uefiFilename', s.uefiFilename, (f) => { if (!/^[A-Za-z0-9._\\/-]+$/.test(f)) throw bad('uefiFilename', 'letters, digits, . _ - / \\ only'); });
  set('netboot', s.netboot, (n) => {
    if (!NETBOOT_FILE.test(n.kernel)) throw bad('netboot.kernel', 'a file name in the netboot directory');
    if (n.initrd !== undefined && !NETBOOT_FILE.test(n.initrd)) throw bad('netboot.initrd', 'a file name in the netboot directory');
    if (n.cmdline !== undefined && !/^[A-Za-z0-9._:\-/=+~@, "']*$/.test(n.cmdline)) throw bad('netboot.cmdline', 'unsupported characters');
  });
  return out as unknown as Machine;
}
