/**
 * Who is asking: turns a decoded request into a ClientInfo (pure).
 * RFC 4578 (options 93, 94, 97), RFC 3004 (user class), RFC 3046 (relay
 * agent information), PXE 2.1 (vendor class "PXEClient"), UEFI 2.5 HTTP boot
 * (vendor class "HTTPClient"), iPXE's option 175.
 */
import { macFromBytes, type Mac } from '../net/mac.js';
import { IPV4_ZERO, type Ipv4 } from '../net/ipv4.js';
import type { DhcpPacket } from './packet.js';
import {
  Opt, getIpv4, getParamRequestList, getText, getUint16, getUint8, parseSubOptions, type MessageType,
} from './options.js';

/** What the firmware runs, as far as the boot file choice cares. */
export type ClientArch =
  | 'bios'
  | 'efi-ia32'
  | 'efi-x64'
  | 'efi-arm32'
  | 'efi-arm64'
  | 'http-x64'
  | 'http-arm64'
  | 'http-ia32'
  | 'http-arm32'
  | 'efi-riscv64'
  | 'http-riscv64'
  | 'efi-loong64'
  | 'http-loong64'
  | 'unknown';

/** RFC 4578 §2.1 and the IANA "Processor Architecture Types" registry. */
export function archFromCode(code: number | undefined): ClientArch {
  switch (code) {
    case 0: return 'bios';
    case 6: return 'efi-ia32';
    case 7: // EFI BC: in practice x64 firmware
    case 9: return 'efi-x64';
    case 10: return 'efi-arm32';
    case 11: return 'efi-arm64';
    case 15: return 'http-ia32';
    case 16: return 'http-x64';
    case 18: return 'http-arm32';
    case 19: return 'http-arm64';
    case 27: return 'efi-riscv64';
    case 28: return 'http-riscv64';
    case 39: return 'efi-loong64';
    case 40: return 'http-loong64';
    default: return 'unknown';
  }
}

export interface RelayInfo {
  /** RFC 3046 sub-option 1, hex. */
  readonly circuitId?: string;
  /** RFC 3046 sub-option 2, hex. */
  readonly remoteId?: string;
}

export interface ClientInfo {
  /** Only for Ethernet (htype 1, hlen 6); other hardware gets no lease. */
  readonly mac?: Mac;
  readonly messageType?: MessageType;
  readonly xid: number;
  readonly arch: ClientArch;
  readonly archCode?: number;
  /** Vendor class starts with "PXEClient" (PXE 2.1). */
  readonly isPxe: boolean;
  /** Vendor class starts with "HTTPClient" (UEFI HTTP boot). */
  readonly isHttpClient: boolean;
  /** Running iPXE already (user class "iPXE" or option 175 present). */
  readonly isIpxe: boolean;
  /** iPXE feature sub-options from option 175 (e.g. 19 = HTTP, 17 = iSCSI). */
  readonly ipxeFeatures: ReadonlySet<number>;
  readonly vendorClass?: string;
  readonly userClasses: readonly string[];
  /** Option 97 as a lower-case UUID string; absent when missing, empty or malformed. */
  readonly uuid?: string;
  /** Option 97 was present (even as the 0-length value some ROMs send). */
  readonly sentUuidOption: boolean;
  readonly hostname?: string;
  /** Option 61, hex. */
  readonly clientId?: string;
  readonly requestedIp?: Ipv4;
  readonly serverId?: Ipv4;
  readonly ciaddr: Ipv4;
  readonly giaddr: Ipv4;
  readonly relayed: boolean;
  readonly relayInfo?: RelayInfo;
  readonly paramRequestList: readonly number[];
  readonly broadcastFlag: boolean;
}

/**
 * RFC 3004 user class: a list of (len, data) items. iPXE sends the bare
 * string "iPXE" instead, so when the items do not parse, the whole value is
 * one class.
 */
export function parseUserClasses(v: Buffer | undefined): string[] {
  if (!v || v.length === 0) return [];
  const items: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) return [v.toString('latin1')];
    items.push(v.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return items;
}

/** RFC 4578 §2.5: type 0 followed by 16 bytes; UUID fields in the usual 8-4-4-4-12 text form. */
export function parseUuidOption(v: Buffer | undefined): string | undefined {
  if (!v || v.length !== 17 || v[0] !== 0) return undefined;
  const h = v.subarray(1).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function classify(p: DhcpPacket): ClientInfo {
  const o = p.options;
  const vendorClass = getText(o, Opt.VendorClass);
  // Option 93 is a list of uint16 (RFC 4578 §2.1); the first is the one booting.
  const archRaw = o.get(Opt.ClientArch);
  const archCode = archRaw && archRaw.length >= 2 && archRaw.length % 2 === 0 ? archRaw.readUInt16BE(0) : undefined;
  const userClasses = parseUserClasses(o.get(Opt.UserClass));
  const ipxeOpt = o.get(Opt.Ipxe);
  const ipxeSubs = ipxeOpt ? parseSubOptions(ipxeOpt) : undefined;
  const relayRaw = o.get(Opt.RelayAgentInfo);
  const relaySubs = relayRaw ? parseSubOptions(relayRaw) : undefined;
  const clientIdRaw = o.get(Opt.ClientId);
  const uuidRaw = o.get(Opt.ClientUuid);
  const mt = getUint8(o, Opt.MessageType);
  const relayInfo: RelayInfo | undefined = relaySubs
    ? { circuitId: relaySubs.get(1)?.toString('hex'), remoteId: relaySubs.get(2)?.toString('hex') }
    : undefined;
  return {
    mac: p.htype === 1 && p.hlen === 6 ? macFromBytes(p.chaddr.subarray(0, 6)) : undefined,
    messageType: mt as MessageType | undefined,
    xid: p.xid,
    arch: archFromCode(archCode),
    archCode,
    isPxe: vendorClass?.startsWith('PXEClient') ?? false,
    isHttpClient: vendorClass?.startsWith('HTTPClient') ?? false,
    isIpxe: userClasses.includes('iPXE') || ipxeOpt !== undefined,
    ipxeFeatures: new Set(ipxeSubs ? ipxeSubs.keys() : []),
    vendorClass,
    userClasses,
    uuid: parseUuidOption(uuidRaw),
    sentUuidOption: uuidRaw !== undefined,
    hostname: getText(o, Opt.Hostname, 63),
    clientId: clientIdRaw && clientIdRaw.length > 0 ? clientIdRaw.toString('hex') : undefined,
    requestedIp: getIpv4(o, Opt.RequestedIp),
    serverId: getIpv4(o, Opt.ServerId),
    ciaddr: p.ciaddr,
    giaddr: p.giaddr,
    relayed: p.giaddr !== IPV4_ZERO,
    relayInfo,
    paramRequestList: getParamRequestList(o),
    broadcastFlag: (p.flags & 0x8000) !== 0,
  };
}

/** Maximum reply size the client accepts (option 57, RFC 2132 §9.10), at least 576. */
export function maxMessageSize(p: DhcpPacket): number {
  const v = getUint16(p.options, Opt.MaxMessageSize);
  return v !== undefined && v >= 576 ? v : 576;
}
