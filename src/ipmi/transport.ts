/**
 * One UDP socket to one BMC, and the request/response primitive every IPMI step uses: send, wait
 * for the first datagram the caller accepts, resend on timeout with backoff. Only one exchange is
 * in flight at a time (the client serialises), so no reply can be matched to the wrong request.
 */
import dgram from 'node:dgram';
import { IpmiClosedError, IpmiCorruptRepliesError, IpmiPortClosedError, IpmiTimeoutError } from './errors.js';

export interface Datagrams {
  send(datagram: Buffer): void;
  /** Called for every datagram received from the BMC's address and port. */
  onDatagram(handler: (datagram: Buffer) => void): void;
  /** Called on socket errors (ECONNREFUSED after an ICMP port unreachable, among others). */
  onError(handler: (err: NodeJS.ErrnoException) => void): void;
  close(): void;
}

/** A connected UDP socket: the kernel drops datagrams from any other address or port. */
export async function openUdpDatagrams(host: string, port: number): Promise<Datagrams> {
  const sock = dgram.createSocket({ type: 'udp4' });
  let onData: (b: Buffer) => void = () => {};
  let onErr: (e: NodeJS.ErrnoException) => void = () => {};
  sock.on('message', (b) => onData(b));
  sock.on('error', (e) => onErr(e));
  await new Promise<void>((resolve, reject) => {
    const fail = (e: Error) => reject(e);
    sock.once('error', fail);
    sock.connect(port, host, () => { sock.off('error', fail); resolve(); });
  });
  return {
    send: (b) => sock.send(b, (err) => { if (err) onErr(err); }),
    onDatagram: (h) => { onData = h; },
    onError: (h) => { onErr = h; },
    close: () => { try { sock.close(); } catch { /* already closed */ } },
  };
}

export interface RetryPolicy {
  /** Wait for the first attempt; doubles per retry, capped at 4×. */
  readonly timeoutMs: number;
  /** Resends after the first attempt. */
  readonly retries: number;
}

/**
 * What `accept` returns for a datagram that failed to parse or failed its integrity check. Only these
 * make an unanswered exchange an IpmiCorruptRepliesError: a well-formed reply that answers no pending
 * request (a late reply to an earlier try, an unauthenticated error to a bad IPMI 1.5 AuthCode) is
 * what a BMC sends when all is well or the password is wrong, so it leaves the timeout a timeout.
 */
export const CORRUPT: unique symbol = Symbol('corrupt reply');

/** What `accept` returns: a value ends the exchange; `undefined` means "not for us"; CORRUPT, see above. Both are dropped. */
export type Accept<T> = (datagram: Buffer) => T | undefined | typeof CORRUPT;

interface Pending {
  accept: Accept<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  corrupt: number;
  unmatched: number;
}

export interface TransportStats {
  sent: number;
  retransmits: number;
  received: number;
  /** Datagrams that were malformed, failed integrity, or answered nothing we asked. */
  dropped: number;
}

export class Transport {
  readonly stats: TransportStats = { sent: 0, retransmits: 0, received: 0, dropped: 0 };
  private pending: Pending | undefined;
  private closed = false;

  constructor(private readonly io: Datagrams, private readonly bmc: string) {
    io.onDatagram((b) => this.receive(b));
    io.onError((e) => {
      // A connected UDP socket reports the ICMP port unreachable of an earlier send as ECONNREFUSED.
      if (e.code === 'ECONNREFUSED') this.pending?.reject(new IpmiPortClosedError(this.bmc));
    });
  }

  /**
   * Sends `make(attempt)` and resolves with the first accepted reply. Each attempt builds a fresh
   * datagram so the caller can advance session sequence numbers (IPMI v2.0 §6.12.13).
   */
  async exchange<T>(what: string, make: (attempt: number) => Buffer, accept: Accept<T>, policy: RetryPolicy): Promise<T> {
    if (this.closed) throw new IpmiClosedError(this.bmc);
    const started = Date.now();
    let corrupt = 0;
    let unmatched = 0;
    for (let attempt = 0; attempt <= policy.retries; attempt++) {
      const wait = policy.timeoutMs * Math.min(2 ** attempt, 4);
      let timer: NodeJS.Timeout | undefined;
      const p = new Promise<T | typeof TIMEOUT>((resolve, reject) => {
        this.pending = { accept, resolve: resolve as (v: unknown) => void, reject, corrupt: 0, unmatched: 0 };
        timer = setTimeout(() => resolve(TIMEOUT), wait);
      });
      this.stats.sent++;
      if (attempt > 0) this.stats.retransmits++;
      this.io.send(make(attempt));
      try {
        const r = await p;
        if (r !== TIMEOUT) return r;
      } finally {
        clearTimeout(timer);
        corrupt += this.pending?.corrupt ?? 0;
        unmatched += this.pending?.unmatched ?? 0;
        this.pending = undefined;
      }
      if (this.closed) throw new IpmiClosedError(this.bmc);
    }
    // Corrupted replies are a different failure from silence: say so, with the count. Unmatched ones
    // are not (see CORRUPT), so the callers' silence diagnoses (ping, wrong password) still apply.
    if (corrupt > 0) throw new IpmiCorruptRepliesError(this.bmc, what, policy.retries + 1, Date.now() - started, corrupt);
    throw new IpmiTimeoutError(this.bmc, what, policy.retries + 1, Date.now() - started, unmatched);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending?.reject(new IpmiClosedError(this.bmc));
    this.io.close();
  }

  private receive(b: Buffer): void {
    this.stats.received++;
    const p = this.pending;
    if (!p) { this.stats.dropped++; return; }
    let v: unknown;
    try {
      v = p.accept(b);
    } catch {
      v = CORRUPT; // a parser bug must not take the socket down: treat it as a reply that failed to parse
    }
    if (v === CORRUPT) { this.stats.dropped++; p.corrupt++; return; }
    if (v === undefined) { this.stats.dropped++; p.unmatched++; return; }
    p.resolve(v);
  }
}

const TIMEOUT = Symbol('timeout');
