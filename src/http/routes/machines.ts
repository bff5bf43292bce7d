/**
 * Machines and operations.
 *   GET    /api/v1/machines[?state=]             list
 *   GET    /api/v1/machines/:mac
 *   PUT    /api/v1/machines/:mac                 enrol (create) or update; BMC password write-only;
 *                                                `power: {driver, …}` (one schema per driver), or the
 *                                                deprecated alias `bmc: {host, …}` (= power with driver ipmi)
 *   DELETE /api/v1/machines/:mac[?force=true]    refused while a disk is provisioned unless forced
 *   GET    /api/v1/machines/:mac/power           {power: on|off}
 *   POST   /api/v1/machines/:mac/power           {action: on|off|cycle|reset|soft}
 *   POST   /api/v1/machines/:mac/power/certificate  {sha256} trust this BMC certificate (Redfish: a changed one) → the machine
 *   POST   /api/v1/machines/:mac/bootdev         {device: pxe|disk|bios|cdrom|http, persistent?, efi?} → what the BMC reads back
 *   POST   /api/v1/machines/:mac/provision       {image?} → 202 {operation}; 404 for an image that does not exist
 *   POST   /api/v1/machines/:mac/reset           fresh disk from the image (same target and secret)
 *   POST   /api/v1/machines/:mac/deprovision
 *   POST   /api/v1/machines/:mac/checkpoint      {name}
 *   POST   /api/v1/machines/:mac/restore         {checkpoint}
 *   POST   /api/v1/machines/:mac/maintenance     {on: boolean}
 *   GET    /api/v1/machines/:mac/events          state history
 *   GET    /api/v1/machines/:mac/timeline        last boots, step by step
 *   POST   /api/v1/machines/:mac/inspect         → 202 {operation}: boot the agent, collect the inventory
 *   POST   /api/v1/machines/:mac/deploy          {image, disk?} → 202 {operation}: the image onto a local disk
 *   POST   /api/v1/machines/:mac/erase           {disks?, method} → 202 {operation}: discard or zero its disks
 *   POST   /api/v1/machines/:mac/capture         {image, disk?} → 202 {operation}: a disk into a new image
 *   GET    /api/v1/machines/:mac/inventory       the last inventory (404 before the first inspection)
 *   GET    /api/v1/operations[?mac=&status=]     GET /api/v1/operations/:id
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../../log.js';
import type { Mac } from '../../net/mac.js';
import type { MachineService } from '../../machines/service.js';
import { MachineError, type MachineSpec, type PowerSpec } from '../../machines/record.js';
import { MACHINE_STATES, BOOT_MODES, publicMachine, type Machine, type MachineState, type PublicMachine } from '../../machines/model.js';
import { BOOT_TARGETS, POWER_ACTIONS, type BootTarget, type PowerAction } from '../../power/driver.js';
import { POWER_SETTINGS_SCHEMA } from '../../power/drivers.js';
import { IPMI_DRIVER, IPMI_SETTINGS_PROPERTIES, IPMI_SETTINGS_REQUIRED } from '../../power/ipmi.js';
import type { Operations } from '../../machines/operations.js';
import type { Operation } from '../../machines/operations.js';
import { requireChangeRight, type ApiAuth } from '../auth.js';
import { macOr400, macRoute } from '../reply.js';
import { checkId } from '../../storage/backend.js';
import type { Inventory } from '../../agent/inventory.js';

/** Agent operations (absent when machines.agent is off). */
export interface MachineAgentDeps {
  inspect(mac: Mac, actor: string): Operation;
  deploy(mac: Mac, spec: { image: string; disk?: string }, actor: string): Promise<Operation>;
  erase(mac: Mac, spec: { disks?: 'all' | string[]; method: 'discard' | 'zero' }, actor: string): Operation;
  capture(mac: Mac, spec: { image: string; disk?: string }, actor: string): Promise<Operation>;
  inventory(mac: Mac): Inventory | undefined;
}

export interface MachineRouteDeps {
  readonly machines: MachineService;
  /** The machine's last boots (DHCP → TFTP → script → iSCSI → active), from the event history. */
  readonly timeline?: (mac: Mac) => unknown[];
  readonly operations: Operations;
  readonly auth: ApiAuth;
  readonly log: Logger;
  /** Image lookup, so provision refuses an unknown image before it starts (absent when iSCSI is off). */
  readonly images?: { get(id: string): Promise<unknown> };
  readonly agent?: MachineAgentDeps;
}

/**
 * Shapes, types, enums and bounds: the first gate. The rules a schema cannot state (a host-name
 * label, an IPv4 address, image and file names, a driver's own) are machines/record.ts's, answered
 * as `body.<field>: why` like the schema's.
 */
const SPEC = {
  type: 'object', additionalProperties: false,
  properties: {
    name: { type: 'string' }, ip: { type: ['string', 'null'] },
    power: { anyOf: [POWER_SETTINGS_SCHEMA, { type: 'null' }] },
    image: { type: ['string', 'null'] }, bootMode: { enum: [...BOOT_MODES] }, firmware: { enum: ['bios', 'uefi', 'unknown'] },
    uefiFilename: { type: ['string', 'null'], maxLength: 255 },
    netboot: { anyOf: [{ type: 'object', additionalProperties: false, required: ['kernel'], properties: { kernel: { type: 'string', maxLength: 128 }, initrd: { type: 'string', maxLength: 128 }, cmdline: { type: 'string', maxLength: 2048 } } }, { type: 'null' }] },
    // Deprecated alias (one release): the IPMI settings without `driver`, as before the power seam.
    bmc: { anyOf: [{ type: 'object', additionalProperties: false, required: [...IPMI_SETTINGS_REQUIRED], properties: IPMI_SETTINGS_PROPERTIES }, { type: 'null' }] },
  },
} as const;

type SpecBody = Omit<MachineSpec, 'power'> & { power?: PowerSpec | null; bmc?: Omit<PowerSpec, 'driver'> | null };

/** The body as the service's spec: the `bmc` alias becomes `power` with driver ipmi. */
function specOf(body: SpecBody): { spec: MachineSpec; alias: boolean } | { error: string } {
  const { bmc, ...rest } = body;
  if (bmc === undefined) return { spec: rest, alias: false };
  if (rest.power !== undefined) return { error: 'body.bmc: give power or its deprecated alias bmc, not both' };
  return { spec: { ...rest, power: bmc === null ? null : { ...bmc, driver: IPMI_DRIVER } }, alias: true };
}

/**
 * A machine as the API shows it: no password; while the `bmc` alias lasts, an IPMI machine's
 * settings are also shown under `bmc` (without `driver`), as clients written before `power` read them.
 */
function view(m: Machine): PublicMachine & { bmc?: object } {
  const p = publicMachine(m);
  if (m.power?.driver !== IPMI_DRIVER || !p.power) return p;
  const { driver: _d, ...bmc } = p.power as { driver: string };
  return { ...p, bmc };
}

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
  }, async (req) => ({ machines: machines.list(req.query.state).map(view) }));

  app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac', macRoute(failed, (m, _req, reply) => {
    const x = machines.get(m);
    return x ? view(x) : reply.code(404).send({ error: `machine ${m}: not known` });
  }));

  // Enrolment only refuses MACs that are no one machine's: such a record can still be read and deleted.
  app.put<{ Params: { mac: string }; Body: SpecBody }>('/api/v1/machines/:mac', { ...change, schema: { body: SPEC } }, macRoute(failed, async (m, req, reply) => {
    const s = specOf(req.body);
    if ('error' in s) return reply.code(400).send({ error: s.error });
    try {
      const existing = machines.get(m);
      if (!existing || existing.state === 'discovered') return reply.code(201).send(view(await machines.create(m, s.spec, actor(req))));
      return view(await machines.update(m, s.spec, actor(req)));
    } catch (e) {
      // The record's own rules name the field as the schema does (under the name the client used).
      if (e instanceof MachineError && e.field) return reply.code(400).send({ error: `body.${s.alias ? e.field.replace(/^power\./, 'bmc.') : e.field}: ${e.reason}` });
      throw e;
    }
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

  post<{ action: PowerAction }>('power',
    { type: 'object', additionalProperties: false, required: ['action'], properties: { action: { enum: [...POWER_ACTIONS] } } },
    async (m, b, who) => { await machines.power(m, b.action, who); return { action: b.action }; });
  post<{ sha256: string }>('power/certificate',
    { type: 'object', additionalProperties: false, required: ['sha256'], properties: { sha256: { type: 'string', pattern: '^[0-9A-Fa-f:]{64,95}$' } } },
    async (m, b, who) => view(await machines.acceptPowerCertificate(m, b.sha256, who)));
  post<{ device: BootTarget; persistent?: boolean; efi?: boolean }>('bootdev',
    { type: 'object', additionalProperties: false, required: ['device'], properties: { device: { enum: [...BOOT_TARGETS] }, persistent: { type: 'boolean' }, efi: { type: 'boolean' } } },
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
  post('reset', undefined, async (m, _b, who) => view(await machines.reset(m, who)));
  post('deprovision', undefined, async (m, _b, who) => view(await machines.deprovision(m, who)));
  post<{ name: string }>('checkpoint',
    { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 48 } } },
    (m, b) => machines.checkpoint(m, b.name), 201);
  post<{ checkpoint: string }>('restore',
    { type: 'object', additionalProperties: false, required: ['checkpoint'], properties: { checkpoint: { type: 'string', minLength: 1, maxLength: 48 } } },
    (m, b, who) => machines.restore(m, b.checkpoint, who));
  post<{ on: boolean }>('maintenance',
    { type: 'object', additionalProperties: false, required: ['on'], properties: { on: { type: 'boolean' } } },
    async (m, b, who) => view(await machines.setMaintenance(m, b.on, who)));

  const agent = d.agent;
  if (agent) {
    post('inspect', undefined, async (m, _b, who) => ({ operation: agent.inspect(m, who) }), 202);
    const DISK = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' } as const;
    post<{ image: string; disk?: string }>('deploy',
      { type: 'object', additionalProperties: false, required: ['image'], properties: { image: { type: 'string', minLength: 1, maxLength: 48 }, disk: DISK } },
      async (m, b, who) => ({ operation: await agent.deploy(m, b, who) }), 202);
    post<{ disks?: 'all' | string[]; method: 'discard' | 'zero' }>('erase',
      { type: 'object', additionalProperties: false, required: ['method'], properties: { method: { enum: ['discard', 'zero'] }, disks: { anyOf: [{ const: 'all' }, { type: 'array', minItems: 1, maxItems: 64, items: DISK }] } } },
      async (m, b, who) => ({ operation: agent.erase(m, b, who) }), 202);
    post<{ image: string; disk?: string }>('capture',
      { type: 'object', additionalProperties: false, required: ['image'], properties: { image: { type: 'string', minLength: 1, maxLength: 48 }, disk: DISK } },
      async (m, b, who) => {
        const c = checkId(b.image);
        if (!c.ok) throw new MachineError(m, 'invalid', `image: ${c.reason}`);
        return { operation: await agent.capture(m, b, who) };
      }, 202);
    app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac/inventory', macRoute(failed, (m, _req, reply) => {
      if (!machines.get(m)) return reply.code(404).send({ error: `machine ${m}: not known` });
      return agent.inventory(m) ?? reply.code(404).send({ error: `machine ${m}: not inspected yet` });
    }));
  }

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
