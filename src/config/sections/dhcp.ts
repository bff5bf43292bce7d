/**
 * The `dhcp` section: mode, interface and server address (checked against the
 * host through ConfigEnv), conflict check, boot files; its subnets and
 * reservations are read by sections/subnets.ts.
 */
import { formatIpv4, type Ipv4 } from '../../net/ipv4.js';
import {
  DEFAULT_BOOT_FILES, DEFAULT_CONFLICT_CHECK, DEFAULT_DHCP_MODE, DEFAULT_OFFER_HOLD_SECONDS, DEFAULT_QUARANTINE_SECONDS,
  DHCP_MODES, LIMITS, MAX_BOOT_FILE_BYTES,
} from '../defaults.js';
import type { ConfigEnv } from '../env.js';
import { ConfigError } from '../error.js';
import { int, ipv4, key, list, mapping, oneOf, opt, readIfName, req, str } from '../readers.js';
import type { BootFilesConfig, ConflictCheckConfig, DhcpConfig } from '../types.js';
import { checkSubnetsTogether, readReservations, readSubnet } from './subnets.js';

export function readDhcp(v: unknown, path: string, env: ConfigEnv): DhcpConfig {
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

/** Not 0/8, loopback, multicast/reserved or broadcast: an address a host can actually have. */
function isUsableUnicast(ip: Ipv4): boolean {
  const first = ip >>> 24;
  return first !== 0 && first !== 127 && first < 224;
}
