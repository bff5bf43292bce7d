/**
 * DHCP option codes (RFC 2132 and the PXE/iPXE extensions) and typed
 * accessors over the raw option map. Accessors never throw: a value of the
 * wrong length reads as absent, because option contents come off the wire.
 */
import { ipv4FromBytes, ipv4ToBytes, type Ipv4 } from '../net/ipv4.js';

export type DhcpOptions = Map<number, Buffer>;

export const Opt = {
  Pad: 0,
  SubnetMask: 1,
  Router: 3,
  DnsServers: 6,
  LogServers: 7,
  Hostname: 12,
  DomainName: 15,
  BroadcastAddress: 28,
  VendorSpecific: 43,
  RequestedIp: 50,
  LeaseTime: 51,
  Overload: 52,
  MessageType: 53,
  ServerId: 54,
  ParamRequestList: 55,
  Message: 56,
  MaxMessageSize: 57,
  RenewalTime: 58,
  RebindingTime: 59,
  VendorClass: 60,
  ClientId: 61,
  TftpServerName: 66,
  BootfileName: 67,
  UserClass: 77,
  RelayAgentInfo: 82,
  ClientArch: 93,
  ClientNdi: 94,
  ClientUuid: 97,
  Ipxe: 175,
  End: 255,
} as const;

/** RFC 2132 §9.6 */
export enum MessageType {
  Discover = 1,
  Offer = 2,
  Request = 3,
  Decline = 4,
  Ack = 5,
  Nak = 6,
  Release = 7,
  Inform = 8,
}

export function messageTypeName(t: number | undefined): string {
  return t !== undefined && MessageType[t] !== undefined ? MessageType[t]!.toLowerCase() : 'unknown';
}

export function getUint8(opts: DhcpOptions, code: number): number | undefined {
  const v = opts.get(code);
  return v && v.length === 1 ? v[0] : undefined;
}

export function getUint16(opts: DhcpOptions, code: number): number | undefined {
  const v = opts.get(code);
  return v && v.length === 2 ? v.readUInt16BE(0) : undefined;
}

export function getUint32(opts: DhcpOptions, code: number): number | undefined {
  const v = opts.get(code);
  return v && v.length === 4 ? v.readUInt32BE(0) : undefined;
}

export function getIpv4(opts: DhcpOptions, code: number): Ipv4 | undefined {
  const v = opts.get(code);
  return v && v.length === 4 ? ipv4FromBytes(v) : undefined;
}

export function getIpv4List(opts: DhcpOptions, code: number): Ipv4[] | undefined {
  const v = opts.get(code);
  if (!v || v.length === 0 || v.length % 4 !== 0) return undefined;
  const out: Ipv4[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(ipv4FromBytes(v, i));
  return out;
}

/** Printable text: NUL-terminated values (common in PXE ROMs) are cut at the NUL; control bytes become '?'. */
export function getText(opts: DhcpOptions, code: number, maxLen = 255): string | undefined {
  const v = opts.get(code);
  if (!v || v.length === 0) return undefined;
  const nul = v.indexOf(0);
  const bytes = v.subarray(0, Math.min(nul < 0 ? v.length : nul, maxLen));
  return bytes.toString('latin1').replace(/[^\x20-\x7e]/g, '?');
}

export function getBytes(opts: DhcpOptions, code: number): Buffer | undefined {
  return opts.get(code);
}

/** Option 55: the codes the client asked for. */
export function getParamRequestList(opts: DhcpOptions): number[] {
  const v = opts.get(Opt.ParamRequestList);
  return v ? [...v] : [];
}

export function setIpv4(opts: DhcpOptions, code: number, ip: Ipv4): void {
  opts.set(code, ipv4ToBytes(ip));
}

export function setIpv4List(opts: DhcpOptions, code: number, ips: readonly Ipv4[]): void {
  opts.set(code, Buffer.concat(ips.map(ipv4ToBytes)));
}

export function setUint8(opts: DhcpOptions, code: number, v: number): void {
  opts.set(code, Buffer.from([v & 0xff]));
}

export function setUint32(opts: DhcpOptions, code: number, v: number): void {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  opts.set(code, b);
}

export function setText(opts: DhcpOptions, code: number, s: string): void {
  opts.set(code, Buffer.from(s, 'latin1'));
}

/**
 * Encapsulated sub-options (option 43, 82, 175): a TLV list without the
 * magic cookie. Returns undefined when a length runs past the end.
 * Pad (0) is skipped and End (255) stops, as PXE ROMs use both in option 43.
 */
export function parseSubOptions(buf: Buffer): Map<number, Buffer> | undefined {
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < buf.length) {
    const code = buf[i]!;
    if (code === 0) { i++; continue; }
    if (code === 255) break;
    if (i + 1 >= buf.length) return undefined;
    const len = buf[i + 1]!;
    if (i + 2 + len > buf.length) return undefined;
    const prev = out.get(code);
    const val = buf.subarray(i + 2, i + 2 + len);
    out.set(code, prev ? Buffer.concat([prev, val]) : Buffer.from(val));
    i += 2 + len;
  }
  return out;
}

/** Encodes sub-options in insertion order; each value must fit in 255 bytes. */
export function encodeSubOptions(subs: Iterable<readonly [number, Buffer]>, withEnd = false): Buffer {
  const parts: Buffer[] = [];
  for (const [code, val] of subs) {
    if (val.length > 255) throw new RangeError(`sub-option ${code} longer than 255 bytes`);
    parts.push(Buffer.from([code, val.length]), val);
  }
  if (withEnd) parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}
