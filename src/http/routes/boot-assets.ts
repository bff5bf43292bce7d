/**
 * GET /boot-assets/<name>: the iPXE programs over HTTP, for UEFI HTTP-boot
 * clients (dhcp.bootFiles.httpX64/httpArm64 point here). Only plain file names
 * of regular files directly in the directory; no paths, no dot files.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../log.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function bootAssetRoutes(app: FastifyInstance, dir: string, log: Logger): void {
  app.get<{ Params: { name: string } }>('/boot-assets/:name', async (req, reply) => {
    const { name } = req.params;
    if (!NAME_RE.test(name) || name.includes('..')) return reply.code(404).send({ error: 'not found' });
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) return reply.code(404).send({ error: 'not found' });
    log.info({ event: 'http.boot-asset', file: name, from: req.ip, bytes: st.size }, 'boot program served');
    return reply.type('application/octet-stream').header('content-length', st.size).send(createReadStream(file));
  });
}
