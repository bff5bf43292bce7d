/**
 * One RRQ transfer as a pure state machine: events in (the transfer starts,
 * an ACK arrives, a timer fires, a window of blocks has been read), actions
 * out (send the OACK, read blocks, send DATA from a window slot, arm or
 * cancel the timer, finish). No I/O, no clock, no timers: the caller passes
 * `now` and carries the actions out (tftp/session.ts), so every rule here is
 * unit-testable with a fake clock.
 *
 * Rules:
 * - Option negotiation (RFC 2347): blksize (2348), tsize and timeout (2349),
 *   windowsize (7440). An OACK is sent only when at least one requested option
 *   was accepted, and names only requested options; otherwise plain RFC 1350.
 * - Blocks are numbered absolutely (1, 2, …) here; the wire carries them
 *   modulo 65536 (rollover to 0, as curl, tftp-hpa, atftp and iPXE expect).
 * - A window of `windowsize` blocks is sent at once; an ACK for block n inside
 *   the window moves the window to n+1 (RFC 7440: a lost block restarts the
 *   window from the last acknowledged one).
 * - Only an ACK that acknowledges something new causes sends. Duplicate and
 *   stale ACKs never do (RFC 1123 §4.2.3.1, the Sorcerer's Apprentice): the
 *   only other cause of a send is our own timer.
 * - The retransmission timer adapts to the measured round trip (RFC 6298
 *   style, Karn's rule: no samples from retransmitted windows), between
 *   MIN_RTO_MS and the timeout (the negotiated one, else config), doubling on
 *   each consecutive timeout. A transfer that makes no progress for
 *   timeout × (retries + 1) is abandoned.
 */
import { ERR_UNDEFINED, type TftpOption } from './packet.js';

/** RFC 2348's bounds. */
const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65_464;
/** RFC 1350's block size when no blksize is negotiated. */
const DEFAULT_BLKSIZE = 512;
/** Retransmission timeout floor: below this, scheduling jitter on a busy host looks like loss. */
export const MIN_RTO_MS = 40;
/** The first retransmission timeout, before any round trip was measured. */
const INITIAL_RTO_MS = 250;

export interface TransferLimits {
  /** Largest blksize granted (config, already capped by the interface MTU). */
  readonly maxBlksize: number;
  readonly maxWindowsize: number;
  /** Retransmission timeout used when the client negotiates none. */
  readonly timeoutMs: number;
  readonly retries: number;
}

export interface Negotiated {
  readonly blksize: number;
  readonly windowsize: number;
  /** Upper bound of the retransmission timeout, ms. */
  readonly timeoutMs: number;
  /** Options for the OACK, in the client's order; empty: no OACK (RFC 1350 behaviour). */
  readonly oack: readonly TftpOption[];
}

const DIGITS = /^[0-9]{1,10}$/;

/**
 * Decides the transfer parameters from the client's options. `size` is the
 * number of bytes the client will receive (undefined: unknown, tsize is then
 * not answered). Unknown, malformed and out-of-range options are left out of
 * the OACK, which RFC 2347 allows; a repeated option counts once (the first).
 */
export function negotiate(options: readonly TftpOption[], size: number | undefined, limits: TransferLimits): Negotiated {
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs = limits.timeoutMs;
  const oack: TftpOption[] = [];
  const seen = new Set<string>();
  for (const [name, value] of options) {
    if (seen.has(name)) continue;
    seen.add(name);
    if (!DIGITS.test(value)) continue;
    const v = Number(value);
    switch (name) {
      case 'blksize':
        if (v < MIN_BLKSIZE) break;
        blksize = Math.min(v, MAX_BLKSIZE, limits.maxBlksize);
        oack.push([name, String(blksize)]);
        break;
      case 'tsize':
        // In a read request the client sends 0 and the server answers the size.
        if (size === undefined) break;
        oack.push([name, String(size)]);
        break;
      case 'timeout':
        if (v < 1 || v > 255) break;
        timeoutMs = v * 1000;
        oack.push([name, value.replace(/^0+/, '')]);
        break;
      case 'windowsize':
        if (v < 1 || v > 65_535) break;
        windowsize = Math.min(v, limits.maxWindowsize);
        oack.push([name, String(windowsize)]);
        break;
      default:
        break;
    }
  }
  return { blksize, windowsize, timeoutMs, oack };
}

export type Action =
  | { readonly type: 'send-oack'; readonly options: readonly TftpOption[] }
  /** Read `count` blocks from block `block` (bytes (block−1)·blksize …) into window slots 0…count−1, then call onRead. */
  | { readonly type: 'read'; readonly block: number; readonly count: number }
  /** Send DATA for absolute block `block` from window slot `slot`, `length` data bytes. */
  | { readonly type: 'send-data'; readonly block: number; readonly slot: number; readonly length: number }
  | { readonly type: 'set-timer'; readonly ms: number }
  | { readonly type: 'cancel-timer' }
  /** `declined`: the client ended it at our OACK, before any data (RFC 2347 ERROR 8; firmware asks for tsize this way). */
  | { readonly type: 'finish'; readonly ok: boolean; readonly declined?: true; readonly reason?: string; readonly sendError?: { readonly code: number; readonly message: string } };

export interface TransferStats {
  /** DATA packets sent, first sends and retransmissions. */
  dataSent: number;
  /** DATA and OACK packets sent again after a timeout. */
  retransmits: number;
  /** ACKs that acknowledged nothing new. */
  duplicateAcks: number;
  timeouts: number;
  /** Bytes the client has acknowledged. */
  bytesAcked: number;
}

type Phase = 'new' | 'oack' | 'reading' | 'sending' | 'done';

export class RrqTransfer {
  readonly stats: TransferStats = { dataSent: 0, retransmits: 0, duplicateAcks: 0, timeouts: 0, bytesAcked: 0 };
  /** Blocks in the file: the last one is shorter than blksize, possibly empty. */
  readonly totalBlocks: number;
  private phase: Phase = 'new';
  /** Highest block acknowledged (0: none, or the OACK). */
  private acked = 0;
  /** The window being sent: blocks first…first+count−1. */
  private first = 0;
  private count = 0;
  private sentAt = 0;
  private retransmitted = false;
  private lastProgress = 0;
  private rto: number;
  private srtt = 0;
  private rttvar = 0;
  private readonly giveUpMs: number;

  constructor(readonly size: number, readonly params: Negotiated, readonly retries: number) {
    this.totalBlocks = Math.floor(size / params.blksize) + 1;
    this.rto = Math.min(INITIAL_RTO_MS, params.timeoutMs);
    this.giveUpMs = params.timeoutMs * (retries + 1);
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  /** The current retransmission timeout (ms), for tests and logs. */
  get currentRto(): number {
    return this.rto;
  }

  start(now: number): Action[] {
    if (this.phase !== 'new') return [];
    this.lastProgress = now;
    if (this.params.oack.length > 0) {
      this.phase = 'oack';
      this.sentAt = now;
      this.retransmitted = false;
      return [{ type: 'send-oack', options: this.params.oack }, { type: 'set-timer', ms: this.rto }];
    }
    return this.readWindow(1);
  }

  /** An ACK from the client's TID with the 16-bit block number from the wire. */
  onAck(wireBlock: number, now: number): Action[] {
    if (this.phase === 'oack') {
      if (wireBlock !== 0) { this.stats.duplicateAcks++; return []; }
      this.progress(0, now);
      return this.readWindow(1);
    }
    if (this.phase !== 'sending') {
      // While a window is being read nothing new has been sent: nothing can be acknowledged.
      if (this.phase === 'reading') this.stats.duplicateAcks++;
      return [];
    }
    const last = this.first + this.count - 1;
    const n = this.acked + ((wireBlock - this.acked) & 0xffff);
    if (n === this.acked || n > last) {
      // A duplicate, or a block number from an older wrap: never a reason to send.
      this.stats.duplicateAcks++;
      return [];
    }
    this.progress(n, now, n === last);
    if (n === this.totalBlocks) {
      this.phase = 'done';
      return [{ type: 'cancel-timer' }, { type: 'finish', ok: true }];
    }
    return this.readWindow(n + 1);
  }

  /** The window asked for by the last `read` action is in the slots; `bytes` were read. */
  onRead(block: number, count: number, bytes: number, now: number): Action[] {
    if (this.phase !== 'reading' || block !== this.first || count !== this.count) return [];
    const start = (block - 1) * this.params.blksize;
    const expected = Math.min(this.size - start, count * this.params.blksize);
    if (bytes !== expected) {
      return this.fail(`short read: ${bytes} of ${expected} bytes at offset ${start} (file changed?)`, ERR_UNDEFINED, 'file changed during transfer');
    }
    this.phase = 'sending';
    this.sentAt = now;
    this.retransmitted = false;
    const out = this.windowSends();
    out.push({ type: 'set-timer', ms: this.rto });
    return out;
  }

  /** The file could not be read. */
  onReadError(message: string): Action[] {
    if (this.phase === 'done') return [];
    return this.fail(`read error: ${message}`, ERR_UNDEFINED, 'read error');
  }

  /** The client sent an ERROR: it gave up (or declined our options); no answer is due. */
  onClientError(code: number, message: string): Action[] {
    if (this.phase === 'done') return [];
    // An ERROR in answer to the OACK is the client declining the options (RFC 2347): UEFI PXE
    // firmware asks for tsize this way before every download. Not a failed transfer.
    const declined = this.phase === 'oack';
    this.phase = 'done';
    return [{ type: 'cancel-timer' }, { type: 'finish', ok: false, ...(declined ? { declined } : {}), reason: `client error ${code}: ${message}` }];
  }

  onTimeout(now: number): Action[] {
    if (this.phase !== 'oack' && this.phase !== 'sending') return [];
    this.stats.timeouts++;
    const silent = now - this.lastProgress;
    if (silent >= this.giveUpMs) {
      return this.fail(`timeout: no ACK for ${silent} ms (block ${this.acked + 1})`, ERR_UNDEFINED, 'timeout');
    }
    this.rto = Math.min(this.rto * 2, this.params.timeoutMs);
    this.retransmitted = true;
    const out: Action[] = [];
    if (this.phase === 'oack') {
      this.stats.retransmits++;
      out.push({ type: 'send-oack', options: this.params.oack });
    } else {
      // The whole window from the block after the last acknowledged one (RFC 7440 §4).
      const sends = this.windowSends();
      this.stats.retransmits += sends.length;
      out.push(...sends);
    }
    out.push({ type: 'set-timer', ms: Math.min(this.rto, this.giveUpMs - silent) });
    return out;
  }

  /** Stops the transfer from outside (shutdown); no packet is sent. */
  abort(reason: string): Action[] {
    if (this.phase === 'done') return [];
    this.phase = 'done';
    return [{ type: 'cancel-timer' }, { type: 'finish', ok: false, reason }];
  }

  private progress(n: number, now: number, sample = true): void {
    if (sample && !this.retransmitted) this.sampleRtt(now - this.sentAt);
    this.acked = n;
    this.stats.bytesAcked = Math.min(n * this.params.blksize, this.size);
    this.lastProgress = now;
  }

  private sampleRtt(r: number): void {
    if (this.srtt === 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = Math.min(this.params.timeoutMs, Math.max(MIN_RTO_MS, Math.ceil(this.srtt + Math.max(10, 4 * this.rttvar))));
  }

  private readWindow(first: number): Action[] {
    this.phase = 'reading';
    this.first = first;
    this.count = Math.min(this.params.windowsize, this.totalBlocks - first + 1);
    return [{ type: 'cancel-timer' }, { type: 'read', block: first, count: this.count }];
  }

  private windowSends(): Action[] {
    const out: Action[] = [];
    const { blksize } = this.params;
    for (let i = 0; i < this.count; i++) {
      const block = this.first + i;
      const length = Math.max(0, Math.min(blksize, this.size - (block - 1) * blksize));
      out.push({ type: 'send-data', block, slot: i, length });
    }
    this.stats.dataSent += out.length;
    return out;
  }

  private fail(reason: string, code: number, message: string): Action[] {
    this.phase = 'done';
    return [{ type: 'cancel-timer' }, { type: 'finish', ok: false, reason, sendError: { code, message } }];
  }
}
