/**
 * The power seam: what metalboot asks of a machine's BMC, whatever protocol it speaks. Each
 * protocol is one file beside this one (ipmi.ts, redfish.ts) implementing PowerDriver; pool.ts
 * picks the driver from the machine's `power.driver` through the factory in drivers.ts.
 * Services and routes see only these types and PowerError's kind, never a protocol's own.
 */

export type PowerState = 'on' | 'off';

export const POWER_ACTIONS = ['on', 'off', 'cycle', 'reset', 'soft'] as const;
/** on; off (hard); cycle (off then on); reset (warm, hard); soft (ACPI shutdown request). */
export type PowerAction = (typeof POWER_ACTIONS)[number];

export const BOOT_TARGETS = ['pxe', 'disk', 'bios', 'cdrom', 'http'] as const;
/** Next boot device: network (PXE), local disk, firmware setup, optical/virtual media, UEFI HTTP boot. */
export type BootTarget = (typeof BOOT_TARGETS)[number];

export interface NextBoot {
  readonly device: BootTarget;
  /** Every boot from now on (true) or the next one only (false). */
  readonly persistent: boolean;
  /** UEFI boot (true) or legacy BIOS (false). */
  readonly efi: boolean;
}

export interface PowerDriver {
  /** The driver's name as stored in `power.driver` and carried by `power.command` events. */
  readonly driver: string;
  /** The BMC as logs and errors name it, e.g. "10.0.0.5:623"; never a credential. */
  readonly target: string;
  powerState(): Promise<PowerState>;
  power(action: PowerAction): Promise<void>;
  /** Sets the next boot device and answers what the BMC reports back after the change. */
  setNextBoot(next: NextBoot): Promise<NextBoot>;
  /** Ends the BMC session(s) and stops every timer; the driver is not used again. */
  close(): Promise<void>;
}

/**
 * auth: the BMC refused the credentials or privilege; unreachable: no (valid) answer in time or
 * nothing listens; refused: the BMC answered but would not do it (its own message is kept);
 * unsupported: the BMC or driver has no way to do what was asked.
 */
export type PowerErrorKind = 'auth' | 'unreachable' | 'refused' | 'unsupported';

export class PowerError extends Error {
  constructor(
    readonly driver: string,
    readonly target: string,
    readonly kind: PowerErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${driver} BMC ${target}: ${message}`, options);
    this.name = 'PowerError';
  }
}
