/**
 * The HTTP edge: health, the REST API and the iPXE script endpoint.
 * Route handlers only translate between HTTP and the services.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { packageVersion } from '../version.js';
import type { HostPort, HttpLimits } from '../config/types.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { checkingIntervalMs } from './limits.js';
import type { Logger } from '../log.js';
import type { LeaseService } from '../leases/service.js';
import { authorize, type ApiAuth } from './auth.js';
import { declareAccess, type RouteAccess } from './access.js';
import { leaseRoutes } from './routes/leases.js';
import { reservationRoutes } from './routes/reservations.js';
import { bootRoutes, type BootRouteDeps } from './routes/boot.js';
import { machineRoutes } from './routes/machines.js';
import type { MachineService } from '../machines/service.js';
import type { Operations } from '../machines/operations.js';
import type { Mac } from '../net/mac.js';
import { bootAssetRoutes } from './routes/boot-assets.js';
import { bootMediaRoutes, type BootMediaRouteDeps } from './routes/boot-media.js';
import { imageRoutes } from './routes/images.js';
import { diskRoutes, type DiskRouteDeps } from './routes/disks.js';
import type { ImageService } from '../images/service.js';
import type { EventBus } from '../events/bus.js';
import { statusRoutes, type StatusRouteOptions } from './routes/status.js';
import { metricsRoutes } from './routes/metrics.js';
import type { Metrics } from '../metrics/registry.js';


export interface HttpDeps {
  readonly log: Logger;
  /** Absent when metalboot hands out no addresses (proxy/off). */
  readonly leases?: LeaseService;
  readonly auth: ApiAuth;
  readonly clock: () => number;
  /** Directory of the iPXE programs served under /boot-assets/. */
  readonly bootAssetsDir: string;
  /** Builds the boot medium of /api/v1/boot-media (absent in narrow tests). */
  readonly bootMedia?: BootMediaRouteDeps['build'];
  /** The daemon's event stream (absent in narrow tests). */
  readonly bus?: EventBus;
  /** What /boot/<mac>.ipxe needs (machines, disks, addresses, policy); defaults to the unknown-machine script. */
  readonly boot?: Omit<BootRouteDeps, 'log' | 'bus'>;
  readonly machines?: { readonly service: MachineService; readonly operations: Operations; readonly timeline?: (mac: Mac) => unknown[] };
  /** Status page and event stream (their model and streams, built by the composition root), and /metrics; absent in narrow tests. */
  readonly status?: Omit<StatusRouteOptions, 'auth'> & { readonly metrics?: Metrics };
  /** Absent when iSCSI is disabled. */
  readonly storage?: { readonly images: ImageService } & Omit<DiskRouteDeps, 'auth' | 'log'>;
  /** Timeouts of http.limits (the connection caps are applied by guardConnections); absent = node's and fastify's defaults. */
  readonly limits?: Pick<HttpLimits, 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs'> & Partial<Pick<HttpLimits, 'idleTimeoutMs'>>;
}

/** A route as registered (HEAD twins of GET routes included). */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  /** What it declared (access.ts); undefined: every request to it is refused. */
  readonly access: RouteAccess | undefined;
}

const ROUTES = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Every route the app registered, in order: what the auth test walks, so a new route is covered by it. */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return ROUTES.get(app) ?? [];
}

export function buildHttpApp(deps: HttpDeps): FastifyInstance {
  // removeAdditional off: an unknown body key is a client mistake to report, not to drop.
  const app = Fastify({ logger: false, bodyLimit: 1 << 20, ajv: { customOptions: { removeAdditional: false } }, ...timeoutOptions(deps.limits) });
  const routes: RegisteredRoute[] = [];
  ROUTES.set(app, routes);
  if (deps.limits?.idleTimeoutMs) closeIdleConnections(app, deps.limits.idleTimeoutMs);
  // Before any route: the hook is inherited by the plugin scopes registered below. It fixes each
  // route's access in its config, which is what authorize() reads per request (access.ts).
  app.addHook('onRoute', (r) => {
    const access = declareAccess(r);
    for (const method of [r.method].flat()) routes.push({ method: String(method), url: r.url, access });
  });

  app.addHook('onResponse', async (req, reply) => {
    if (deps.log.isLevelEnabled('debug')) deps.log.debug({ event: 'http.request', method: req.method, url: req.url.slice(0, 200), status: reply.statusCode, from: req.ip }, 'http');
  });

  // Schema failures name the field: "body.bootMode: must be equal to one of the allowed values".
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      const v = err.validation[0];
      const p = (v?.params ?? {}) as { additionalProperty?: string; missingProperty?: string; allowedValues?: unknown[] };
      const field = [err.validationContext ?? 'request', ...(v?.instancePath ? v.instancePath.split('/').filter(Boolean) : []), ...(p.additionalProperty ? [p.additionalProperty] : []), ...(p.missingProperty ? [p.missingProperty] : [])].join('.');
      const what = p.additionalProperty ? 'unknown field' : `${v?.message ?? 'invalid'}${p.allowedValues ? ` (${p.allowedValues.join(', ')})` : ''}`;
      return reply.code(400).send({ error: `${field}: ${what}` });
    }
    // RFC 9110 §15.5.16: a body in a media type the route does not take; name the header.
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(415).send({ error: `headers.content-type: ${JSON.stringify(String(req.headers['content-type'] ?? '').slice(0, 80))} is not accepted here` });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) deps.log.error({ event: 'http.error', err: err.message }, 'request failed');
    return reply.code(status).send({ error: status === 500 ? 'internal error' : err.message });
  });
  // Token and read-only checks on the route the router matched (never the raw URL, which the
  // router percent-decodes): a read-only token gets 403 on a write here, before body parsing and
  // schema validation. Routes keep requireChangeRight as well.
  app.addHook('onRequest', authorize(deps.auth, {
    statusPublic: deps.status?.public ?? false,
    onUndeclared: (method, url) => deps.log.error({ event: 'http.route-undeclared', method, url }, 'route declares no access: refused'),
  }));
  if (deps.status?.metrics) metricsRoutes(app, deps.status.metrics);
  if (deps.status) statusRoutes(app, { ...deps.status, auth: deps.auth });
  // The OpenAPI document is built from the routes' JSON schemas (registered in the scope below).
  void app.register(swagger, {
    openapi: {
      info: { title: 'metalboot API', version: packageVersion(), description: 'Every /api route needs Authorization: Bearer <token> (the daemon writes it to <dataDir>/api-token).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  void app.register(async (api) => {
    api.get('/healthz', { config: { access: 'public' } }, async () => ({ status: 'ok' }));
    leaseRoutes(api, deps.leases ? () => deps.leases!.list() : undefined, deps.clock);
    reservationRoutes(api, deps.leases, deps.auth, deps.log);
    bootRoutes(api, { log: deps.log, ...(deps.bus ? { bus: deps.bus } : {}), ...(deps.boot ?? { publicUrl: '', unknown: 'ignore', sanboot: { tries: 3, retryDelaySec: 5, fallback: 'exit' } }) });
    if (deps.machines) {
      machineRoutes(api, {
        machines: deps.machines.service, operations: deps.machines.operations, auth: deps.auth, log: deps.log,
        ...(deps.machines.timeline ? { timeline: deps.machines.timeline } : {}), ...(deps.storage ? { images: deps.storage.images } : {}),
      });
    }
    bootAssetRoutes(api, deps.bootAssetsDir, deps.log);
    if (deps.bootMedia) bootMediaRoutes(api, { log: deps.log, build: deps.bootMedia });
    if (deps.storage) {
      const ops = deps.machines?.operations;
      imageRoutes(api, deps.storage.images, deps.auth, deps.log, ops ? (id, run) => ops.track('import', undefined, run) : undefined);
      diskRoutes(api, { ...deps.storage, auth: deps.auth, log: deps.log });
    }
    docsRoutes(api, () => app.swagger() as object);
  });
  return app;
}

/** GET /docs: the OpenAPI document (JSON at /docs/openapi.json) and a plain index of the routes. */
function docsRoutes(app: FastifyInstance, spec: () => object): void {
  // Public: the shape of the API (paths and schemas), no data.
  app.get('/docs/openapi.json', { schema: { hide: true }, config: { access: 'public' } }, async () => spec());
  app.get('/docs', { schema: { hide: true }, config: { access: 'public' } }, async (_req, reply) => {
    const doc = spec() as { paths?: Record<string, Record<string, { summary?: string }>> };
    const esc = (x: string) => x.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
    const rows = Object.entries(doc.paths ?? {}).flatMap(([p, ops]) => Object.keys(ops).map((m) => `<tr><td>${esc(m.toUpperCase())}</td><td><code>${esc(p)}</code></td></tr>`));
    return reply.type('text/html; charset=utf-8').send(`<!doctype html><meta charset="utf-8"><title>metalboot API</title>
<h1>metalboot API</h1><p>OpenAPI 3 document: <a href="/docs/openapi.json">/docs/openapi.json</a>. Every <code>/api</code> route needs <code>Authorization: Bearer &lt;token&gt;</code>.</p>
<table>${rows.join('')}</table>`);
  });
}

/**
 * fastify sets keepAliveTimeout and requestTimeout on the server itself; headersTimeout and how
 * often node checks for connections past it go to http.createServer. A connection that sends
 * nothing is answered 408 and closed once headersTimeoutMs have passed (node's ConnectionsList
 * counts from the connection), which is what frees the fds of an idle flood.
 */
function timeoutOptions(l: HttpDeps['limits']): { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number; http?: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } } {
  if (!l) return {};
  return {
    keepAliveTimeout: l.keepAliveTimeoutMs, requestTimeout: l.requestTimeoutMs, ...(l.idleTimeoutMs ? { connectionTimeout: l.idleTimeoutMs } : {}),
    http: { headersTimeout: l.headersTimeoutMs, requestTimeout: l.requestTimeoutMs, connectionsCheckingInterval: checkingIntervalMs(l.headersTimeoutMs) },
  };
}

/**
 * fastify's connectionTimeout is node's server.timeout: each socket's inactivity timer (nothing
 * read and no write progress for that long; node's net.Socket also counts a pending write that
 * drains as activity). It is what closes a client that stopped reading a download, which holds
 * its socket and the open file: none of the other timeouts covers a response being sent. Node
 * destroys a timed-out socket unless a 'timeout' listener takes it over; this one destroys it as
 * well, except while a handler is still working on its answer (request read in full, nothing sent
 * yet): a disk provision or a power action may stay silent longer than the timeout. Such a socket's
 * timer is re-armed, so it is watched again once the answer is being sent. The event stream's
 * heartbeat (sseHeartbeatMs) keeps a live stream well within the timeout.
 */
function closeIdleConnections(app: FastifyInstance, idleMs: number): void {
  const inFlight = new WeakMap<Socket, Set<{ readonly req: IncomingMessage; readonly res: ServerResponse }>>();
  app.addHook('onRequest', async (req, reply) => {
    const socket = req.raw.socket;
    let set = inFlight.get(socket);
    if (!set) inFlight.set(socket, set = new Set());
    const entry = { req: req.raw, res: reply.raw };
    set.add(entry);
    reply.raw.once('close', () => set.delete(entry));
  });
  app.server.on('timeout', (socket: Socket) => {
    const working = [...(inFlight.get(socket) ?? [])].some(({ req, res }) => req.complete && !res.headersSent);
    if (working) socket.setTimeout(idleMs);
    else socket.destroy();
  });
}

export async function listen(app: FastifyInstance, at: HostPort): Promise<void> {
  await app.listen({ host: at.host, port: at.port });
}
