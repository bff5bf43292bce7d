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
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../../log.js';
import { tryParseMac, type Mac } from '../../net/mac.js';
import type { DiskService } from '../../disks/service.js';
import { publicView, type DiskRecord } from '../../disks/record.js';
import type { VolumeBackend } from '../../storage/backend.js';
import type { IscsiReconciler } from '../../reconcile.js';
import type { HostPort } from '../../config/types.js';
import { requireChangeRight, type ApiAuth } from '../auth.js';
import { sendError } from '../errors.js';

export interface DiskRouteDeps {
  readonly disks: DiskService;
  readonly backend: VolumeBackend;
  readonly reconciler: IscsiReconciler;
  readonly portal: HostPort;
  readonly auth: ApiAuth;
  readonly log: Logger;
}

const NAME = { type: 'string', minLength: 1, maxLength: 48 } as const;

export function diskRoutes(app: FastifyInstance, d: DiskRouteDeps): void {
  const { disks, auth, log } = d;
  const mac = (raw: string, reply: FastifyReply): Mac | undefined => {
    const m = tryParseMac(raw);
    if (!m) void reply.code(400).send({ error: `params.mac: ${JSON.stringify(raw.slice(0, 40))} is not a MAC address` });
    return m;
  };
  const view = (r: DiskRecord) => {
    const t = d.reconciler.lastShow().find((x) => x.iqn === r.targetIqn);
    return {
      ...publicView(r),
      portal: `${d.portal.host}:${d.portal.port}`, lun: 1,
      exported: t !== undefined,
      sessions: (t?.sessions ?? []).map((s) => ({ initiator: s.initiator, addresses: s.connections.map((c) => c.address) })),
    };
  };
  const change = { preHandler: requireChangeRight(auth) };

  app.get('/api/v1/disks', async () => ({ disks: disks.list().map(view) }));

  app.get<{ Params: { mac: string } }>('/api/v1/disks/:mac', async (req, reply) => {
    const m = mac(req.params.mac, reply);
    if (!m) return reply;
    const r = disks.get(m);
    return r ? view(r) : reply.code(404).send({ error: `disk of ${m}: not provisioned` });
  });

  app.put<{ Params: { mac: string }; Body: { image: string; initiatorIqn?: string } }>('/api/v1/disks/:mac', {
    ...change,
    schema: { body: { type: 'object', additionalProperties: false, required: ['image'], properties: { image: NAME, initiatorIqn: { type: 'string', minLength: 1, maxLength: 223 } } } },
  }, async (req, reply) => {
    const m = mac(req.params.mac, reply);
    if (!m) return reply;
    try {
      const r = await disks.provision(m, { imageId: req.body.image, ...(req.body.initiatorIqn !== undefined ? { initiatorIqn: req.body.initiatorIqn } : {}) });
      log.info({ event: 'api.disk-provisioned', mac: m, image: r.imageId, from: req.ip }, 'disk provisioned');
      return reply.code(201).send(view(r));
    } catch (e) {
      return sendError(reply, e, log, 'api.disk-failed');
    }
  });

  app.post<{ Params: { mac: string } }>('/api/v1/disks/:mac/reset', change, async (req, reply) => {
    const m = mac(req.params.mac, reply);
    if (!m) return reply;
    try {
      return view(await disks.reset(m));
    } catch (e) {
      return sendError(reply, e, log, 'api.disk-failed');
    }
  });

  app.get<{ Params: { mac: string } }>('/api/v1/disks/:mac/checkpoints', async (req, reply) => {
    const m = mac(req.params.mac, reply);
    if (!m) return reply;
    try {
      return { checkpoints: (await disks.listCheckpoints(m)).map((c) => ({ name: c.name })) };
    } catch (e) {
      return sendError(reply, e, log, 'api.disk-failed');
    }
  });

  app.post<{ Params: { mac: string }; Body: { name: string } }>('/api/v1/disks/:mac/checkpoints', {
    ...change,
    schema: { body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: NAME } } },
  }, async (req, reply) => {
    const m = mac(req.params.mac, reply);
    if (!m) return reply;
    try {
      const c = await disks.checkpoint(m, req.body.name);
      return reply.code(201).send({ name: c.name });
    } catch (e) {
      return sendError(reply, e, log, 'api.disk-failed');
    }
  });

  app.post<{ Params: { mac: string }; Body: { checkpoint: string } }>('/api/v1/disks/:mac/restore', {
    ...change,
    schema: { body: { type: 'object', additionalProperties: false, required: ['checkpoint'], properties: { checkpoint: NAME } } },
  }, async (req, reply) => {
    const m = mac(req.params.mac, reply);
    if (!m) return reply;
    try {
      return await disks.restore(m, req.body.checkpoint);
    } catch (e) {
      return sendError(reply, e, log, 'api.disk-failed');
    }
  });

  app.delete<{ Params: { mac: string } }>('/api/v1/disks/:mac', change, async (req, reply) => {
    const m = mac(req.params.mac, reply);
    if (!m) return reply;
    try {
      await disks.deprovision(m);
      return reply.code(204).send();
    } catch (e) {
      return sendError(reply, e, log, 'api.disk-failed');
    }
  });

  app.get('/api/v1/storage', async (_req, reply) => {
    try {
      return await d.backend.usage();
    } catch (e) {
      return sendError(reply, e, log, 'api.storage-failed');
    }
  });
}
