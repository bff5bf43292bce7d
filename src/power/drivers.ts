/**
 * The one list of power drivers: for each name stored in `power.driver`, the JSON schema of its
 * API settings, their parse into a record, their public view (no password) and the driver itself.
 * Adding a protocol is its file beside ipmi.ts, one line in DRIVERS and its config section.
 * A driver may learn a setting as it works (Redfish pins the BMC's certificate on first use): it
 * hands the settings to keep to `ctx.keep`, which stores them in the machine's record before the
 * driver goes on.
 */
import type { Config } from '../config/types.js';
import type { PowerDriver } from './driver.js';
import { IPMI_SETTINGS_SCHEMA, IpmiPowerDriver, checkIpmiSettings, publicIpmiSettings } from './ipmi.js';
import { REDFISH_SETTINGS_SCHEMA, acceptCertificate, carryPin, checkRedfishSettings, createRedfishDriver, publicRedfishSettings } from './redfish-settings.js';

/** The config sections drivers take their defaults from (timeouts, retries, …). */
export type PowerDefaults = Pick<Config, 'ipmi' | 'redfish'>;

export interface PowerLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DriverContext<S = PowerSettings> {
  readonly defaults: PowerDefaults;
  readonly log: PowerLog;
  /** Stores settings the driver learned (e.g. a pinned certificate) in the machine's record; rejects when it cannot. */
  readonly keep: (next: S) => Promise<void>;
}

/** `bad(field, why)` makes the error for one field of the settings (relative: "host", "password"). */
export type SettingsFault = (field: string, why: string) => Error;

export interface PowerDriverEntry<S extends { readonly driver: string }> {
  /** The settings' JSON schema (with `driver` as a const): the API's first gate. */
  readonly schema: object;
  /** Settings that passed the schema, made a record: defaults filled in, the rules a schema cannot say checked. */
  parse(raw: never, bad: SettingsFault): S;
  /** What the API shows: never a password or other credential. */
  publicView(s: S): object;
  create(s: S, ctx: DriverContext<S>): PowerDriver;
  /** For drivers that check the BMC's certificate: the settings trusting the one with this SHA-256 fingerprint. */
  acceptCertificate?(s: S, sha256: string): S;
  /** New settings from the API with what the driver learned under the old ones kept, where it still holds. */
  carryLearned?(prev: S, next: S): S;
}

function entry<S extends { readonly driver: string }, R>(e: {
  schema: object; parse: (raw: R, bad: SettingsFault) => S; publicView: (s: S) => object; create: (s: S, ctx: DriverContext<S>) => PowerDriver;
  acceptCertificate?: (s: S, sha256: string) => S; carryLearned?: (prev: S, next: S) => S;
}): PowerDriverEntry<S> {
  return e as PowerDriverEntry<S>;
}

const DRIVERS = {
  ipmi: entry({ schema: IPMI_SETTINGS_SCHEMA, parse: checkIpmiSettings, publicView: publicIpmiSettings, create: (s, c) => new IpmiPowerDriver(s, c.defaults.ipmi, c.log) }),
  redfish: entry({
    schema: REDFISH_SETTINGS_SCHEMA, parse: checkRedfishSettings, publicView: publicRedfishSettings, acceptCertificate, carryLearned: carryPin,
    // The pin is kept (stored) before the driver trusts the certificate and sends the password.
    create: (s, c) => createRedfishDriver(s, c.defaults.redfish, (fp) => c.keep({ ...s, certSha256: fp })),
  }),
};

export type PowerDriverName = keyof typeof DRIVERS;
export const POWER_DRIVERS = Object.keys(DRIVERS) as PowerDriverName[];
/** A machine's stored power settings: one of the drivers' records, told apart by `driver`. */
export type PowerSettings = { [K in PowerDriverName]: (typeof DRIVERS)[K] extends PowerDriverEntry<infer S> ? S : never }[PowerDriverName];

/** The API's schema for `power`: one of the drivers' settings, picked by `driver`. */
export const POWER_SETTINGS_SCHEMA = {
  type: 'object', required: ['driver'], properties: { driver: { enum: POWER_DRIVERS } }, discriminator: { propertyName: 'driver' },
  oneOf: POWER_DRIVERS.map((d) => DRIVERS[d].schema),
} as const;

function entryOf(driver: string): PowerDriverEntry<PowerSettings> | undefined {
  return Object.hasOwn(DRIVERS, driver) ? DRIVERS[driver as PowerDriverName] as PowerDriverEntry<PowerSettings> : undefined;
}

/** Settings that passed POWER_SETTINGS_SCHEMA, as the record to store; a fault names the field. */
export function parsePowerSettings(raw: { readonly driver: string; readonly [field: string]: unknown }, bad: SettingsFault): PowerSettings {
  const e = entryOf(raw.driver);
  if (!e) throw bad('driver', `${JSON.stringify(String(raw.driver).slice(0, 40))} is not a power driver (${POWER_DRIVERS.join(', ')})`);
  return e.parse(raw as never, bad);
}

export function publicPowerSettings(s: PowerSettings): object {
  return entryOf(s.driver)!.publicView(s);
}

export function createPowerDriver(s: PowerSettings, ctx: DriverContext): PowerDriver {
  return entryOf(s.driver)!.create(s, ctx);
}

/** The settings trusting the BMC certificate with this fingerprint; undefined when the driver checks no certificate. */
export function acceptPowerCertificate(s: PowerSettings, sha256: string): PowerSettings | undefined {
  return entryOf(s.driver)!.acceptCertificate?.(s, sha256);
}

/**
 * Settings the API gave for a machine, with what its driver learned under `prev` kept (e.g. a new
 * BMC password keeps the pinned certificate: dropping it would pin whatever is presented next).
 */
export function carryLearnedPower(prev: PowerSettings | undefined, next: PowerSettings): PowerSettings {
  if (!prev || prev.driver !== next.driver) return next;
  return entryOf(next.driver)!.carryLearned?.(prev, next) ?? next;
}
