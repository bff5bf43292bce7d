/**
 * The HTTP edge: health, the REST API and the iPXE script endpoint.
 * Route handlers only translate between HTTP and the services.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { HostPort } from '../config/types.js';
import type { Logger } from '../log.js';
import { formatIpv4 } from '../net/ipv4.js';
import { tryParseMac } from '../net/mac.js';
import { renderUnknownMachineScript } from '../boot/ipxe.js';
import type { Lease } from '../leases/lease.js';

export interface HttpDeps {
  readonly log: Logger;
  /** Current leases; absent when metalboot hands out no addresses (proxy/off). */
  readonly leases?: () => readonly Lease[];
  readonly clock: () => number;
}

export interface LeaseView {
  mac: string | null;
  ip: string;
  state: 'bound' | 'expired' | 'released' | 'declined';
  expiresAt: string;
  hostname: string | null;
  clientArch: number | null;
  vendorClass: string | null;
}

export function leaseView(l: Lease, now: number): LeaseView {
  return {
    mac: l.mac ?? null,
    ip: formatIpv4(l.ip),
    state: l.state === 'bound' && l.expiresAt <= now ? 'expired' : l.state,
    expiresAt: new Date(l.expiresAt).toISOString(),
    hostname: l.hostname ?? null,
    clientArch: l.clientArch ?? null,
    vendorClass: l.vendorClass ?? null,
  };
}

const leaseSchema = {
  type: 'object',
  properties: {
    mac: { type: ['string', 'null'] },
    ip: { type: 'string' },
    state: { type: 'string', enum: ['bound', 'expired', 'released', 'declined'] },
    expiresAt: { type: 'string' },
    hostname: { type: ['string', 'null'] },
    clientArch: { type: ['integer', 'null'] },
    vendorClass: { type: ['string', 'null'] },
  },
  required: ['mac', 'ip', 'state', 'expiresAt', 'hostname', 'clientArch', 'vendorClass'],
} as const;

export function buildHttpApp(deps: HttpDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });

  app.addHook('onResponse', async (req, reply) => {
    deps.log.debug({ event: 'http.request', method: req.method, url: req.url.slice(0, 200), status: reply.statusCode, from: req.ip }, 'http');
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/api/v1/leases', {
    schema: { response: { 200: { type: 'object', properties: { leases: { type: 'array', items: leaseSchema } }, required: ['leases'] } } },
  }, async () => {
    const now = deps.clock();
    return { leases: (deps.leases?.() ?? []).map((l) => leaseView(l, now)) };
  });

  // iPXE fetches this after DHCP hands it the URL (dhcp/bootfile.ts).
  app.get<{ Params: { file: string } }>('/boot/:file', async (req, reply) => {
    const m = /^(.+)\.ipxe$/.exec(req.params.file);
    const mac = m ? tryParseMac(m[1]!) : undefined;
    if (!mac) {
      return reply.code(404).type('text/plain').send('not found\n');
    }
    deps.log.info({ event: 'http.boot-script', mac, from: req.ip }, 'iPXE script served');
    return reply.type('text/plain; charset=utf-8').send(renderUnknownMachineScript(mac));
  });

  return app;
}

export async function listen(app: FastifyInstance, at: HostPort): Promise<void> {
  await app.listen({ host: at.host, port: at.port });
}
