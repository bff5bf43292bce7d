/**
 * RMCP+ session establishment and session crypto (IPMI v2.0 rev 1.1 §13.17–13.32):
 * Open Session Request/Response, RAKP Messages 1–4, SIK/K1/K2 derivation, RAKP AuthCodes,
 * integrity (HMAC-SHA1-96, HMAC-SHA256-128) and AES-CBC-128 confidentiality.
 * Pure except for the random IV, which callers may pass in. Decoders never throw.
 * Secrets (password, SIK, K1, K2) never appear in any error reason.
 *
 * Over 400 lines on purpose: session set-up and session crypto share the key schedule (SIK → K1/K2)
 * and the algorithm tables; split apart, each half would have to export the other's internals.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { PAYLOAD_IPMI, decodeIpmiPacket, encodeSessionV2, fail, type Decoded } from './rmcp.js';

// ---------------------------------------------------------------- algorithms and cipher suites (§13.28, table 22-20)

export const AUTH_ALG_NONE = 0x00;
export const AUTH_ALG_HMAC_SHA1 = 0x01;
export const AUTH_ALG_HMAC_MD5 = 0x02;
export const AUTH_ALG_HMAC_SHA256 = 0x03;
export const INTEGRITY_ALG_NONE = 0x00;
export const INTEGRITY_ALG_HMAC_SHA1_96 = 0x01;
export const INTEGRITY_ALG_HMAC_MD5_128 = 0x02;
export const INTEGRITY_ALG_MD5_128 = 0x03;
export const INTEGRITY_ALG_HMAC_SHA256_128 = 0x04;
export const CONF_ALG_NONE = 0x00;
export const CONF_ALG_AES_CBC_128 = 0x01;

export interface CipherSuite {
  readonly id: number;
  readonly auth: number;
  readonly integrity: number;
  readonly confidentiality: number;
  /** Hash of the RAKP HMACs and of K1/K2 derivation. */
  readonly hash: 'sha1' | 'sha256';
  /** Size of the RAKP 2/3 key exchange AuthCode and of SIK/K1/K2. */
  readonly keyLength: 20 | 32;
  /** RAKP 4 integrity check value length (§13.28.1: 12 for SHA1, 16 for SHA256). */
  readonly icvLength: 12 | 16;
  /** Per-packet AuthCode length (§13.28.4: HMAC-SHA1-96 → 12, HMAC-SHA256-128 → 16). */
  readonly authCodeLength: 12 | 16;
}

export const CIPHER_SUITE_3: CipherSuite = {
  id: 3, auth: AUTH_ALG_HMAC_SHA1, integrity: INTEGRITY_ALG_HMAC_SHA1_96, confidentiality: CONF_ALG_AES_CBC_128,
  hash: 'sha1', keyLength: 20, icvLength: 12, authCodeLength: 12,
};
export const CIPHER_SUITE_17: CipherSuite = {
  id: 17, auth: AUTH_ALG_HMAC_SHA256, integrity: INTEGRITY_ALG_HMAC_SHA256_128, confidentiality: CONF_ALG_AES_CBC_128,
  hash: 'sha256', keyLength: 32, icvLength: 16, authCodeLength: 16,
};
export const CIPHER_SUITES: ReadonlyMap<number, CipherSuite> = new Map([[3, CIPHER_SUITE_3], [17, CIPHER_SUITE_17]]);

// ---------------------------------------------------------------- privilege levels and RAKP status codes (§13.24)

export const PRIV_CALLBACK = 0x01;
export const PRIV_USER = 0x02;
export const PRIV_OPERATOR = 0x03;
export const PRIV_ADMINISTRATOR = 0x04;
export const PRIV_OEM = 0x05;
/** RAKP 1 RoleM bit 4: look the user up by name only (not by name and privilege). */
export const ROLE_NAME_ONLY_LOOKUP = 0x10;

export const RAKP_STATUS: Readonly<Record<number, string>> = {
  0x00: 'no errors',
  0x01: 'insufficient resources to create a session',
  0x02: 'invalid session ID',
  0x03: 'invalid payload type',
  0x04: 'invalid authentication algorithm',
  0x05: 'invalid integrity algorithm',
  0x06: 'no matching authentication payload',
  0x07: 'no matching integrity payload',
  0x08: 'inactive session ID',
  0x09: 'invalid role',
  0x0a: 'unauthorized role or privilege level requested',
  0x0b: 'insufficient resources to create a session at the requested role',
  0x0c: 'invalid name length',
  0x0d: 'unauthorized name',
  0x0e: 'unauthorized GUID',
  0x0f: 'invalid integrity check value',
  0x10: 'invalid confidentiality algorithm',
  0x11: 'no cipher suite match with proposed security algorithms',
  0x12: 'illegal or unrecognized parameter',
};

export function rakpStatusName(code: number): string {
  return RAKP_STATUS[code] ?? `unknown status 0x${code.toString(16).padStart(2, '0')}`;
}

// ---------------------------------------------------------------- Open Session (§13.17, §13.18)

export interface OpenSessionRequest {
  readonly tag: number;
  /** 0 = highest privilege the user/channel allows. */
  readonly maxPrivilege: number;
  readonly consoleSessionId: number;
  readonly auth: number;
  readonly integrity: number;
  readonly confidentiality: number;
}

function algPayload(type: number, alg: number): Buffer {
  // §13.17 table 13-9: payload type, reserved(2), payload length 08h, algorithm (bits 5:0), reserved(3)
  return Buffer.from([type, 0, 0, 0x08, alg & 0x3f, 0, 0, 0]);
}

export function encodeOpenSessionRequest(r: OpenSessionRequest): Buffer {
  const b = Buffer.alloc(8);
  b[0] = r.tag & 0xff;
  b[1] = r.maxPrivilege & 0x0f;
  b.writeUInt32LE(r.consoleSessionId >>> 0, 4);
  return Buffer.concat([b, algPayload(0, r.auth), algPayload(1, r.integrity), algPayload(2, r.confidentiality)]);
}

function readAlgPayloads(b: Buffer, at: number): Decoded<{ auth: number; integrity: number; confidentiality: number }> {
  const algs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const o = at + i * 8;
    if (b[o] !== i) return fail('malformed', `algorithm payload ${i} has type ${b[o]}`);
    if (b[o + 3] !== 0x08) return fail('malformed', `algorithm payload ${i} has length ${b[o + 3]}`);
    algs.push(b[o + 4]! & 0x3f);
  }
  return { ok: true, value: { auth: algs[0]!, integrity: algs[1]!, confidentiality: algs[2]! } };
}

export function decodeOpenSessionRequest(b: Buffer): Decoded<OpenSessionRequest> {
  if (b.length < 32) return fail('truncated', `Open Session Request needs 32 bytes, got ${b.length}`);
  const algs = readAlgPayloads(b, 8);
  if (!algs.ok) return algs;
  return { ok: true, value: { tag: b[0]!, maxPrivilege: b[1]! & 0x0f, consoleSessionId: b.readUInt32LE(4), ...algs.value } };
}

export interface OpenSessionResponse {
  readonly tag: number;
  readonly status: number;
  readonly maxPrivilege: number;
  /** Absent only in the 2-byte error form (tag, status) that ipmi_sim 2.0.33 sends. */
  readonly consoleSessionId?: number;
  /** Present when status is 0. */
  readonly bmcSessionId?: number;
  readonly auth?: number;
  readonly integrity?: number;
  readonly confidentiality?: number;
}

export function encodeOpenSessionResponse(r: OpenSessionResponse): Buffer {
  const b = Buffer.alloc(8);
  b[0] = r.tag & 0xff;
  b[1] = r.status & 0xff;
  b[2] = r.maxPrivilege & 0x0f;
  b.writeUInt32LE((r.consoleSessionId ?? 0) >>> 0, 4);
  if (r.status !== 0) return b;
  const sid = Buffer.alloc(4);
  sid.writeUInt32LE((r.bmcSessionId ?? 0) >>> 0);
  return Buffer.concat([b, sid, algPayload(0, r.auth ?? 0), algPayload(1, r.integrity ?? 0), algPayload(2, r.confidentiality ?? 0)]);
}

/**
 * §13.18: on a non-zero status the BMC may send only the first 8 bytes. ipmi_sim 2.0.33 refusing
 * cipher suite 17 sends just 2 (tag, status 04h): accepted, so the refusal is seen as a refusal.
 */
export function decodeOpenSessionResponse(b: Buffer): Decoded<OpenSessionResponse> {
  if (b.length >= 2 && b[1] !== 0) {
    const head = { tag: b[0]!, status: b[1]!, maxPrivilege: (b[2] ?? 0) & 0x0f };
    return { ok: true, value: b.length >= 8 ? { ...head, consoleSessionId: b.readUInt32LE(4) } : head };
  }
  if (b.length < 8) return fail('truncated', `Open Session Response needs at least 8 bytes, got ${b.length}`);
  const head = { tag: b[0]!, status: b[1]!, maxPrivilege: b[2]! & 0x0f, consoleSessionId: b.readUInt32LE(4) };
  if (b.length < 36) return fail('truncated', `Open Session Response needs 36 bytes, got ${b.length}`);
  const algs = readAlgPayloads(b, 12);
  if (!algs.ok) return algs;
  return { ok: true, value: { ...head, bmcSessionId: b.readUInt32LE(8), ...algs.value } };
}

// ---------------------------------------------------------------- RAKP 1–4 (§13.20–13.23)

export interface Rakp1 {
  readonly tag: number;
  readonly bmcSessionId: number;
  /** Rm: 16 random bytes from the console. */
  readonly consoleRandom: Buffer;
  /** RoleM: requested privilege (bits 3:0) and name-only lookup (bit 4). */
  readonly role: number;
  /** UNameM, 0–16 bytes. */
  readonly username: Buffer;
}

export function encodeRakp1(m: Rakp1): Buffer {
  if (m.consoleRandom.length !== 16) throw new RangeError('Rm must be 16 bytes');
  if (m.username.length > 16) throw new RangeError('user name longer than 16 bytes');
  const b = Buffer.alloc(28 + m.username.length);
  b[0] = m.tag & 0xff;
  b.writeUInt32LE(m.bmcSessionId >>> 0, 4);
  m.consoleRandom.copy(b, 8);
  b[24] = m.role & 0xff;
  b[27] = m.username.length;
  m.username.copy(b, 28);
  return b;
}

export function decodeRakp1(b: Buffer): Decoded<Rakp1> {
  if (b.length < 28) return fail('truncated', `RAKP 1 needs 28 bytes, got ${b.length}`);
  const ulen = b[27]!;
  if (ulen > 16) return fail('malformed', `user name length ${ulen} exceeds 16`);
  if (b.length < 28 + ulen) return fail('truncated', `user name length ${ulen} exceeds the bytes present`);
  return {
    ok: true,
    value: {
      tag: b[0]!, bmcSessionId: b.readUInt32LE(4), consoleRandom: Buffer.from(b.subarray(8, 24)),
      role: b[24]!, username: Buffer.from(b.subarray(28, 28 + ulen)),
    },
  };
}

export interface Rakp2 {
  readonly tag: number;
  readonly status: number;
  /** 0 in the 2-byte error form (tag, status). */
  readonly consoleSessionId: number;
  /** Rc: 16 random bytes from the BMC (present when status is 0). */
  readonly bmcRandom: Buffer;
  /** GUIDc, 16 bytes. */
  readonly bmcGuid: Buffer;
  /** Key exchange AuthCode (keyLength bytes; empty for RAKP-none). */
  readonly authCode: Buffer;
}

export function encodeRakp2(m: Rakp2): Buffer {
  const b = Buffer.alloc(8);
  b[0] = m.tag & 0xff;
  b[1] = m.status & 0xff;
  b.writeUInt32LE(m.consoleSessionId >>> 0, 4);
  if (m.status !== 0) return b;
  return Buffer.concat([b, m.bmcRandom, m.bmcGuid, m.authCode]);
}

/** `authCodeLength` from the negotiated suite (20 or 32); on a non-zero status only 8 bytes are needed. */
export function decodeRakp2(b: Buffer, authCodeLength: number): Decoded<Rakp2> {
  if (b.length >= 2 && b[1] !== 0 && b.length < 8) {
    return { ok: true, value: { tag: b[0]!, status: b[1]!, consoleSessionId: 0, bmcRandom: Buffer.alloc(0), bmcGuid: Buffer.alloc(0), authCode: Buffer.alloc(0) } };
  }
  if (b.length < 8) return fail('truncated', `RAKP 2 needs at least 8 bytes, got ${b.length}`);
  const status = b[1]!;
  const head = { tag: b[0]!, status, consoleSessionId: b.readUInt32LE(4) };
  if (status !== 0) return { ok: true, value: { ...head, bmcRandom: Buffer.alloc(0), bmcGuid: Buffer.alloc(0), authCode: Buffer.alloc(0) } };
  const need = 40 + authCodeLength;
  if (b.length < need) return fail('truncated', `RAKP 2 needs ${need} bytes, got ${b.length}`);
  return {
    ok: true,
    value: {
      ...head,
      bmcRandom: Buffer.from(b.subarray(8, 24)), bmcGuid: Buffer.from(b.subarray(24, 40)),
      authCode: Buffer.from(b.subarray(40, need)),
    },
  };
}

export interface Rakp3 {
  readonly tag: number;
  readonly status: number;
  readonly bmcSessionId: number;
  readonly authCode: Buffer;
}

/** RAKP 3 and 4 share a layout (§13.22, §13.23): tag, status, 2 reserved, a session id, then a code. */
function encodeRakpStatusMessage(tag: number, status: number, sessionId: number, code: Buffer): Buffer {
  const b = Buffer.alloc(8);
  b[0] = tag & 0xff;
  b[1] = status & 0xff;
  b.writeUInt32LE(sessionId >>> 0, 4);
  return Buffer.concat([b, code]);
}

export function encodeRakp3(m: Rakp3): Buffer {
  return encodeRakpStatusMessage(m.tag, m.status, m.bmcSessionId, m.authCode);
}

export function decodeRakp3(b: Buffer, authCodeLength: number): Decoded<Rakp3> {
  if (b.length < 8) return fail('truncated', `RAKP 3 needs at least 8 bytes, got ${b.length}`);
  const status = b[1]!;
  const len = status === 0 ? authCodeLength : 0;
  if (b.length < 8 + len) return fail('truncated', `RAKP 3 needs ${8 + len} bytes, got ${b.length}`);
  return { ok: true, value: { tag: b[0]!, status, bmcSessionId: b.readUInt32LE(4), authCode: Buffer.from(b.subarray(8, 8 + len)) } };
}

export interface Rakp4 {
  readonly tag: number;
  readonly status: number;
  readonly consoleSessionId: number;
  /** Integrity check value (icvLength bytes). */
  readonly icv: Buffer;
}

export function encodeRakp4(m: Rakp4): Buffer {
  return encodeRakpStatusMessage(m.tag, m.status, m.consoleSessionId, m.icv);
}

export function decodeRakp4(b: Buffer, icvLength: number): Decoded<Rakp4> {
  if (b.length >= 2 && b[1] !== 0 && b.length < 8) return { ok: true, value: { tag: b[0]!, status: b[1]!, consoleSessionId: 0, icv: Buffer.alloc(0) } };
  if (b.length < 8) return fail('truncated', `RAKP 4 needs at least 8 bytes, got ${b.length}`);
  const status = b[1]!;
  const len = status === 0 ? icvLength : 0;
  if (b.length < 8 + len) return fail('truncated', `RAKP 4 needs ${8 + len} bytes, got ${b.length}`);
  return { ok: true, value: { tag: b[0]!, status, consoleSessionId: b.readUInt32LE(4), icv: Buffer.from(b.subarray(8, 8 + len)) } };
}

// ---------------------------------------------------------------- keys and AuthCodes (§13.31, §13.32, §13.20–13.23)

/** Everything both sides know after RAKP 2, and from which every RAKP value is computed. */
export interface RakpContext {
  readonly suite: CipherSuite;
  /** SIDm: the console's session id. */
  readonly consoleSessionId: number;
  /** SIDc: the BMC's session id. */
  readonly bmcSessionId: number;
  readonly consoleRandom: Buffer;
  readonly bmcRandom: Buffer;
  readonly bmcGuid: Buffer;
  /** RoleM exactly as sent in RAKP 1. */
  readonly role: number;
  readonly username: Buffer;
}

function hmac(hash: string, key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac(hash, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** Kuid/Kg: the password (or BMC key) NUL-padded to 20 bytes, as ipmitool and the spec's 20-byte key field. */
export function passwordKey(password: Buffer): Buffer {
  if (password.length > 20) throw new RangeError('IPMI v2.0 passwords are at most 20 bytes');
  const k = Buffer.alloc(20);
  password.copy(k);
  return k;
}

function roleNameBytes(c: RakpContext): Buffer {
  return Buffer.concat([Buffer.from([c.role & 0xff, c.username.length]), c.username]);
}

/** §13.31: SIK = HMAC_KG(Rm | Rc | RoleM | ULengthM | UNameM); KG = Kuid when the BMC has no key. */
export function deriveSik(c: RakpContext, kg: Buffer): Buffer {
  return hmac(c.suite.hash, kg, c.consoleRandom, c.bmcRandom, roleNameBytes(c));
}

/**
 * §13.32: Kn = HMAC_SIK(const n), const n = 20 bytes of n for every algorithm, SHA-256 included
 * (the spec's constants are 20 bytes; ipmitool's lanplus_generate_k1/k2 and FreeIPMI agree).
 */
const K_CONST_LENGTH = 20;
export function deriveK(suite: CipherSuite, sik: Buffer, n: 1 | 2): Buffer {
  return hmac(suite.hash, sik, Buffer.alloc(K_CONST_LENGTH, n));
}

/** §13.21: RAKP 2 key exchange AuthCode = HMAC_Kuid(SIDm | SIDc | Rm | Rc | GUIDc | RoleM | ULengthM | UNameM). */
export function rakp2AuthCode(c: RakpContext, kuid: Buffer): Buffer {
  return hmac(c.suite.hash, kuid, u32le(c.consoleSessionId), u32le(c.bmcSessionId), c.consoleRandom, c.bmcRandom, c.bmcGuid, roleNameBytes(c));
}

/** §13.22: RAKP 3 AuthCode = HMAC_Kuid(Rc | SIDm | RoleM | ULengthM | UNameM). */
export function rakp3AuthCode(c: RakpContext, kuid: Buffer): Buffer {
  return hmac(c.suite.hash, kuid, c.bmcRandom, u32le(c.consoleSessionId), roleNameBytes(c));
}

/** §13.23: RAKP 4 ICV = HMAC_SIK(Rm | SIDc | GUIDc), truncated to icvLength. */
export function rakp4Icv(c: RakpContext, sik: Buffer): Buffer {
  return hmac(c.suite.hash, sik, c.consoleRandom, u32le(c.bmcSessionId), c.bmcGuid).subarray(0, c.suite.icvLength);
}

export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface SessionKeys {
  readonly suite: CipherSuite;
  readonly sik: Buffer;
  readonly k1: Buffer;
  readonly k2: Buffer;
}

export type RakpError = { ok: false; code: 'auth-code' | 'icv'; reason: string };

/** Console side after RAKP 2: checks the BMC's AuthCode (a mismatch means a wrong password or user). */
export function checkRakp2(c: RakpContext, password: Buffer, received: Buffer): { ok: true } | RakpError {
  if (!safeEqual(rakp2AuthCode(c, passwordKey(password)), received)) {
    return { ok: false, code: 'auth-code', reason: 'RAKP 2 key exchange AuthCode mismatch (wrong password or user name)' };
  }
  return { ok: true };
}

/** SIK, K1, K2 for the session; `bmcKey` is Kg when the BMC has one, else the password is used (§13.31). */
export function deriveSessionKeys(c: RakpContext, password: Buffer, bmcKey?: Buffer): SessionKeys {
  const kg = bmcKey && bmcKey.length > 0 ? passwordKey(bmcKey) : passwordKey(password);
  const sik = deriveSik(c, kg);
  return { suite: c.suite, sik, k1: deriveK(c.suite, sik, 1), k2: deriveK(c.suite, sik, 2) };
}

/** Console side after RAKP 4. */
export function checkRakp4(c: RakpContext, keys: SessionKeys, received: Buffer): { ok: true } | RakpError {
  if (!safeEqual(rakp4Icv(c, keys.sik), received)) return { ok: false, code: 'icv', reason: 'RAKP 4 integrity check value mismatch' };
  return { ok: true };
}

// ---------------------------------------------------------------- per-packet integrity (§13.28.4)

/** AuthCode = HMAC_K1(auth type .. next header), truncated (12 bytes SHA1-96, 16 bytes SHA256-128). */
export function integrityAuthCode(keys: SessionKeys, data: Buffer): Buffer {
  return hmac(keys.suite.hash, keys.k1, data).subarray(0, keys.suite.authCodeLength);
}

export function verifyIntegrity(keys: SessionKeys, data: Buffer, authCode: Buffer): boolean {
  return safeEqual(integrityAuthCode(keys, data), authCode);
}

// ---------------------------------------------------------------- AES-CBC-128 confidentiality (§13.29)

export const AES_BLOCK = 16;

/**
 * Encrypted payload = IV(16) | AES-CBC-128_K2[0..16](data | pad 01 02 03 .. | pad length).
 * The pad makes data + pad + 1 a multiple of 16.
 */
export function encryptPayload(k2: Buffer, data: Buffer, iv: Buffer = randomBytes(AES_BLOCK)): Buffer {
  if (iv.length !== AES_BLOCK) throw new RangeError('IV must be 16 bytes');
  const padLen = (AES_BLOCK - ((data.length + 1) % AES_BLOCK)) % AES_BLOCK;
  const plain = Buffer.alloc(data.length + padLen + 1);
  data.copy(plain);
  for (let i = 1; i <= padLen; i++) plain[data.length + i - 1] = i;
  plain[plain.length - 1] = padLen;
  const c = createCipheriv('aes-128-cbc', k2.subarray(0, 16), iv);
  c.setAutoPadding(false);
  return Buffer.concat([iv, c.update(plain), c.final()]);
}

export function decryptPayload(k2: Buffer, payload: Buffer): Decoded<Buffer> {
  if (payload.length < 2 * AES_BLOCK) return fail('truncated', `encrypted payload needs at least 32 bytes, got ${payload.length}`);
  if (payload.length % AES_BLOCK !== 0) return fail('malformed', `encrypted payload of ${payload.length} bytes is not a multiple of 16`);
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-128-cbc', k2.subarray(0, 16), payload.subarray(0, AES_BLOCK));
    d.setAutoPadding(false);
    plain = Buffer.concat([d.update(payload.subarray(AES_BLOCK)), d.final()]);
  } catch {
    return fail('malformed', 'payload could not be decrypted');
  }
  const padLen = plain[plain.length - 1]!;
  if (padLen >= AES_BLOCK || padLen + 1 > plain.length) return fail('malformed', `confidentiality pad length ${padLen} is invalid`);
  const dataLen = plain.length - 1 - padLen;
  for (let i = 1; i <= padLen; i++) {
    if (plain[dataLen + i - 1] !== i) return fail('malformed', 'confidentiality pad bytes are not 1, 2, 3, …');
  }
  return { ok: true, value: Buffer.from(plain.subarray(0, dataLen)) };
}

// ---------------------------------------------------------------- whole packets in an active session

export interface SealOptions {
  /** The BMC's session id (SIDc) on requests; the console's on responses. */
  readonly sessionId: number;
  readonly sequence: number;
  readonly message: Buffer;
  readonly payloadType?: number;
  /** Default true: AES-CBC-128 with K2. */
  readonly encrypt?: boolean;
  /** Fixed IV, for tests; random otherwise. */
  readonly iv?: Buffer;
}

/** A complete RMCP datagram: payload encrypted (unless `encrypt: false`) and authenticated with K1. */
export function sealPacket(keys: SessionKeys, o: SealOptions): Buffer {
  const encrypt = o.encrypt ?? true;
  const payload = encrypt ? encryptPayload(keys.k2, o.message, o.iv) : o.message;
  return encodeSessionV2(
    { payloadType: o.payloadType ?? PAYLOAD_IPMI, encrypted: encrypt, authenticated: true, sessionId: o.sessionId, sequence: o.sequence, payload },
    (d) => integrityAuthCode(keys, d),
  );
}

export interface OpenedPacket {
  readonly payloadType: number;
  readonly sessionId: number;
  readonly sequence: number;
  readonly encrypted: boolean;
  /** Plaintext payload (an IPMI message for payload type 0). */
  readonly message: Buffer;
}

/**
 * Checks and opens a datagram received in an active RMCP+ session: RMCP+ format, authenticated,
 * AuthCode valid (code 'integrity' otherwise), then decrypted when encrypted. With `requireEncrypted`
 * (default true) a plaintext packet is refused too. Never throws; reasons carry no key material.
 */
export function openPacket(keys: SessionKeys, datagram: Buffer, requireEncrypted = true): Decoded<OpenedPacket> {
  const r = decodeIpmiPacket(datagram, keys.suite.authCodeLength);
  if (!r.ok) return r;
  if (r.value.version !== '2.0') return fail('malformed', 'IPMI 1.5 packet inside an RMCP+ session');
  const s = r.value.session;
  if (!s.authenticated) return fail('integrity', 'unauthenticated packet inside an authenticated session');
  if (!verifyIntegrity(keys, s.integrityData, s.authCode)) return fail('integrity', 'packet AuthCode mismatch');
  if (!s.encrypted && requireEncrypted) return fail('integrity', 'unencrypted packet inside an encrypted session');
  let message = s.payload;
  if (s.encrypted) {
    const d = decryptPayload(keys.k2, s.payload);
    if (!d.ok) return d;
    message = d.value;
  }
  return { ok: true, value: { payloadType: s.payloadType, sessionId: s.sessionId, sequence: s.sequence, encrypted: s.encrypted, message } };
}
