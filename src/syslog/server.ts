/**
 * The syslog socket shell: one IPv4 UDP socket (RFC 5426 transport, port 514
 * by default), a per-source rate limit, the codec in ./message.ts, and a
 * callback for every accepted message. Built for iPXE, which sends its
 * console to the address in DHCP option 7 (log servers, RFC 2132 §3.9).
 *
 * Every datagram is counted once:
 *   received = notServed + rateLimited + rateLimitedTotal + oversized + malformed + accepted.
 * The source filter (syslog/accept.ts) and the limits come first so a flood
 * costs no parsing: per source, then in total, where addresses without a DHCP
 * binding share at most half of the total so that a flood from rotating
 * addresses of a served subnet leaves the machines with leases their lines. Nothing escapes the
 * socket handler: a throwing or rejecting onMessage is logged and counted in
 * handlerErrors (the message still counts as accepted).
 */
import { errorMessage } from '../errors/message.js';
import dgram from 'node:dgram';
import type { Logger } from '../log.js';
import { MAX_DATAGRAM, parseSyslog, type SyslogMessage } from './message.js';
import { DEFAULT_MAX_SOURCES, TokenBucket, TokenBucketLimiter } from './rate-limit.js';
import type { SourceClass } from './accept.js';

export interface SyslogCounters {
  received: number;
  accepted: number;
  malformed: number;
  oversized: number;
  /** Per-source bucket empty. */
  rateLimited: number;
  /** From an address outside what syslog.acceptFrom allows. */
  notServed: number;
  /** The total bucket (or the share of sources without a binding) empty. */
  rateLimitedTotal: number;
  handlerErrors: number;
}

export interface SyslogSource {
  readonly address: string;
  readonly port: number;
}

export interface SyslogServerOptions {
  /** IPv4 address and port; port 0 takes an ephemeral port (tests). */
  readonly listen: { readonly host: string; readonly port: number };
  readonly maxPerSecondPerSource: number;
  readonly burst: number;
  readonly log: Logger;
  /** Called for every accepted message; may return a promise, whose rejection is caught. */
  readonly onMessage: (msg: SyslogMessage, from: SyslogSource) => void | Promise<void>;
  /**
   * The source filter (syslog/accept.ts sourceClassifier); default: every source accepted, as
   * 'bound' (the total limit then has no share to keep).
   */
  readonly classify?: (address: string) => SourceClass;
  /** All sources together: refill rate and bucket size; absent = no total limit. */
  readonly total?: { readonly maxPerSecond: number; readonly burst: number };
  /** Sources tracked by the rate limiter; default 4096. */
  readonly maxSources?: number;
  /** Largest datagram accepted; default 2048 (RFC 5424 §6.1). */
  readonly maxDatagram?: number;
  /** Monotonic milliseconds, for the limiter and log throttling; default performance.now. */
  readonly clock?: () => number;
}

/** At most one "rate limited" warning per this many ms, whatever the number of sources. */
const RATE_LOG_INTERVAL_MS = 10_000;

export class SyslogServer {
  readonly counters: SyslogCounters = { received: 0, accepted: 0, malformed: 0, oversized: 0, rateLimited: 0, notServed: 0, rateLimitedTotal: 0, handlerErrors: 0 };
  private sock: dgram.Socket | undefined;
  private readonly limiter: TokenBucketLimiter;
  private readonly clock: () => number;
  private lastRateLog = -Infinity;
  private lastNotServedLog = -Infinity;
  private lastTotalLog = -Infinity;
  private readonly total: TokenBucket | undefined;
  /** Half of the total, for sources without a binding: they cannot take the bound machines' share. */
  private readonly unbound: TokenBucket | undefined;

  constructor(private readonly opts: SyslogServerOptions) {
    this.clock = opts.clock ?? (() => performance.now());
    this.limiter = new TokenBucketLimiter({
      ratePerSecond: opts.maxPerSecondPerSource,
      burst: opts.burst,
      maxSources: opts.maxSources ?? DEFAULT_MAX_SOURCES,
      clock: this.clock,
    });
    if (opts.total) {
      this.total = new TokenBucket({ ratePerSecond: opts.total.maxPerSecond, burst: opts.total.burst, clock: this.clock });
      this.unbound = new TokenBucket({ ratePerSecond: opts.total.maxPerSecond / 2, burst: Math.max(1, opts.total.burst / 2), clock: this.clock });
    }
  }

  /** The bound port (useful with port 0); undefined before start(). */
  get port(): number | undefined {
    return this.sock?.address().port;
  }

  async start(): Promise<void> {
    if (this.sock) throw new Error('syslog server already started');
    const { host, port } = this.opts.listen;
    const sock = dgram.createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => { sock.close(); reject(new Error(`cannot open syslog UDP ${host}:${port}: ${e.message}`, { cause: e })); };
      sock.once('error', onError);
      sock.bind(port, host, () => { sock.off('error', onError); resolve(); });
    });
    sock.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    sock.on('error', (e) => this.opts.log.error({ event: 'syslog.socket-error', err: e.message }, 'syslog socket error'));
    this.sock = sock;
    this.opts.log.info({ event: 'syslog.listening', host, port: sock.address().port }, 'syslog listening');
  }

  async stop(): Promise<void> {
    const sock = this.sock;
    if (!sock) return;
    this.sock = undefined;
    sock.removeAllListeners('message');
    await new Promise<void>((r) => sock.close(() => r()));
    this.limiter.clear();
  }

  private onDatagram(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const c = this.counters;
    c.received++;
    const log = this.opts.log;
    try {
      const cls = this.opts.classify ? this.opts.classify(rinfo.address) : 'bound';
      if (cls === 'not-served') {
        c.notServed++;
        const now = this.clock();
        if (now - this.lastNotServedLog >= RATE_LOG_INTERVAL_MS) {
          this.lastNotServedLog = now;
          log.warn({ event: 'syslog.not-served', from: rinfo.address, notServed: c.notServed }, 'syslog datagrams dropped: the source is not an address metalboot serves (syslog.acceptFrom)');
        }
        return;
      }
      if (!this.limiter.take(rinfo.address)) {
        c.rateLimited++;
        const now = this.clock();
        if (now - this.lastRateLog >= RATE_LOG_INTERVAL_MS) {
          this.lastRateLog = now;
          log.warn({ event: 'syslog.rate-limited', from: rinfo.address, rateLimited: c.rateLimited, sources: this.limiter.size }, 'syslog messages dropped by the rate limit');
        }
        return;
      }
      // The share first: a datagram it refuses must not use up a token of the total.
      if (this.total && ((cls === 'served' && !this.unbound!.take()) || !this.total.take())) {
        c.rateLimitedTotal++;
        const now = this.clock();
        if (now - this.lastTotalLog >= RATE_LOG_INTERVAL_MS) {
          this.lastTotalLog = now;
          log.warn({ event: 'syslog.rate-limited-total', from: rinfo.address, bound: cls === 'bound', rateLimitedTotal: c.rateLimitedTotal }, 'syslog datagrams dropped by the total rate limit');
        }
        return;
      }
      const r = parseSyslog(buf, { maxBytes: this.opts.maxDatagram ?? MAX_DATAGRAM });
      if (!r.ok) {
        if (r.reason === 'oversized') c.oversized++;
        else c.malformed++;
        if (log.isLevelEnabled('debug')) log.debug({ event: `syslog.${r.reason}`, from: rinfo.address, len: buf.length, reason: r.detail }, 'syslog datagram dropped');
        return;
      }
      c.accepted++;
      const from: SyslogSource = { address: rinfo.address, port: rinfo.port };
      const ret = this.opts.onMessage(r.value, from);
      if (ret && typeof (ret as Promise<void>).then === 'function') {
        (ret as Promise<void>).then(undefined, (e: unknown) => this.handlerFailed(e, from));
      }
    } catch (e) {
      this.handlerFailed(e, rinfo);
    }
  }

  private handlerFailed(e: unknown, from: SyslogSource): void {
    this.counters.handlerErrors++;
    this.opts.log.error({ event: 'syslog.handler-error', from: from.address, err: errorMessage(e) }, 'syslog message handler failed');
  }
}
