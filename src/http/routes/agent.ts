/**
 * The agent's endpoints (the agent ramdisk calls them; src/agent/agent.sh), all access `agent`:
 * the one-time token of the machine's running agent operation, for the MAC in the path
 * (agent/sessions.ts; checked in the request hook on the matched route, see access.ts). Any other
 * token, another machine's MAC or a finished operation: 401 and a log line without the token.
 *   GET  /agent/v1/:mac/task            what to do, as key=value lines
 *   POST /agent/v1/:mac/step?name=      the agent reached a step (the operation's step)
 *   POST /agent/v1/:mac/progress?bytes= bytes written so far (deploy)
 *   POST /agent/v1/:mac/inventory       the inventory (JSON, parsed by agent/inventory.ts)
 *   POST /agent/v1/:mac/done            the result (JSON); answers then=poweroff|reboot
 *   POST /agent/v1/:mac/fail            the error (text); answers then=poweroff
 *   GET  /agent/v1/:mac/image           deploy: the image's bytes (Range: the agent resumes a cut download)
 *   PUT  /agent/v1/:mac/capture         capture: the disk's bytes (application/octet-stream) into the new image
 */
import type { Readable } from 'node:stream';
import { errorMessage } from '../../errors/message.js';
import path from 'node:path';
import { sendFile } from '../send-file.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../log.js';
import { tryParseMac } from '../../net/mac.js';
import { unmapIpv4 } from '../../net/ipv4.js';
import { InventoryError, parseInventory } from '../../agent/inventory.js';
import { renderTask, type AgentSession, type AgentSessions } from '../../agent/sessions.js';

const SESSION = Symbol('agentSession');
type WithSession = FastifyRequest & { [SESSION]?: AgentSession };

/** The request hook's check for routes declared `agent` (http/auth.ts authorize). */
export function agentAccess(sessions: AgentSessions, log: Logger): (req: FastifyRequest) => boolean {
  return (req) => {
    const raw = (req.params as { mac?: unknown } | undefined)?.mac;
    const mac = typeof raw === 'string' ? tryParseMac(raw) : undefined;
    const c = sessions.check(req.headers.authorization, mac);
    if (!c.ok) {
      log.warn({ event: 'agent.refused', mac: mac ?? String(raw).slice(0, 40), from: unmapIpv4(req.ip), reason: c.reason, url: String(req.routeOptions.url) }, 'agent request refused');
      return false;
    }
    (req as WithSession)[SESSION] = c.session;
    return true;
  };
}

export function agentRoutes(parent: FastifyInstance, log: Logger, clock: () => number, imageSource?: (id: string) => Promise<string | undefined>): void {
  // A scope of their own: the capture upload's stream parser applies here only.
  void parent.register(async (app) => {
    if (!app.hasContentTypeParser('application/octet-stream')) app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    const cfg = { config: { access: 'agent' as const } };
    const session = (req: FastifyRequest): AgentSession => {
      const s = (req as WithSession)[SESSION];
      if (!s) throw new Error('agent route reached without a session');
      return s;
    };
    const text = (reply: FastifyReply, body: string) => reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(body);

    app.get('/agent/v1/:mac/task', cfg, async (req, reply) => {
      const s = session(req);
      log.info({ event: 'agent.task', mac: s.mac, operation: s.operationId, kind: s.task.kind }, 'agent asked for its task');
      return text(reply, renderTask(s.mac, s));
    });

    app.post<{ Querystring: { name: string } }>('/agent/v1/:mac/step', {
      ...cfg, schema: { querystring: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' } } } },
    }, async (req, reply) => {
      const s = session(req);
      s.handlers.step(req.query.name);
      return reply.code(204).send();
    });

    app.post<{ Querystring: { bytes: number } }>('/agent/v1/:mac/progress', {
      ...cfg, schema: { querystring: { type: 'object', additionalProperties: false, required: ['bytes'], properties: { bytes: { type: 'integer', minimum: 0 } } } },
    }, async (req, reply) => {
      session(req).handlers.progress(req.query.bytes);
      return reply.code(204).send();
    });

    app.post('/agent/v1/:mac/inventory', cfg, async (req, reply) => {
      const s = session(req);
      try {
        await s.handlers.inventory(parseInventory(req.body, clock()));
      } catch (e) {
        if (e instanceof InventoryError) {
          log.warn({ event: 'agent.inventory-refused', mac: s.mac, operation: s.operationId, err: e.message }, 'inventory refused');
          return reply.code(400).send({ error: e.message });
        }
        throw e;
      }
      return reply.code(204).send();
    });

    app.post('/agent/v1/:mac/done', cfg, async (req, reply) => {
      const s = session(req);
      s.handlers.done(req.body ?? {});
      return text(reply, `then=${s.task.then}\n`);
    });

    app.get('/agent/v1/:mac/image', cfg, async (req, reply) => {
      const s = session(req);
      const file = s.task.image && imageSource ? await imageSource(s.task.image.id) : undefined;
      if (!file) return reply.code(404).send({ error: 'this operation has no image' });
      return sendFile(req, reply, path.dirname(file), path.basename(file), log, 'agent.image');
    });

    app.put('/agent/v1/:mac/capture', cfg, async (req, reply) => {
      const s = session(req);
      if (!s.handlers.capture) return reply.code(404).send({ error: 'this operation takes no upload' });
      if (req.headers['content-type'] !== 'application/octet-stream') return reply.code(415).send({ error: 'headers.content-type: send the disk as application/octet-stream' });
      const len = req.headers['content-length'];
      try {
        const info = await s.handlers.capture(req.body as Readable, len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined);
        log.info({ event: 'agent.captured', mac: s.mac, operation: s.operationId, bytes: info.sizeBytes }, 'disk captured into an image');
        return reply.code(201).send({ sizeBytes: info.sizeBytes, sha256: info.sha256 });
      } catch (e) {
        log.warn({ event: 'agent.capture-failed', mac: s.mac, operation: s.operationId, err: errorMessage(e) }, 'capture upload failed');
        return reply.code(409).send({ error: errorMessage(e) });
      }
    });

    app.post('/agent/v1/:mac/fail', cfg, async (req, reply) => {
      const s = session(req);
      // eslint-disable-next-line no-control-regex
      s.handlers.failed(String(req.body ?? '').replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 500) || 'the agent failed');
      return text(reply, 'then=poweroff\n');
    });
  });
}
