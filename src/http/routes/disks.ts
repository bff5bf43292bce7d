/**
 * Machine disks (clone of an image, exported as an iSCSI target locked to the machine).
 * Responses never carry CHAP secrets: only the machine's own boot script does.
 *   GET    /api/v1/disks
 *   GET    /api/v1/disks/:mac
 *   PUT    /api/v1/disks/:mac                 { image, initiatorIqn? }   provision
 *   POST   /api/v1/disks/:mac/reset           back to the image
 *   GET    /api/v1/disks/:mac/checkpoints
 *   POST   /api/v1/disks/:mac/checkpoints     { name }
 *   POST   /api/v1/disks/:mac/restore         { checkpoint }
 *   DELETE /api/v1/disks/:mac
 *   GET    /api/v1/storage                    pool usage
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../log.js';
import type { DiskService } from '../../disks/service.js';
import { publicView, type DiskRecord } from '../../disks/record.js';
import type { HostPort } from '../../config/types.js';
import { requireChangeRight, type ApiAuth } from '../auth.js';
import { answering, macRoute } from '../reply.js';

export interface DiskRouteDeps {
  readonly disks: DiskService;
  readonly portal: HostPort;
  readonly auth: ApiAuth;
  readonly log: Logger;
}

const NAME = { type: 'string', minLength: 1, maxLength: 48 } as const;

export function diskRoutes(app: FastifyInstance, d: DiskRouteDeps): void {
  const { disks, auth, log } = d;
  const failed = { log, event: 'api.disk-failed' };
  const view = (r: DiskRecord) => ({ ...publicView(r), portal: `${d.portal.host}:${d.portal.port}`, lun: 1, ...disks.exportOf(r) });
  const change = { preHandler: requireChangeRight(auth) };

  app.get('/api/v1/disks', async () => ({ disks: disks.list().map(view) }));

  app.get<{ Params: { mac: string } }>('/api/v1/disks/:mac', macRoute(failed, (m, _req, reply) => {
    const r = disks.get(m);
    return r ? view(r) : reply.code(404).send({ error: `disk of ${m}: not provisioned` });
  }));

  app.put<{ Params: { mac: string }; Body: { image: string; initiatorIqn?: string } }>('/api/v1/disks/:mac', {
    ...change,
    schema: { body: { type: 'object', additionalProperties: false, required: ['image'], properties: { image: NAME, initiatorIqn: { type: 'string', minLength: 1, maxLength: 223 } } } },
  }, macRoute(failed, async (m, req, reply) => {
    const r = await disks.provision(m, { imageId: req.body.image, ...(req.body.initiatorIqn !== undefined ? { initiatorIqn: req.body.initiatorIqn } : {}) });
    log.info({ event: 'api.disk-provisioned', mac: m, image: r.imageId, from: req.ip }, 'disk provisioned');
    return reply.code(201).send(view(r));
  }));

  app.post<{ Params: { mac: string } }>('/api/v1/disks/:mac/reset', change, macRoute(failed, async (m) => view(await disks.reset(m))));

  app.get<{ Params: { mac: string } }>('/api/v1/disks/:mac/checkpoints', macRoute(failed, async (m) => ({ checkpoints: (await disks.listCheckpoints(m)).map((c) => ({ name: c.name })) })));

  app.post<{ Params: { mac: string }; Body: { name: string } }>('/api/v1/disks/:mac/checkpoints', {
    ...change,
    schema: { body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: NAME } } },
  }, macRoute(failed, async (m, req, reply) => {
    const c = await disks.checkpoint(m, req.body.name);
    return reply.code(201).send({ name: c.name });
  }));

  app.post<{ Params: { mac: string }; Body: { checkpoint: string } }>('/api/v1/disks/:mac/restore', {
    ...change,
    schema: { body: { type: 'object', additionalProperties: false, required: ['checkpoint'], properties: { checkpoint: NAME } } },
  }, macRoute(failed, (m, req) => disks.restore(m, req.body.checkpoint)));

  app.delete<{ Params: { mac: string } }>('/api/v1/disks/:mac', change, macRoute(failed, async (m, _req, reply) => {
    await disks.deprovision(m);
    return reply.code(204).send();
  }));

  app.get('/api/v1/storage', answering({ log, event: 'api.storage-failed' }, () => disks.usage()));
}
