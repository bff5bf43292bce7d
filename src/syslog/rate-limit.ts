/**
 * Per-source token buckets with a bounded table. Pure: the clock is passed in,
 * nothing is scheduled.
 *
 * Each source (a key such as an IPv4 address) has a bucket of `burst` tokens,
 * refilled at `ratePerSecond`; a message takes one token or is refused. The
 * table keeps at most `maxSources` buckets in least-recently-used order (a
 * Map's insertion order, refreshed on every use): a flood from spoofed source
 * addresses evicts the oldest buckets instead of growing memory. An evicted
 * source starts again with a full bucket, which is what an idle one would
 * have had anyway; a source that is being limited keeps being used, so it
 * stays near the recent end and is not evicted by a few quiet sources.
 */

export interface TokenBucketOptions {
  /** Tokens added per second; > 0. */
  readonly ratePerSecond: number;
  /** Bucket size, the most messages let through at once; >= 1. */
  readonly burst: number;
  /** Most sources tracked at a time; default 4096. */
  readonly maxSources?: number;
  /** Monotonic milliseconds; default performance.now. */
  readonly clock?: () => number;
}

export const DEFAULT_MAX_SOURCES = 4096;

interface Bucket { tokens: number; at: number }

export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxSources: number;
  private readonly clock: () => number;
  /** Buckets dropped to stay within maxSources, since creation. */
  evictions = 0;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.ratePerSecond > 0) || !Number.isFinite(opts.ratePerSecond)) throw new RangeError(`ratePerSecond must be > 0, got ${opts.ratePerSecond}`);
    if (!(opts.burst >= 1) || !Number.isFinite(opts.burst)) throw new RangeError(`burst must be >= 1, got ${opts.burst}`);
    const max = opts.maxSources ?? DEFAULT_MAX_SOURCES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxSources must be a positive integer, got ${max}`);
    this.rate = opts.ratePerSecond / 1000;
    this.burst = opts.burst;
    this.maxSources = max;
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** Sources currently tracked (never more than maxSources). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token from `key`'s bucket; false when it is empty (the message is to be dropped). */
  take(key: string): boolean {
    const now = this.clock();
    let b = this.buckets.get(key);
    if (b) {
      // A clock that steps back refills nothing rather than draining.
      const elapsed = Math.max(0, now - b.at);
      b.tokens = Math.min(this.burst, b.tokens + elapsed * this.rate);
      b.at = now;
      this.buckets.delete(key);
    } else {
      b = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.maxSources) {
        const oldest = this.buckets.keys().next().value as string;
        this.buckets.delete(oldest);
        this.evictions++;
      }
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Forgets every bucket. */
  clear(): void {
    this.buckets.clear();
  }
}

/**
 * One token bucket (pure, like the limiter above): the limit on all sources
 * together, which per-source buckets cannot give when the sources rotate (a
 * new address starts with a full bucket).
 */
export class TokenBucket {
  private tokens: number;
  private at: number;
  private readonly rate: number;
  private readonly clock: () => number;
  readonly burst: number;

  constructor(opts: { readonly ratePerSecond: number; readonly burst: number; readonly clock?: () => number }) {
    if (!(opts.ratePerSecond > 0) || !Number.isFinite(opts.ratePerSecond)) throw new RangeError(`ratePerSecond must be > 0, got ${opts.ratePerSecond}`);
    if (!(opts.burst >= 1) || !Number.isFinite(opts.burst)) throw new RangeError(`burst must be >= 1, got ${opts.burst}`);
    this.rate = opts.ratePerSecond / 1000;
    this.burst = opts.burst;
    this.clock = opts.clock ?? (() => performance.now());
    this.tokens = opts.burst;
    this.at = this.clock();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    const now = this.clock();
    // A clock that steps back refills nothing.
    this.tokens = Math.min(this.burst, this.tokens + Math.max(0, now - this.at) * this.rate);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
}
