/**
 * The event stream over HTTP.
 *   GET <prefix>/events/stream?mac=&type=   Server-Sent Events, one `data:` JSON event per bus event,
 *                                           `id:` = its seq; `Last-Event-ID` resumes from the bus ring
 *                                           (an `event: gap` says events were lost in between);
 *                                           a `: hb` comment every 15 s keeps proxies from timing out
 *   GET <prefix>/events?mac=&type=&limit=  recent events as JSON {events, lastSeq}, oldest first
 * <prefix> is /api/v1 (behind the API token) and, when status.public is on, /status/api/v1.
 *
 * A client that does not read is not allowed to make the daemon buffer for it: once more than
 * maxBufferedBytes wait in its socket, it is disconnected and counted (`dropped`); an EventSource
 * reconnects with Last-Event-ID and catches up from the ring. Events carry no secrets (the bus
 * types have no field for one), so nothing is filtered out here.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { EventBus, MetalbootEvent } from '../../events/bus.js';
import type { MacHistory } from '../../status/history.js';
import { matches, parseEventFilter, type EventFilter } from '../../status/filter.js';
import type { Mac } from '../../net/mac.js';

export interface EventStreamOptions {
  readonly bus: EventBus;
  /** Per-MAC history, deeper than the bus ring, for `?mac=<full MAC>` JSON queries. */
  readonly history?: MacHistory;
  readonly heartbeatMs?: number;
  readonly maxBufferedBytes?: number;
  readonly maxClients?: number;
}

interface Client {
  readonly res: ServerResponse;
  readonly filter: EventFilter;
  readonly off: () => void;
}

type Query = { mac?: string; type?: string; limit?: string };

export class EventStreams {
  private readonly clients = new Set<Client>();
  private timer: NodeJS.Timeout | undefined;
  readonly stats = { clients: 0, dropped: 0, served: 0 };
  private readonly heartbeatMs: number;
  private readonly maxBuffered: number;
  private readonly maxClients: number;

  constructor(private readonly o: EventStreamOptions) {
    this.heartbeatMs = o.heartbeatMs ?? 15_000;
    this.maxBuffered = o.maxBufferedBytes ?? 1024 * 1024;
    this.maxClients = o.maxClients ?? 256;
  }

  /** Registers the two routes under `prefix` (with `opts`, e.g. an auth hook); call once per prefix, and once `closeAllOnShutdown`. */
  routes(app: FastifyInstance, prefix: string, opts: RouteShorthandOptions = {}): void {
    app.get<{ Querystring: Query }>(`${prefix}/events`, opts, async (req, reply) => {
      const f = parseEventFilter(req.query);
      if (!f.ok) return reply.code(400).send({ error: f.error });
      const raw = req.query.limit;
      const limit = raw === undefined ? 100 : /^\d{1,5}$/.test(raw) ? Math.min(Number(raw), 2000) : NaN;
      if (!(limit >= 1)) return reply.code(400).send({ error: 'limit: expected a whole number 1..2000' });
      const source = f.filter.macExact && this.o.history ? this.o.history.of(f.filter.mac as Mac) : this.o.bus.recent();
      const events = source.filter((e) => matches(f.filter, e)).slice(-limit);
      return { events, lastSeq: this.lastSeq() };
    });
    app.get<{ Querystring: Query }>(`${prefix}/events/stream`, opts, (req, reply) => this.open(req, reply));
  }

  /** Ends every stream when the server closes (fastify waits for open connections otherwise). */
  closeAllOnShutdown(app: FastifyInstance): void {
    app.addHook('preClose', async () => { for (const c of [...this.clients]) this.remove(c, true); });
  }

  lastSeq(): number {
    return this.o.bus.recent().at(-1)?.seq ?? 0;
  }

  private open(req: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply): FastifyReply | undefined {
    const f = parseEventFilter(req.query);
    if (!f.ok) return reply.code(400).send({ error: f.error });
    if (this.clients.size >= this.maxClients) return reply.code(503).header('retry-after', '10').send({ error: `too many event stream clients (${this.maxClients})` });
    const lastId = req.headers['last-event-id'];
    const after = typeof lastId === 'string' && /^\d{1,15}$/.test(lastId.trim()) ? Number(lastId.trim()) : undefined;

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.socket?.setNoDelay(true);
    const filter = f.filter;
    const client: Client = { res, filter, off: this.o.bus.subscribe((e) => { if (matches(filter, e)) this.send(client, e); }) };
    this.clients.add(client);
    this.stats.clients = this.clients.size;
    res.on('close', () => this.remove(client, false));
    res.on('error', () => this.remove(client, false));
    this.write(client, 'retry: 2000\n: metalboot events\n\n');
    if (after !== undefined) {
      const ring = this.o.bus.recent();
      // Not ring[0]: syslog lines have a ring of their own (events/bus.ts), which may have lost more.
      const oldest = this.o.bus.firstComplete();
      if (oldest > after + 1) this.write(client, `event: gap\ndata: ${JSON.stringify({ after, oldest })}\n\n`);
      for (const e of ring) if (e.seq > after && matches(filter, e)) this.send(client, e);
    }
    this.ensureHeartbeat();
    return undefined;
  }

  private send(c: Client, e: MetalbootEvent): void {
    this.stats.served++;
    this.write(c, `id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
  }

  private write(c: Client, chunk: string): void {
    const res = c.res;
    if (res.destroyed || res.writableEnded) return;
    res.write(chunk);
    if (res.writableLength > this.maxBuffered) {
      this.stats.dropped++;
      this.remove(c, false);
      res.destroy();
    }
  }

  private remove(c: Client, end: boolean): void {
    if (!this.clients.delete(c)) return;
    c.off();
    this.stats.clients = this.clients.size;
    if (end && !c.res.writableEnded) c.res.end();
    if (this.clients.size === 0 && this.timer) { clearInterval(this.timer); this.timer = undefined; }
  }

  private ensureHeartbeat(): void {
    if (this.timer) return;
    this.timer = setInterval(() => { for (const c of [...this.clients]) this.write(c, ': hb\n\n'); }, this.heartbeatMs);
    this.timer.unref();
  }
}
