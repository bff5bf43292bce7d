/**
 * HTTPS to one Redfish BMC: certificate trust (a CA file, or a pinned SHA-256 fingerprint of the
 * BMC's own certificate), keep-alive connections, a per-BMC concurrency cap and rate limit,
 * timeouts, bounded retries (network errors and timeouts of idempotent requests, 503 for all),
 * JSON bodies with a size cap. Knows nothing of sessions or resources (redfish.ts does).
 *
 * Pinning is checked in the TLS socket's `secureConnect`, before the request (and any credential
 * in it) is released to the socket: a wrong certificate never sees a password.
 */
import https from 'node:https';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { PowerError } from './driver.js';

export interface RedfishTrust {
  /** PEM of the CA(s) that signed the BMC's certificate; when given, the pin is not used. */
  readonly ca?: Buffer | undefined;
  /** Uppercase colon-separated SHA-256 fingerprint (node's `fingerprint256` form) the BMC's certificate must have. */
  readonly certSha256?: string | undefined;
}

export interface RedfishHttpOptions {
  readonly host: string;
  readonly port: number;
  readonly trust: RedfishTrust;
  /** Per request try. */
  readonly timeoutMs: number;
  /** Further tries after a network error or timeout (idempotent methods) or a 503 (any method). */
  readonly retries: number;
  /** Requests in flight to this BMC at once (BMCs are small computers). */
  readonly maxConcurrent: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerSecond: number;
}

export interface RedfishResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Parsed JSON body, or undefined when the body was empty or not JSON. */
  readonly body: unknown;
}

export type FetchedCert = { fingerprint256: string; subject: string; validTo: string };

const MAX_BODY = 4 << 20;
const MAX_RETRY_AFTER_MS = 5000;

/** Canonical form of a fingerprint given as hex with or without colons. */
export function normaliseFingerprint(s: string): string | undefined {
  const hex = s.replace(/:/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

export class CertificateMismatch extends Error {
  constructor(readonly presented: string, readonly pinned: string) {
    super(`its certificate (SHA-256 ${presented}) is not the pinned one (${pinned}); refused until an admin accepts the new certificate`);
  }
}

class UnpinnedCertificate extends Error {
  constructor(readonly presented: string) {
    super(`no CA file and no pinned certificate; the BMC presents SHA-256 ${presented} (accept it explicitly)`);
  }
}

/** An agent whose every new TLS connection is checked against the pin before it carries a request. */
class PinnedAgent extends https.Agent {
  constructor(public pin: string | undefined, opts: https.AgentOptions) {
    super(opts);
  }

  // https.Agent's documented extension point (node's http.Agent#createConnection).
  // Returning the socket is enough: the agent calls its own callback with it.
  override createConnection(options: tls.ConnectionOptions): Duplex {
    const s = tls.connect({ ...options, rejectUnauthorized: false });
    s.once('secureConnect', () => {
      const fp = s.getPeerCertificate().fingerprint256 ?? '';
      if (this.pin === undefined) s.destroy(new UnpinnedCertificate(fp));
      else if (fp !== this.pin) s.destroy(new CertificateMismatch(fp, this.pin));
    });
    return s;
  }
}

export class RedfishHttp {
  readonly target: string;
  private readonly agent: https.Agent;
  private readonly minIntervalMs: number;
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private nextSlotAt = 0;
  private closed = false;

  constructor(private readonly opts: RedfishHttpOptions) {
    this.target = `${opts.host}:${opts.port}`;
    const base: https.AgentOptions = { keepAlive: true, maxSockets: opts.maxConcurrent, maxFreeSockets: opts.maxConcurrent, timeout: opts.timeoutMs };
    this.agent = opts.trust.ca
      ? new https.Agent({ ...base, ca: opts.trust.ca, rejectUnauthorized: true })
      : new PinnedAgent(opts.trust.certSha256, base);
    this.minIntervalMs = opts.maxRequestsPerSecond > 0 ? 1000 / opts.maxRequestsPerSecond : 0;
  }

  /** One request with retries; throws PowerError (unreachable) when no answer came in time. */
  async request(method: string, path: string, o: { body?: unknown; headers?: Record<string, string> } = {}): Promise<RedfishResponse> {
    const idempotent = method !== 'POST' && method !== 'PATCH';
    for (let attempt = 0; ; attempt++) {
      let res: RedfishResponse;
      try {
        res = await this.limited(() => this.once(method, path, o.body, o.headers ?? {}));
      } catch (e) {
        if (e instanceof CertificateMismatch || e instanceof UnpinnedCertificate) {
          throw new PowerError('redfish', this.target, 'refused', e.message, { cause: e });
        }
        if ((e as NodeJS.ErrnoException).code?.startsWith('ERR_TLS') || (e as NodeJS.ErrnoException).code === 'DEPTH_ZERO_SELF_SIGNED_CERT'
          || /certificate|self.signed|altname/i.test((e as Error).message)) {
          throw new PowerError('redfish', this.target, 'refused', `TLS: ${(e as Error).message} (the CA file does not vouch for this BMC)`, { cause: e });
        }
        // A keep-alive socket the BMC closed under us is worth one more try even for POST.
        const stale = (e as NodeJS.ErrnoException).code === 'ECONNRESET' && attempt === 0;
        if ((idempotent || stale) && attempt < this.opts.retries && !this.closed) { await sleep(backoff(attempt)); continue; }
        throw new PowerError('redfish', this.target, 'unreachable', `${method} ${path}: ${describeNetError(e)}`, { cause: e });
      }
      if (res.status === 503 && attempt < this.opts.retries && !this.closed) {
        await sleep(retryAfterMs(res.headers['retry-after']) ?? backoff(attempt));
        continue;
      }
      return res;
    }
  }

  /** The BMC's certificate as presented (for probe and for pin-on-first-use), trusting nothing. */
  static fetchCertificate(host: string, port: number, timeoutMs: number): Promise<FetchedCert> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host, port, rejectUnauthorized: false });
      const t = setTimeout(() => { s.destroy(); reject(new PowerError('redfish', `${host}:${port}`, 'unreachable', `no TLS handshake within ${timeoutMs} ms`)); }, timeoutMs);
      s.once('secureConnect', () => {
        clearTimeout(t);
        const c = s.getPeerCertificate();
        s.end();
        resolve({ fingerprint256: c.fingerprint256, subject: String(c.subject?.CN ?? ''), validTo: c.valid_to });
      });
      s.once('error', (e) => { clearTimeout(t); reject(new PowerError('redfish', `${host}:${port}`, 'unreachable', describeNetError(e), { cause: e })); });
    });
  }

  /** Pins the certificate learned on first use (the caller has stored it first). */
  pin(fingerprint256: string): void {
    if (this.agent instanceof PinnedAgent) this.agent.pin = fingerprint256;
  }

  get pinned(): boolean {
    return !(this.agent instanceof PinnedAgent) || this.agent.pin !== undefined;
  }

  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  private once(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<RedfishResponse> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = https.request({
        host: this.opts.host, port: this.opts.port, method, path, agent: this.agent,
        headers: {
          accept: 'application/json', 'odata-version': '4.0',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...headers,
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) { req.destroy(new Error(`response body over ${MAX_BODY} bytes`)); return; }
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          if (text.trim() !== '') { try { parsed = JSON.parse(text); } catch { parsed = undefined; } }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
        res.on('error', reject);
      });
      // One deadline for the whole exchange (connect, TLS, response), not per socket event.
      const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${this.opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })), this.opts.timeoutMs);
      req.on('error', (e) => { clearTimeout(timer); reject(e); });
      req.end(payload);
    });
  }

  /** Concurrency cap and rate limit per BMC. */
  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.opts.maxConcurrent) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      if (this.minIntervalMs > 0) {
        const now = Date.now();
        const at = Math.max(now, this.nextSlotAt);
        this.nextSlotAt = at + this.minIntervalMs;
        if (at > now) await sleep(at - now);
      }
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

function backoff(attempt: number): number {
  return Math.min(200 * 2 ** attempt, 2000);
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP date; bounded so a BMC cannot park a command. */
function retryAfterMs(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const ms = /^\d+$/.test(v.trim()) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

function describeNetError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ECONNREFUSED') return 'connection refused (nothing listens on the Redfish port)';
  if (err.code === 'ETIMEDOUT') return err.message;
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') return `${err.code} (no route to the BMC)`;
  return err.code ? `${err.code}: ${err.message}` : err.message;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
