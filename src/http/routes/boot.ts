/** GET /boot/<mac>.ipxe: the script iPXE runs after DHCP pointed it here (dhcp/bootfile.ts). */
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../log.js';
import { tryParseMac } from '../../net/mac.js';
import { renderUnknownMachineScript } from '../../boot/ipxe.js';

export function bootRoutes(app: FastifyInstance, log: Logger): void {
  app.get<{ Params: { file: string } }>('/boot/:file', async (req, reply) => {
    const m = /^(.+)\.ipxe$/.exec(req.params.file);
    const mac = m ? tryParseMac(m[1]!) : undefined;
    if (!mac) return reply.code(404).type('text/plain').send('not found\n');
    log.info({ event: 'http.boot-script', mac, from: req.ip }, 'iPXE script served');
    return reply.type('text/plain; charset=utf-8').send(renderUnknownMachineScript(mac));
  });
}
