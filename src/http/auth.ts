/**
 * API authentication: every /api route needs `Authorization: Bearer <token>` (which route is
 * which is decided on the matched route, see access.ts). The read-write
 * token lives in a file (http.apiTokenFile, default <dataDir>/api-token, created 0600 at first
 * start); an optional read-only token (http.readOnlyTokenFile) may read but not change. Both
 * files are re-read when they change, so `metalboot token rotate` takes effect at once.
 */
import { timingSafeEqual, createHash, randomBytes } from 'node:crypto';
import { statSync, readFileSync } from 'node:fs';
import { writeFile, rename, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { looksLikeApi, matchedAccess } from './access.js';

export type Access = 'rw' | 'ro';

export interface ApiAuth {
  /** The access a request's Authorization header grants, or undefined. */
  check(authorization: string | undefined): Access | undefined;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Compare fixed-length digests so neither length nor content leaks through timing. */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export class TokenFileError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`API token file ${file}: ${reason}`);
    this.name = 'TokenFileError';
  }
}

/** One token per file, at least 16 characters, no spaces. */
export function parseTokenText(file: string, text: string): string {
  const token = text.trim();
  if (token.length < 16 || /\s/.test(token)) throw new TokenFileError(file, 'must hold one token of at least 16 characters, no spaces');
  return token;
}

class TokenFile {
  private token: string | undefined;
  private mtimeMs = -1;
  private checkedAt = 0;

  constructor(readonly file: string, private readonly clock: () => number) {}

  /** The current token, re-read at most once a second when the file's mtime changed. */
  get(): string | undefined {
    const now = this.clock();
    if (now - this.checkedAt < 1000 && this.token !== undefined) return this.token;
    this.checkedAt = now;
    try {
      const st = statSync(this.file);
      if (st.mtimeMs !== this.mtimeMs) {
        this.token = parseTokenText(this.file, readFileSync(this.file, 'utf8'));
        this.mtimeMs = st.mtimeMs;
      }
    } catch {
      // Unreadable or malformed after a rotation mistake: keep the last good token.
    }
    return this.token;
  }
}

export class TokenAuth implements ApiAuth {
  private readonly rw: TokenFile;
  private readonly ro: TokenFile | undefined;

  constructor(rwFile: string, roFile?: string, clock: () => number = Date.now) {
    this.rw = new TokenFile(rwFile, clock);
    this.ro = roFile ? new TokenFile(roFile, clock) : undefined;
    if (this.rw.get() === undefined) throw new TokenFileError(rwFile, 'unreadable or malformed');
  }

  check(authorization: string | undefined): Access | undefined {
    return accessOf(authorization, this.rw.get(), this.ro?.get());
  }
}

/** What a Bearer header grants against the current read-write and read-only tokens. */
function accessOf(authorization: string | undefined, rw: string | undefined, ro: string | undefined): Access | undefined {
  const m = /^Bearer (\S+)$/.exec(authorization ?? '');
  if (!m) return undefined;
  if (rw !== undefined && sameSecret(m[1]!, rw)) return 'rw';
  if (ro !== undefined && sameSecret(m[1]!, ro)) return 'ro';
  return undefined;
}

/** A fixed token (tests, embedding). */
export function staticAuth(rw: string, ro?: string): ApiAuth {
  return { check: (authorization) => accessOf(authorization, rw, ro) };
}

function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Writes a new token atomically (0600); returns it. Used at first start and by `token rotate`. */
export async function writeTokenFile(file: string, token = newToken()): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${token}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return token;
}

/**
 * The one onRequest hook that authorises every request, on the access the matched route declares
 * (access.ts), never on the raw URL. 401 without a valid token where one is needed, 403 for a
 * read-only token on a write (before body parsing and validation, so a read-only client learns
 * nothing about a write's shape), 500 for a route that declares no access (fail closed). A
 * request that matched no route answers 401 without a token when its path looks like /api (so
 * probing does not map the API), else it goes on to the plain 404, which carries no data.
 */
export function authorize(auth: ApiAuth, o: { readonly statusPublic: boolean; readonly onUndeclared?: (method: string, url: string) => void }) {
  const unauthorized = (reply: FastifyReply) => reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or wrong API token (Authorization: Bearer <token>)' });
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const granted = auth.check(req.headers.authorization);
    if (req.is404) {
      if (!granted && looksLikeApi(req.url)) await unauthorized(reply);
      return;
    }
    const access = matchedAccess(req.routeOptions.config);
    if (access === 'public' || (access === 'status' && o.statusPublic)) return;
    if (access === undefined) {
      o.onUndeclared?.(req.method, String(req.routeOptions.url));
      await reply.code(500).send({ error: 'internal error: this route declares no access' });
      return;
    }
    // api-read, api-write, and status while status.public is off.
    if (!granted) { await unauthorized(reply); return; }
    if (access === 'api-write' && granted !== 'rw') { await reply.code(403).send({ error: 'this token is read-only' }); return; }
    (req as FastifyRequest & { access?: Access }).access = granted;
  };
}

/** Fastify preHandler for mutating routes: a read-only token may not change anything. */
export function requireChangeRight(auth: ApiAuth) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const access = (req as FastifyRequest & { access?: Access }).access ?? auth.check(req.headers.authorization);
    if (access !== 'rw') {
      await reply.code(access === 'ro' ? 403 : 401).send({ error: access === 'ro' ? 'this token is read-only' : 'missing or wrong API token' });
    }
  };
}
