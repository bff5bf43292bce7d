/** GET /api/v1/leases */
import type { FastifyInstance } from 'fastify';
import type { Lease } from '../../leases/lease.js';
import { formatIpv4 } from '../../net/ipv4.js';

export interface LeaseView {
  mac: string | null;
  ip: string;
  state: 'bound' | 'expired' | 'released' | 'declined';
  expiresAt: string;
  hostname: string | null;
  clientArch: number | null;
  vendorClass: string | null;
}

function leaseView(l: Lease, now: number): LeaseView {
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

export function leaseRoutes(app: FastifyInstance, leases: (() => readonly Lease[]) | undefined, clock: () => number): void {
  app.get('/api/v1/leases', {
    schema: { response: { 200: { type: 'object', properties: { leases: { type: 'array', items: leaseSchema } }, required: ['leases'] } } },
  }, async () => {
    const now = clock();
    return { leases: (leases?.() ?? []).map((l) => leaseView(l, now)) };
  });
}
