/**
 * What a machine stores as `power: {driver: 'redfish', …}`: the schema the API checks, the record
 * made from it, and its public view (no password; the pinned fingerprint shown so the admin can
 * compare it with the BMC's own). A CA is given as PEM text, not as a path on the daemon's host
 * (an API client should not name the server's files).
 */
import { PowerError } from './driver.js';
import { normaliseFingerprint } from './redfish-http.js';
import { REDFISH_DEFAULTS, RedfishDriver } from './redfish.js';

export const REDFISH_DRIVER = 'redfish';

export interface RedfishPowerSettings {
  readonly driver: typeof REDFISH_DRIVER;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Write-only through the API. */
  readonly password: string;
  /** Id or @odata.id of the ComputerSystem when the BMC has several. */
  readonly system?: string;
  /** PEM of the CA that signed the BMC's certificate; when set, no pin is used. */
  readonly caPem?: string;
  /** SHA-256 of the BMC's certificate (AB:CD:… form), pinned on first use or set by the admin. */
  readonly certSha256?: string;
}

export const REDFISH_SETTINGS_SCHEMA = {
  type: 'object', additionalProperties: false, required: ['driver', 'host', 'user', 'password'],
  properties: {
    driver: { const: REDFISH_DRIVER },
    host: { type: 'string', minLength: 1, maxLength: 253 }, port: { type: 'integer', minimum: 1, maximum: 65535 },
    user: { type: 'string', minLength: 1, maxLength: 64 }, password: { type: 'string', maxLength: 256 },
    system: { type: 'string', minLength: 1, maxLength: 256 },
    caPem: { type: 'string', minLength: 1, maxLength: 65536 },
    certSha256: { type: 'string', minLength: 64, maxLength: 95 },
  },
} as const;

/** What the schema passed, made a record: port defaulted, host characters, PEM and fingerprint checked. */
export function checkRedfishSettings(s: Omit<RedfishPowerSettings, 'port'> & { port?: number }, bad: (field: string, why: string) => Error): RedfishPowerSettings {
  if (!/^[A-Za-z0-9.:-]+$/.test(s.host)) throw bad('host', 'not a host name or address');
  if (s.caPem !== undefined && !/-----BEGIN CERTIFICATE-----/.test(s.caPem)) throw bad('caPem', 'not a PEM certificate');
  if (s.caPem !== undefined && s.certSha256 !== undefined) throw bad('certSha256', 'give caPem or certSha256, not both');
  let fp: string | undefined;
  if (s.certSha256 !== undefined) {
    fp = normaliseFingerprint(s.certSha256);
    if (!fp) throw bad('certSha256', 'not a SHA-256 fingerprint (64 hex digits, colons allowed)');
  }
  return {
    driver: REDFISH_DRIVER, host: s.host, port: s.port ?? REDFISH_DEFAULTS.port, user: s.user, password: s.password,
    ...(s.system !== undefined ? { system: s.system } : {}), ...(s.caPem !== undefined ? { caPem: s.caPem } : {}), ...(fp ? { certSha256: fp } : {}),
  };
}

/** The API's view: no password; the pin (or that a CA is set, and that nothing is pinned yet). */
export function publicRedfishSettings(s: RedfishPowerSettings): object {
  const { password: _p, caPem, ...rest } = s;
  return { ...rest, passwordSet: true, ...(caPem !== undefined ? { caSet: true } : {}), ...(caPem === undefined && s.certSha256 === undefined ? { certSha256: null } : {}) };
}

/** The settings with a certificate the admin accepted (a changed BMC certificate, or a first pin). */
export function acceptCertificate(s: RedfishPowerSettings, fingerprint: string): RedfishPowerSettings {
  const fp = normaliseFingerprint(fingerprint);
  if (!fp) throw new PowerError(REDFISH_DRIVER, `${s.host}:${s.port}`, 'refused', 'not a SHA-256 fingerprint');
  const { caPem: _ca, ...rest } = s;
  return { ...rest, certSha256: fp };
}

/** New settings for the same BMC (host and port) that name no CA and no pin keep the pin they had. */
export function carryPin(prev: RedfishPowerSettings, next: RedfishPowerSettings): RedfishPowerSettings {
  const same = prev.host === next.host && prev.port === next.port;
  return same && next.caPem === undefined && next.certSha256 === undefined && prev.certSha256 !== undefined ? { ...next, certSha256: prev.certSha256 } : next;
}

export interface RedfishLimits {
  readonly timeoutMs?: number;
  readonly retries?: number;
  readonly maxConcurrent?: number;
  readonly maxRequestsPerSecond?: number;
  readonly taskTimeoutMs?: number;
}

/** The driver for stored settings; `onPinned` stores a certificate pinned on first use. */
export function createRedfishDriver(s: RedfishPowerSettings, limits: RedfishLimits, onPinned: (fingerprint256: string) => Promise<void>): RedfishDriver {
  return new RedfishDriver({
    host: s.host, port: s.port, user: s.user, password: Buffer.from(s.password, 'utf8'), system: s.system,
    trust: s.caPem !== undefined ? { ca: Buffer.from(s.caPem) } : { certSha256: s.certSha256 },
    onFirstCertificate: s.caPem === undefined && s.certSha256 === undefined ? onPinned : undefined,
    ...limits,
  });
}
