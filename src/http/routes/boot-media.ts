/**
 * GET /api/v1/boot-media/metalboot.iso[?format=iso|usb&ip=A.B.C.D/P&gateway=&dns=]: the boot medium
 * for machines without PXE (boot/media.ts), built on request from boot-assets/. It carries no
 * secret (only this metalboot's URL and, for networks without DHCP, a static address), but is
 * an API route all the same: an operator's download, read access.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../log.js';
import { MediaRequestError, parseMediaRequest, type MediaRequest } from '../../boot/media.js';

export interface BootMediaRouteDeps {
  readonly log: Logger;
  /** Builds the image for a checked request. */
  readonly build: (req: MediaRequest) => Promise<Buffer>;
}

export function bootMediaRoutes(app: FastifyInstance, deps: BootMediaRouteDeps): void {
  app.get<{ Querystring: Record<string, string> }>('/api/v1/boot-media/metalboot.iso', {
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { format: { type: 'string', enum: ['iso', 'usb'] }, ip: { type: 'string', maxLength: 18 }, gateway: { type: 'string', maxLength: 15 }, dns: { type: 'string', maxLength: 15 } },
      },
    },
  }, async (req, reply) => {
    let r: MediaRequest;
    try {
      r = parseMediaRequest(req.query);
    } catch (e) {
      if (e instanceof MediaRequestError) return reply.code(400).send({ error: e.message });
      throw e;
    }
    const t0 = Date.now();
    const img = await deps.build(r);
    deps.log.info({ event: 'http.boot-media', format: r.format, network: r.network.kind, bytes: img.length, ms: Date.now() - t0, from: req.ip }, 'boot medium built');
    const name = r.format === 'usb' ? 'metalboot-usb.img' : 'metalboot.iso';
    return reply.type('application/octet-stream').header('content-disposition', `attachment; filename="${name}"`).send(img);
  });
}
