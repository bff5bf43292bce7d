/**
 * The IPMI power driver: PowerDriver over ipmi/ (a protocol library this file only calls), with
 * its settings (what a machine stores as `power: {driver: 'ipmi', …}`) and the mapping of IPMI's
 * typed errors to PowerError kinds. One IpmiClient per driver: its session is reused until close().
 */
import type { IpmiConfig } from '../config/types.js';
import type { BootDevice, BootFlags } from '../ipmi/commands.js';
import { IPMI_DEFAULTS, IpmiClient, type IpmiLog } from '../ipmi/client.js';
import {
  IpmiAuthError, IpmiClosedError, IpmiCompletionError, IpmiError, IpmiNegotiationError, IpmiPortClosedError, IpmiProtocolError, IpmiTimeoutError,
} from '../ipmi/errors.js';
import { PowerError, type BootTarget, type NextBoot, type PowerAction, type PowerDriver, type PowerErrorKind, type PowerState } from './driver.js';

export const IPMI_DRIVER = 'ipmi';

export interface IpmiPowerSettings {
  readonly driver: typeof IPMI_DRIVER;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Write-only through the API; kept in the store for the client. */
  readonly password: string;
  readonly cipherSuite?: 'auto' | 17 | 3 | '1.5';
  readonly privilege?: 'administrator' | 'operator';
}

/**
 * The settings' shape and bounds as the API's JSON schema states them (the route's first gate;
 * `driver` omitted, for the `bmc` alias). The rules a schema cannot say are in checkIpmiSettings.
 */
export const IPMI_SETTINGS_PROPERTIES = {
  host: { type: 'string', minLength: 1, maxLength: 253 }, port: { type: 'integer', minimum: 1, maximum: 65535 },
  // IPMI v2.0 §22.28/§22.29: user names are 16 bytes, RMCP+ passwords 20.
  user: { type: 'string', minLength: 1, maxLength: 16 }, password: { type: 'string', maxLength: 20 },
  cipherSuite: { enum: ['auto', 17, 3, '1.5'] }, privilege: { enum: ['administrator', 'operator'] },
} as const;
export const IPMI_SETTINGS_REQUIRED = ['host', 'user', 'password'] as const;

export const IPMI_SETTINGS_SCHEMA = {
  type: 'object', additionalProperties: false, required: ['driver', ...IPMI_SETTINGS_REQUIRED],
  properties: { driver: { const: IPMI_DRIVER }, ...IPMI_SETTINGS_PROPERTIES },
} as const;

/** What the schema passed, made a record: the port defaulted, the host's characters and the password's bytes checked. */
export function checkIpmiSettings(s: Omit<IpmiPowerSettings, 'port'> & { port?: number }, bad: (field: string, why: string) => Error): IpmiPowerSettings {
  if (!/^[A-Za-z0-9.:-]+$/.test(s.host)) throw bad('host', 'not a host name or address');
  // The schema counts characters; IPMI counts the UTF-8 bytes.
  if (Buffer.byteLength(s.password) > 20) throw bad('password', 'at most 20 bytes (IPMI v2.0)');
  return {
    driver: IPMI_DRIVER, host: s.host, port: s.port ?? IPMI_DEFAULTS.port, user: s.user, password: s.password,
    ...(s.cipherSuite !== undefined ? { cipherSuite: s.cipherSuite } : {}), ...(s.privilege ? { privilege: s.privilege } : {}),
  };
}

/** The API's view: everything but the password. */
export function publicIpmiSettings(s: IpmiPowerSettings): Omit<IpmiPowerSettings, 'password'> & { passwordSet: true } {
  const { password: _p, ...rest } = s;
  return { ...rest, passwordSet: true };
}

/** IPMI v2.0 §28.13 boot device selectors for each target; UEFI HTTP boot has none. */
const BOOT_DEVICE: Readonly<Record<BootTarget, BootDevice | undefined>> = { pxe: 'pxe', disk: 'disk', bios: 'bios', cdrom: 'cdrom', http: undefined };
/** What the BMC may read back, as a target ('disk-safe' is the disk in safe mode; remote media is the virtual CD). */
const READ_BACK: Readonly<Partial<Record<BootFlags['device'], BootTarget>>> = {
  pxe: 'pxe', disk: 'disk', 'disk-safe': 'disk', bios: 'bios', cdrom: 'cdrom', 'remote-cdrom': 'cdrom',
};

export class IpmiPowerDriver implements PowerDriver {
  readonly driver = IPMI_DRIVER;
  readonly target: string;
  private readonly client: IpmiClient;

  constructor(s: IpmiPowerSettings, defaults: IpmiConfig, log: IpmiLog, deps: ConstructorParameters<typeof IpmiClient>[1] = {}) {
    this.client = new IpmiClient({
      host: s.host, port: s.port, username: s.user, password: Buffer.from(s.password, 'utf8'),
      privilege: s.privilege ?? defaults.privilege, cipherSuite: s.cipherSuite ?? defaults.cipherSuite,
      timeoutMs: defaults.timeoutMs, retries: defaults.retries, keepAliveMs: defaults.keepAliveMs, maxCommandsPerSecond: defaults.maxCommandsPerSecond,
    }, { ...deps, log });
    this.target = this.client.bmc;
  }

  powerState(): Promise<PowerState> {
    return this.mapped(() => this.client.powerState());
  }

  async power(action: PowerAction): Promise<void> {
    await this.mapped(() => this.client.power(action));
  }

  async setNextBoot(next: NextBoot): Promise<NextBoot> {
    const device = BOOT_DEVICE[next.device];
    if (!device) throw new PowerError(this.driver, this.target, 'unsupported', `IPMI has no boot device for ${next.device} boot`);
    const back = await this.mapped(() => this.client.setBootDevice({ device, persistent: next.persistent, efi: next.efi }));
    const target = READ_BACK[back.device];
    if (!target) throw new PowerError(this.driver, this.target, 'refused', `boot device ${next.device} set, but the BMC reads back "${back.device}"`);
    return { device: target, persistent: back.persistent, efi: back.efi };
  }

  close(): Promise<void> {
    return this.client.close();
  }

  private async mapped<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw ipmiPowerError(e, this.target);
    }
  }
}

/**
 * The PowerError for what the IPMI client threw, the IPMI error kept as `cause` and its message
 * kept (without its own "BMC host:port: " prefix, which PowerError writes again). Errors that are
 * not the BMC's (a bug) are returned unchanged.
 */
export function ipmiPowerError(e: unknown, target: string): unknown {
  const kind = ipmiErrorKind(e);
  if (!kind) return e;
  const err = e as Error;
  const prefix = e instanceof IpmiError ? `BMC ${e.bmc}: ` : '';
  const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  return new PowerError(IPMI_DRIVER, target, kind, message, { cause: e });
}

/** Resolver and socket failures that mean the BMC cannot be reached at all. */
const UNREACHABLE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ECONNREFUSED', 'EADDRNOTAVAIL']);

function ipmiErrorKind(e: unknown): PowerErrorKind | undefined {
  if (e instanceof IpmiAuthError) return 'auth';
  // Timeouts include corrupt replies (a subclass): nothing usable came back.
  if (e instanceof IpmiTimeoutError || e instanceof IpmiPortClosedError || e instanceof IpmiClosedError) return 'unreachable';
  // The BMC answered, and said no (a completion code) or something unusable (RAKP status, bad field).
  if (e instanceof IpmiCompletionError || e instanceof IpmiProtocolError) return 'refused';
  if (e instanceof IpmiNegotiationError) return 'unsupported';
  if (e instanceof IpmiError) return 'refused';
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof Error && typeof code === 'string' && UNREACHABLE_CODES.has(code)) return 'unreachable';
  return undefined;
}
