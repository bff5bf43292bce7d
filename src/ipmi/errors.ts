/**
 * Typed IPMI errors. Each names the BMC (host:port) and what failed; none ever carries a password,
 * a session key or packet bytes that could contain them.
 */
import { completionCodeName } from './commands.js';
import { rakpStatusName } from './rakp.js';

export abstract class IpmiError extends Error {
  abstract readonly kind: string;
  constructor(readonly bmc: string, message: string) {
    super(`BMC ${bmc}: ${message}`);
    this.name = new.target.name;
  }
}

/**
 * Nothing valid came back within the configured bound (timeoutMs × backoff × retries). `dropped`
 * counts well-formed replies that answered no request of this exchange (late, or unauthenticated).
 */
export class IpmiTimeoutError extends IpmiError {
  readonly kind: 'timeout' | 'corrupt' = 'timeout';
  constructor(bmc: string, readonly what: string, readonly attempts: number, readonly elapsedMs: number, readonly dropped: number) {
    super(bmc, `no ${dropped > 0 ? 'valid ' : ''}answer to ${what} after ${attempts} ${attempts === 1 ? 'try' : 'tries'} (${(elapsedMs / 1000).toFixed(1)} s)` +
      (dropped > 0 ? `; ${dropped} unmatched or unauthenticated ${dropped === 1 ? 'reply' : 'replies'} ignored` : ''));
  }
}

/**
 * Replies came, but none was usable, and at least one failed to parse (RMCP/IPMI framing,
 * checksums) or failed its integrity check (RMCP+ HMAC, IPMI 1.5 AuthCode); only those are counted.
 * Well-formed replies that answer no request of this exchange do not make it one (transport.ts,
 * CORRUPT). A subclass of the timeout (the exchange still ended without an answer, and callers that
 * retry or re-open a session on a timeout do so here too), but reported as what it is: a link or a
 * BMC that corrupts its replies, not a silent BMC and not one with IPMI over LAN switched off.
 */
export class IpmiCorruptRepliesError extends IpmiTimeoutError {
  override readonly kind = 'corrupt' as const;
  constructor(bmc: string, what: string, attempts: number, elapsedMs: number, readonly corrupted: number) {
    super(bmc, what, attempts, elapsedMs, corrupted);
    this.message = `BMC ${bmc}: ${corrupted} ${corrupted === 1 ? 'reply' : 'replies'} to ${what} were malformed or corrupted (failed to parse or failed the integrity check) ` +
      `and none was valid after ${attempts} ${attempts === 1 ? 'try' : 'tries'} (${(elapsedMs / 1000).toFixed(1)} s): a corrupting link or a faulty BMC, not a silent one`;
  }
}

/** The BMC's host answered with ICMP port unreachable: nothing listens on the IPMI port. */
export class IpmiPortClosedError extends IpmiError {
  readonly kind = 'port-closed';
  constructor(bmc: string) {
    super(bmc, 'connection refused (nothing listens on this UDP port)');
  }
}

export type IpmiAuthFailure = 'wrong-user' | 'wrong-password' | 'privilege' | 'no-lan-access';

/** Authentication or authorisation refused; `reason` tells the admin what to fix. */
export class IpmiAuthError extends IpmiError {
  readonly kind = 'auth';
  constructor(bmc: string, readonly failure: IpmiAuthFailure, detail: string) {
    super(bmc, `${AUTH_TEXT[failure]} (${detail})`);
  }
}

const AUTH_TEXT: Readonly<Record<IpmiAuthFailure, string>> = {
  'wrong-user': 'user name not accepted',
  'wrong-password': 'wrong password',
  privilege: 'user may not log in at the requested privilege level',
  'no-lan-access': 'the BMC does not allow IPMI over LAN for this user or channel',
};

/** The BMC offers no cipher suite or authentication type metalboot is willing to use. */
export class IpmiNegotiationError extends IpmiError {
  readonly kind = 'negotiation';
}

/** A command was answered with a non-zero completion code. */
export class IpmiCompletionError extends IpmiError {
  readonly kind = 'completion';
  constructor(bmc: string, readonly command: string, readonly completionCode: number) {
    super(bmc, `${command} failed: ${completionCodeName(completionCode)} (0x${completionCode.toString(16).padStart(2, '0')})`);
  }
}

/** The BMC's answer was well-formed but made no sense (wrong tag, missing fields, a RAKP status). */
export class IpmiProtocolError extends IpmiError {
  readonly kind = 'protocol';
  static rakp(bmc: string, step: string, status: number): IpmiProtocolError {
    return new IpmiProtocolError(bmc, `${step} refused: ${rakpStatusName(status)} (0x${status.toString(16).padStart(2, '0')})`);
  }
}

/** The client was closed while a command was queued or running. */
export class IpmiClosedError extends IpmiError {
  readonly kind = 'closed';
  constructor(bmc: string) {
    super(bmc, 'client closed');
  }
}
