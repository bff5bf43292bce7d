/**
 * The HTTP edge: health, the REST API and the iPXE script endpoint.
 * Route handlers only translate between HTTP and the services.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { HostPort } from '../config/types.js';
import type { Logger } from '../log.js';
import type { LeaseService } from '../leases/service.js';
import { requireToken, type ApiAuth } from './auth.js';
import { leaseRoutes } from './routes/leases.js';
import { reservationRoutes } from './routes/reservations.js';
import { bootRoutes, type BootRouteDeps } from './routes/boot.js';
import { machineRoutes } from './routes/machines.js';
import type { MachineService } from '../machines/service.js';
import type { Operations } from '../machines/operations.js';
import { bootAssetRoutes } from './routes/boot-assets.js';
import { imageRoutes } from './routes/images.js';
import { diskRoutes, type DiskRouteDeps } from './routes/disks.js';
import type { ImageService } from '../images/service.js';
import type { EventBus } from '../events/bus.js';
import type { AddressBook } from '../events/addresses.js';


export interface HttpDeps {
  readonly log: Logger;
  /** Absent when metalboot hands out no addresses (proxy/off). */
  readonly leases?: LeaseService;
  readonly auth: ApiAuth;
  readonly clock: () => number;
  /** Directory of the iPXE programs served under /boot-assets/. */
  readonly bootAssetsDir: string;
  /** The daemon's event stream and what it learned about addresses (absent in narrow tests). */
  readonly bus?: EventBus;
  readonly addresses?: AddressBook;
  /** What /boot/<mac>.ipxe needs (machines, disks, addresses, policy); defaults to the unknown-machine script. */
  readonly boot?: Omit<BootRouteDeps, 'log' | 'bus'>;
  readonly machines?: { readonly service: MachineService; readonly operations: Operations };
  /** Absent when iSCSI is disabled. */
  readonly storage?: { readonly images: ImageService } & Omit<DiskRouteDeps, 'auth' | 'log'>;
}

export function buildHttpApp(deps: HttpDeps): FastifyInstance {
  // removeAdditional off: an unknown body key is a client mistake to report, not to drop.
  const app = Fastify({ logger: false, bodyLimit: 1 << 20, ajv: { customOptions: { removeAdditional: false } } });

  app.addHook('onResponse', async (req, reply) => {
    if (deps.log.isLevelEnabled('debug')) deps.log.debug({ event: 'http.request', method: req.method, url: req.url.slice(0, 200), status: reply.statusCode, from: req.ip }, 'http');
  });

  app.addHook('onRequest', requireToken(deps.auth));
  app.get('/healthz', async () => ({ status: 'ok' }));
  leaseRoutes(app, deps.leases ? () => deps.leases!.list() : undefined, deps.clock);
  reservationRoutes(app, deps.leases, deps.auth, deps.log);
  bootRoutes(app, { log: deps.log, ...(deps.bus ? { bus: deps.bus } : {}), ...(deps.boot ?? { publicUrl: '', unknown: 'ignore', sanboot: { tries: 3, retryDelaySec: 5, fallback: 'exit' } }) });
  if (deps.machines) machineRoutes(app, { machines: deps.machines.service, operations: deps.machines.operations, auth: deps.auth, log: deps.log });
  bootAssetRoutes(app, deps.bootAssetsDir, deps.log);
  if (deps.storage) {
    imageRoutes(app, deps.storage.images, deps.auth, deps.log);
    diskRoutes(app, { ...deps.storage, auth: deps.auth, log: deps.log });
  }
  return app;
}

export async function listen(app: FastifyInstance, at: HostPort): Promise<void> {
  await app.listen({ host: at.host, port: at.port });
}
