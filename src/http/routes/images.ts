/**
 * Golden images.
 *   GET    /api/v1/images
 *   GET    /api/v1/images/:id
 *   PUT    /api/v1/images/:id?format=raw|qcow2   body: the image bytes (application/octet-stream), streamed
 * Imports are operations (kind "import"): GET /api/v1/operations shows one while its request runs.
 *   POST   /api/v1/images/:id/import              { path, format? }: a file on the server
 *   DELETE /api/v1/images/:id                     409 while a machine's disk comes from it
 */
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import type { Logger } from '../../log.js';
import type { ImageService, ImageFormat } from '../../images/service.js';
import { requireChangeRight, type ApiAuth } from '../auth.js';
import { answering } from '../reply.js';

const FORMATS: readonly ImageFormat[] = ['raw', 'qcow2'];

/** Runs an import as an operation (listable and pollable while it runs); absent in narrow tests. */
export type TrackImport = <T>(id: string, run: (step: (name: string) => void) => Promise<T>) => Promise<{ op: { id: string }; result: T }>;

const untracked: TrackImport = async (_id, run) => ({ op: { id: '' }, result: await run(() => {}) });

export function imageRoutes(app: FastifyInstance, images: ImageService, auth: ApiAuth, log: Logger, track: TrackImport = untracked): void {
  // Uploads are streamed to the backend as they arrive; fastify's body limit does not apply.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  const importFailed = { log, event: 'api.image-import-failed' };

  app.get('/api/v1/images', async () => ({ images: await images.list() }));

  app.get<{ Params: { id: string } }>('/api/v1/images/:id', answering({ log, event: 'api.image-failed' }, async (req, reply) => {
    const i = await images.get(req.params.id);
    return i ?? reply.code(404).send({ error: `image ${req.params.id.slice(0, 60)} does not exist` });
  }));

  app.put<{ Params: { id: string }; Querystring: { format?: string } }>('/api/v1/images/:id', {
    preHandler: requireChangeRight(auth),
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { format: { type: 'string', enum: [...FORMATS] } } } },
  }, answering(importFailed, async (req, reply) => {
    if (req.headers['content-type'] !== 'application/octet-stream') {
      const got = JSON.stringify(String(req.headers['content-type'] ?? '').slice(0, 80));
      return reply.code(415).send({ error: `headers.content-type: ${got}: send the image as application/octet-stream` });
    }
    const len = req.headers['content-length'];
    const sizeBytes = len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined;
    const { op, result: info } = await track(req.params.id, (step) => {
      step('receiving');
      return images.importStream(req.params.id, req.body as Readable, (req.query.format ?? 'raw') as ImageFormat, sizeBytes);
    });
    log.info({ event: 'api.image-uploaded', image: info.id, bytes: info.sizeBytes, from: req.ip }, 'image uploaded');
    return reply.code(201).send({ ...info, ...(op.id ? { operation: op.id } : {}) });
  }));

  app.post<{ Params: { id: string }; Body: { path: string; format?: ImageFormat } }>('/api/v1/images/:id/import', {
    preHandler: requireChangeRight(auth),
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['path'],
        properties: { path: { type: 'string', minLength: 1, maxLength: 4096 }, format: { type: 'string', enum: [...FORMATS] } },
      },
    },
  }, answering(importFailed, async (req, reply) => {
    const { op, result: info } = await track(req.params.id, (step) => {
      step(req.body.format === 'qcow2' ? 'converting' : 'copying');
      return images.importPath(req.params.id, req.body.path, req.body.format ?? 'raw');
    });
    return reply.code(201).send({ ...info, ...(op.id ? { operation: op.id } : {}) });
  }));

  app.delete<{ Params: { id: string } }>('/api/v1/images/:id', { preHandler: requireChangeRight(auth) }, answering({ log, event: 'api.image-remove-failed' }, async (req, reply) => {
    await images.remove(req.params.id);
    return reply.code(204).send();
  }));
}
