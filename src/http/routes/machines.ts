/**
 * Machines and operations.
 *   GET    /api/v1/machines[?state=]             list
 *   GET    /api/v1/machines/:mac
 *   PUT    /api/v1/machines/:mac                 enrol (create) or update; BMC password write-only
 *   DELETE /api/v1/machines/:mac[?force=true]    refused while a disk is provisioned unless forced
 *   GET    /api/v1/machines/:mac/power           {power: on|off}
 *   POST   /api/v1/machines/:mac/power           {action: on|off|cycle|reset|soft}
 *   POST   /api/v1/machines/:mac/bootdev         {device, persistent?, efi?}
 *   POST   /api/v1/machines/:mac/provision       {image?} → 202 {operation}; 404 for an image that does not exist
 *   POST   /api/v1/machines/:mac/reset           fresh disk from the image (same target and secret)
 *   POST   /api/v1/machines/:mac/deprovision
 *   POST   /api/v1/machines/:mac/checkpoint      {name}
 *   POST   /api/v1/machines/:mac/restore         {checkpoint}
 *   POST   /api/v1/machines/:mac/maintenance     {on: boolean}
 *   GET    /api/v1/machines/:mac/events          state history
 *   GET    /api/v1/machines/:mac/timeline        last boots, step by step
 *   GET    /api/v1/operations[?mac=&status=]     GET /api/v1/operations/:id
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../../log.js';
import type { Mac } from '../../net/mac.js';
import type { MachineService, MachineSpec } from '../../machines/service.js';
import { MACHINE_STATES, BOOT_MODES, publicMachine, type MachineState } from '../../machines/model.js';
import type { Operations } from '../../machines/operations.js';
import { requireChangeRight, type ApiAuth } from '../auth.js';
import { macOr400, macRoute } from '../reply.js';
import { checkId } from '../../storage/backend.js';

export interface MachineRouteDeps {
  readonly machines: MachineService;
  /** The machine's last boots (DHCP → TFTP → script → iSCSI → active), from the event history. */
  readonly timeline?: (mac: Mac) => unknown[];
  readonly operations: Operations;
  readonly auth: ApiAuth;
  readonly log: Logger;
  /** Image lookup, so provision refuses an unknown image before it starts (absent when iSCSI is off). */
  readonly images?: { get(id: string): Promise<unknown> };
}

const NAME = { type: 'string', minLength: 1, maxLength: 63 } as const;
const BMC = {
  type: 'object', additionalProperties: false, required: ['host', 'user', 'password'],
  properties: {
    host: { type: 'string', minLength: 1, maxLength: 253 }, port: { type: 'integer', minimum: 1, maximum: 65535 },
    user: { type: 'string', minLength: 1, maxLength: 16 }, password: { type: 'string', maxLength: 20 },
    cipherSuite: { enum: ['auto', 17, 3, '1.5'] }, privilege: { enum: ['administrator', 'operator'] },
  },
} as const;
const SPEC = {
  type: 'object', additionalProperties: false,
  properties: {
    name: NAME, ip: { type: ['string', 'null'], maxLength: 15 }, bmc: { anyOf: [BMC, { type: 'null' }] },
    image: { type: ['string', 'null'], maxLength: 48 }, bootMode: { enum: [...BOOT_MODES] }, firmware: { enum: ['bios', 'uefi', 'unknown'] },
    uefiFilename: { type: ['string', 'null'], maxLength: 255 },
    netboot: { anyOf: [{ type: 'object', additionalProperties: false, required: ['kernel'], properties: { kernel: { type: 'string', maxLength: 128 }, initrd: { type: 'string', maxLength: 128 }, cmdline: { type: 'string', maxLength: 2048 } } }, { type: 'null' }] },
  },
} as const;

export function machineRoutes(app: FastifyInstance, d: MachineRouteDeps): void {
  const { machines, log } = d;
  const change = { preHandler: requireChangeRight(d.auth) };
  /** Image names follow the images routes' rule (storage/backend.ts checkId): 400 naming the field. */
  const badImage = (image: string | null | undefined, reply: FastifyReply): boolean => {
    if (image === undefined || image === null) return false;
    const c = checkId(image);
    if (!c.ok) void reply.code(400).send({ error: `body.image: ${JSON.stringify(image.slice(0, 60))}: ${c.reason}` });
    return !c.ok;
  };
  const failed = { log, event: 'api.machine-failed' };
  const actor = (req: { ip: string }) => `api@${req.ip}`;

  app.get<{ Querystring: { state?: MachineState } }>('/api/v1/machines', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { state: { enum: [...MACHINE_STATES] } } } },
  }, async (req) => ({ machines: machines.list(req.query.state).map(publicMachine) }));

  app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac', macRoute(failed, (m, _req, reply) => {
    const x = machines.get(m);
    return x ? publicMachine(x) : reply.code(404).send({ error: `machine ${m}: not known` });
  }));

  // Enrolment only refuses MACs that are no one machine's: such a record can still be read and deleted.
  app.put<{ Params: { mac: string }; Body: MachineSpec }>('/api/v1/machines/:mac', { ...change, schema: { body: SPEC } }, macRoute(failed, async (m, req, reply) => {
    if (badImage(req.body.image, reply)) return reply;
    const existing = machines.get(m);
    if (!existing || existing.state === 'discovered') return reply.code(201).send(publicMachine(await machines.create(m, req.body, actor(req))));
    return publicMachine(await machines.update(m, req.body, actor(req)));
  }, { unicast: true }));

  app.delete<{ Params: { mac: string }; Querystring: { force?: boolean } }>('/api/v1/machines/:mac', {
    ...change, schema: { querystring: { type: 'object', additionalProperties: false, properties: { force: { type: 'boolean' } } } },
  }, macRoute(failed, async (m, req, reply) => {
    await machines.remove(m, req.query.force ?? false, actor(req));
    return reply.code(204).send();
  }));

  app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac/power', macRoute(failed, async (m) => ({ power: await machines.powerState(m) })));

  const post = <B>(url: string, body: object | undefined, fn: (m: Mac, b: B, who: string) => Promise<unknown>, status = 200) => {
    app.post<{ Params: { mac: string }; Body: B }>(`/api/v1/machines/:mac/${url}`, { ...change, ...(body ? { schema: { body } } : {}) }, macRoute(failed, async (m, req, reply) => {
      const r = await fn(m, req.body as B, actor(req));
      return reply.code(status).send(r ?? { ok: true });
    }));
  };

  post<{ action: 'on' | 'off' | 'cycle' | 'reset' | 'soft' }>('power',
    { type: 'object', additionalProperties: false, required: ['action'], properties: { action: { enum: ['on', 'off', 'cycle', 'reset', 'soft'] } } },
    async (m, b, who) => { await machines.power(m, b.action, who); return { action: b.action }; });
  post<{ device: 'pxe' | 'disk' | 'bios' | 'cdrom'; persistent?: boolean; efi?: boolean }>('bootdev',
    { type: 'object', additionalProperties: false, required: ['device'], properties: { device: { enum: ['pxe', 'disk', 'bios', 'cdrom'] }, persistent: { type: 'boolean' }, efi: { type: 'boolean' } } },
    (m, b, who) => machines.bootdev(m, b, who));
  // Not through post(): the image is checked (name, then existence) before any operation starts.
  app.post<{ Params: { mac: string }; Body: { image?: string } | null }>('/api/v1/machines/:mac/provision', {
    ...change, schema: { body: { type: ['object', 'null'], additionalProperties: false, properties: { image: { type: 'string', minLength: 1, maxLength: 48 } } } },
  }, macRoute(failed, async (m, req, reply) => {
    if (badImage(req.body?.image, reply)) return reply;
    const image = req.body?.image ?? machines.get(m)?.image;
    if (image !== undefined && d.images && (await d.images.get(image)) === undefined) {
      return reply.code(404).send({ error: `image ${image}: does not exist (provision of ${m} not started)` });
    }
    return reply.code(202).send({ operation: machines.provision(m, req.body?.image, actor(req)) });
  }));
  post('reset', undefined, async (m, _b, who) => publicMachine(await machines.reset(m, who)));
  post('deprovision', undefined, async (m, _b, who) => publicMachine(await machines.deprovision(m, who)));
  post<{ name: string }>('checkpoint',
    { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 48 } } },
    (m, b) => machines.checkpoint(m, b.name), 201);
  post<{ checkpoint: string }>('restore',
    { type: 'object', additionalProperties: false, required: ['checkpoint'], properties: { checkpoint: { type: 'string', minLength: 1, maxLength: 48 } } },
    (m, b, who) => machines.restore(m, b.checkpoint, who));
  post<{ on: boolean }>('maintenance',
    { type: 'object', additionalProperties: false, required: ['on'], properties: { on: { type: 'boolean' } } },
    async (m, b, who) => publicMachine(await machines.setMaintenance(m, b.on, who)));

  app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac/events', macRoute(failed, (m) => ({ events: machines.events(m) })));

  app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac/timeline', macRoute(failed, (m, _req, reply) => {
    if (!machines.get(m)) return reply.code(404).send({ error: `machine ${m}: not known` });
    return { boots: d.timeline?.(m) ?? [] };
  }));

  app.get<{ Querystring: { mac?: string; status?: 'running' | 'succeeded' | 'failed' } }>('/api/v1/operations', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { mac: { type: 'string', maxLength: 17 }, status: { enum: ['running', 'succeeded', 'failed'] } } } },
  }, async (req, reply) => {
    const m = req.query.mac !== undefined ? macOr400(req.query.mac, reply, { field: 'querystring.mac' }) : undefined;
    if (req.query.mac !== undefined && !m) return reply;
    return { operations: d.operations.list({ ...(m ? { mac: m } : {}), ...(req.query.status ? { status: req.query.status } : {}) }) };
  });

  app.get<{ Params: { id: string } }>('/api/v1/operations/:id', async (req, reply) => {
    const op = d.operations.get(req.params.id);
    return op ?? reply.code(404).send({ error: `operation ${req.params.id.slice(0, 60)}: not known` });
  });
}
