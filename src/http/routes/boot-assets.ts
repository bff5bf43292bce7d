/**
 * GET /boot-assets/<name>: the iPXE programs over HTTP, for UEFI HTTP-boot
 * clients (dhcp.bootFiles.httpX64/httpArm64 point here). Only plain file names
 * of regular files directly in the directory that resolve inside it
 * (fs/under-root.ts); no paths, no dot files. Public: firmware presents no token.
 */
import { openUnderRoot } from '../../fs/under-root.js';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../log.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function bootAssetRoutes(app: FastifyInstance, dir: string, log: Logger): void {
  app.get<{ Params: { name: string } }>('/boot-assets/:name', { config: { access: 'public' } }, async (req, reply) => {
    const { name } = req.params;
    if (!NAME_RE.test(name) || name.includes('..')) return reply.code(404).send({ error: 'not found' });
    const opened = await openUnderRoot(dir, name);
    if (!opened.ok) {
      if (opened.kind === 'refused') log.warn({ event: 'http.boot-asset-refused', file: name, from: req.ip, reason: opened.reason }, 'boot program refused');
      return reply.code(404).send({ error: 'not found' });
    }
    log.info({ event: 'http.boot-asset', file: name, from: req.ip, bytes: opened.stat.size }, 'boot program served');
    return reply.type('application/octet-stream').header('content-length', opened.stat.size).send(opened.file.createReadStream());
  });
}
