/**
 * Static reservations by MAC through the API (config-file reservations are
 * listed too, but only the file changes them).
 *   GET    /api/v1/reservations
 *   PUT    /api/v1/reservations/:mac   { ip, hostname? }
 *   DELETE /api/v1/reservations/:mac
 */
import type { FastifyInstance } from 'fastify';
import type { LeaseService } from '../../leases/service.js';
import type { Logger } from '../../log.js';
import { formatIpv4, tryParseIpv4 } from '../../net/ipv4.js';
import { requireChangeRight, type ApiAuth } from '../auth.js';
import { macOr400 } from '../reply.js';

const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function reservationRoutes(app: FastifyInstance, leases: LeaseService | undefined, auth: ApiAuth, log: Logger): void {
  const notServing = { error: 'metalboot hands out no addresses (dhcp.mode is not server)' };

  app.get('/api/v1/reservations', async (_req, reply) => {
    if (!leases) return reply.code(409).send(notServing);
    return { reservations: leases.reservations().map((r) => ({ mac: r.mac, ip: formatIpv4(r.ip), hostname: r.hostname ?? null, source: r.source })) };
  });

  app.put<{ Params: { mac: string }; Body: { ip: string; hostname?: string } }>('/api/v1/reservations/:mac', {
    preHandler: requireChangeRight(auth),
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['ip'],
        properties: { ip: { type: 'string', maxLength: 15 }, hostname: { type: 'string', maxLength: 63 } },
      },
    },
  }, async (req, reply) => {
    if (!leases) return reply.code(409).send(notServing);
    const mac = macOr400(req.params.mac, reply, { unicast: true });
    if (!mac) return reply;
    const ip = tryParseIpv4(req.body.ip);
    if (ip === undefined) return reply.code(400).send({ error: `body.ip: ${JSON.stringify(req.body.ip)} is not an IPv4 address` });
    const { hostname } = req.body;
    if (hostname !== undefined && !HOSTNAME_RE.test(hostname)) return reply.code(400).send({ error: 'body.hostname: not a valid host name label' });
    const res = await leases.reserve({ mac, ip, ...(hostname !== undefined ? { hostname } : {}) });
    if (!res.ok) {
      const why = {
        'config-owned': 'this MAC is reserved in the config file; change it there',
        'not-in-subnet': 'ip is not a host address of any configured subnet',
        reserved: 'ip is reserved for another MAC',
        'in-use': 'ip is leased to another client now',
      }[res.reason];
      return reply.code(res.reason === 'not-in-subnet' ? 400 : 409).send({ error: why });
    }
    log.info({ event: 'api.reservation-set', mac, ip: formatIpv4(ip), from: req.ip }, 'reservation set');
    return { mac, ip: formatIpv4(ip), hostname: hostname ?? null, source: 'api' };
  });

  app.delete<{ Params: { mac: string } }>('/api/v1/reservations/:mac', { preHandler: requireChangeRight(auth) }, async (req, reply) => {
    if (!leases) return reply.code(409).send(notServing);
    const mac = macOr400(req.params.mac, reply);
    if (!mac) return reply;
    const existing = leases.reservations().find((r) => r.mac === mac);
    if (!existing) return reply.code(404).send({ error: 'no reservation for this MAC' });
    if (existing.source === 'config') return reply.code(409).send({ error: 'this MAC is reserved in the config file; change it there' });
    await leases.unreserve(mac);
    log.info({ event: 'api.reservation-deleted', mac, from: req.ip }, 'reservation deleted');
    return reply.code(204).send();
  });
}
