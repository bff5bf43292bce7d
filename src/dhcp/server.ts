/**
 * The DHCP socket shell: receives on the configured interface only, decodes
 * with bounds checks, hands the packet to the handler and sends its reply.
 * Nothing thrown by a packet escapes a socket handler: malformed input is
 * dropped and counted, handler failures are logged and counted.
 */
import { errorMessage } from '../errors/message.js';
import type dgram from 'node:dgram';
import type { DhcpConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { formatIpv4, parseIpv4, type Ipv4 } from '../net/ipv4.js';
import { openInterfaceSocket } from '../net/udp-socket.js';
import type { LeaseService } from '../leases/service.js';
import { classify, type ClientInfo } from './classify.js';
import { handleProxy, handleServer, type HandlerContext, type Outcome } from './handler.js';
import { messageTypeName } from './options.js';
import { decodePacket, encodePacket } from './packet.js';
import { PROXY_PORT, SERVER_PORT } from './reply.js';

export interface DhcpCounters {
  received: number;
  malformed: number;
  replies: number;
  ignored: number;
  errors: number;
  byEvent: Map<string, number>;
}

export interface DhcpServerDeps {
  readonly config: DhcpConfig;
  readonly serverId: Ipv4;
  readonly publicUrl: string;
  /** Required in server mode. */
  readonly leases?: LeaseService;
  readonly log: Logger;
  /** Called for every outcome with what the client told us (the daemon publishes it on the event bus). */
  readonly onOutcome?: (o: Outcome, client: ClientInfo) => void;
  /** Advertised as DHCP option 7 (log server) when set. */
  readonly logServer?: Ipv4;
}

export class DhcpServer {
  readonly counters: DhcpCounters = { received: 0, malformed: 0, replies: 0, ignored: 0, errors: 0, byEvent: new Map() };
  private readonly sockets: dgram.Socket[] = [];
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private closing = false;
  private readonly ctx: HandlerContext;

  constructor(private readonly deps: DhcpServerDeps) {
    this.ctx = { serverId: deps.serverId, bootFiles: deps.config.bootFiles, publicUrl: deps.publicUrl, ...(deps.logServer !== undefined ? { logServer: deps.logServer } : {}) };
    if (deps.config.mode === 'server' && !deps.leases) throw new Error('DHCP server mode needs a lease service');
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    const ports = config.mode === 'proxy' ? [SERVER_PORT, PROXY_PORT] : [SERVER_PORT];
    for (const port of ports) {
      const sock = await openInterfaceSocket({ address: '0.0.0.0', port, device: config.interface, broadcast: true, rcvbuf: 8 << 20 });
      sock.on('message', (msg, rinfo) => this.onMessage(sock, port, msg, rinfo));
      sock.on('error', (e) => this.deps.log.error({ event: 'dhcp.socket-error', port, err: e.message }, 'DHCP socket error'));
      this.sockets.push(sock);
    }
    this.deps.log.info({ event: 'dhcp.listening', mode: config.mode, interface: config.interface, ports, serverId: formatIpv4(this.deps.serverId) }, 'DHCP listening');
  }

  /** Stops receiving, waits for in-flight requests (their lease writes and replies), closes. */
  async stop(): Promise<void> {
    this.closing = true;
    for (const s of this.sockets) s.removeAllListeners('message');
    if (this.inFlight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.sockets.length = 0;
  }

  private count(event: string): void {
    this.counters.byEvent.set(event, (this.counters.byEvent.get(event) ?? 0) + 1);
  }

  private onMessage(sock: dgram.Socket, port: number, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closing) return;
    this.counters.received++;
    const decoded = decodePacket(msg);
    if (!decoded.ok) {
      this.counters.malformed++;
      this.deps.log.debug({ event: 'dhcp.malformed', from: rinfo.address, len: msg.length, reason: decoded.reason }, 'malformed DHCP packet dropped');
      return;
    }
    const req = decoded.packet;
    let client;
    try {
      client = classify(req);
    } catch (e) {
      this.counters.malformed++;
      this.deps.log.debug({ event: 'dhcp.malformed', from: rinfo.address, reason: String(e) }, 'unclassifiable DHCP packet dropped');
      return;
    }
    this.inFlight++;
    // ProxyDHCP answers to the source (port 4011); server mode checks it against ciaddr for RELEASE and INFORM.
    const source = { address: parseIpv4(rinfo.address), port: rinfo.port };
    const work: Promise<Outcome> = this.deps.config.mode === 'proxy'
      ? Promise.resolve().then(() => handleProxy(req, client, this.ctx, port, source))
      : handleServer(req, client, this.ctx, this.deps.leases!, source);
    // finish() runs inside the chain too, so an encode failure is caught here
    // instead of becoming an unhandled rejection.
    work.then((o) => this.finish(sock, o, client)).catch((e: unknown) => {
      this.counters.errors++;
      this.deps.log.error({ event: 'dhcp.error', mac: client.mac, type: messageTypeName(client.messageType), err: errorMessage(e) }, 'DHCP request failed');
    }).finally(() => {
      this.inFlight--;
      if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  private finish(sock: dgram.Socket, o: Outcome, client: ClientInfo): void {
    const type = client.messageType;
    this.count(o.event);
    try {
      this.deps.onOutcome?.(o, client);
    } catch (e) {
      this.counters.errors++;
      this.deps.log.error({ event: 'dhcp.hook-error', err: errorMessage(e) }, 'outcome hook failed');
    }
    const log = this.deps.log;
    // Built only when it will be written: at thousands of packets per second
    // the object costs more than the reply.
    const level = o.reply && o.event !== 'dhcp.offer' ? 'info' : 'debug';
    const fields = () => ({
      event: o.event,
      mac: o.mac,
      ip: o.ip !== undefined ? formatIpv4(o.ip) : undefined,
      type: messageTypeName(type),
      reason: o.reason,
      boot: o.boot && o.boot.kind !== 'none' ? ('file' in o.boot ? o.boot.file : o.boot.url) : undefined,
    });
    if (!o.reply) {
      if (o.event === 'dhcp.ignored') this.counters.ignored++;
      if (log.isLevelEnabled('debug')) log.debug(fields(), 'no reply');
      return;
    }
    const buf = encodePacket(o.reply.packet);
    const to = o.reply.to;
    sock.send(buf, to.port, formatIpv4(to.address), (err) => {
      if (err) {
        this.counters.errors++;
        log.warn({ ...fields(), event: 'dhcp.send-error', to: formatIpv4(to.address), err: err.message }, 'DHCP reply not sent');
      }
    });
    this.counters.replies++;
    if (log.isLevelEnabled(level)) log[level](fields(), o.event);
  }
}
