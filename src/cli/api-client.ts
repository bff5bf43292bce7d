/**
 * The admin CLI's side of the REST API: where the API is and which token to send (flags > env >
 * config file > defaults), a fetch wrapper with bounded timeouts, and typed errors that the
 * commands turn into one clear line and an exit code.
 *
 * The token is never taken from argv (argv is visible to every user in /proc): it comes from
 * $METALBOOT_TOKEN or from a file (--token-file, $METALBOOT_TOKEN_FILE, `tokenFile:` in the
 * config file, default /var/lib/metalboot/api-token). It is sent only in the Authorization header
 * and appears in no message.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseDocument } from 'yaml';
import { parseTokenText, TokenFileError } from '../http/auth.js';

export const DEFAULT_API = 'http://127.0.0.1:8080';
export const DEFAULT_TOKEN_FILE = '/var/lib/metalboot/api-token';
/** Per request (BMC calls through the daemon retry for a while, so not too short). */
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** An upload is aborted when no byte has moved for this long. */
const DEFAULT_UPLOAD_IDLE_MS = 60_000;
/** After the last byte of an upload, the daemon finishes the import (hash, qcow2 conversion). */
const DEFAULT_UPLOAD_FINISH_MS = 600_000;

/** What the CLI reads and writes; tests pass their own. */
export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  /** Config files to look at, first found wins. Default: ~/.config/metalboot/cli.yaml, /etc/metalboot/cli.yaml. */
  configFiles?: readonly string[];
  /** Poll interval for `provision --wait` (default 500 ms). */
  pollIntervalMs?: number;
}

/** Bad command line: exit 2 with the usage. */
export class UsageError extends Error {}

/** Unusable CLI config file: exit 2. */
export class CliConfigError extends Error {}

/** Anything that went wrong talking to the daemon: exit 1. */
export class ApiError extends Error {}

export class ApiUnreachableError extends ApiError {
  constructor(readonly url: string, reason: string) {
    super(`cannot reach ${url}: ${reason} (is metalbootd running there? set --api or $METALBOOT_API)`);
  }
}

export class ApiTimeoutError extends ApiError {
  constructor(readonly url: string, what: string) {
    super(`${url}: ${what}`);
  }
}

/** 401: the token was refused; the message says where it came from. */
export class ApiAuthError extends ApiError {
  constructor(readonly url: string, token: TokenSource) {
    super(`the API at ${url} refused the token (HTTP 401); it came from ${describeToken(token)} — is that the daemon's current token (http.apiTokenFile)?`);
  }
}

/** Any other 4xx/5xx: the API's own `error` message. */
export class ApiStatusError extends ApiError {
  constructor(readonly status: number, readonly apiMessage: string, readonly method: string, readonly url: string) {
    super(`${apiMessage} (HTTP ${status} from ${method} ${url})`);
  }
}

/** The token file cannot be read or holds no token. */
export class TokenError extends ApiError {}

export type Origin = 'flag' | 'env' | 'config' | 'default';

export type TokenSource =
  | { readonly kind: 'env'; readonly name: 'METALBOOT_TOKEN' }
  | { readonly kind: 'file'; readonly file: string; readonly from: Origin; readonly configFile?: string };

export interface ApiSettings {
  /** Base URL without a trailing slash. */
  readonly api: string;
  readonly apiFrom: Origin;
  readonly token: TokenSource;
  /** The config file that was read, if any. */
  readonly configFile?: string;
}

export interface CliConfig {
  readonly file: string;
  readonly api?: string;
  readonly tokenFile?: string;
}

export function describeToken(t: TokenSource): string {
  if (t.kind === 'env') return '$METALBOOT_TOKEN';
  const why = { flag: '--token-file', env: '$METALBOOT_TOKEN_FILE', config: `tokenFile in ${t.configFile ?? 'the config file'}`, default: 'the default' }[t.from];
  return `token file ${t.file} (${why})`;
}

function defaultConfigFiles(env: NodeJS.ProcessEnv): string[] {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : env.HOME ? path.join(env.HOME, '.config') : undefined;
  return [...(base ? [path.join(base, 'metalboot', 'cli.yaml')] : []), '/etc/metalboot/cli.yaml'];
}

/** The first config file that exists, parsed: `api:` and `tokenFile:`, nothing else. */
async function loadCliConfig(files: readonly string[]): Promise<CliConfig | undefined> {
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new CliConfigError(`cannot read ${file}: ${code ?? String(e)}`);
    }
    const doc = parseDocument(text, { prettyErrors: false });
    if (doc.errors.length) throw new CliConfigError(`${file}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    const v: unknown = doc.toJS();
    if (v === null || v === undefined) return { file };
    if (typeof v !== 'object' || Array.isArray(v)) throw new CliConfigError(`${file}: must be a mapping with api: and tokenFile:`);
    const out: { file: string; api?: string; tokenFile?: string } = { file };
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      if (k !== 'api' && k !== 'tokenFile') throw new CliConfigError(`${file}: unknown key ${JSON.stringify(k)} (only api and tokenFile)`);
      if (typeof val !== 'string' || val === '') throw new CliConfigError(`${file}: ${k} must be a non-empty string`);
      if (k === 'tokenFile' && !path.isAbsolute(val)) throw new CliConfigError(`${file}: tokenFile must be an absolute path`);
      out[k] = val;
    }
    if (out.api !== undefined) {
      try {
        normaliseApiUrl(out.api);
      } catch (e) {
        throw new CliConfigError(`${file}: api: ${(e as Error).message}`);
      }
    }
    return out;
  }
  return undefined;
}

/** "http://host:port[/prefix]" without a trailing slash; http and https only, no credentials. */
function normaliseApiUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`${JSON.stringify(raw.slice(0, 200))} is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${u.protocol} URLs are not supported (http or https)`);
  if (u.username || u.password) throw new UsageError('the API URL must not carry credentials (the token comes from a file or $METALBOOT_TOKEN)');
  if (u.search || u.hash) throw new UsageError('the API URL must not have a query or fragment');
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/**
 * Where the API is and where the token comes from. Precedence: flags, then env, then the config
 * file, then defaults. For the token: --token-file, $METALBOOT_TOKEN, $METALBOOT_TOKEN_FILE,
 * tokenFile in the config file, /var/lib/metalboot/api-token.
 */
export async function resolveApiSettings(flags: { api?: string | undefined; tokenFile?: string | undefined }, io: Pick<CliIo, 'env' | 'configFiles'>): Promise<ApiSettings> {
  const env = io.env;
  const cfg = await loadCliConfig(io.configFiles ?? defaultConfigFiles(env));
  const cfgFile = cfg ? { configFile: cfg.file } : {};
  let api: string;
  let apiFrom: Origin;
  if (flags.api !== undefined) { api = flags.api; apiFrom = 'flag'; }
  else if (env.METALBOOT_API) { api = env.METALBOOT_API; apiFrom = 'env'; }
  else if (cfg?.api !== undefined) { api = cfg.api; apiFrom = 'config'; }
  else { api = DEFAULT_API; apiFrom = 'default'; }
  try {
    api = normaliseApiUrl(api);
  } catch (e) {
    const where = { flag: '--api', env: '$METALBOOT_API', config: `api in ${cfg?.file}`, default: 'default' }[apiFrom];
    throw new UsageError(`${where}: ${(e as Error).message}`);
  }
  let token: TokenSource;
  if (flags.tokenFile !== undefined) {
    if (flags.tokenFile === '') throw new UsageError('--token-file needs a file name');
    token = { kind: 'file', file: path.resolve(flags.tokenFile), from: 'flag' };
  } else if (env.METALBOOT_TOKEN) token = { kind: 'env', name: 'METALBOOT_TOKEN' };
  else if (env.METALBOOT_TOKEN_FILE) token = { kind: 'file', file: path.resolve(env.METALBOOT_TOKEN_FILE), from: 'env' };
  else if (cfg?.tokenFile !== undefined) token = { kind: 'file', file: cfg.tokenFile, from: 'config', configFile: cfg.file };
  else token = { kind: 'file', file: DEFAULT_TOKEN_FILE, from: 'default' };
  return { api, apiFrom, token, ...cfgFile };
}

/** Reads the token; the same rule as the daemon (one token, at least 16 characters, no spaces). */
export async function readToken(src: TokenSource, env: NodeJS.ProcessEnv): Promise<string> {
  if (src.kind === 'env') {
    try {
      return parseTokenText('$METALBOOT_TOKEN', env.METALBOOT_TOKEN ?? '');
    } catch {
      throw new TokenError('$METALBOOT_TOKEN must hold one token of at least 16 characters, no spaces');
    }
  }
  let text: string;
  try {
    text = await readFile(src.file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    const hint = code === 'EACCES' ? ' (it is 0600: run as its owner, e.g. with sudo, or point --token-file / $METALBOOT_TOKEN_FILE at a copy you may read)'
      : code === 'ENOENT' ? ' (the daemon writes it at first start; set --token-file, $METALBOOT_TOKEN_FILE or tokenFile in cli.yaml if it lives elsewhere)' : '';
    throw new TokenError(`cannot read ${describeToken(src)}: ${code}${hint}`);
  }
  try {
    return parseTokenText(src.file, text);
  } catch (e) {
    throw new TokenError(e instanceof TokenFileError ? `${describeToken(src)}: must hold one token of at least 16 characters, no spaces` : String(e));
  }
}

function causeOf(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const c = e.cause as { code?: string; message?: string; errors?: { code?: string }[] } | undefined;
  if (c) {
    if (c.code) return c.code;
    if (c.errors?.[0]?.code) return c.errors[0].code;
    if (c.message) return c.message;
  }
  return e.message;
}

function unreachableReason(e: unknown): string {
  const r = causeOf(e);
  // fetch refuses some port numbers outright (1, 9, 6000, …: the "bad ports" of the Fetch standard).
  return r === 'bad port' ? 'bad port (fetch refuses this port)' : r;
}

export interface RequestOptions {
  readonly query?: Record<string, string | boolean | undefined>;
  readonly body?: unknown;
  readonly timeoutMs?: number;
}

/** The fetch wrapper: one base URL, one token, bounded time for every request. */
export class ApiClient {
  readonly api: string;

  /**
   * `token` may be the TokenError of an unreadable token file: requests then go without a token,
   * so that an unreachable API is reported as such, and a 401 reports why there was no token.
   */
  constructor(readonly settings: ApiSettings, private readonly token: string | TokenError, private readonly timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS) {
    this.api = settings.api;
  }

  /** Resolves the settings and reads the token. */
  static async open(flags: { api?: string | undefined; tokenFile?: string | undefined }, io: Pick<CliIo, 'env' | 'configFiles'>, timeoutMs?: number): Promise<ApiClient> {
    const s = await resolveApiSettings(flags, io);
    const token = await readToken(s.token, io.env).catch((e: unknown) => { if (e instanceof TokenError) return e; throw e; });
    return new ApiClient(s, token, timeoutMs);
  }

  private authHeader(): Record<string, string> {
    return typeof this.token === 'string' ? { authorization: `Bearer ${this.token}` } : {};
  }

  url(p: string, query?: RequestOptions['query']): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    return `${this.api}${p}${qs ? `?${qs}` : ''}`;
  }

  get<T>(p: string, o: RequestOptions = {}): Promise<T> { return this.request<T>('GET', p, o); }
  post<T>(p: string, o: RequestOptions = {}): Promise<T> { return this.request<T>('POST', p, o); }
  put<T>(p: string, o: RequestOptions = {}): Promise<T> { return this.request<T>('PUT', p, o); }
  delete<T>(p: string, o: RequestOptions = {}): Promise<T> { return this.request<T>('DELETE', p, o); }

  /** JSON in, JSON out; undefined for 204. */
  async request<T>(method: string, p: string, o: RequestOptions = {}): Promise<T> {
    const url = this.url(p, o.query);
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    const headers: Record<string, string> = { ...this.authHeader(), accept: 'application/json' };
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const signal = AbortSignal.timeout(timeoutMs);
    return this.exchange<T>(method, url, { method, headers, signal, ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}) }, () => `no answer within ${Math.round(timeoutMs / 1000)} s`);
  }

  /**
   * Streams a local file as the request body (application/octet-stream, Content-Length set to the
   * file's size, never buffered whole). Aborted when no byte moved for `idleMs`, or when the
   * daemon takes longer than `finishMs` to answer after the last byte.
   */
  async upload<T>(p: string, file: string, o: { query?: RequestOptions['query']; idleMs?: number; finishMs?: number; onProgress?: (sent: number, total: number) => void } = {}): Promise<T> {
    if (typeof this.token !== 'string') throw this.token;
    const st = await stat(file).catch((e: NodeJS.ErrnoException) => { throw new UsageError(`cannot read ${file}: ${e.code ?? e.message}`); });
    if (!st.isFile()) throw new UsageError(`${file} is not a regular file`);
    const size = st.size;
    const idleMs = o.idleMs ?? DEFAULT_UPLOAD_IDLE_MS;
    const finishMs = o.finishMs ?? DEFAULT_UPLOAD_FINISH_MS;
    const ac = new AbortController();
    let why = `no progress for ${Math.round(idleMs / 1000)} s`;
    let timer = setTimeout(() => ac.abort(), idleMs);
    // Once the exchange is over, the body may still be pulled for a moment: no new timer then.
    let over = false;
    const arm = (ms: number, reason: string) => { clearTimeout(timer); if (over) return; why = reason; timer = setTimeout(() => ac.abort(), ms); };
    let sent = 0;
    const stream = createReadStream(file, { highWaterMark: 1 << 20 });
    // Opened now so that an unreadable file is a usage error, not a network one.
    await new Promise<void>((resolve, reject) => { stream.once('open', () => resolve()); stream.once('error', reject); })
      .catch((e: NodeJS.ErrnoException) => { clearTimeout(timer); throw new UsageError(`cannot read ${file}: ${e.code ?? e.message}`); });
    async function* chunks(): AsyncGenerator<Buffer> {
      for await (const c of stream) {
        if (over) return;
        sent += (c as Buffer).length;
        arm(idleMs, `no progress for ${Math.round(idleMs / 1000)} s`);
        o.onProgress?.(sent, size);
        yield c as Buffer;
      }
      arm(finishMs, `the daemon did not finish the import within ${Math.round(finishMs / 1000)} s of the last byte`);
    }
    const url = this.url(p, o.query);
    try {
      return await this.exchange<T>('PUT', url, {
        method: 'PUT',
        headers: { ...this.authHeader(), accept: 'application/json', 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body: Readable.toWeb(Readable.from(chunks())) as ReadableStream<Uint8Array>,
        duplex: 'half',
        signal: ac.signal,
      } as RequestInit, () => why);
    } finally {
      over = true;
      clearTimeout(timer);
      // An early answer (401, 4xx) leaves the body half sent: abort it so the connection closes.
      ac.abort();
      stream.destroy();
    }
  }

  /** GET of a binary answer (e.g. the boot medium); errors as for request(). */
  async download(p: string, o: RequestOptions = {}): Promise<Buffer> {
    const url = this.url(p, o.query);
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    const init = { method: 'GET', headers: { ...this.authHeader(), accept: 'application/octet-stream' }, signal: AbortSignal.timeout(timeoutMs) };
    return this.exchange<Buffer>('GET', url, init, () => `no answer within ${Math.round(timeoutMs / 1000)} s`, true);
  }

  private async exchange<T>(method: string, url: string, init: RequestInit, timeoutReason: () => string, binary = false): Promise<T> {
    let res: Response;
    try {
      res = await fetch(url, init);
    } catch (e) {
      if (init.signal?.aborted) throw new ApiTimeoutError(url, timeoutReason());
      throw new ApiUnreachableError(url, unreachableReason(e));
    }
    let bytes: Buffer;
    try {
      bytes = Buffer.from(await res.arrayBuffer());
    } catch (e) {
      if (init.signal?.aborted) throw new ApiTimeoutError(url, timeoutReason());
      throw new ApiUnreachableError(url, unreachableReason(e));
    }
    if (binary && res.ok) return bytes as T;
    const text = bytes.toString('utf8');
    if (res.status === 401) throw typeof this.token === 'string' ? new ApiAuthError(this.api, this.settings.token) : this.token;
    let body: unknown;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        if (res.ok) throw new ApiError(`${method} ${url}: the answer is not JSON (HTTP ${res.status}); is ${this.api} metalbootd's API?`);
      }
    }
    if (!res.ok) {
      const b = body as { error?: unknown; message?: unknown } | undefined;
      const msg = typeof b?.error === 'string' ? (typeof b.message === 'string' ? b.message : b.error) : `HTTP ${res.status} ${res.statusText}`.trim();
      throw new ApiStatusError(res.status, msg, method, url);
    }
    return body as T;
  }
}
