/**
 * Opening an authenticated session with a BMC, and wrapping/unwrapping messages inside it.
 * IPMI v2.0 RMCP+ (§13.15–13.23: Open Session, RAKP 1–4) with cipher suite 17 then 3, or pinned;
 * IPMI 1.5 (§22.16–22.17: Get Session Challenge, Activate Session, MD5 or straight password) only
 * when the BMC has no RMCP+ at all, or when pinned. Pure session state lives here; sockets live in transport.ts.
 */
import { randomBytes, randomInt } from 'node:crypto';
import {
  CC_OK, activateSession, decodeResponse, encodeRequest, getChannelAuthCapabilities, getSessionChallenge, responseMatches,
  type ChannelAuthCapabilities, type Command, type IpmiRequest, type IpmiResponse,
} from './commands.js';
import {
  CIPHER_SUITES, ROLE_NAME_ONLY_LOOKUP, checkRakp2, checkRakp4, decodeOpenSessionResponse, decodeRakp2, decodeRakp4, deriveSessionKeys,
  encodeOpenSessionRequest, encodeRakp1, encodeRakp3, openPacket, passwordKey, rakp3AuthCode, sealPacket,
  type CipherSuite, type RakpContext, type SessionKeys,
} from './rakp.js';
import {
  AUTH_MD5, AUTH_NONE, AUTH_PASSWORD, PAYLOAD_IPMI, PAYLOAD_OPEN_SESSION_REQUEST, PAYLOAD_OPEN_SESSION_RESPONSE, PAYLOAD_RAKP1,
  PAYLOAD_RAKP2, PAYLOAD_RAKP3, PAYLOAD_RAKP4, decodeAsf, decodeIpmiPacket, encodeAsfPing, encodeSessionV15, encodeSessionV2, md5AuthCode, type AsfPong,
} from './rmcp.js';
import { IpmiAuthError, IpmiCompletionError, IpmiCorruptRepliesError, IpmiNegotiationError, IpmiProtocolError, IpmiTimeoutError } from './errors.js';
import { CORRUPT, type Accept, type RetryPolicy, type Transport } from './transport.js';

/** `auto` tries 17, then 3, then IPMI 1.5 if the BMC has no RMCP+ at all. */
export type CipherSuiteChoice = 'auto' | 17 | 3 | '1.5';

export interface Credentials {
  readonly username: string;
  /** Kept as bytes so it is never formatted into a string by accident. */
  readonly password: Buffer;
  /** PRIV_OPERATOR or PRIV_ADMINISTRATOR. */
  readonly privilege: number;
}

/** An active session: wraps requests, checks and unwraps replies. */
export interface Session {
  readonly version: '2.0' | '1.5';
  /** 17 or 3 for RMCP+; the IPMI 1.5 auth type (2 = MD5, 4 = straight password) otherwise. */
  readonly suite: number;
  wrap(message: Buffer): Buffer;
  /**
   * The IPMI message inside a valid reply of this session; CORRUPT when it fails to parse or fails
   * its integrity check; undefined when it is not for this session or a replay (transport.ts).
   */
  unwrap(datagram: Buffer): Buffer | undefined | typeof CORRUPT;
  readonly bmcSessionId: number;
}

/** What the session opener needs from the client: the transport, retry policy and request sequence. */
export interface SessionLink {
  readonly bmc: string;
  readonly transport: Transport;
  readonly policy: RetryPolicy;
  nextRqSeq(): number;
  warn(event: string, msg: string): void;
}

/** RMCP+ statuses that mean "not this cipher suite": try the next one (§13.24). */
const SUITE_REFUSED = new Set([0x03, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11]);

/** §6.12.13: replies may arrive out of order; accept a window behind the highest seen, never twice. */
class InboundSequence {
  private highest = -1;
  private readonly seen = new Set<number>();
  accept(seq: number): boolean {
    if (this.highest >= 0 && (seq <= this.highest - 32 || this.seen.has(seq))) return false;
    this.seen.add(seq);
    if (seq > this.highest) this.highest = seq;
    if (this.seen.size > 64) for (const s of this.seen) if (s <= this.highest - 32) this.seen.delete(s);
    return true;
  }
}

// ---------------------------------------------------------------- unauthenticated steps

function plainRequest(link: SessionLink, c: Command<unknown>): IpmiRequest {
  return { netFn: c.netFn, cmd: c.cmd, rqSeq: link.nextRqSeq(), data: c.data };
}

/** `check` on an IPMI 1.5 reply: true (valid), false (not authenticated as ours: unmatched), CORRUPT. */
type V15Check = (authType: number, seq: number, authCode: Buffer | undefined, msg: Buffer) => boolean | typeof CORRUPT;

/**
 * Accepts an IPMI response to `req` from an IPMI 1.5-format datagram carrying session id `sessionId`.
 * What fails to parse is CORRUPT; a well-formed reply to something else (another session, an
 * earlier request) is only unmatched (transport.ts).
 */
function acceptV15Response(req: IpmiRequest, sessionId: number, check?: V15Check): Accept<IpmiResponse> {
  return (b) => {
    const p = decodeIpmiPacket(b, 0);
    if (!p.ok) return CORRUPT;
    if (p.value.version !== '1.5') return undefined;
    const s = p.value.session;
    if (s.sessionId !== sessionId) return undefined;
    const c = check ? check(s.authType, s.sequence, s.authCode, s.message) : true;
    if (c !== true) return c === CORRUPT ? CORRUPT : undefined;
    const r = decodeResponse(s.message);
    if (!r.ok) return CORRUPT;
    return responseMatches(req, r.value) ? r.value : undefined;
  };
}

function decodeOrThrow<T>(link: SessionLink, name: string, c: Command<T>, res: IpmiResponse): T {
  if (res.completionCode !== CC_OK) throw new IpmiCompletionError(link.bmc, name, res.completionCode);
  const d = c.decode(res.data);
  if (!d.ok) throw new IpmiProtocolError(link.bmc, `${name}: ${d.reason}`);
  return d.value;
}

/** Sends `c` outside any session (IPMI 1.5 header, auth type none, session id 0) and returns the raw reply. */
export async function plainCommand(link: SessionLink, name: string, c: Command<unknown>, policy: RetryPolicy = link.policy): Promise<IpmiResponse> {
  const req = plainRequest(link, c);
  const msg = encodeRequest(req);
  return link.transport.exchange(name, () => encodeSessionV15({ authType: AUTH_NONE, sequence: 0, sessionId: 0, message: msg }), acceptV15Response(req, 0), policy);
}

/** RMCP presence ping (§13.2.3): the pong, or undefined when nothing answers within one timeout. */
export async function presencePing(link: SessionLink): Promise<AsfPong | undefined> {
  const tag = randomInt(0, 0xff);
  try {
    return await link.transport.exchange('RMCP presence ping', () => encodeAsfPing(tag), (b) => {
      const r = decodeAsf(b);
      return r.ok && r.value.type === 'pong' && r.value.tag === tag ? r.value : undefined;
    }, { timeoutMs: link.policy.timeoutMs, retries: 0 });
  } catch (e) {
    if (e instanceof IpmiTimeoutError) return undefined;
    throw e;
  }
}

/**
 * Get Channel Authentication Capabilities outside a session (§22.13), asking for IPMI v2.0 data.
 * When it goes unanswered, a presence ping tells a BMC with IPMI over LAN switched off (it still
 * answers RMCP/ASF pings) from one that is not there at all.
 */
export async function getAuthCapabilities(link: SessionLink, privilege: number): Promise<ChannelAuthCapabilities> {
  const c = getChannelAuthCapabilities(privilege);
  let res: IpmiResponse;
  try {
    res = await plainCommand(link, 'Get Channel Authentication Capabilities', c);
  } catch (e) {
    // Only silence is diagnosed with a ping: replies that came but were corrupted (counted in the
    // error) say the BMC does speak IPMI over LAN, whatever a ping says.
    if (e instanceof IpmiTimeoutError && !(e instanceof IpmiCorruptRepliesError) && (await presencePing(link))) {
      throw new IpmiAuthError(link.bmc, 'no-lan-access', 'it answers RMCP presence pings but no IPMI request; IPMI over LAN is probably disabled');
    }
    throw e;
  }
  return decodeOrThrow(link, 'Get Channel Authentication Capabilities', c, res);
}

// ---------------------------------------------------------------- RMCP+ (IPMI v2.0)

function rmcpPlus(payloadType: number, payload: Buffer): Buffer {
  return encodeSessionV2({ payloadType, encrypted: false, authenticated: false, sessionId: 0, sequence: 0, payload });
}

function acceptPayload(type: number): Accept<Buffer> {
  return (b) => {
    const p = decodeIpmiPacket(b, 0);
    if (!p.ok) return CORRUPT;
    if (p.value.version !== '2.0') return undefined;
    const s = p.value.session;
    return s.payloadType === type && !s.authenticated && !s.encrypted ? s.payload : undefined;
  };
}

type SuiteAttempt = { ok: true; session: Session } | { ok: false; refused: string };

async function openRmcpPlus(link: SessionLink, creds: Credentials, suite: CipherSuite): Promise<SuiteAttempt> {
  const tag = randomInt(0, 0x40);
  const consoleSessionId = randomInt(1, 0xffffffff);
  const open = encodeOpenSessionRequest({
    tag, maxPrivilege: creds.privilege, consoleSessionId,
    auth: suite.auth, integrity: suite.integrity, confidentiality: suite.confidentiality,
  });
  const osr = await link.transport.exchange(`RMCP+ Open Session (cipher suite ${suite.id})`, () => rmcpPlus(PAYLOAD_OPEN_SESSION_REQUEST, open), (b) => {
    const p = acceptPayload(PAYLOAD_OPEN_SESSION_RESPONSE)(b);
    if (p === undefined || p === CORRUPT) return p;
    const r = decodeOpenSessionResponse(p);
    if (!r.ok) return CORRUPT;
    if (r.value.tag !== tag) return undefined;
    if (r.value.status === 0 && r.value.consoleSessionId !== consoleSessionId) return undefined;
    return r.value;
  }, link.policy);
  if (osr.status !== 0) {
    if (SUITE_REFUSED.has(osr.status)) return { ok: false, refused: `cipher suite ${suite.id} refused (status 0x${osr.status.toString(16)})` };
    throw rakpStatusError(link, 'Open Session', osr.status);
  }
  if (osr.auth !== suite.auth || osr.integrity !== suite.integrity || osr.confidentiality !== suite.confidentiality) {
    return { ok: false, refused: `cipher suite ${suite.id}: the BMC chose other algorithms` };
  }
  const bmcSessionId = osr.bmcSessionId!;
  const username = Buffer.from(creds.username, 'utf8');
  const role = (creds.privilege & 0x0f) | ROLE_NAME_ONLY_LOOKUP;
  const consoleRandom = randomBytes(16);
  const rakp1 = encodeRakp1({ tag, bmcSessionId, consoleRandom, role, username });
  const r2 = await link.transport.exchange('RAKP 1', () => rmcpPlus(PAYLOAD_RAKP1, rakp1), (b) => {
    const p = acceptPayload(PAYLOAD_RAKP2)(b);
    if (p === undefined || p === CORRUPT) return p;
    const r = decodeRakp2(p, suite.keyLength);
    if (!r.ok) return CORRUPT;
    if (r.value.tag !== tag) return undefined;
    if (r.value.status === 0 && r.value.consoleSessionId !== consoleSessionId) return undefined;
    return r.value;
  }, link.policy);
  if (r2.status !== 0) throw rakpStatusError(link, 'RAKP 2', r2.status);
  const ctx: RakpContext = {
    suite, consoleSessionId, bmcSessionId, consoleRandom, bmcRandom: r2.bmcRandom, bmcGuid: r2.bmcGuid, role, username,
  };
  const check = checkRakp2(ctx, creds.password, r2.authCode);
  if (!check.ok) throw new IpmiAuthError(link.bmc, 'wrong-password', 'the BMC\'s RAKP 2 key exchange code does not match this password');
  const rakp3 = encodeRakp3({ tag, status: 0, bmcSessionId, authCode: rakp3AuthCode(ctx, passwordKey(creds.password)) });
  const keys = deriveSessionKeys(ctx, creds.password);
  const r4 = await link.transport.exchange('RAKP 3', () => rmcpPlus(PAYLOAD_RAKP3, rakp3), (b) => {
    const p = acceptPayload(PAYLOAD_RAKP4)(b);
    if (p === undefined || p === CORRUPT) return p;
    const r = decodeRakp4(p, suite.icvLength);
    if (!r.ok) return CORRUPT;
    if (r.value.tag !== tag) return undefined;
    if (r.value.status === 0 && r.value.consoleSessionId !== consoleSessionId) return undefined;
    if (r.value.status === 0 && !checkRakp4(ctx, keys, r.value.icv).ok) return CORRUPT;
    return r.value;
  }, link.policy);
  if (r4.status !== 0) throw rakpStatusError(link, 'RAKP 4', r4.status);
  return { ok: true, session: rmcpPlusSession(suite, keys, bmcSessionId, consoleSessionId) };
}

function rmcpPlusSession(suite: CipherSuite, keys: SessionKeys, bmcSessionId: number, consoleSessionId: number): Session {
  let out = 1; // §13.14: the first authenticated packet carries sequence number 1
  const inbound = new InboundSequence();
  return {
    version: '2.0', suite: suite.id, bmcSessionId,
    wrap: (message) => {
      const seq = out;
      out = out >= 0xffffffff ? 1 : out + 1;
      return sealPacket(keys, { sessionId: bmcSessionId, sequence: seq, message });
    },
    unwrap: (b) => {
      // The header first: an unauthenticated reply, or one for another session (whose keys differ),
      // answers nothing of ours; only a reply of this session that fails its HMAC is corrupt.
      const h = decodeIpmiPacket(b, suite.authCodeLength);
      if (!h.ok) return CORRUPT;
      if (h.value.version !== '2.0' || !h.value.session.authenticated || h.value.session.sessionId !== consoleSessionId) return undefined;
      const p = openPacket(keys, b);
      if (!p.ok) return CORRUPT;
      const v = p.value;
      if (v.payloadType !== PAYLOAD_IPMI || !inbound.accept(v.sequence)) return undefined;
      return v.message;
    },
  };
}

function rakpStatusError(link: SessionLink, step: string, status: number): Error {
  switch (status) {
    // §13.24 0Dh: BMCs (ipmi_sim among them) answer it alike for an unknown and a disabled user.
    case 0x0d: return new IpmiAuthError(link.bmc, 'wrong-user', `${step}: unauthorized name; no such user, or the user is disabled`);
    case 0x09: case 0x0a: case 0x0b: return new IpmiAuthError(link.bmc, 'privilege', `${step}: ${status === 0x09 ? 'invalid role' : 'unauthorized role or privilege level'}`);
    case 0x0f: return new IpmiAuthError(link.bmc, 'wrong-password', `${step}: the BMC rejected our RAKP 3 code`);
    default: return IpmiProtocolError.rakp(link.bmc, step, status);
  }
}

// ---------------------------------------------------------------- IPMI 1.5

/** IPMI 1.5 AuthCode: MD5 over password, session, message, sequence; or the password itself (§22.17.1). */
function v15AuthCode(authType: number, password: Buffer, sessionId: number, message: Buffer, sequence: number): Buffer {
  if (authType === AUTH_MD5) return md5AuthCode(password, sessionId, message, sequence);
  const k = Buffer.alloc(16);
  password.copy(k, 0, 0, Math.min(16, password.length));
  return k;
}

async function openV15(link: SessionLink, creds: Credentials, authType: number): Promise<Session> {
  if (creds.password.length > 16) throw new IpmiNegotiationError(link.bmc, 'IPMI 1.5 passwords are at most 16 bytes');
  const username = Buffer.from(creds.username, 'utf8');
  const ch = getSessionChallenge(authType, username);
  const chRes = await plainCommand(link, 'Get Session Challenge', ch);
  // §22.16: 81h invalid user name, 82h null user name not enabled.
  if (chRes.completionCode === 0x81 || chRes.completionCode === 0x82) throw new IpmiAuthError(link.bmc, 'wrong-user', 'Get Session Challenge: invalid user name; no such user, or the user is disabled');
  const challenge = decodeOrThrow(link, 'Get Session Challenge', ch, chRes);
  const initialOut = randomInt(1, 0x7fffffff);
  const act = activateSession(authType, creds.privilege, challenge.challenge, initialOut);
  const actReq = plainRequest(link, act);
  const actMsg = encodeRequest(actReq);
  const temp = challenge.tempSessionId;
  // An unauthenticated reply (a BMC's error to a bad AuthCode) is not ours, not corrupt: the timeout
  // it ends in must still read as a wrong password. A mismatching AuthCode of our type is corrupt.
  const verify: V15Check = (t, seq, code, msg) =>
    t === authType && code !== undefined && (code.equals(v15AuthCode(authType, creds.password, temp, msg, seq)) || CORRUPT);
  let actRes: IpmiResponse;
  try {
    actRes = await link.transport.exchange('Activate Session',
      () => encodeSessionV15({ authType, sequence: 0, sessionId: temp, authCode: v15AuthCode(authType, creds.password, temp, actMsg, 0), message: actMsg }),
      acceptV15Response(actReq, temp, verify), link.policy);
  } catch (e) {
    // A BMC drops an Activate Session whose AuthCode fails, so with a known user a timeout here
    // (after the challenge was answered) means the password is wrong.
    // Replies that failed to verify are corruption, not a wrong password (that one gets no reply).
    if (e instanceof IpmiTimeoutError && !(e instanceof IpmiCorruptRepliesError)) throw new IpmiAuthError(link.bmc, 'wrong-password', 'Activate Session was not answered after a valid challenge');
    throw e;
  }
  // 86h is also what a user whose channel access is NO ACCESS (Set User Access, §22.26) gets.
  if (actRes.completionCode === 0x86) throw new IpmiAuthError(link.bmc, 'privilege', 'Activate Session: requested privilege level exceeds the user\'s limit on this channel, or the user has no access to it');
  if (actRes.completionCode === 0x81 || actRes.completionCode === 0x84) throw new IpmiAuthError(link.bmc, 'no-lan-access', `Activate Session: completion code 0x${actRes.completionCode.toString(16)}`);
  const s = decodeOrThrow(link, 'Activate Session', act, actRes);
  let out = s.inboundSequence;
  const inbound = new InboundSequence();
  link.warn('ipmi.session.v15', `using an IPMI 1.5 session with ${authType === AUTH_MD5 ? 'MD5' : 'plain password'} authentication: no encryption, weak integrity`);
  return {
    version: '1.5', suite: authType, bmcSessionId: s.sessionId,
    wrap: (message) => {
      const seq = out;
      out = out >= 0xffffffff ? 1 : out + 1;
      return encodeSessionV15({ authType, sequence: seq, sessionId: s.sessionId, authCode: v15AuthCode(authType, creds.password, s.sessionId, message, seq), message });
    },
    unwrap: (b) => {
      const p = decodeIpmiPacket(b, 0);
      if (!p.ok) return CORRUPT;
      if (p.value.version !== '1.5') return undefined;
      const v = p.value.session;
      if (v.sessionId !== s.sessionId || v.authType !== authType || !v.authCode) return undefined;
      if (!v.authCode.equals(v15AuthCode(authType, creds.password, s.sessionId, v.message, v.sequence))) return CORRUPT;
      if (v.sequence !== 0 && !inbound.accept(v.sequence)) return undefined;
      return v.message;
    },
  };
}

// ---------------------------------------------------------------- choosing

/**
 * Opens a session. Never calls Get Channel Cipher Suites: some BMCs never answer it, and a refused
 * Open Session is just as informative and much faster. A wrong password is confirmed on a second,
 * fresh RAKP exchange, so one corrupted RAKP 2 on the wire is not reported as a wrong password.
 */
export async function openSession(link: SessionLink, creds: Credentials, choice: CipherSuiteChoice): Promise<Session> {
  const caps = await getAuthCapabilities(link, creds.privilege);
  const wantV2 = choice !== '1.5';
  const refusals: string[] = [];
  if (wantV2 && caps.ipmi20) {
    const ids = choice === 'auto' ? [17, 3] : [choice];
    for (const id of ids) {
      const suite = CIPHER_SUITES.get(id)!;
      let r: SuiteAttempt;
      try {
        r = await openRmcpPlus(link, creds, suite);
      } catch (e) {
        if (!(e instanceof IpmiAuthError && e.failure === 'wrong-password')) throw e;
        r = await openRmcpPlus(link, creds, suite);
      }
      if (r.ok) return r.session;
      refusals.push(r.refused);
    }
    // No silent downgrade from a BMC that speaks RMCP+ to IPMI 1.5 (a forged refusal on the wire
    // must not weaken the session): an admin who wants 1.5 there pins it.
    throw new IpmiNegotiationError(link.bmc, `${refusals.join('; ')}${choice === 'auto' ? '; pin cipher suite "1.5" to use an IPMI 1.5 session' : ''}`);
  }
  if (choice === 'auto' || choice === '1.5') {
    if (caps.ipmi15 && (caps.authMd5 || caps.authPassword)) return openV15(link, creds, caps.authMd5 ? AUTH_MD5 : AUTH_PASSWORD);
    refusals.push(caps.ipmi15 ? 'IPMI 1.5 without MD5 or password authentication' : 'no IPMI 1.5');
  }
  if (!caps.ipmi20 && wantV2) refusals.unshift('no IPMI v2.0 / RMCP+');
  throw new IpmiNegotiationError(link.bmc, `no usable authentication: ${refusals.join('; ')}`);
}
