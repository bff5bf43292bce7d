/**
 * DHCPv4 message codec (RFC 2131 §2, options per RFC 2132, long options and
 * overload per RFC 3396 and RFC 2132 §9.3). Pure: bytes in, a typed packet out,
 * and back. Every length is checked before it is read; decode never throws,
 * it returns a DecodeResult naming what was wrong.
 */
import { ipv4FromBytes, type Ipv4, IPV4_ZERO } from '../net/ipv4.js';
import { Opt, type DhcpOptions } from './options.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** RFC 2131 §3: 99.130.83.99 */
export const MAGIC_COOKIE = 0x63825363;
/** RFC 2131 §2: the fixed header is 236 bytes, then the 4-byte cookie. */
export const HEADER_LEN = 236;
const OPTIONS_OFFSET = HEADER_LEN + 4;
const SNAME_OFFSET = 44;
const SNAME_LEN = 64;
const FILE_OFFSET = 108;
const FILE_LEN = 128;
/** RFC 1542 §3.3 / BOOTP: some relays and old ROMs drop replies shorter than 300 bytes. */
const MIN_MESSAGE_LEN = 300;
/** RFC 2131 §4.1 flags: the broadcast bit. */
export const FLAG_BROADCAST = 0x8000;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: Ipv4;
  yiaddr: Ipv4;
  siaddr: Ipv4;
  giaddr: Ipv4;
  /** 16 bytes, as on the wire; the hardware address is the first hlen bytes. */
  chaddr: Buffer;
  /** Server host name (when not overloaded with options). */
  sname: string;
  /** Boot file name (when not overloaded with options). */
  file: string;
  options: DhcpOptions;
}

export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; reason: string };

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.subarray(0, nul < 0 ? buf.length : nul).toString('latin1');
}

/**
 * Reads an options area into `into`, concatenating repeated codes (RFC 3396 §7).
 * `requireEnd`: the main options field may omit End only when it is exactly
 * used up; a truncated option is always an error.
 */
function readOptions(area: Buffer, into: DhcpOptions, where: string): string | undefined {
  let i = 0;
  while (i < area.length) {
    const code = area[i]!;
    if (code === Opt.Pad) { i++; continue; }
    if (code === Opt.End) return undefined;
    if (i + 1 >= area.length) return `${where}: option ${code} has no length byte`;
    const len = area[i + 1]!;
    if (i + 2 + len > area.length) return `${where}: option ${code} length ${len} runs past the end`;
    // Values alias the received datagram (node gives each message its own
    // memory); only repeated codes are copied, to concatenate them.
    const val = area.subarray(i + 2, i + 2 + len);
    const prev = into.get(code);
    into.set(code, prev ? Buffer.concat([prev, val]) : val);
    i += 2 + len;
  }
  return undefined;
}

export function decodePacket(buf: Buffer): DecodeResult {
  if (buf.length < OPTIONS_OFFSET) return { ok: false, reason: `too short (${buf.length} bytes)` };
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) return { ok: false, reason: `bad op ${op}` };
  const hlen = buf[2]!;
  if (hlen > 16) return { ok: false, reason: `hlen ${hlen} > 16` };
  if (buf.readUInt32BE(HEADER_LEN) !== MAGIC_COOKIE) return { ok: false, reason: 'no DHCP magic cookie' };

  const options: DhcpOptions = new Map();
  const err = readOptions(buf.subarray(OPTIONS_OFFSET), options, 'options');
  if (err) return { ok: false, reason: err };

  let sname = cString(buf.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_LEN));
  let file = cString(buf.subarray(FILE_OFFSET, FILE_OFFSET + FILE_LEN));
  // RFC 2132 §9.3, RFC 3396 §7: options continue in file, then sname.
  const overload = options.get(Opt.Overload);
  if (overload) {
    options.delete(Opt.Overload);
    const v = overload.length === 1 ? overload[0]! : 0;
    if (v < 1 || v > 3) return { ok: false, reason: `bad overload value` };
    if (v & 1) {
      const e = readOptions(buf.subarray(FILE_OFFSET, FILE_OFFSET + FILE_LEN), options, 'file');
      if (e) return { ok: false, reason: e };
      file = '';
    }
    if (v & 2) {
      const e = readOptions(buf.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_LEN), options, 'sname');
      if (e) return { ok: false, reason: e };
      sname = '';
    }
  }
  return {
    ok: true,
    packet: {
      op,
      htype: buf[1]!,
      hlen,
      hops: buf[3]!,
      xid: buf.readUInt32BE(4),
      secs: buf.readUInt16BE(8),
      flags: buf.readUInt16BE(10),
      ciaddr: ipv4FromBytes(buf, 12),
      yiaddr: ipv4FromBytes(buf, 16),
      siaddr: ipv4FromBytes(buf, 20),
      giaddr: ipv4FromBytes(buf, 24),
      chaddr: Buffer.from(buf.subarray(28, 44)),
      sname,
      file,
      options,
    },
  };
}

/**
 * Encodes a packet. Options come out with 53 (message type) first, then in
 * map order; values over 255 bytes are split into consecutive instances of the
 * same code (RFC 3396 §6). sname/file longer than their fields are an error:
 * the caller chooses what to send, so that is a programming error, not input.
 */
export function encodePacket(p: DhcpPacket): Buffer {
  const sname = Buffer.from(p.sname, 'latin1');
  const file = Buffer.from(p.file, 'latin1');
  if (sname.length >= SNAME_LEN) throw new RangeError('sname longer than 63 bytes');
  if (file.length >= FILE_LEN) throw new RangeError('file longer than 127 bytes');

  // Size first, then one buffer: this runs for every reply.
  let optLen = 1; // End
  for (const [code, val] of p.options) {
    if (code === Opt.Pad || code === Opt.End) continue;
    optLen += val.length === 0 ? 2 : val.length + 2 * Math.ceil(val.length / 255);
  }
  const buf = Buffer.alloc(Math.max(OPTIONS_OFFSET + optLen, MIN_MESSAGE_LEN));
  let o = OPTIONS_OFFSET;
  const emit = (code: number, val: Buffer) => {
    if (val.length === 0) { buf[o++] = code; buf[o++] = 0; return; }
    for (let i = 0; i < val.length; i += 255) {
      const n = Math.min(255, val.length - i);
      buf[o++] = code;
      buf[o++] = n;
      o += val.copy(buf, o, i, i + n);
    }
  };
  const mt = p.options.get(Opt.MessageType);
  if (mt) emit(Opt.MessageType, mt);
  for (const [code, val] of p.options) {
    if (code === Opt.MessageType || code === Opt.Pad || code === Opt.End) continue;
    emit(code, val);
  }
  buf[o] = Opt.End;

  buf[0] = p.op;
  buf[1] = p.htype;
  buf[2] = p.hlen;
  buf[3] = p.hops;
  buf.writeUInt32BE(p.xid >>> 0, 4);
  buf.writeUInt16BE(p.secs, 8);
  buf.writeUInt16BE(p.flags, 10);
  buf.writeUInt32BE(p.ciaddr, 12);
  buf.writeUInt32BE(p.yiaddr, 16);
  buf.writeUInt32BE(p.siaddr, 20);
  buf.writeUInt32BE(p.giaddr, 24);
  p.chaddr.copy(buf, 28, 0, Math.min(16, p.chaddr.length));
  sname.copy(buf, SNAME_OFFSET);
  file.copy(buf, FILE_OFFSET);
  buf.writeUInt32BE(MAGIC_COOKIE, HEADER_LEN);
  return buf;
}

/** A reply skeleton for a request: same xid, flags, giaddr, chaddr (RFC 2131 §4.3.1 table 3). */
export function replyTo(req: DhcpPacket): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: IPV4_ZERO,
    yiaddr: IPV4_ZERO,
    siaddr: IPV4_ZERO,
    giaddr: req.giaddr,
    chaddr: Buffer.from(req.chaddr),
    sname: '',
    file: '',
    options: new Map(),
  };
}
