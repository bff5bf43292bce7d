/**
 * IPv4 addresses as uint32 numbers: strict parsing at the boundary,
 * plain integer math inside (pools, subnets, masks).
 */

/** An IPv4 address as an unsigned 32-bit integer. */
export type Ipv4 = number & { readonly __brand: 'Ipv4' };

export interface Cidr {
  readonly network: Ipv4;
  readonly prefix: number;
}

export class Ipv4ParseError extends Error {
  constructor(readonly input: string, readonly reason: string) {
    super(`${JSON.stringify(input.slice(0, 64))} ${reason}`);
    this.name = 'Ipv4ParseError';
  }
}

export const IPV4_ZERO = 0 as Ipv4;
export const IPV4_BROADCAST = 0xffffffff as Ipv4;

/** Dotted quad only: four decimal octets 0..255, no leading zeros (which some parsers read as octal). */
export function parseIpv4(input: string): Ipv4 {
  const parts = input.split('.');
  if (parts.length !== 4) throw new Ipv4ParseError(input, 'is not a dotted-quad IPv4 address');
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) throw new Ipv4ParseError(input, 'is not a dotted-quad IPv4 address');
    const v = Number(p);
    if (v > 255) throw new Ipv4ParseError(input, 'has an octet above 255');
    n = n * 256 + v;
  }
  return n as Ipv4;
}

export function tryParseIpv4(input: string): Ipv4 | undefined {
  try {
    return parseIpv4(input);
  } catch {
    return undefined;
  }
}

export function formatIpv4(ip: Ipv4): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

export function ipv4FromBytes(buf: Uint8Array, offset = 0): Ipv4 {
  if (offset < 0 || offset + 4 > buf.length) throw new RangeError('IPv4 address runs past the buffer');
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0 as Ipv4;
}

export function ipv4ToBytes(ip: Ipv4): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(ip, 0);
  return b;
}

export function prefixToMask(prefix: number): Ipv4 {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new RangeError(`bad prefix length ${prefix}`);
  return (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0) as Ipv4;
}

/** "10.99.0.0/24"; the address must be the network address (no host bits set). */
export function parseCidr(input: string): Cidr {
  const slash = input.indexOf('/');
  if (slash < 0) throw new Ipv4ParseError(input, 'is not a CIDR (missing /prefix)');
  const addr = parseIpv4(input.slice(0, slash));
  const ps = input.slice(slash + 1);
  if (!/^(0|[1-9][0-9]?)$/.test(ps) || Number(ps) > 32) throw new Ipv4ParseError(input, 'has a bad prefix length');
  const prefix = Number(ps);
  const mask = prefixToMask(prefix);
  if (((addr & ~mask) >>> 0) !== 0) throw new Ipv4ParseError(input, `has host bits set (network is ${formatIpv4((addr & mask) >>> 0 as Ipv4)}/${prefix})`);
  return { network: addr, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.network)}/${c.prefix}`;
}

export function cidrMask(c: Cidr): Ipv4 {
  return prefixToMask(c.prefix);
}

export function cidrBroadcast(c: Cidr): Ipv4 {
  return (c.network | ~prefixToMask(c.prefix)) >>> 0 as Ipv4;
}

export function cidrContains(c: Cidr, ip: Ipv4): boolean {
  const mask = prefixToMask(c.prefix);
  return ((ip & mask) >>> 0) === c.network;
}

/** Inclusive range [first, last]. */
export interface Ipv4Range {
  readonly first: Ipv4;
  readonly last: Ipv4;
}

export function rangeContains(r: Ipv4Range, ip: Ipv4): boolean {
  return ip >= r.first && ip <= r.last;
}

export function rangesOverlap(a: Ipv4Range, b: Ipv4Range): boolean {
  return a.first <= b.last && b.first <= a.last;
}

/** A socket address as node reports it on a dual-stack listener ("::ffff:10.0.0.5") in plain IPv4 form. */
export function unmapIpv4(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
