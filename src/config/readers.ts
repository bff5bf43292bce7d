/**
 * Generic readers of the config boundary: each takes an untrusted YAML value
 * and its key path, returns a typed value or throws a ConfigError naming the
 * path. The section readers (config/sections/) are written in these terms.
 */
import { isIPv6 } from 'node:net';
import { parseCidr, parseIpv4, type Cidr, type Ipv4 } from '../net/ipv4.js';
import { LIMITS } from './defaults.js';
import { ConfigError } from './error.js';
import type { HostPort } from './types.js';

export type Obj = Record<string, unknown>;
export type Reader<T> = (v: unknown, path: string) => T;

export function key(path: string, k: string): string {
  return path ? `${path}.${k}` : k;
}

export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return v instanceof Uint8Array ? 'binary data' : 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

export function typeError(path: string, expected: string, v: unknown): ConfigError {
  return new ConfigError(path, `expected ${expected}, got ${describe(v)}`);
}

/** A plain mapping with only the given keys. */
export function mapping(v: unknown, path: string, allowed: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw typeError(path || '(top level)', 'a mapping', v);
  }
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new ConfigError(key(path, k), 'unknown key');
  }
  return v as Obj;
}

/** An optional key: absent and YAML null (`key:` with no value) both mean "use the default". */
export function opt<T>(obj: Obj, k: string, path: string, read: Reader<T>): T | undefined {
  const v = obj[k];
  return v === undefined || v === null ? undefined : read(v, key(path, k));
}

export function req<T>(obj: Obj, k: string, path: string, read: Reader<T>, why = ''): T {
  const v = opt(obj, k, path, read);
  if (v === undefined) throw new ConfigError(key(path, k), `is required${why}`);
  return v;
}

export function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw typeError(path, 'a string', v);
  if (v === '') throw new ConfigError(path, 'must not be empty');
  return v;
}

export function oneOf<T extends string>(v: unknown, path: string, choices: readonly T[]): T {
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw new ConfigError(path, `expected one of ${choices.join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

export function int(v: unknown, path: string, [min, max]: readonly [number, number]): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(path, 'an integer', v);
  if (v < min || v > max) throw new ConfigError(path, `${v} is out of range ${min}..${max}`);
  return v;
}

export function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw typeError(path, 'a list', v);
  return v;
}

/** A string given to a strict parser (net/): its error becomes the ConfigError's reason. */
export function parsedString<T>(v: unknown, path: string, expected: string, parse: (s: string) => T): T {
  if (typeof v !== 'string') throw typeError(path, expected, v);
  try {
    return parse(v);
  } catch (err) {
    throw new ConfigError(path, (err as Error).message);
  }
}

export function ipv4(v: unknown, path: string): Ipv4 {
  return parsedString(v, path, 'an IPv4 address string', parseIpv4);
}

export function cidr(v: unknown, path: string): Cidr {
  return parsedString(v, path, 'a CIDR string like 10.99.0.0/24', parseCidr);
}

const HOST_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** RFC 1123 host or domain name: dot-separated labels of letters, digits and inner hyphens. */
export function dnsName(v: unknown, path: string): string {
  const s = str(v, path);
  if (s.length > 253 || !s.split('.').every((l) => HOST_LABEL.test(l))) {
    throw new ConfigError(path, `${JSON.stringify(s)} is not a valid DNS name`);
  }
  return s;
}

export function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw typeError(path, 'true or false', v);
  return v;
}

export function readAbsolutePath(v: unknown, path: string): string {
  const s = str(v, path);
  if (!s.startsWith('/')) throw new ConfigError(path, `${JSON.stringify(s)} must be an absolute path`);
  return s;
}

/** "0.0.0.0:8080", "[::]:8080" or "localhost:8080". */
export function readHostPort(v: unknown, path: string): HostPort {
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

/** host:port where host is an IPv4 address (the TFTP sockets are IPv4). */
export function readIpv4HostPort(v: unknown, path: string): HostPort {
  const hp = readHostPort(v, path);
  if (!/^[0-9.]+$/.test(hp.host)) throw new ConfigError(path, `${JSON.stringify(hp.host)} is not an IPv4 address`);
  return hp;
}

const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,14}$/;

export function readIfName(v: unknown, path: string): string {
  const s = str(v, path);
  // Also keeps the name safe to join into /sys/class/net/<name>.
  if (!IFNAME.test(s)) throw new ConfigError(path, `${JSON.stringify(s)} is not a valid interface name`);
  return s;
}

/** A default path under dataDir (which may or may not end in a slash). */
export function underDataDir(dataDir: string, name: string): string {
  return `${dataDir.replace(/\/$/, '')}/${name}`;
}
