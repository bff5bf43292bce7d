/**
 * A tap for test/helpers/udp-proxy.ts that reads, and may rewrite, the IPMI messages of an
 * IPMI 1.5 session (§22.17: in the clear, MD5- or password-signed) between metalboot and a real
 * ipmi_sim. It records every request the client sends, in order, and lets a test change a BMC
 * response's completion code or data, re-signing it with the test's password so the client
 * accepts it: a stand-in for a BMC that refuses a parameter, is busy, or lacks RMCP+, with the
 * real simulator doing everything else. RMCP+ traffic is encrypted, so it is only counted.
 */
import {
  decodeRequest, decodeResponse, encodeResponse, type IpmiMessage, type IpmiResponse,
} from '../../src/ipmi/commands.js';
import { AUTH_MD5, AUTH_NONE, decodeIpmiPacket, encodeSessionV15, md5AuthCode } from '../../src/ipmi/rmcp.js';
import type { Mangle } from './udp-proxy.js';

export interface SeenRequest extends IpmiMessage {
  /** Date.now() when the proxy saw it. */
  readonly at: number;
  readonly sessionId: number;
}

/** What to change in a response; undefined passes it unchanged. */
export type Rewrite = (res: IpmiResponse, req: SeenRequest | undefined) => { completionCode?: number; data?: Buffer } | undefined;

export interface V15Tap {
  /** Every IPMI 1.5-format request from the client (outside or inside a session), in order. */
  readonly requests: SeenRequest[];
  /** Datagrams from the client in RMCP+ (IPMI v2.0) format. */
  rmcpPlusSent: number;
  /** Responses changed so far. */
  rewritten: number;
  rewrite: Rewrite | undefined;
  readonly mangle: Mangle;
}

function signature(authType: number, password: Buffer, sessionId: number, message: Buffer, sequence: number): Buffer | undefined {
  if (authType === AUTH_NONE) return undefined;
  if (authType === AUTH_MD5) return md5AuthCode(password, sessionId, message, sequence);
  const k = Buffer.alloc(16); // straight password (§22.17.1)
  password.copy(k, 0, 0, Math.min(16, password.length));
  return k;
}

export function ipmiV15Tap(password: Buffer): V15Tap {
  const bySeq = new Map<number, SeenRequest>();
  const tap: V15Tap = {
    requests: [], rmcpPlusSent: 0, rewritten: 0, rewrite: undefined,
    mangle: (b, dir) => {
      const p = decodeIpmiPacket(b, 0);
      if (!p.ok) return b;
      if (p.value.version === '2.0') {
        if (dir === 'to-upstream') tap.rmcpPlusSent++;
        return b;
      }
      const s = p.value.session;
      if (dir === 'to-upstream') {
        const r = decodeRequest(s.message);
        if (r.ok) {
          const seen: SeenRequest = { ...r.value, at: Date.now(), sessionId: s.sessionId };
          tap.requests.push(seen);
          bySeq.set(r.value.rqSeq, seen);
        }
        return b;
      }
      const res = decodeResponse(s.message);
      if (!res.ok || !tap.rewrite) return b;
      const change = tap.rewrite(res.value, bySeq.get(res.value.rqSeq));
      if (!change) return b;
      tap.rewritten++;
      const message = encodeResponse({
        ...res.value, completionCode: change.completionCode ?? res.value.completionCode, data: change.data ?? res.value.data,
      });
      const authCode = signature(s.authType, password, s.sessionId, message, s.sequence);
      return encodeSessionV15({ authType: s.authType, sequence: s.sequence, sessionId: s.sessionId, message, ...(authCode ? { authCode } : {}) });
    },
  };
  return tap;
}
