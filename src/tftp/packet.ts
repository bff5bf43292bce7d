/**
 * TFTP packet codec (RFC 1350 §5, options per RFC 2347). Pure: bytes in, a
 * typed packet out, and back. Every length is checked before it is read;
 * decode never throws, it returns a DecodeResult naming what was wrong.
 *
 * Strings on the wire are NUL-terminated bytes; they are decoded as latin1 so
 * every byte survives and the path checks see exactly what was sent.
 */

export const OP_RRQ = 1;
export const OP_WRQ = 2;
export const OP_DATA = 3;
export const OP_ACK = 4;
export const OP_ERROR = 5;
export const OP_OACK = 6;

/** RFC 1350 §5 error codes, and RFC 2347's 8. */
export const ERR_UNDEFINED = 0;
export const ERR_NOT_FOUND = 1;
export const ERR_ACCESS = 2;
export const ERR_DISK_FULL = 3;
export const ERR_ILLEGAL_OP = 4;
export const ERR_UNKNOWN_TID = 5;
export const ERR_EXISTS = 6;
export const ERR_NO_USER = 7;
export const ERR_OPTIONS = 8;

/** The 4-byte DATA header: opcode and block number. */
export const DATA_HEADER_LEN = 4;

export type TransferMode = 'octet' | 'netascii' | 'mail';

/** An option as received: name lowercased (RFC 2347: case-insensitive), value as sent. */
export type TftpOption = readonly [name: string, value: string];

export interface RequestPacket {
  readonly op: typeof OP_RRQ | typeof OP_WRQ;
  readonly filename: string;
  /** Lowercased; anything else than the three RFC 1350 modes is a decode error. */
  readonly mode: TransferMode;
  readonly options: readonly TftpOption[];
}
export interface DataPacket { readonly op: typeof OP_DATA; readonly block: number; readonly data: Buffer }
export interface AckPacket { readonly op: typeof OP_ACK; readonly block: number }
export interface ErrorPacket { readonly op: typeof OP_ERROR; readonly code: number; readonly message: string }
export interface OackPacket { readonly op: typeof OP_OACK; readonly options: readonly TftpOption[] }

export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export type DecodeResult = { ok: true; packet: TftpPacket } | { ok: false; reason: string };

const MODES: readonly TransferMode[] = ['octet', 'netascii', 'mail'];

/** NUL-terminated strings starting at `from`; undefined when the last one has no terminator. */
function cStrings(buf: Buffer, from: number): string[] | undefined {
  const out: string[] = [];
  let i = from;
  while (i < buf.length) {
    const nul = buf.indexOf(0, i);
    if (nul < 0) return undefined;
    out.push(buf.toString('latin1', i, nul));
    i = nul + 1;
  }
  return out;
}

export function decodePacket(buf: Buffer): DecodeResult {
  if (buf.length < 2) return { ok: false, reason: `too short (${buf.length} bytes)` };
  const op = buf.readUInt16BE(0);
  switch (op) {
    case OP_RRQ:
    case OP_WRQ: {
      const strs = cStrings(buf, 2);
      if (!strs) return { ok: false, reason: 'request string without NUL terminator' };
      if (strs.length < 2) return { ok: false, reason: 'request without filename and mode' };
      const [filename, rawMode, ...rest] = strs as [string, string, ...string[]];
      const mode = rawMode.toLowerCase() as TransferMode;
      if (!MODES.includes(mode)) return { ok: false, reason: `unknown mode ${JSON.stringify(rawMode.slice(0, 20))}` };
      const options: TftpOption[] = [];
      // A trailing name without a value is ignored (some clients pad with an extra NUL).
      for (let i = 0; i + 1 < rest.length; i += 2) {
        const name = rest[i]!.toLowerCase();
        if (name === '') continue;
        options.push([name, rest[i + 1]!]);
      }
      return { ok: true, packet: { op, filename, mode, options } };
    }
    case OP_DATA:
      if (buf.length < DATA_HEADER_LEN) return { ok: false, reason: 'DATA shorter than its header' };
      return { ok: true, packet: { op, block: buf.readUInt16BE(2), data: buf.subarray(DATA_HEADER_LEN) } };
    case OP_ACK:
      if (buf.length < 4) return { ok: false, reason: 'ACK shorter than 4 bytes' };
      // Extra bytes after an ACK are tolerated: some PXE ROMs pad frames.
      return { ok: true, packet: { op, block: buf.readUInt16BE(2) } };
    case OP_ERROR: {
      if (buf.length < 4) return { ok: false, reason: 'ERROR shorter than 4 bytes' };
      const nul = buf.indexOf(0, 4);
      // A missing terminator is tolerated on errors: the message is only logged.
      const message = buf.toString('latin1', 4, nul < 0 ? buf.length : nul).slice(0, 200);
      return { ok: true, packet: { op, code: buf.readUInt16BE(2), message } };
    }
    case OP_OACK: {
      const strs = cStrings(buf, 2);
      if (!strs || strs.length % 2 !== 0) return { ok: false, reason: 'OACK options are not NUL-terminated pairs' };
      const options: TftpOption[] = [];
      for (let i = 0; i < strs.length; i += 2) options.push([strs[i]!.toLowerCase(), strs[i + 1]!]);
      return { ok: true, packet: { op, options } };
    }
    default:
      return { ok: false, reason: `unknown opcode ${op}` };
  }
}

// ---------------------------------------------------------------- encoders

function strings(op: number, parts: readonly string[]): Buffer {
  let len = 2;
  for (const p of parts) len += Buffer.byteLength(p, 'latin1') + 1;
  const buf = Buffer.alloc(len);
  buf.writeUInt16BE(op, 0);
  let i = 2;
  for (const p of parts) {
    i += buf.write(p, i, 'latin1');
    buf[i++] = 0;
  }
  return buf;
}

export function encodeRequest(p: Omit<RequestPacket, 'options'> & { options?: readonly TftpOption[] }): Buffer {
  return strings(p.op, [p.filename, p.mode, ...(p.options ?? []).flat()]);
}

export function encodeOack(options: readonly TftpOption[]): Buffer {
  return strings(OP_OACK, options.flat());
}

export function encodeAck(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(OP_ACK, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

export function encodeError(code: number, message: string): Buffer {
  const len = Buffer.byteLength(message, 'latin1');
  const buf = Buffer.alloc(4 + len + 1);
  buf.writeUInt16BE(OP_ERROR, 0);
  buf.writeUInt16BE(code & 0xffff, 2);
  buf.write(message, 4, 'latin1');
  return buf;
}

export function encodeData(block: number, data: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(DATA_HEADER_LEN + data.length);
  writeDataHeader(buf, 0, block);
  data.copy(buf, DATA_HEADER_LEN);
  return buf;
}

/** Writes a DATA header in place (the server reads file blocks right behind it). */
export function writeDataHeader(buf: Buffer, at: number, block: number): void {
  buf.writeUInt16BE(OP_DATA, at);
  buf.writeUInt16BE(block & 0xffff, at + 2);
}
