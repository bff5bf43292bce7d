/**
 * The status page and its data.
 *   GET /, GET /machines/:mac          the page (status/index.html; the view is chosen by its script)
 *   GET /status/{app.js,lib.js,style.css}
 *   GET <prefix>/status                snapshot: {now, lastSeq, public, access, machines, leases,
 *                                      transfers, sessions, pool, counters}
 *   GET <prefix>/status/machines/:mac  {machine, timeline, events}
 * plus the event routes (routes/events.ts) under the same prefixes. <prefix> is /api/v1, which
 * needs a token (ro or rw) like every /api route, and — only when status.public is on —
 * /status/api/v1, which needs none. The page itself holds no data, so it is always served.
 *
 * The page's files are read from <repo>/status/ (beside dist/, like boot-assets/) once and kept;
 * they are sent with a strict Content-Security-Policy: no inline script or style, nothing from
 * another origin, so even a mistake in escaping hostile text (hostnames, syslog lines) cannot
 * run code.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiAuth } from '../auth.js';
import type { StatusModel } from '../../status/snapshot.js';
import type { EventStreams } from './events.js';
import { macRoute } from '../reply.js';

/** <root>/status from dist/src/http/routes/status.js */
export const STATUS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../status');

export const PUBLIC_PREFIX = '/status/api/v1';
export const API_PREFIX = '/api/v1';

export interface StatusRouteOptions {
  readonly model: StatusModel;
  readonly streams: EventStreams;
  readonly auth: ApiAuth;
  /** status.public: the data is readable without a token (under PUBLIC_PREFIX). */
  readonly public: boolean;
  readonly staticDir?: string;
}

const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'lib.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export function statusRoutes(app: FastifyInstance, o: StatusRouteOptions): void {
  const dir = o.staticDir ?? STATUS_DIR;
  const cache = new Map<string, Buffer>();
  const file = (name: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    let body = cache.get(name);
    if (!body) {
      try {
        body = readFileSync(path.join(dir, name));
      } catch {
        return reply.code(500).send({ error: `status page file ${name} is missing from ${dir}` });
      }
      cache.set(name, body);
    }
    return reply.headers(SECURITY_HEADERS).header('content-type', FILES[name]!).header('cache-control', 'no-cache').send(body);
  };
  // The page's own files hold no data: public.
  const pub = { config: { access: 'public' } } as const;
  app.get('/', pub, file('index.html'));
  app.get('/machines/:mac', pub, file('index.html'));
  for (const name of Object.keys(FILES)) if (name !== 'index.html') app.get(`/status/${name}`, pub, file(name));

  const prefixes = o.public ? [API_PREFIX, PUBLIC_PREFIX] : [API_PREFIX];
  for (const prefix of prefixes) {
    // The API hook already demands a token under /api; checked here again so these reads never
    // depend on a hook registered elsewhere.
    const guard = prefix === API_PREFIX
      ? { onRequest: async (req: FastifyRequest, reply: FastifyReply) => { if (!o.auth.check(req.headers.authorization)) await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or wrong API token' }); } }
      : { config: { access: 'status' as const } };
    app.get(`${prefix}/status`, guard, async (req) => {
      const snap = await o.model.snapshot({ sse: { ...o.streams.stats } });
      return { ...snap, public: o.public, access: o.auth.check(req.headers.authorization) ?? null };
    });
    app.get<{ Params: { mac: string } }>(`${prefix}/status/machines/:mac`, guard, macRoute(undefined, (mac) => o.model.machine(mac)));
    o.streams.routes(app, prefix, guard);
  }
  o.streams.closeAllOnShutdown(app);
}
