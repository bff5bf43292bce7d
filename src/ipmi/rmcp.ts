/**
 * RMCP, ASF presence ping/pong and the IPMI session wrappers (IPMI v2.0 rev 1.1
 * §13.1–13.6, §13.27–13.28; ASF 2.0 §3.2.4). Pure: bytes in, typed values out.
 * Every length is checked before it is read; decoders never throw, they return
 * a Decoded<T> with a code and a reason. Cryptography is not here: the v2.0
 * wrapper takes the integrity function and the AuthCode length from rakp.ts.
 *
 * Multi-byte session fields (session id, sequence, payload length) are
 * little-endian (§13.6, "LS-byte first"); ASF fields are big-endian.
 */
import { createHash } from 'node:crypto';

export type DecodeErrorCode = 'truncated' | 'malformed' | 'unsupported' | 'checksum' | 'integrity';
export type Decoded<T> = { ok: true; value: T } | { ok: false; code: DecodeErrorCode; reason: string };

export function fail<T>(code: DecodeErrorCode, reason: string): Decoded<T> {
  return { ok: false, code, reason };
}

// ---------------------------------------------------------------- RMCP (§13.1.3, table 13-1)

export const RMCP_VERSION = 0x06;
/** "No RMCP ACK" sequence number: IPMI messages never use RMCP ACKs (§13.1.3). */
export const RMCP_SEQ_NO_ACK = 0xff;
export const RMCP_CLASS_ASF = 0x06;
export const RMCP_CLASS_IPMI = 0x07;
export const RMCP_HEADER_LEN = 4;
export const IPMI_PORT = 623;

export interface RmcpHeader {
  readonly version: number;
  readonly sequence: number;
  /** Low 5 bits of the class byte. */
  readonly messageClass: number;
  /** Bit 7 of the class byte: this is an RMCP ACK. */
  readonly ack: boolean;
}

export function encodeRmcpHeader(messageClass: number, sequence = RMCP_SEQ_NO_ACK): Buffer {
  return Buffer.from([RMCP_VERSION, 0x00, sequence & 0xff, messageClass & 0x1f]);
}

export function decodeRmcp(buf: Buffer): Decoded<{ header: RmcpHeader; body: Buffer }> {
  if (buf.length < RMCP_HEADER_LEN) return fail('truncated', `RMCP header needs ${RMCP_HEADER_LEN} bytes, got ${buf.length}`);
  const version = buf[0]!;
  if (version !== RMCP_VERSION) return fail('unsupported', `RMCP version 0x${version.toString(16)} (want 0x06)`);
  const cls = buf[3]!;
  return {
    ok: true,
    value: {
      header: { version, sequence: buf[2]!, messageClass: cls & 0x1f, ack: (cls & 0x80) !== 0 },
      body: buf.subarray(RMCP_HEADER_LEN),
    },
  };
}

// ---------------------------------------------------------------- ASF ping/pong (§13.2.3–13.2.4, ASF 2.0 §3.2.4.1)

export const ASF_IANA = 4542; // 0x000011BE
export const ASF_TYPE_PING = 0x80;
export const ASF_TYPE_PONG = 0x40;

export interface AsfPong {
  readonly tag: number;
  /** IANA enterprise number of the responder's OEM (4542 when none). */
  readonly iana: number;
  readonly oem: number;
  /** Supported entities: bit 7 = IPMI supported; low nibble ASF version (1 = ASF 1.0). */
  readonly entities: number;
  readonly interactions: number;
  readonly ipmiSupported: boolean;
}

/** A complete RMCP datagram: RMCP header + ASF Presence Ping with `tag`. */
export function encodeAsfPing(tag: number): Buffer {
  const b = Buffer.alloc(RMCP_HEADER_LEN + 8);
  encodeRmcpHeader(RMCP_CLASS_ASF).copy(b, 0);
  b.writeUInt32BE(ASF_IANA, 4);
  b[8] = ASF_TYPE_PING;
  b[9] = tag & 0xff;
  b[10] = 0;
  b[11] = 0; // data length
  return b;
}

/** A complete RMCP datagram: RMCP header + ASF Presence Pong (16 bytes of data). */
export function encodeAsfPong(p: { tag: number; iana?: number; oem?: number; entities?: number; interactions?: number }): Buffer {
  const b = Buffer.alloc(RMCP_HEADER_LEN + 8 + 16);
  encodeRmcpHeader(RMCP_CLASS_ASF).copy(b, 0);
  b.writeUInt32BE(ASF_IANA, 4);
  b[8] = ASF_TYPE_PONG;
  b[9] = p.tag & 0xff;
  b[11] = 16;
  b.writeUInt32BE(p.iana ?? ASF_IANA, 12);
  b.writeUInt32BE(p.oem ?? 0, 16);
  b[20] = p.entities ?? 0x81;
  b[21] = p.interactions ?? 0x00;
  return b;
}

export type AsfMessage = { type: 'ping'; tag: number } | ({ type: 'pong' } & AsfPong);

/** Decodes a whole RMCP datagram carrying an ASF message. */
export function decodeAsf(buf: Buffer): Decoded<AsfMessage> {
  const r = decodeRmcp(buf);
  if (!r.ok) return r;
  if (r.value.header.messageClass !== RMCP_CLASS_ASF) return fail('malformed', `RMCP class ${r.value.header.messageClass} is not ASF`);
  const body = r.value.body;
  if (body.length < 8) return fail('truncated', `ASF header needs 8 bytes, got ${body.length}`);
  const iana = body.readUInt32BE(0);
  if (iana !== ASF_IANA) return fail('unsupported', `ASF IANA ${iana} (want ${ASF_IANA})`);
  const type = body[4]!;
  const tag = body[5]!;
  const len = body[7]!;
  if (body.length < 8 + len) return fail('truncated', `ASF data length ${len} exceeds the ${body.length - 8} bytes present`);
  if (type === ASF_TYPE_PING) return { ok: true, value: { type: 'ping', tag } };
  if (type === ASF_TYPE_PONG) {
    if (len < 16) return fail('truncated', `ASF pong data needs 16 bytes, got ${len}`);
    const entities = body[16]!;
    return {
      ok: true,
      value: {
        type: 'pong', tag,
        iana: body.readUInt32BE(8), oem: body.readUInt32BE(12),
        entities, interactions: body[17]!, ipmiSupported: (entities & 0x80) !== 0,
      },
    };
  }
  return fail('unsupported', `ASF message type 0x${type.toString(16)}`);
}

// ---------------------------------------------------------------- IPMI 1.5 session (§13.6, table 13-8; §22.17.1)

export const AUTH_NONE = 0x00;
export const AUTH_MD2 = 0x01;
export const AUTH_MD5 = 0x02;
export const AUTH_PASSWORD = 0x04;
export const AUTH_OEM = 0x05;
/** Auth type / format byte that announces an IPMI v2.0/RMCP+ session header. */
export const AUTH_RMCPP = 0x06;

const LEGACY_PAD_LENGTHS: ReadonlySet<number> = new Set([56, 84, 112, 128, 156]);

export interface SessionV15 {
  readonly authType: number;
  readonly sequence: number;
  readonly sessionId: number;
  /** 16 bytes when authType is not NONE; absent otherwise. */
  readonly authCode?: Buffer;
  readonly message: Buffer;
}

/** A complete RMCP datagram with an IPMI 1.5 session header around `message`. */
export function encodeSessionV15(s: SessionV15): Buffer {
  if (s.message.length > 255) throw new RangeError(`IPMI 1.5 message of ${s.message.length} bytes exceeds 255`);
  const hasCode = s.authType !== AUTH_NONE;
  if (hasCode && (!s.authCode || s.authCode.length !== 16)) throw new RangeError('IPMI 1.5 AuthCode must be 16 bytes');
  const head = Buffer.alloc(1 + 4 + 4 + (hasCode ? 16 : 0) + 1);
  head[0] = s.authType;
  head.writeUInt32LE(s.sequence >>> 0, 1);
  head.writeUInt32LE(s.sessionId >>> 0, 5);
  if (hasCode) s.authCode!.copy(head, 9);
  head[head.length - 1] = s.message.length;
  const out = Buffer.concat([encodeRmcpHeader(RMCP_CLASS_IPMI), head, s.message]);
  // Table 13-8 footnote ("legacy PAD"): some older NICs need one extra 0x00 byte when the whole
  // IPMI 1.5 datagram would be 56, 84, 112, 128 or 156 bytes long (ipmitool and ipmiutil do the same).
  return LEGACY_PAD_LENGTHS.has(out.length) ? Buffer.concat([out, Buffer.alloc(1)]) : out;
}

/** Decodes the session part (after the RMCP header) of an IPMI 1.5 packet. */
export function decodeSessionV15(body: Buffer): Decoded<SessionV15> {
  if (body.length < 1) return fail('truncated', 'empty IPMI session header');
  const authType = body[0]! & 0x0f;
  if (authType === AUTH_RMCPP) return fail('malformed', 'IPMI v2.0 session header, not 1.5');
  const hasCode = authType !== AUTH_NONE;
  const hdr = 1 + 4 + 4 + (hasCode ? 16 : 0) + 1;
  if (body.length < hdr) return fail('truncated', `IPMI 1.5 session header needs ${hdr} bytes, got ${body.length}`);
  const len = body[hdr - 1]!;
  if (body.length < hdr + len) return fail('truncated', `IPMI 1.5 message length ${len} exceeds the ${body.length - hdr} bytes present`);
  const base = {
    authType,
    sequence: body.readUInt32LE(1),
    sessionId: body.readUInt32LE(5),
    message: Buffer.from(body.subarray(hdr, hdr + len)),
  };
  return { ok: true, value: hasCode ? { ...base, authCode: Buffer.from(body.subarray(9, 25)) } : base };
}

/**
 * IPMI 1.5 MD5 AuthCode (§22.17.1, "multi-session" form):
 * MD5(password | session id | message | session sequence | password), password NUL-padded to 16 bytes,
 * session id and sequence in wire (little-endian) order.
 */
export function md5AuthCode(password: Buffer, sessionId: number, message: Buffer, sequence: number): Buffer {
  const pw = Buffer.alloc(16);
  password.copy(pw, 0, 0, Math.min(16, password.length));
  const sid = Buffer.alloc(4);
  sid.writeUInt32LE(sessionId >>> 0);
  const seq = Buffer.alloc(4);
  seq.writeUInt32LE(sequence >>> 0);
  return createHash('md5').update(pw).update(sid).update(message).update(seq).update(pw).digest();
}

// ---------------------------------------------------------------- IPMI 2.0 / RMCP+ session (§13.6 table 13-8, §13.27.3, §13.28.4)

export const PAYLOAD_IPMI = 0x00;
export const PAYLOAD_SOL = 0x01;
export const PAYLOAD_OEM = 0x02;
export const PAYLOAD_OPEN_SESSION_REQUEST = 0x10;
export const PAYLOAD_OPEN_SESSION_RESPONSE = 0x11;
export const PAYLOAD_RAKP1 = 0x12;
export const PAYLOAD_RAKP2 = 0x13;
export const PAYLOAD_RAKP3 = 0x14;
export const PAYLOAD_RAKP4 = 0x15;
/** Next Header byte of the session trailer (§13.28.4: "reserved, 07h"). */
export const NEXT_HEADER = 0x07;

export interface SessionV2 {
  /** Bits 5:0 of the payload type byte. OEM explicit payloads (type 2) are not supported. */
  readonly payloadType: number;
  /** Bit 7: payload is encrypted (the payload bytes include the confidentiality header/trailer). */
  readonly encrypted: boolean;
  /** Bit 6: packet carries an integrity trailer and AuthCode. */
  readonly authenticated: boolean;
  /** The receiver's session id (0 before activation). */
  readonly sessionId: number;
  readonly sequence: number;
  /** Payload as on the wire (ciphertext with IV when encrypted). */
  readonly payload: Buffer;
}

export interface DecodedSessionV2 extends SessionV2 {
  /** Received AuthCode (empty when not authenticated). */
  readonly authCode: Buffer;
  /** Bytes covered by the AuthCode: auth type through Next Header (§13.28.4). Empty when not authenticated. */
  readonly integrityData: Buffer;
}

const V2_HEADER_LEN = 1 + 1 + 4 + 4 + 2;

/**
 * A complete RMCP datagram with an RMCP+ session header. When `authenticated`, `integrity` receives the
 * bytes from the auth type byte through Next Header and returns the (already truncated) AuthCode.
 */
export function encodeSessionV2(s: SessionV2, integrity?: (data: Buffer) => Buffer): Buffer {
  if ((s.payloadType & 0x3f) === PAYLOAD_OEM) throw new RangeError('OEM explicit payloads are not supported');
  if (s.payload.length > 0xffff) throw new RangeError(`payload of ${s.payload.length} bytes exceeds 65535`);
  if (s.authenticated && !integrity) throw new RangeError('authenticated packet needs an integrity function');
  const head = Buffer.alloc(V2_HEADER_LEN);
  head[0] = AUTH_RMCPP;
  head[1] = (s.payloadType & 0x3f) | (s.encrypted ? 0x80 : 0) | (s.authenticated ? 0x40 : 0);
  head.writeUInt32LE(s.sessionId >>> 0, 2);
  head.writeUInt32LE(s.sequence >>> 0, 6);
  head.writeUInt16LE(s.payload.length, 10);
  if (!s.authenticated) return Buffer.concat([encodeRmcpHeader(RMCP_CLASS_IPMI), head, s.payload]);
  // Integrity PAD: 0xFF bytes so that auth type..next header is a multiple of 4 (§13.28.4).
  const covered = V2_HEADER_LEN + s.payload.length + 2;
  const padLen = (4 - (covered % 4)) % 4;
  const trailer = Buffer.alloc(padLen + 2, 0xff);
  trailer[padLen] = padLen;
  trailer[padLen + 1] = NEXT_HEADER;
  const data = Buffer.concat([head, s.payload, trailer]);
  return Buffer.concat([encodeRmcpHeader(RMCP_CLASS_IPMI), data, integrity!(data)]);
}

/**
 * Decodes the session part (after the RMCP header) of an RMCP+ packet. `authCodeLength` is the AuthCode
 * size of the negotiated integrity algorithm (12 for HMAC-SHA1-96, 16 for HMAC-SHA256-128, 0 for none);
 * it is only used when the authenticated bit is set. The AuthCode is not verified here.
 */
export function decodeSessionV2(body: Buffer, authCodeLength: number): Decoded<DecodedSessionV2> {
  if (body.length < 2) return fail('truncated', `RMCP+ session header needs ${V2_HEADER_LEN} bytes, got ${body.length}`);
  if ((body[0]! & 0x0f) !== AUTH_RMCPP) return fail('malformed', `auth type 0x${body[0]!.toString(16)} is not RMCP+`);
  const pt = body[1]!;
  const payloadType = pt & 0x3f;
  if (payloadType === PAYLOAD_OEM) return fail('unsupported', 'OEM explicit payload');
  if (body.length < V2_HEADER_LEN) return fail('truncated', `RMCP+ session header needs ${V2_HEADER_LEN} bytes, got ${body.length}`);
  const len = body.readUInt16LE(10);
  const end = V2_HEADER_LEN + len;
  if (body.length < end) return fail('truncated', `payload length ${len} exceeds the ${body.length - V2_HEADER_LEN} bytes present`);
  const encrypted = (pt & 0x80) !== 0;
  const authenticated = (pt & 0x40) !== 0;
  const base = {
    payloadType, encrypted, authenticated,
    sessionId: body.readUInt32LE(2),
    sequence: body.readUInt32LE(6),
    payload: Buffer.from(body.subarray(V2_HEADER_LEN, end)),
  };
  if (!authenticated) return { ok: true, value: { ...base, authCode: Buffer.alloc(0), integrityData: Buffer.alloc(0) } };
  const total = body.length;
  if (total < end + 2 + authCodeLength) return fail('truncated', 'integrity trailer missing or short');
  const nhAt = total - authCodeLength - 1;
  if (body[nhAt] !== NEXT_HEADER) return fail('malformed', `next header 0x${body[nhAt]!.toString(16)} (want 0x07)`);
  const padLen = body[nhAt - 1]!;
  if (padLen > 3) return fail('malformed', `integrity pad length ${padLen} exceeds 3`);
  if (nhAt - 1 - padLen !== end) return fail('malformed', 'integrity pad length does not match the packet size');
  for (let i = end; i < end + padLen; i++) if (body[i] !== 0xff) return fail('malformed', 'integrity pad byte is not 0xFF');
  if ((nhAt + 1) % 4 !== 0) return fail('malformed', 'integrity data is not a multiple of 4 bytes');
  return {
    ok: true,
    value: {
      ...base,
      authCode: Buffer.from(body.subarray(nhAt + 1)),
      integrityData: Buffer.from(body.subarray(0, nhAt + 1)),
    },
  };
}

export type IpmiSession = { version: '1.5'; session: SessionV15 } | { version: '2.0'; session: DecodedSessionV2 };

/** A whole RMCP datagram of class IPMI, either session format (selected by the auth type byte, §13.6). */
export function decodeIpmiPacket(buf: Buffer, authCodeLength: number): Decoded<IpmiSession> {
  const r = decodeRmcp(buf);
  if (!r.ok) return r;
  if (r.value.header.messageClass !== RMCP_CLASS_IPMI) return fail('malformed', `RMCP class ${r.value.header.messageClass} is not IPMI`);
  const body = r.value.body;
  if (body.length < 1) return fail('truncated', 'no IPMI session header');
  if ((body[0]! & 0x0f) === AUTH_RMCPP) {
    const s = decodeSessionV2(body, authCodeLength);
    return s.ok ? { ok: true, value: { version: '2.0', session: s.value } } : s;
  }
  const s = decodeSessionV15(body);
  return s.ok ? { ok: true, value: { version: '1.5', session: s.value } } : s;
}
