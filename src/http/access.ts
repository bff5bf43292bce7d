/**
 * Who may call a route, decided on the route the router matched — never on the raw URL.
 *
 * The raw request line is not what the router routes: find-my-way percent-decodes the path
 * (RFC 3986 §2.1), so `/%61pi/v1/disks` reaches the `/api/v1/disks` handler while
 * `req.url.startsWith('/api/')` is false. Every route therefore carries its access in its route
 * config (`config.access`), fixed when it is registered (the onRoute hook in server.ts calls
 * `declareAccess`), and the request hook reads it from `req.routeOptions.config`:
 *   public     no token: the boot chain (firmware and iPXE carry none), the page shell, health,
 *              /metrics and /docs, which hold no secrets and no per-machine data beyond what
 *              README "Security model" lists
 *   status     the status data under /status/api/v1: without a token only while status.public
 *              is on (the routes exist only then; checked again here)
 *   api-read   any valid token, read-only or read-write
 *   api-write  the read-write token; a read-only one gets 403
 * A route under /api/ that declares nothing is api-read (GET/HEAD) or api-write (any other
 * method); any other route that declares nothing has no access and every request to it is
 * refused (500), so a route added later without a thought about access fails closed.
 */
import type { RouteOptions } from 'fastify';

export const ACCESS_KINDS = ['public', 'status', 'api-read', 'api-write'] as const;
export type RouteAccess = (typeof ACCESS_KINDS)[number];

/** Methods that change nothing (RFC 9110 §9.2.1): the only ones a read-only token or no token may use. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

export class RouteAccessError extends Error {
  constructor(readonly method: string, readonly url: string, reason: string) {
    super(`route ${method} ${url}: ${reason}`);
    this.name = 'RouteAccessError';
  }
}

function isAccess(x: unknown): x is RouteAccess {
  return typeof x === 'string' && (ACCESS_KINDS as readonly string[]).includes(x);
}

/** Whether a route pattern lies under the token-protected API. */
function isApiPattern(url: string): boolean {
  return url === '/api' || url.startsWith('/api/');
}

/**
 * The access of one method of a route being registered, from its declaration or its place; undefined
 * when it has none (then requests to it are refused). Throws at registration for declarations
 * that cannot be right: an unknown kind, a route under /api/ declared public, a write declared
 * readable without the read-write token.
 */
export function accessFor(method: string, url: string, declared: unknown): RouteAccess | undefined {
  if (declared !== undefined && !isAccess(declared)) throw new RouteAccessError(method, url, `config.access ${JSON.stringify(declared)} is not one of ${ACCESS_KINDS.join(', ')}`);
  const safe = SAFE_METHODS.has(method);
  if (isApiPattern(url)) {
    if (declared !== undefined && declared !== 'api-read' && declared !== 'api-write') throw new RouteAccessError(method, url, `a route under /api cannot be ${declared}`);
    const access = declared ?? (safe ? 'api-read' : 'api-write');
    if (!safe && access !== 'api-write') throw new RouteAccessError(method, url, 'a write needs api-write');
    return access;
  }
  if (declared !== undefined && !safe && declared !== 'api-write') throw new RouteAccessError(method, url, `a ${method} route cannot be ${declared}`);
  return declared;
}

/** onRoute: fixes config.access on the route being registered (HEAD twins pass here too); returns what it set. */
export function declareAccess(r: RouteOptions): RouteAccess | undefined {
  const methods = [r.method].flat().map(String);
  const declared = (r.config as { access?: unknown } | undefined)?.access;
  const kinds = new Set(methods.map((m) => accessFor(m, r.url, declared)));
  // One route object with several methods gets one access: the strictest, so a GET+POST pair is api-write.
  const access = kinds.has(undefined) ? undefined : kinds.has('api-write') ? 'api-write' : [...kinds][0];
  r.config = { ...(r.config ?? {}), access } as RouteOptions['config'];
  return access;
}

/** The access of the route a request matched (undefined: none declared). */
export function matchedAccess(config: unknown): RouteAccess | undefined {
  const a = (config as { access?: unknown } | undefined)?.access;
  return isAccess(a) ? a : undefined;
}

/**
 * For a request that matched no route: whether its path, decoded the way a router or a proxy
 * might (percent-decoding up to three times, dot segments, repeated slashes, case), names
 * something under /api — answered 401 without a token like a real API route, so probing does not
 * map which API paths exist. Bounded: at most 2048 characters are looked at.
 */
export function looksLikeApi(rawUrl: string): boolean {
  let p = rawUrl.slice(0, 2048).split('?')[0]!.split(';')[0]!;
  for (let i = 0; i < 3; i++) {
    let next: string;
    try { next = decodeURIComponent(p); } catch { break; }
    if (next === p) break;
    p = next;
  }
  const segs: string[] = [];
  for (const s of p.toLowerCase().split(/[/\\]+/)) {
    if (s === '' || s === '.') continue;
    if (s === '..') segs.pop(); else segs.push(s);
  }
  return segs[0] === 'api';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (see above); set by declareAccess when the route is registered. */
    access?: RouteAccess;
  }
}
