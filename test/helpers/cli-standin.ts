/**
 * A STAND-IN FOR THE DAEMON in the CLI's unit tests: a small fastify server on 127.0.0.1 that
 * answers the /api/v1 routes the CLI uses with responses shaped like the real routes
 * (src/http/routes/machines.ts, images.ts, leases.ts): Bearer token check (401 with an `error`),
 * machines kept in memory, streamed image uploads hashed as they arrive, operations that advance
 * one step per poll. It records every request (method, URL, headers, JSON body or upload size) so
 * a test can check what the CLI sent. It is not the daemon: the integration test
 * test/integration/cli-daemon.test.ts runs the CLI against the real one.
 */
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';

export interface Recorded {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
  uploadBytes?: number;
}

export interface StandInMachine {
  mac: string; name: string; ip?: string; image?: string; bootMode: string; firmware: string; state: string; stateReason?: string;
  power?: { driver: string; host: string; port: number; user: string; password?: string; certSha256?: string };
  createdAt: number; updatedAt: number;
}

export interface StandInOperation {
  id: string; kind: string; mac?: string; status: 'running' | 'succeeded' | 'failed'; step: string;
  steps: { step: string; at: number }[]; startedAt: number; finishedAt?: number; error?: string; result?: unknown;
  /** Steps still to come, one per poll; then `finalStatus`. */
  pending: string[];
  finalStatus: 'succeeded' | 'failed' | 'never';
}

export interface StandIn {
  readonly api: string;
  readonly app: FastifyInstance;
  readonly requests: Recorded[];
  readonly machines: Map<string, StandInMachine>;
  readonly images: Map<string, { id: string; sizeBytes: number; sha256: string; readOnly: boolean }>;
  readonly operations: Map<string, StandInOperation>;
  /** How the next provision ends: with success, a failure, or never (stays running). */
  provisionOutcome: 'succeeded' | 'failed' | 'never';
  /** Inventories by MAC (GET .../inventory); an inspect that succeeds stores `nextInventory`. */
  readonly inventories: Map<string, unknown>;
  nextInventory?: unknown;
  token: string;
}

const T0 = Date.UTC(2026, 10, 22, 8, 0, 0);
const publicMachine = (m: StandInMachine) => {
  const { power, ...rest } = m;
  if (!power) return rest;
  const { password: _p, ...b } = power;
  return { ...rest, power: { ...b, passwordSet: true } };
};

export async function startStandIn(t: { teardown(fn: () => unknown): void }, token: string): Promise<StandIn> {
  const app = Fastify({ logger: false });
  const s: StandIn = {
    api: '', app, requests: [], machines: new Map(), images: new Map(), operations: new Map(), provisionOutcome: 'succeeded', token, inventories: new Map(),
  };
  let clock = T0;
  const now = () => (clock += 1000);

  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.addHook('onRequest', async (req, reply) => {
    s.requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    if (req.headers.authorization !== `Bearer ${s.token}`) {
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or wrong API token (Authorization: Bearer <token>)' });
    }
  });
  app.addHook('preHandler', async (req) => {
    if (req.body !== undefined && !(typeof (req.body as Readable).pipe === 'function')) s.requests[s.requests.length - 1]!.body = req.body;
  });

  // ------------------------------------------------------------ machines
  app.get<{ Querystring: { state?: string } }>('/api/v1/machines', async (req) => ({
    machines: [...s.machines.values()].filter((m) => !req.query.state || m.state === req.query.state).map(publicMachine),
  }));
  app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac', async (req, reply) => {
    const m = s.machines.get(req.params.mac);
    return m ? publicMachine(m) : reply.code(404).send({ error: `machine ${req.params.mac}: not known` });
  });
  app.put<{ Params: { mac: string }; Body: Record<string, unknown> }>('/api/v1/machines/:mac', async (req, reply) => {
    const b = req.body;
    if (b['name'] !== undefined && !/^[A-Za-z0-9-]+$/.test(String(b['name']))) return reply.code(400).send({ error: 'machine 52:54: name: must be a host name label' });
    const old = s.machines.get(req.params.mac);
    const m: Record<string, unknown> = { ...(old ?? { mac: req.params.mac, name: `m-${req.params.mac.replaceAll(':', '')}`, bootMode: 'sanboot', firmware: 'unknown', state: 'enrolled', createdAt: now() }), updatedAt: now() };
    for (const [k, v] of Object.entries(b)) { if (v === null) delete m[k]; else m[k] = v; }
    s.machines.set(req.params.mac, m as unknown as StandInMachine);
    return reply.code(old ? 200 : 201).send(publicMachine(m as unknown as StandInMachine));
  });
  app.delete<{ Params: { mac: string }; Querystring: { force?: string } }>('/api/v1/machines/:mac', async (req, reply) => {
    const m = s.machines.get(req.params.mac);
    if (!m) return reply.code(404).send({ error: `machine ${req.params.mac}: not known` });
    if ((m.state === 'ready' || m.state === 'active') && req.query.force !== 'true') return reply.code(409).send({ error: `machine ${m.mac}: has a provisioned disk (state ${m.state}); delete with force` });
    s.machines.delete(req.params.mac);
    return reply.code(204).send();
  });
  app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac/inventory', async (req, reply) => {
    const m = needMachine(req.params.mac);
    if (!m) return reply.code(404).send({ error: `machine ${req.params.mac}: not known` });
    return s.inventories.get(m.mac) ?? reply.code(404).send({ error: `machine ${m.mac}: not inspected yet` });
  });
  app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac/events', async (req, reply) => {
    const m = s.machines.get(req.params.mac);
    if (!m) return reply.code(404).send({ error: `machine ${req.params.mac}: not known` });
    return { events: [
      { mac: m.mac, at: T0, actor: 'api@127.0.0.1', from: null, to: 'enrolled', reason: 'enrolled' },
      { mac: m.mac, at: T0 + 5000, actor: 'tgtd', from: 'ready', to: 'active', reason: 'iSCSI login from 10.0.0.5\u001b[31m' },
    ] };
  });
  const needMachine = (mac: string) => s.machines.get(mac);
  app.get<{ Params: { mac: string } }>('/api/v1/machines/:mac/power', async (req, reply) => {
    const m = needMachine(req.params.mac);
    if (!m) return reply.code(404).send({ error: `machine ${req.params.mac}: not known` });
    if (!m.power) return reply.code(409).send({ error: `machine ${m.mac}: has no BMC configured` });
    return { power: 'on' };
  });
  app.post<{ Params: { mac: string }; Body: { sha256: string } }>('/api/v1/machines/:mac/power/certificate', async (req, reply) => {
    const m = needMachine(req.params.mac);
    if (!m?.power) return reply.code(409).send({ error: `machine ${req.params.mac}: has no BMC configured` });
    m.power.certSha256 = req.body.sha256.toUpperCase();
    return publicMachine(m);
  });
  app.post<{ Params: { mac: string; what: string }; Body: Record<string, unknown> | undefined }>('/api/v1/machines/:mac/:what', async (req, reply) => {
    const m = needMachine(req.params.mac);
    if (!m) return reply.code(404).send({ error: `machine ${req.params.mac}: not known` });
    const b = req.body ?? {};
    switch (req.params.what) {
      case 'power': return { action: b['action'] };
      case 'bootdev': return { device: b['device'], persistent: b['persistent'] ?? false, efi: b['efi'] ?? false };
      case 'provision': {
        const image = (b['image'] as string | undefined) ?? m.image;
        if (!image) return reply.code(400).send({ error: `machine ${m.mac}: no image given and none set on the machine` });
        const id = `provision-${(clock++).toString(36)}-abc123`;
        const op: StandInOperation = {
          id, kind: 'provision', mac: m.mac, status: 'running', step: 'queued', steps: [{ step: 'queued', at: now() }], startedAt: clock,
          pending: ['disk', 'boot-mode', 'bootdev', 'power'], finalStatus: s.provisionOutcome,
        };
        s.operations.set(id, op);
        m.state = 'provisioning';
        const { pending: _p, finalStatus: _f, ...view } = op;
        return reply.code(202).send({ operation: view });
      }
      case 'inspect':
      case 'deploy':
      case 'erase':
      case 'capture': {
        const kind = req.params.what;
        const id = `${kind}-${(clock++).toString(36)}-abc123`;
        const pending = { inspect: ['bootdev', 'power', 'agent-boot', 'agent-booted', 'inventory'], deploy: ['agent-boot', 'discard', 'write', 'verify'], erase: ['agent-boot', 'erase'], capture: ['agent-boot', 'upload', 'verify'] }[kind]!;
        const op: StandInOperation = { id, kind, mac: m.mac, status: 'running', step: 'queued', steps: [{ step: 'queued', at: now() }], startedAt: clock, pending, finalStatus: 'succeeded' };
        s.operations.set(id, op);
        m.state = { inspect: 'inspecting', deploy: 'deploying', erase: 'erasing', capture: 'capturing' }[kind]!;
        const { pending: _p, finalStatus: _f, ...view } = op;
        return reply.code(202).send({ operation: view });
      }
      case 'reset': return publicMachine(m);
      case 'deprovision': m.state = 'enrolled'; return publicMachine(m);
      case 'checkpoint': return reply.code(201).send({ name: b['name'] });
      case 'restore': return { method: 'copy' };
      case 'maintenance': m.state = b['on'] ? 'maintenance' : 'enrolled'; return publicMachine(m);
      default: return reply.code(404).send({ error: 'no such route' });
    }
  });

  // ------------------------------------------------------------ operations
  const opView = (o: StandInOperation) => { const { pending: _p, finalStatus: _f, ...v } = o; return v; };
  app.get<{ Querystring: { mac?: string; status?: string } }>('/api/v1/operations', async (req) => ({
    operations: [...s.operations.values()].filter((o) => (!req.query.mac || o.mac === req.query.mac) && (!req.query.status || o.status === req.query.status)).map(opView),
  }));
  app.get<{ Params: { id: string } }>('/api/v1/operations/:id', async (req, reply) => {
    const o = s.operations.get(req.params.id);
    if (!o) return reply.code(404).send({ error: `operation ${req.params.id}: not known` });
    // Each poll advances the operation by one step.
    const next = o.pending.shift();
    if (next !== undefined) { o.step = next; o.steps.push({ step: next, at: now() }); }
    else if (o.finalStatus !== 'never' && o.status === 'running') {
      o.status = o.finalStatus;
      o.finishedAt = now();
      const m = o.mac ? s.machines.get(o.mac) : undefined;
      if (o.status === 'succeeded') {
        o.step = 'done';
        if (m) m.state = o.kind === 'provision' ? 'ready' : o.kind === 'deploy' ? 'deployed' : 'enrolled';
        if (m && o.kind === 'inspect' && s.nextInventory) s.inventories.set(m.mac, s.nextInventory);
      }
      else { o.error = 'BMC 10.0.1.5:623: no answer after 3 tries'; if (m) m.state = 'error'; }
    }
    return opView(o);
  });

  // ------------------------------------------------------------ images
  app.get('/api/v1/images', async () => ({ images: [...s.images.values()] }));
  app.get<{ Params: { id: string } }>('/api/v1/images/:id', async (req, reply) => s.images.get(req.params.id) ?? reply.code(404).send({ error: `image ${req.params.id} does not exist` }));
  app.put<{ Params: { id: string }; Querystring: { format?: string } }>('/api/v1/images/:id', async (req, reply) => {
    if (req.headers['content-type'] !== 'application/octet-stream') return reply.code(415).send({ error: 'send the image as application/octet-stream' });
    const h = createHash('sha256');
    let n = 0;
    for await (const c of req.body as Readable) { h.update(c as Buffer); n += (c as Buffer).length; }
    const rec = [...s.requests].reverse().find((r) => r.method === 'PUT' && r.url.startsWith(`/api/v1/images/${req.params.id}`));
    if (rec) rec.uploadBytes = n;
    const info = { id: req.params.id, sizeBytes: n, sha256: h.digest('hex'), readOnly: true };
    s.images.set(info.id, info);
    return reply.code(201).send(info);
  });
  app.post<{ Params: { id: string }; Body: { path: string; format?: string } }>('/api/v1/images/:id/import', async (req, reply) => {
    if (!req.body.path.startsWith('/')) return reply.code(400).send({ error: 'path: must be absolute' });
    const info = { id: req.params.id, sizeBytes: 4096, sha256: 'ab'.repeat(32), readOnly: true };
    s.images.set(info.id, info);
    return reply.code(201).send(info);
  });
  app.delete<{ Params: { id: string } }>('/api/v1/images/:id', async (req, reply) => {
    if (!s.images.has(req.params.id)) return reply.code(404).send({ error: `image ${req.params.id} does not exist` });
    if ([...s.machines.values()].some((m) => m.image === req.params.id && m.state === 'ready')) return reply.code(409).send({ error: `image ${req.params.id} is in use by a disk` });
    s.images.delete(req.params.id);
    return reply.code(204).send();
  });

  // ------------------------------------------------------------ leases
  app.get('/api/v1/leases', async () => ({ leases: [
    { mac: '52:54:00:00:00:0a', ip: '10.0.0.100', state: 'bound', expiresAt: '2026-11-22T09:00:00.000Z', hostname: 'web-1', clientArch: 7, vendorClass: 'PXEClient:Arch:00007' },
    { mac: null, ip: '10.0.0.101', state: 'declined', expiresAt: '2026-11-22T09:10:00.000Z', hostname: null, clientArch: null, vendorClass: null },
  ] }));

  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  (s as { api: string }).api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return s;
}
