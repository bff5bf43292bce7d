/**
 * The config file boundary: YAML text in, a validated typed Config out.
 *
 * parseConfig is pure (the only facts about the host come through ConfigEnv),
 * so every rule is unit-testable. The first problem found is reported as one
 * ConfigError whose one-line message names the key path, e.g.
 *   config: dhcp.subnets[1].pool: 10.99.1.5 is outside 10.99.0.0/24
 * so an operator reading `systemctl status` knows which line to fix.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parseDocument } from 'yaml';
import {
  cidrBroadcast,
  cidrContains,
  formatCidr,
  formatIpv4,
  parseCidr,
  parseIpv4,
  rangeContains,
  rangesOverlap,
  type Cidr,
  type Ipv4,
  type Ipv4Range,
} from '../net/ipv4.js';
import { nonUnicastMacReason, parseMac, type Mac } from '../net/mac.js';
import {
  DEFAULT_BOOT_FILES,
  DEFAULT_CONFIG_PATH,
  DEFAULT_CONFLICT_CHECK,
  DEFAULT_DATA_DIR,
  DEFAULT_DHCP_MODE,
  DEFAULT_HTTP_LISTEN,
  DEFAULT_IPMI,
  DEFAULT_ISCSI,
  DEFAULT_STORAGE,
  DEFAULT_LEASE_TIME,
  DEFAULT_LOG_LEVEL,
  DEFAULT_OFFER_HOLD_SECONDS,
  DEFAULT_QUARANTINE_SECONDS,
  DEFAULT_TFTP,
  DEFAULT_TFTP_LISTEN,
  DHCP_MODES,
  LIMITS,
  LOG_LEVELS,
  MAX_BOOT_FILE_BYTES,
  MAX_SUBNET_PREFIX,
} from './defaults.js';
import { DEFAULT_STATUS, DEFAULT_SYSLOG, SYSLOG_LIMITS, SYSLOG_MAX_ACCEPT_CIDRS } from './defaults.js';
import { DEFAULT_HTTP_LIMITS, HTTP_LIMITS_BOUNDS } from './defaults.js';
import type { HttpLimits } from './types.js';
import type { StatusConfig, SyslogConfig } from './types.js';
import type { ImagesConfig } from './types.js';
import { resolve as resolvePath } from 'node:path';
import type {
  BootFilesConfig,
  Config,
  ConflictCheckConfig,
  DhcpConfig,
  HostPort,
  HttpConfig,
  IpmiConfig,
  IscsiConfig,
  MachinesConfig,
  StorageConfig,
  ReservationConfig,
  SubnetConfig,
  TftpConfig,
} from './types.js';

export { DEFAULT_CONFIG_PATH };

/** What parseConfig needs to know about the host; injected so parsing stays pure. */
export interface ConfigEnv {
  interfaceExists(name: string): boolean;
  /** The interface's first IPv4 address, if it has one. */
  interfaceAddress(name: string): Ipv4 | undefined;
}

export class ConfigError extends Error {
  /**
   * @param path   key path such as `dhcp.subnets[1].pool`; '' for the file as a whole
   * @param reason what is wrong, without the path
   * @param line   1-based line in the file, when known (YAML syntax errors)
   */
  constructor(readonly path: string, readonly reason: string, readonly line?: number) {
    // One line, always: the message goes to the journal and to a terminal.
    super(`config: ${path ? `${path}: ` : ''}${reason}`.replace(/\s*[\r\n]+\s*/g, ' '));
    this.name = 'ConfigError';
  }
}

// ---------------------------------------------------------------- entry points

export function parseConfig(text: string, env: ConfigEnv): Config {
  const top = mapping(parseYaml(text) ?? {}, '', ['dataDir', 'logLevel', 'http', 'dhcp', 'tftp', 'ipmi', 'storage', 'iscsi', 'machines', 'syslog', 'status', 'images']);
  const dataDir = opt(top, 'dataDir', '', readAbsolutePath) ?? DEFAULT_DATA_DIR;
  const logLevel = opt(top, 'logLevel', '', (v, p) => oneOf(v, p, LOG_LEVELS)) ?? DEFAULT_LOG_LEVEL;
  const http = readHttp(top['http'] ?? {}, 'http');
  const dhcp = readDhcp(top['dhcp'] ?? {}, 'dhcp', env);
  const tftp = readTftp(top['tftp'] ?? {}, 'tftp', env, dhcp);
  const ipmi = readIpmi(top['ipmi'] ?? {}, 'ipmi');

  // publicUrl is what DHCP hands to iPXE; without DHCP nothing needs it yet,
  // so fall back to the listen address (reachable at least from this host).
  let publicUrl = http.publicUrl;
  if (publicUrl === undefined) {
    if (dhcp.mode !== 'off') throw new ConfigError('http.publicUrl', `is required when dhcp.mode is ${dhcp.mode}`);
    publicUrl = urlFromListen(http.listen);
  }
  const storage = readStorage(top['storage'] ?? {}, 'storage', dataDir);
  const iscsi = readIscsi(top['iscsi'] ?? {}, 'iscsi', storage, portalDefault(dhcp, publicUrl));
  return {
    dataDir, logLevel,
    http: {
      listen: http.listen, publicUrl, apiTokenFile: http.apiTokenFile ?? `${dataDir.replace(/\/$/, '')}/api-token`,
      ...(http.readOnlyTokenFile !== undefined ? { readOnlyTokenFile: http.readOnlyTokenFile } : {}),
      limits: http.limits,
    },
    syslog: readSyslog(top['syslog'] ?? {}, 'syslog'), status: readStatus(top['status'] ?? {}, 'status'),
    dhcp, tftp, ipmi, storage, iscsi, machines: readMachines(top['machines'] ?? {}, 'machines', dataDir),
    images: readImages(top['images'] ?? {}, 'images', dataDir),
  };
}

/** Reads and parses the file; the host's interfaces come from the running system. */
export async function loadConfigFile(path: string, env: ConfigEnv = systemConfigEnv()): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError('', `cannot read ${path}: ${(err as Error).message}`);
  }
  return parseConfig(text, env);
}

/**
 * os.networkInterfaces() lists only interfaces that are running with an
 * address: a bridge whose only port is a tap with no carrier yet (no VM
 * started) is missing from it. So existence also consults /sys/class/net and
 * the address falls back to the kernel's own view (`ip -j -4 addr show`).
 * The name was validated by parseConfig before we get here.
 */
export function systemConfigEnv(): ConfigEnv {
  const ifaces = networkInterfaces();
  return {
    interfaceExists: (name) => name in ifaces || existsSync(`/sys/class/net/${name}`),
    interfaceAddress: (name) => {
      const v4 = ifaces[name]?.find((a) => a.family === 'IPv4');
      return v4 ? parseIpv4(v4.address) : kernelIpv4Address(name);
    },
  };
}

function kernelIpv4Address(name: string): Ipv4 | undefined {
  try {
    const out = execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', name], { timeout: 5000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const parsed = JSON.parse(out) as { addr_info?: { family?: string; local?: string }[] }[];
    const local = parsed[0]?.addr_info?.find((a) => a.family === 'inet')?.local;
    return local ? parseIpv4(local) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- YAML

function parseYaml(text: string): unknown {
  // uniqueKeys: a duplicated key is almost always a merge mistake; YAML would keep the last silently.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    // prettyErrors appends " at line L, column C:" and a source excerpt; keep the first line only.
    const first = problem.message.split('\n')[0]!.replace(/:\s*$/, '');
    const line = problem.linePos?.[0].line;
    const m = / at line (\d+), column (\d+)$/.exec(first);
    const where = m ? `line ${m[1]}, column ${m[2]}` : line ? `line ${line}` : 'unknown position';
    const what = m ? first.slice(0, m.index) : first;
    throw new ConfigError('', `invalid YAML at ${where}: ${what}`, line);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError('', `invalid YAML: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------- generic readers

type Obj = Record<string, unknown>;
type Reader<T> = (v: unknown, path: string) => T;

function key(path: string, k: string): string {
  return path ? `${path}.${k}` : k;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return v instanceof Uint8Array ? 'binary data' : 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

function typeError(path: string, expected: string, v: unknown): ConfigError {
  return new ConfigError(path, `expected ${expected}, got ${describe(v)}`);
}

/** A plain mapping with only the given keys. */
function mapping(v: unknown, path: string, allowed: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw typeError(path || '(top level)', 'a mapping', v);
  }
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new ConfigError(key(path, k), 'unknown key');
  }
  return v as Obj;
}

/** An optional key: absent and YAML null (`key:` with no value) both mean "use the default". */
function opt<T>(obj: Obj, k: string, path: string, read: Reader<T>): T | undefined {
  const v = obj[k];
  return v === undefined || v === null ? undefined : read(v, key(path, k));
}

function req<T>(obj: Obj, k: string, path: string, read: Reader<T>, why = ''): T {
  const v = opt(obj, k, path, read);
  if (v === undefined) throw new ConfigError(key(path, k), `is required${why}`);
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw typeError(path, 'a string', v);
  if (v === '') throw new ConfigError(path, 'must not be empty');
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, choices: readonly T[]): T {
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw new ConfigError(path, `expected one of ${choices.join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

function int(v: unknown, path: string, [min, max]: readonly [number, number]): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(path, 'an integer', v);
  if (v < min || v > max) throw new ConfigError(path, `${v} is out of range ${min}..${max}`);
  return v;
}

function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw typeError(path, 'a list', v);
  return v;
}

function ipv4(v: unknown, path: string): Ipv4 {
  if (typeof v !== 'string') throw typeError(path, 'an IPv4 address string', v);
  try {
    return parseIpv4(v);
  } catch (err) {
    throw new ConfigError(path, (err as Error).message);
  }
}

function cidr(v: unknown, path: string): Cidr {
  if (typeof v !== 'string') throw typeError(path, 'a CIDR string like 10.99.0.0/24', v);
  try {
    return parseCidr(v);
  } catch (err) {
    throw new ConfigError(path, (err as Error).message);
  }
}

const HOST_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** RFC 1123 host or domain name: dot-separated labels of letters, digits and inner hyphens. */
function dnsName(v: unknown, path: string): string {
  const s = str(v, path);
  if (s.length > 253 || !s.split('.').every((l) => HOST_LABEL.test(l))) {
    throw new ConfigError(path, `${JSON.stringify(s)} is not a valid DNS name`);
  }
  return s;
}

/** Not 0/8, loopback, multicast/reserved or broadcast: an address a host can actually have. */
function isUsableUnicast(ip: Ipv4): boolean {
  const first = ip >>> 24;
  return first !== 0 && first !== 127 && first < 224;
}

// ---------------------------------------------------------------- top level and http

function readAbsolutePath(v: unknown, path: string): string {
  const s = str(v, path);
  if (!s.startsWith('/')) throw new ConfigError(path, `${JSON.stringify(s)} must be an absolute path`);
  return s;
}

interface RawHttp {
  readonly listen: HostPort;
  readonly publicUrl: string | undefined;
  readonly apiTokenFile: string | undefined;
  readonly readOnlyTokenFile: string | undefined;
  readonly limits: HttpLimits;
}

function readHttp(v: unknown, path: string): RawHttp {
  const m = mapping(v, path, ['listen', 'publicUrl', 'apiTokenFile', 'readOnlyTokenFile', 'limits']);
  return {
    listen: opt(m, 'listen', path, readHostPort) ?? readHostPort(DEFAULT_HTTP_LISTEN, key(path, 'listen')),
    publicUrl: opt(m, 'publicUrl', path, readPublicUrl),
    // The token itself never sits in the config file (which is world-readable on many systems).
    apiTokenFile: opt(m, 'apiTokenFile', path, readAbsolutePath),
    readOnlyTokenFile: opt(m, 'readOnlyTokenFile', path, readAbsolutePath),
    limits: readHttpLimits(m['limits'] ?? {}, key(path, 'limits')),
  };
}

function readHttpLimits(v: unknown, path: string): HttpLimits {
  const names = Object.keys(DEFAULT_HTTP_LIMITS) as (keyof HttpLimits)[];
  const m = mapping(v, path, names);
  const out = Object.fromEntries(names.map((k) => [k, opt(m, k, path, (x, p) => int(x, p, HTTP_LIMITS_BOUNDS[k])) ?? DEFAULT_HTTP_LIMITS[k]])) as Record<keyof HttpLimits, number>;
  if (out.maxConnectionsPerAddress > out.maxConnections) throw new ConfigError(key(path, 'maxConnectionsPerAddress'), `${out.maxConnectionsPerAddress} is above maxConnections ${out.maxConnections}`);
  // node's http.Server refuses a headers timeout longer than a non-zero request timeout.
  if (out.requestTimeoutMs !== 0 && out.requestTimeoutMs < out.headersTimeoutMs) throw new ConfigError(key(path, 'requestTimeoutMs'), `${out.requestTimeoutMs} is below headersTimeoutMs ${out.headersTimeoutMs} (0 turns it off)`);
  return out;
}

/** "0.0.0.0:8080", "[::]:8080" or "localhost:8080". */
function readHostPort(v: unknown, path: string): HostPort {
  const s = str(v, path);
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):([0-9]+)$/.exec(s);
  if (!m) throw new ConfigError(path, `${JSON.stringify(s)} is not host:port (IPv6 hosts go in brackets)`);
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined) {
    if (!isIPv6(host)) throw new ConfigError(path, `${JSON.stringify(host)} is not an IPv6 address`);
  } else if (/^[0-9.]+$/.test(host)) {
    ipv4(host, path);
  } else {
    dnsName(host, path);
  }
  const port = Number(m[3]);
  const [min, max] = LIMITS.port;
  if (port < min || port > max) throw new ConfigError(path, `port ${m[3]} is out of range ${min}..${max}`);
  return { host, port };
}

function readPublicUrl(v: unknown, path: string): string {
  const s = str(v, path);
  // Checked on the text first: a forgotten scheme ("10.99.0.1:8080") is the usual mistake.
  if (!/^https?:\/\//i.test(s)) throw new ConfigError(path, `${JSON.stringify(s)} must start with http:// or https://`);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new ConfigError(path, `${JSON.stringify(s)} is not a URL`);
  }
  // It is interpolated into iPXE scripts and logged: no secrets, nothing to append paths after.
  if (url.username || url.password) throw new ConfigError(path, 'must not contain credentials');
  if (url.search || url.hash) throw new ConfigError(path, 'must not have a query or fragment');
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') {
    throw new ConfigError(path, `${url.hostname} is a listen address; use an address machines can reach`);
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

function urlFromListen({ host, port }: HostPort): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

// ---------------------------------------------------------------- dhcp

const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,14}$/;

function readDhcp(v: unknown, path: string, env: ConfigEnv): DhcpConfig {
  const m = mapping(v, path, [
    'mode', 'interface', 'serverAddress', 'offerHoldSeconds', 'quarantineSeconds',
    'conflictCheck', 'bootFiles', 'subnets', 'reservations',
  ]);
  const mode = opt(m, 'mode', path, (x, p) => oneOf(x, p, DHCP_MODES)) ?? DEFAULT_DHCP_MODE;
  const serving = mode !== 'off';
  const offerHoldSeconds = opt(m, 'offerHoldSeconds', path, (x, p) => int(x, p, LIMITS.offerHoldSeconds)) ?? DEFAULT_OFFER_HOLD_SECONDS;
  const quarantineSeconds = opt(m, 'quarantineSeconds', path, (x, p) => int(x, p, LIMITS.quarantineSeconds)) ?? DEFAULT_QUARANTINE_SECONDS;
  const conflictCheck = opt(m, 'conflictCheck', path, readConflictCheck) ?? DEFAULT_CONFLICT_CHECK;
  const bootFiles = opt(m, 'bootFiles', path, readBootFiles) ?? DEFAULT_BOOT_FILES;

  const ifPath = key(path, 'interface');
  const iface = serving
    ? req(m, 'interface', path, readIfName, ` when dhcp.mode is ${mode}`)
    : opt(m, 'interface', path, readIfName) ?? '';
  if (serving && !env.interfaceExists(iface)) throw new ConfigError(ifPath, `network interface ${iface} does not exist`);

  let serverAddress = opt(m, 'serverAddress', path, readServerAddress);
  if (serving && serverAddress === undefined) {
    serverAddress = env.interfaceAddress(iface);
    if (serverAddress === undefined) {
      throw new ConfigError(key(path, 'serverAddress'), `not set, and interface ${iface} has no IPv4 address to default to`);
    }
    if (!isUsableUnicast(serverAddress)) {
      throw new ConfigError(key(path, 'serverAddress'), `not set, and interface ${iface}'s address ${formatIpv4(serverAddress)} is not a usable unicast address`);
    }
  }

  const subnetsPath = key(path, 'subnets');
  const subnets = (opt(m, 'subnets', path, list) ?? []).map((s, i) => readSubnet(s, `${subnetsPath}[${i}]`));
  if (mode === 'server' && subnets.length === 0) {
    throw new ConfigError(subnetsPath, 'at least one subnet is required when dhcp.mode is server');
  }
  checkSubnetsTogether(subnets, subnetsPath, serverAddress);

  const resPath = key(path, 'reservations');
  const reservations = readReservations(opt(m, 'reservations', path, list) ?? [], resPath, subnets, serverAddress);

  const dhcp: DhcpConfig = {
    mode, interface: iface, subnets, reservations, bootFiles, conflictCheck, offerHoldSeconds, quarantineSeconds,
  };
  return serverAddress === undefined ? dhcp : { ...dhcp, serverAddress };
}

function readIfName(v: unknown, path: string): string {
  const s = str(v, path);
  // Also keeps the name safe to join into /sys/class/net/<name>.
  if (!IFNAME.test(s)) throw new ConfigError(path, `${JSON.stringify(s)} is not a valid interface name`);
  return s;
}

function readServerAddress(v: unknown, path: string): Ipv4 {
  const ip = ipv4(v, path);
  if (!isUsableUnicast(ip)) throw new ConfigError(path, `${formatIpv4(ip)} is not a usable unicast address`);
  return ip;
}

function readConflictCheck(v: unknown, path: string): ConflictCheckConfig {
  const m = mapping(v, path, ['method', 'timeoutMs']);
  return {
    method: opt(m, 'method', path, (x, p) => oneOf(x, p, ['ping', 'off'] as const)) ?? DEFAULT_CONFLICT_CHECK.method,
    timeoutMs: opt(m, 'timeoutMs', path, (x, p) => int(x, p, LIMITS.conflictTimeoutMs)) ?? DEFAULT_CONFLICT_CHECK.timeoutMs,
  };
}

function readBootFiles(v: unknown, path: string): BootFilesConfig {
  const keys = Object.keys(DEFAULT_BOOT_FILES) as (keyof BootFilesConfig)[];
  const m = mapping(v, path, keys);
  const out = { ...DEFAULT_BOOT_FILES };
  for (const k of keys) {
    const read = k.startsWith('http') ? readHttpBootPath : readTftpFile;
    out[k] = opt(m, k, path, read) ?? DEFAULT_BOOT_FILES[k];
  }
  return out;
}

/** A TFTP file name as sent in the DHCP `file` field. */
function readTftpFile(v: unknown, path: string): string {
  const s = str(v, path);
  if (Buffer.byteLength(s) > MAX_BOOT_FILE_BYTES) {
    throw new ConfigError(path, `is longer than ${MAX_BOOT_FILE_BYTES} bytes (the DHCP file field)`);
  }
  if (/[\s\x00-\x1f\x7f]/.test(s)) throw new ConfigError(path, `${JSON.stringify(s)} contains whitespace or control characters`);
  if (s.split('/').includes('..')) throw new ConfigError(path, `${JSON.stringify(s)} must not contain ".."`);
  return s;
}

/** A path under http.publicUrl, so the two can be concatenated. */
function readHttpBootPath(v: unknown, path: string): string {
  const s = readTftpFile(v, path);
  if (!s.startsWith('/')) throw new ConfigError(path, `${JSON.stringify(s)} must be a path starting with /`);
  return s;
}

// ---------------------------------------------------------------- tftp

function readTftp(v: unknown, path: string, env: ConfigEnv, dhcp: DhcpConfig): TftpConfig {
  const m = mapping(v, path, [
    'enabled', 'listen', 'interface', 'root', 'maxBlksize', 'maxWindowsize', 'maxTransfers', 'timeoutMs', 'retries',
    'maxTransfersPerClient', 'reservedTransfers',
  ]);
  const enabled = opt(m, 'enabled', path, bool) ?? DEFAULT_TFTP.enabled;
  const listen = opt(m, 'listen', path, readIpv4HostPort) ?? readIpv4HostPort(DEFAULT_TFTP_LISTEN, key(path, 'listen'));
  const explicitIf = opt(m, 'interface', path, readIfName);
  if (enabled && explicitIf !== undefined && !env.interfaceExists(explicitIf)) {
    throw new ConfigError(key(path, 'interface'), `network interface ${explicitIf} does not exist`);
  }
  const root = opt(m, 'root', path, readAbsolutePath);
  const n = (k: keyof typeof LIMITS, name: string, dflt: number) => opt(m, name, path, (x, p) => int(x, p, LIMITS[k])) ?? dflt;
  const maxTransfers = n('tftpMaxTransfers', 'maxTransfers', DEFAULT_TFTP.maxTransfers);
  const explicitReserved = opt(m, 'reservedTransfers', path, (x, p) => int(x, p, LIMITS.tftpReservedTransfers));
  // An explicit reservation must leave clients without a DHCP binding a slot; the default is
  // at most half of a smaller maxTransfers.
  if (explicitReserved !== undefined && explicitReserved >= maxTransfers) {
    throw new ConfigError(key(path, 'reservedTransfers'), `${explicitReserved} leaves none of maxTransfers ${maxTransfers} for clients without a DHCP binding`);
  }
  const tftp: TftpConfig = {
    enabled,
    listen,
    // Serving PXE on the DHCP interface is the usual set-up; an explicit '' is not accepted by readIfName.
    interface: explicitIf ?? (dhcp.mode !== 'off' ? dhcp.interface : ''),
    maxBlksize: n('tftpBlksize', 'maxBlksize', DEFAULT_TFTP.maxBlksize),
    maxWindowsize: n('tftpWindowsize', 'maxWindowsize', DEFAULT_TFTP.maxWindowsize),
    maxTransfers,
    timeoutMs: n('tftpTimeoutMs', 'timeoutMs', DEFAULT_TFTP.timeoutMs),
    retries: n('tftpRetries', 'retries', DEFAULT_TFTP.retries),
    maxTransfersPerClient: n('tftpMaxTransfersPerClient', 'maxTransfersPerClient', DEFAULT_TFTP.maxTransfersPerClient),
    reservedTransfers: explicitReserved ?? Math.min(DEFAULT_TFTP.reservedTransfers, Math.floor(maxTransfers / 2)),
  };
  return root === undefined ? tftp : { ...tftp, root };
}

// ---------------------------------------------------------------- storage and iscsi

/** LVM VG/LV names: letters, digits and + _ . - (lvm(8) "Valid names"), not starting with -. */
const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;

function readStorage(v: unknown, path: string, dataDir: string): StorageConfig {
  const m = mapping(v, path, ['backend', 'file', 'lvm', 'maxPoolPercent']);
  const backend = opt(m, 'backend', path, (x, p) => oneOf(x, p, ['file', 'lvm'] as const)) ?? DEFAULT_STORAGE.backend;
  const file = mapping(m['file'] ?? {}, key(path, 'file'), ['dir']);
  const fileDir = opt(file, 'dir', key(path, 'file'), readAbsolutePath) ?? `${dataDir.replace(/\/$/, '')}/volumes`;
  const percent = (x: unknown, p: string) => int(x, p, LIMITS.maxPoolPercent);
  const sharedMax = opt(m, 'maxPoolPercent', path, percent);
  let lvmMax: number | undefined;
  let lvm: StorageConfig['lvm'];
  if (m['lvm'] !== undefined || backend === 'lvm') {
    const lp = key(path, 'lvm');
    const l = mapping(m['lvm'] ?? {}, lp, ['vg', 'thinPool', 'maxPoolPercent']);
    lvmMax = opt(l, 'maxPoolPercent', lp, percent);
    const name = (x: unknown, p: string) => {
      const s = str(x, p);
      if (!LVM_NAME.test(s) || s === '.' || s === '..') throw new ConfigError(p, `${JSON.stringify(s)} is not a valid LVM name`);
      return s;
    };
    const vg = opt(l, 'vg', lp, name);
    const thinPool = opt(l, 'thinPool', lp, name);
    if (backend === 'lvm' && (vg === undefined || thinPool === undefined)) throw new ConfigError(key(lp, vg === undefined ? 'vg' : 'thinPool'), 'is required when storage.backend is lvm');
    if (vg !== undefined && thinPool !== undefined) lvm = { vg, thinPool };
  }
  // storage.lvm.maxPoolPercent is the documented spelling for the thin pool; storage.maxPoolPercent
  // (either backend) is kept. Both given: the lvm one wins for the lvm backend.
  const maxPoolPercent = (backend === 'lvm' ? lvmMax : undefined) ?? sharedMax ?? DEFAULT_STORAGE.maxPoolPercent;
  return { backend, fileDir, maxPoolPercent, ...(lvm ? { lvm } : {}) };
}

/** The portal machines can reach: the DHCP server address, else publicUrl's host when it is an IPv4 address or loopback. */
function portalDefault(dhcp: DhcpConfig, publicUrl: string): string | undefined {
  if (dhcp.mode !== 'off' && dhcp.serverAddress !== undefined) return formatIpv4(dhcp.serverAddress);
  const host = new URL(publicUrl).hostname;
  if (host === '[::1]' || host === 'localhost') return '127.0.0.1'; // a daemon only this host can reach
  return /^[0-9.]+$/.test(host) && host !== '0.0.0.0' ? host : undefined;
}

/** RFC 3720 §3.2.6.3.1: "iqn." yyyy-mm "." reversed domain, lower case, no spaces. */
const IQN_PREFIX = /^iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[a-z0-9.-]+)?$/;

function readIscsi(v: unknown, path: string, storage: StorageConfig, portalHost: string | undefined): IscsiConfig {
  const m = mapping(v, path, ['enabled', 'portal', 'iqnPrefix', 'tgtadm', 'bstype', 'manageTgtd', 'controlPort', 'checkIntervalMs', 'mutualChap', 'chapSecretsVia']);
  const enabled = opt(m, 'enabled', path, bool) ?? DEFAULT_ISCSI.enabled;
  let portal = opt(m, 'portal', path, readIpv4HostPort);
  if (portal === undefined) {
    if (portalHost === undefined && enabled) {
      throw new ConfigError(key(path, 'portal'), 'not set, and neither dhcp.serverAddress nor an IPv4 http.publicUrl gives an address machines can reach; set it, or iscsi.enabled: false');
    }
    portal = { host: portalHost ?? '127.0.0.1', port: DEFAULT_ISCSI.port };
  }
  if (portal.host === '0.0.0.0') throw new ConfigError(key(path, 'portal'), 'must be an address machines can reach, not 0.0.0.0');
  const iqnPrefix = opt(m, 'iqnPrefix', path, (x, p) => {
    const s = str(x, p);
    if (s.length > 200 || !IQN_PREFIX.test(s)) throw new ConfigError(p, `${JSON.stringify(s.slice(0, 80))} is not an iqn.yyyy-mm.reversed.domain name (lower case)`);
    return s;
  }) ?? DEFAULT_ISCSI.iqnPrefix;
  return {
    enabled, portal, iqnPrefix,
    tgtadm: opt(m, 'tgtadm', path, readAbsolutePath) ?? DEFAULT_ISCSI.tgtadm,
    bstype: opt(m, 'bstype', path, (x, p) => oneOf(x, p, ['aio', 'rdwr'] as const)) ?? (storage.backend === 'lvm' ? 'aio' : 'rdwr'),
    manageTgtd: opt(m, 'manageTgtd', path, bool) ?? DEFAULT_ISCSI.manageTgtd,
    controlPort: opt(m, 'controlPort', path, (x, p) => int(x, p, LIMITS.tgtdControlPort)) ?? DEFAULT_ISCSI.controlPort,
    checkIntervalMs: opt(m, 'checkIntervalMs', path, (x, p) => int(x, p, LIMITS.iscsiCheckIntervalMs)) ?? DEFAULT_ISCSI.checkIntervalMs,
    mutualChap: opt(m, 'mutualChap', path, bool) ?? DEFAULT_ISCSI.mutualChap,
    chapSecretsVia: opt(m, 'chapSecretsVia', path, (x, p) => oneOf(x, p, ['control-socket', 'argv'] as const)) ?? DEFAULT_ISCSI.chapSecretsVia,
  };
}

// ---------------------------------------------------------------- machines

function readMachines(v: unknown, path: string, dataDir: string): MachinesConfig {
  const m = mapping(v, path, ['unknown', 'discover', 'sanbootTries', 'sanbootRetryDelaySec', 'sanbootFallback', 'netbootDir', 'proxyBootWindowSec', 'agentDir', 'agentTimeoutSec', 'agentLldpSec']);
  const agentDir = opt(m, 'agentDir', path, readAbsolutePath);
  return {
    // Machines metalboot does not know go straight on to their next boot device (they are still
    // recorded as discovered); a menu would hold every stray PXE client for its timeout.
    unknown: opt(m, 'unknown', path, (x, p) => oneOf(x, p, ['ignore', 'menu', 'local', 'inspect'] as const)) ?? 'ignore',
    discover: opt(m, 'discover', path, bool) ?? true,
    sanbootTries: opt(m, 'sanbootTries', path, (x, p) => int(x, p, [1, 100])) ?? 3,
    sanbootRetryDelaySec: opt(m, 'sanbootRetryDelaySec', path, (x, p) => int(x, p, [1, 600])) ?? 5,
    sanbootFallback: opt(m, 'sanbootFallback', path, (x, p) => oneOf(x, p, ['retry', 'menu', 'exit'] as const)) ?? 'exit',
    netbootDir: opt(m, 'netbootDir', path, readAbsolutePath) ?? `${dataDir.replace(/\/$/, '')}/netboot`,
    // Ten minutes covers a slow firmware from its ProxyDHCP offer to iPXE's script fetch, and the menu's
    // 'sanboot' choice; a later boot does a new ProxyDHCP exchange and opens a new window.
    proxyBootWindowSec: opt(m, 'proxyBootWindowSec', path, (x, p) => int(x, p, [10, 86_400])) ?? 600,
    ...(agentDir !== undefined ? { agentDir } : {}),
    // Ten minutes: power-on, firmware, the ramdisk's download and an inspection's LLDP wait fit.
    agentTimeoutSec: opt(m, 'agentTimeoutSec', path, (x, p) => int(x, p, [10, 86_400])) ?? 600,
    // LLDP's default transmit interval is 30 s (IEEE 802.1AB msgTxInterval): one frame fits.
    agentLldpSec: opt(m, 'agentLldpSec', path, (x, p) => int(x, p, [0, 300])) ?? 31,
  };
}

// ---------------------------------------------------------------- ipmi

function readIpmi(v: unknown, path: string): IpmiConfig {
  const m = mapping(v, path, ['timeoutMs', 'retries', 'keepAliveMs', 'maxCommandsPerSecond', 'cipherSuite', 'privilege']);
  const n = (k: keyof typeof LIMITS, name: keyof IpmiConfig, dflt: number) => opt(m, name, path, (x, p) => int(x, p, LIMITS[k])) ?? dflt;
  return {
    timeoutMs: n('ipmiTimeoutMs', 'timeoutMs', DEFAULT_IPMI.timeoutMs),
    retries: n('ipmiRetries', 'retries', DEFAULT_IPMI.retries),
    keepAliveMs: n('ipmiKeepAliveMs', 'keepAliveMs', DEFAULT_IPMI.keepAliveMs),
    maxCommandsPerSecond: n('ipmiMaxCommandsPerSecond', 'maxCommandsPerSecond', DEFAULT_IPMI.maxCommandsPerSecond),
    cipherSuite: opt(m, 'cipherSuite', path, readCipherSuite) ?? DEFAULT_IPMI.cipherSuite,
    privilege: opt(m, 'privilege', path, (x, p) => oneOf(x, p, ['administrator', 'operator'] as const)) ?? DEFAULT_IPMI.privilege,
  };
}

/** `auto`, 17, 3 or 1.5 (IPMI 1.5 sessions; YAML reads it as a number, a string is accepted too). */
export function readCipherSuite(v: unknown, path: string): IpmiConfig['cipherSuite'] {
  if (v === 'auto' || v === '1.5' || v === 1.5) return v === 'auto' ? v : '1.5';
  if (v === 17 || v === '17') return 17;
  if (v === 3 || v === '3') return 3;
  throw new ConfigError(path, `expected auto, 17, 3 or 1.5, got ${describe(v)}`);
}

function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw typeError(path, 'true or false', v);
  return v;
}

/** host:port where host is an IPv4 address (the TFTP sockets are IPv4). */
function readIpv4HostPort(v: unknown, path: string): HostPort {
  const hp = readHostPort(v, path);
  if (!/^[0-9.]+$/.test(hp.host)) throw new ConfigError(path, `${JSON.stringify(hp.host)} is not an IPv4 address`);
  return hp;
}

// ---------------------------------------------------------------- subnets

function readSubnet(v: unknown, path: string): SubnetConfig {
  const m = mapping(v, path, ['cidr', 'pool', 'router', 'dns', 'domainName', 'leaseTime']);
  const net = req(m, 'cidr', path, cidr);
  if (net.prefix > MAX_SUBNET_PREFIX) {
    throw new ConfigError(key(path, 'cidr'), `/${net.prefix} is too small to serve (at most /${MAX_SUBNET_PREFIX})`);
  }
  const host = (x: unknown, p: string) => hostIn(net, ipv4(x, p), p);
  const pool = opt(m, 'pool', path, (x, p) => readPool(x, p, net));
  const router = opt(m, 'router', path, host);
  if (pool && router !== undefined && rangeContains(pool, router)) {
    throw new ConfigError(key(path, 'pool'), `${formatRange(pool)} contains the router ${formatIpv4(router)}`);
  }
  const dns = (opt(m, 'dns', path, list) ?? []).map((x, i) => ipv4(x, `${key(path, 'dns')}[${i}]`));
  const domainName = opt(m, 'domainName', path, dnsName);
  const leaseTime = opt(m, 'leaseTime', path, (x, p) => int(x, p, LIMITS.leaseTime)) ?? DEFAULT_LEASE_TIME;

  const s: SubnetConfig = { cidr: net, dns, leaseTime };
  return {
    ...s,
    ...(pool && { pool }),
    ...(router !== undefined && { router }),
    ...(domainName !== undefined && { domainName }),
  };
}

/** An address a host in `net` can have: inside it, and neither its network nor broadcast address. */
function hostIn(net: Cidr, ip: Ipv4, path: string): Ipv4 {
  const ipS = formatIpv4(ip);
  const netS = formatCidr(net);
  if (!cidrContains(net, ip)) throw new ConfigError(path, `${ipS} is outside ${netS}`);
  if (ip === net.network) throw new ConfigError(path, `${ipS} is the network address of ${netS}`);
  if (ip === cidrBroadcast(net)) throw new ConfigError(path, `${ipS} is the broadcast address of ${netS}`);
  return ip;
}

function readPool(v: unknown, path: string, net: Cidr): Ipv4Range {
  const items = list(v, path);
  if (items.length !== 2) throw new ConfigError(path, `expected [first, last] (two addresses), got ${items.length}`);
  // Element parse errors name the element; placement errors name the pool, as one range.
  const [first, last] = items.map((x, i) => ipv4(x, `${path}[${i}]`)) as [Ipv4, Ipv4];
  hostIn(net, first, path);
  hostIn(net, last, path);
  if (first > last) throw new ConfigError(path, `first address ${formatIpv4(first)} is after last address ${formatIpv4(last)}`);
  return { first, last };
}

function formatRange(r: Ipv4Range): string {
  return `${formatIpv4(r.first)}-${formatIpv4(r.last)}`;
}

/**
 * Cross-subnet rules. Pools are compared first: the overlap of two pools is
 * the more concrete message (it can only happen if their subnets overlap too).
 */
function checkSubnetsTogether(subnets: readonly SubnetConfig[], path: string, serverAddress: Ipv4 | undefined): void {
  subnets.forEach((s, i) => {
    if (s.pool && serverAddress !== undefined && rangeContains(s.pool, serverAddress)) {
      throw new ConfigError(`${path}[${i}].pool`, `${formatRange(s.pool)} contains the server address ${formatIpv4(serverAddress)}`);
    }
    for (let j = 0; j < i; j++) {
      const o = subnets[j]!;
      if (s.pool && o.pool && rangesOverlap(s.pool, o.pool)) {
        throw new ConfigError(`${path}[${i}].pool`, `${formatRange(s.pool)} overlaps ${path}[${j}].pool ${formatRange(o.pool)}`);
      }
    }
  });
  const span = (c: Cidr): Ipv4Range => ({ first: c.network, last: cidrBroadcast(c) });
  subnets.forEach((s, i) => {
    for (let j = 0; j < i; j++) {
      const o = subnets[j]!;
      if (rangesOverlap(span(s.cidr), span(o.cidr))) {
        throw new ConfigError(`${path}[${i}].cidr`, `${formatCidr(s.cidr)} overlaps ${path}[${j}].cidr ${formatCidr(o.cidr)}`);
      }
    }
  });
}

// ---------------------------------------------------------------- reservations

function readReservations(
  items: readonly unknown[],
  path: string,
  subnets: readonly SubnetConfig[],
  serverAddress: Ipv4 | undefined,
): ReservationConfig[] {
  const byMac = new Map<Mac, number>();
  const byIp = new Map<Ipv4, number>();
  return items.map((v, i) => {
    const p = `${path}[${i}]`;
    const m = mapping(v, p, ['mac', 'ip', 'hostname']);
    const mac = req(m, 'mac', p, readMac);
    const ipPath = `${p}.ip`;
    const ip = req(m, 'ip', p, ipv4);
    const hostname = opt(m, 'hostname', p, dnsName);

    // Inside some subnet and a usable host there; a reservation inside a pool is fine (the allocator skips it).
    const subnet = subnets.find((s) => cidrContains(s.cidr, ip));
    if (!subnet) throw new ConfigError(ipPath, `${formatIpv4(ip)} is outside every subnet in dhcp.subnets`);
    hostIn(subnet.cidr, ip, ipPath);
    if (ip === subnet.router) throw new ConfigError(ipPath, `${formatIpv4(ip)} is the router of ${formatCidr(subnet.cidr)}`);
    if (ip === serverAddress) throw new ConfigError(ipPath, `${formatIpv4(ip)} is the server address`);

    const macAt = byMac.get(mac);
    if (macAt !== undefined) throw new ConfigError(`${p}.mac`, `${mac} is already reserved by ${path}[${macAt}]`);
    const ipAt = byIp.get(ip);
    if (ipAt !== undefined) throw new ConfigError(ipPath, `${formatIpv4(ip)} is already reserved by ${path}[${ipAt}]`);
    byMac.set(mac, i);
    byIp.set(ip, i);

    const r: ReservationConfig = { mac, ip };
    return hostname === undefined ? r : { ...r, hostname };
  });
}

function readMac(v: unknown, path: string): Mac {
  if (typeof v !== 'string') throw typeError(path, 'a MAC address string (quote it in YAML)', v);
  let mac: Mac;
  try {
    mac = parseMac(v);
  } catch (err) {
    throw new ConfigError(path, (err as Error).message);
  }
  // The group bit, broadcast, all-zero: such an address never sends a DHCPDISCOVER.
  const notUnicast = nonUnicastMacReason(mac);
  if (notUnicast) throw new ConfigError(path, `${mac} is ${notUnicast}`);
  return mac;
}

// ---------------------------------------------------------------- syslog and status

function readSyslog(v: unknown, path: string): SyslogConfig {
  const m = mapping(v, path, ['enabled', 'listen', 'maxPerSecondPerSource', 'burst', 'acceptFrom', 'maxPerSecondTotal', 'burstTotal']);
  const maxPerSecondPerSource = opt(m, 'maxPerSecondPerSource', path, (x, p) => int(x, p, SYSLOG_LIMITS.maxPerSecondPerSource)) ?? DEFAULT_SYSLOG.maxPerSecondPerSource;
  const burst = opt(m, 'burst', path, (x, p) => int(x, p, SYSLOG_LIMITS.burst)) ?? DEFAULT_SYSLOG.burst;
  if (burst < maxPerSecondPerSource) throw new ConfigError(key(path, 'burst'), `${burst} is below maxPerSecondPerSource ${maxPerSecondPerSource} (a bucket smaller than one second of messages)`);
  const maxPerSecondTotal = opt(m, 'maxPerSecondTotal', path, (x, p) => int(x, p, SYSLOG_LIMITS.maxPerSecondTotal)) ?? DEFAULT_SYSLOG.maxPerSecondTotal;
  const burstTotal = opt(m, 'burstTotal', path, (x, p) => int(x, p, SYSLOG_LIMITS.burstTotal)) ?? DEFAULT_SYSLOG.burstTotal;
  if (burstTotal < maxPerSecondTotal) throw new ConfigError(key(path, 'burstTotal'), `${burstTotal} is below maxPerSecondTotal ${maxPerSecondTotal} (a bucket smaller than one second of messages)`);
  const acceptFrom = opt(m, 'acceptFrom', path, readSyslogAcceptFrom) ?? DEFAULT_SYSLOG.acceptFrom;
  return {
    acceptFrom, maxPerSecondTotal, burstTotal,
    enabled: opt(m, 'enabled', path, bool) ?? DEFAULT_SYSLOG.enabled,
    listen: opt(m, 'listen', path, readIpv4HostPort) ?? readIpv4HostPort(DEFAULT_SYSLOG.listen, key(path, 'listen')),
    maxPerSecondPerSource,
    burst,
  };
}

function readSyslogAcceptFrom(v: unknown, path: string): SyslogConfig['acceptFrom'] {
  if (v === 'served' || v === 'any') return v;
  if (!Array.isArray(v)) throw typeError(path, '"served", "any" or a list of CIDRs', v);
  if (v.length === 0) throw new ConfigError(path, 'an empty list accepts nothing; disable syslog instead');
  if (v.length > SYSLOG_MAX_ACCEPT_CIDRS) throw new ConfigError(path, `${v.length} CIDRs; at most ${SYSLOG_MAX_ACCEPT_CIDRS}`);
  return v.map((c, i) => {
    if (typeof c !== 'string') throw typeError(`${path}[${i}]`, 'a CIDR string', c);
    try {
      return parseCidr(c);
    } catch (err) {
      throw new ConfigError(`${path}[${i}]`, (err as Error).message);
    }
  });
}

function readStatus(v: unknown, path: string): StatusConfig {
  const m = mapping(v, path, ['public']);
  return { public: opt(m, 'public', path, bool) ?? DEFAULT_STATUS.public };
}

// ---------------------------------------------------------------- images

/** images.importDir: the one directory server-side image imports may read from. */
function readImages(v: unknown, path: string, dataDir: string): ImagesConfig {
  const m = mapping(v, path, ['importDir']);
  const importDir = opt(m, 'importDir', path, readAbsolutePath) ?? `${dataDir.replace(/\/$/, '')}/import`;
  // The root would let an import read any file on the host again.
  if (resolvePath(importDir) === '/') throw new ConfigError(key(path, 'importDir'), 'must not be /');
  return { importDir };
}
