/**
 * The TFTP socket shell. The request socket (port 69, on the configured
 * interface when there is one) takes read requests; each accepted request
 * gets its own socket on an ephemeral port (its TID) and an RrqTransfer
 * (tftp/transfer.ts) whose actions this file carries out: packets, positional
 * file reads into one reused window buffer, one timer.
 *
 * Nothing thrown by a packet escapes a socket handler: malformed input is
 * dropped and counted; a packet for a transfer from another address or port
 * gets an "unknown transfer ID" error and leaves the transfer alone.
 */
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import type { TftpConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { openInterfaceSocket } from '../net/udp-socket.js';
import {
  DATA_HEADER_LEN, ERR_ACCESS, ERR_ILLEGAL_OP, ERR_NOT_FOUND, ERR_UNDEFINED, ERR_UNKNOWN_TID,
  OP_ACK, OP_ERROR, OP_RRQ, OP_WRQ, decodePacket, encodeError, encodeOack, writeDataHeader,
  type RequestPacket,
} from './packet.js';
import { netasciiFile, type FileProvider, type OpenFile } from './provider.js';
import { MAX_BLKSIZE, RrqTransfer, negotiate, type Action, type TransferLimits } from './transfer.js';

export interface TftpCounters {
  requests: number;
  malformed: number;
  refused: number;
  notFound: number;
  busy: number;
  wrongTid: number;
  started: number;
  completed: number;
  failed: number;
  /** Data bytes acknowledged by clients, all transfers. */
  bytes: number;
  /** DATA/OACK packets sent again after a timeout, all transfers. */
  retransmits: number;
}

export interface TftpServerDeps {
  readonly config: TftpConfig;
  readonly provider: FileProvider;
  readonly log: Logger;
  /** MTU of config.interface; default: read from /sys/class/net. */
  readonly mtu?: number;
  readonly clock?: () => number;
  /** Transfer start and end, for the event bus (errors in it are caught). */
  readonly onTransfer?: (e: TransferEvent) => void;
}

export type TransferEvent =
  | { readonly phase: 'start'; readonly client: string; readonly file: string; readonly size: number }
  | { readonly phase: 'end'; readonly client: string; readonly file: string; readonly ok: boolean; readonly bytes: number; readonly size: number; readonly durationMs: number; readonly retransmits: number; readonly error?: string };

/** IPv4 (20) + UDP (8) + TFTP header (4) = 32 bytes of each frame are not data. */
const FRAME_OVERHEAD = 32;

export async function interfaceMtu(name: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(`/sys/class/net/${name}/mtu`, 'utf8')).trim());
    return Number.isInteger(n) && n > FRAME_OVERHEAD ? n : undefined;
  } catch {
    return undefined;
  }
}

export class TftpServer {
  readonly counters: TftpCounters = {
    requests: 0, malformed: 0, refused: 0, notFound: 0, busy: 0, wrongTid: 0, started: 0, completed: 0, failed: 0, bytes: 0, retransmits: 0,
  };
  private listenSock: dgram.Socket | undefined;
  /** Keyed by "address:port" of the client; includes transfers still opening their file. */
  private readonly transfers = new Map<string, Transfer | 'opening'>();
  private closing = false;
  private limits!: TransferLimits;
  private lastBusyLog = 0;
  private readonly clock: () => number;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: TftpServerDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  get activeTransfers(): number {
    return this.transfers.size;
  }

  /** Running transfers and their progress (read-only copies, for the status page). */
  transfersInProgress(): { client: string; file: string; size: number; bytes: number; startedAt: number; retransmits: number }[] {
    const out = [];
    for (const t of this.transfers.values()) {
      if (t === 'opening') continue;
      out.push({ client: t.address, file: t.file, size: t.machine.size, bytes: t.machine.stats.bytesAcked, startedAt: t.startedAt, retransmits: t.machine.stats.retransmits });
    }
    return out;
  }

  /** The blksize cap actually used: config, and the interface MTU − 32 when known. */
  get maxBlksize(): number {
    return this.limits.maxBlksize;
  }

  get port(): number {
    return this.listenSock?.address().port ?? 0;
  }

  async start(): Promise<void> {
    const { config, log } = this.deps;
    const mtu = this.deps.mtu ?? (config.interface ? await interfaceMtu(config.interface) : undefined);
    const maxBlksize = Math.min(config.maxBlksize, MAX_BLKSIZE, mtu !== undefined ? mtu - FRAME_OVERHEAD : Infinity);
    this.limits = { maxBlksize, maxWindowsize: config.maxWindowsize, timeoutMs: config.timeoutMs, retries: config.retries };
    const sock = await this.openSocket(config.listen.port, 4 << 20);
    sock.on('message', (msg, rinfo) => {
      try { this.onRequest(sock, msg, rinfo); } catch (e) {
        log.error({ event: 'tftp.error', client: rinfo.address, err: e instanceof Error ? e.message : String(e) }, 'TFTP request failed');
      }
    });
    sock.on('error', (e) => log.error({ event: 'tftp.socket-error', err: e.message }, 'TFTP socket error'));
    this.listenSock = sock;
    log.info({
      event: 'tftp.listening', host: config.listen.host, port: this.port, interface: config.interface || undefined,
      maxBlksize, mtu, maxWindowsize: config.maxWindowsize, maxTransfers: config.maxTransfers,
    }, 'TFTP listening');
  }

  /** Stops taking requests, aborts running transfers (no packet is sent), closes every socket. */
  async stop(): Promise<void> {
    this.closing = true;
    const sock = this.listenSock;
    this.listenSock = undefined;
    if (sock) await new Promise<void>((r) => sock.close(() => r()));
    for (const t of this.transfers.values()) if (t !== 'opening') t.abort('daemon stopping');
    if (this.transfers.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /** A socket on the listen address (and interface); port 0 for a transfer's own TID. */
  async openSocket(port: number, rcvbuf = 0): Promise<dgram.Socket> {
    const { listen, interface: device } = this.deps.config;
    if (device) return openInterfaceSocket({ address: listen.host, port, device, rcvbuf });
    // reuseAddr: a transfer binds a second socket to its own port (see begin()).
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: listen.host, port }, () => { sock.off('error', reject); resolve(); });
    });
    return sock;
  }

  private onRequest(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closing) return;
    const { log } = this.deps;
    const d = decodePacket(msg);
    if (!d.ok || (d.packet.op !== OP_RRQ && d.packet.op !== OP_WRQ)) {
      this.counters.malformed++;
      // A broken request (say a NUL inside the name, which ends it early and leaves a bad mode)
      // is told so; anything else is dropped unanswered: no error to whatever a spoofed source says.
      const op = msg.length >= 2 ? msg.readUInt16BE(0) : 0;
      if (!d.ok && (op === OP_RRQ || op === OP_WRQ)) sock.send(encodeError(ERR_ILLEGAL_OP, 'malformed request'), rinfo.port, rinfo.address, () => undefined);
      if (log.isLevelEnabled('debug')) log.debug({ event: 'tftp.malformed', client: rinfo.address, len: msg.length, reason: d.ok ? `opcode ${d.packet.op} on the request port` : d.reason }, 'TFTP packet dropped');
      return;
    }
    const req = d.packet;
    this.counters.requests++;
    const client = `${rinfo.address}:${rinfo.port}`;
    const reply = (code: number, message: string) => sock.send(encodeError(code, message), rinfo.port, rinfo.address, () => undefined);
    if (req.op === OP_WRQ) {
      this.counters.refused++;
      log.warn({ event: 'tftp.write-refused', client, file: req.filename.slice(0, 300) }, 'TFTP write request refused');
      reply(ERR_ACCESS, 'write requests are not accepted');
      return;
    }
    if (req.mode === 'mail') {
      this.counters.refused++;
      reply(ERR_ILLEGAL_OP, 'mail mode is not supported');
      return;
    }
    // The same request again (our first answer was lost or slow): the running transfer retransmits on its own.
    if (this.transfers.has(client)) return;
    if (this.transfers.size >= this.deps.config.maxTransfers) {
      this.counters.busy++;
      const now = this.clock();
      if (now - this.lastBusyLog >= 10_000) {
        this.lastBusyLog = now;
        log.warn({ event: 'tftp.busy', client, file: req.filename.slice(0, 300), maxTransfers: this.deps.config.maxTransfers, busy: this.counters.busy }, 'too many TFTP transfers; request refused');
      }
      reply(ERR_UNDEFINED, `server busy: ${this.deps.config.maxTransfers} transfers in progress, try again later`);
      return;
    }
    this.transfers.set(client, 'opening');
    this.begin(req, rinfo, client, reply).catch((e: unknown) => {
      this.transfers.delete(client);
      this.counters.failed++;
      log.error({ event: 'tftp.error', client, file: req.filename.slice(0, 300), err: e instanceof Error ? e.message : String(e) }, 'TFTP transfer could not start');
      reply(ERR_UNDEFINED, 'internal error');
      this.checkIdle();
    });
  }

  private async begin(req: RequestPacket, rinfo: dgram.RemoteInfo, client: string, reply: (code: number, message: string) => void): Promise<void> {
    const { log } = this.deps;
    const file = req.filename.slice(0, 300);
    const opened = await this.deps.provider.open(req.filename);
    if (!opened.ok) {
      this.transfers.delete(client);
      this.checkIdle();
      if (opened.kind === 'not-found') {
        this.counters.notFound++;
        log.info({ event: 'tftp.not-found', client, file }, 'TFTP file not found');
        reply(ERR_NOT_FOUND, 'file not found');
      } else {
        this.counters.refused++;
        log.warn({ event: 'tftp.refused', client, file, reason: opened.reason }, 'TFTP request refused');
        reply(ERR_ACCESS, 'access violation');
      }
      return;
    }
    let f: OpenFile = opened.file;
    let sock: dgram.Socket | undefined;
    let strangers: dgram.Socket | undefined;
    try {
      if (req.mode === 'netascii') f = await netasciiFile(f);
      // The transfer's TID: a socket connected to the client, so the kernel
      // hands it only the client's packets and sends without a per-packet
      // address lookup (lock-step speed is one round trip per block). A second,
      // unconnected socket on the same port receives everything else: strangers
      // get an ERROR (RFC 1350 §4) without touching the transfer.
      sock = await this.openSocket(0);
      strangers = await this.openSocket(sock.address().port);
      const s = sock;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.connect(rinfo.port, rinfo.address, () => { s.off('error', reject); resolve(); });
      });
    } catch (e) {
      await f.close().catch(() => undefined);
      sock?.close();
      strangers?.close();
      throw e;
    }
    if (this.closing) {
      await f.close().catch(() => undefined);
      sock.close();
      strangers.close();
      this.transfers.delete(client);
      this.checkIdle();
      return;
    }
    const params = negotiate(req.options, f.size, this.limits);
    const machine = new RrqTransfer(f.size, params, this.limits.retries);
    const t = new Transfer(this, sock, strangers, rinfo.address, rinfo.port, file, req.mode, f, machine);
    this.transfers.set(client, t);
    this.counters.started++;
    this.notify({ phase: 'start', client: rinfo.address, file, size: f.size });
    t.start();
  }

  /** Called by a transfer when it has finished and closed its socket and file. */
  ended(t: Transfer, ok: boolean, reason: string | undefined): void {
    this.transfers.delete(t.key);
    const s = t.machine.stats;
    this.counters.bytes += s.bytesAcked;
    this.counters.retransmits += s.retransmits;
    if (ok) this.counters.completed++; else this.counters.failed++;
    const fields = {
      event: ok ? 'tftp.transfer' : 'tftp.transfer-failed',
      client: t.key,
      file: t.file,
      mode: t.mode,
      size: t.machine.size,
      bytes: s.bytesAcked,
      blksize: t.machine.params.blksize,
      windowsize: t.machine.params.windowsize,
      options: t.machine.params.oack.map(([k, v]) => `${k}=${v}`).join(' ') || undefined,
      durationMs: this.clock() - t.startedAt,
      packets: s.dataSent,
      retransmits: s.retransmits,
      duplicateAcks: s.duplicateAcks,
      error: reason,
    };
    if (ok) this.deps.log.info(fields, 'TFTP transfer complete');
    else this.deps.log.warn(fields, 'TFTP transfer failed');
    this.notify({
      phase: 'end', client: t.key.replace(/:\d+$/, ''), file: t.file, ok, bytes: s.bytesAcked, size: t.machine.size,
      durationMs: fields.durationMs, retransmits: s.retransmits, ...(reason !== undefined ? { error: reason } : {}),
    });
    this.checkIdle();
  }

  private notify(e: TransferEvent): void {
    try { this.deps.onTransfer?.(e); } catch { /* a subscriber must not break a transfer */ }
  }

  countWrongTid(from: string): void {
    this.counters.wrongTid++;
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ event: 'tftp.wrong-tid', from }, 'TFTP packet from an unknown transfer ID');
  }

  now(): number {
    return this.clock();
  }

  private checkIdle(): void {
    if (this.transfers.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }
}

/**
 * One running transfer: carries out its RrqTransfer's actions. The window
 * buffer holds windowsize slots of (4-byte DATA header + blksize); a read
 * fills the data parts of the first `count` slots with one positional readv,
 * and each DATA packet is sent straight from its slot. A new read waits until
 * every send from the slots has completed, so a queued send never sees its
 * bytes change underneath it.
 */
class Transfer {
  readonly key: string;
  readonly startedAt: number;
  private readonly slots: Buffer;
  private readonly views: Buffer[];
  private readonly slotLen: number;
  private timer: NodeJS.Timeout | undefined;
  private timerMs = -1;
  private pendingSends = 0;
  private deferredRead: (() => void) | undefined;
  private finished = false;
  private closeWhenDrained: (() => void) | undefined;
  private readonly onSent = () => {
    if (--this.pendingSends > 0) return;
    // At most one is set: finish() drops a deferred read.
    const next = this.deferredRead ?? this.closeWhenDrained;
    this.deferredRead = undefined;
    this.closeWhenDrained = undefined;
    next?.();
  };

  constructor(
    private readonly server: TftpServer,
    private readonly sock: dgram.Socket,
    private readonly strangers: dgram.Socket,
    readonly address: string,
    readonly port: number,
    readonly file: string,
    readonly mode: string,
    private readonly f: OpenFile,
    readonly machine: RrqTransfer,
  ) {
    this.key = `${address}:${port}`;
    this.startedAt = server.now();
    const { blksize, windowsize } = machine.params;
    this.slotLen = DATA_HEADER_LEN + blksize;
    const count = Math.min(windowsize, machine.totalBlocks);
    this.slots = Buffer.allocUnsafe(this.slotLen * count);
    this.views = [];
    for (let i = 0; i < count; i++) this.views.push(this.slots.subarray(i * this.slotLen + DATA_HEADER_LEN, (i + 1) * this.slotLen));
    sock.on('message', (msg, rinfo) => {
      try { this.onMessage(msg, rinfo); } catch (e) {
        this.apply(this.machine.onReadError(e instanceof Error ? e.message : String(e)));
      }
    });
    sock.on('error', () => undefined);
    strangers.on('message', (_msg, rinfo) => this.onStranger(rinfo));
    strangers.on('error', () => undefined);
  }

  /** RFC 1350 §4: an error to a sender that is not this transfer's client; the transfer goes on. */
  private onStranger(rinfo: dgram.RemoteInfo): void {
    if (this.finished) return;
    this.server.countWrongTid(`${rinfo.address}:${rinfo.port}`);
    this.strangers.send(encodeError(ERR_UNKNOWN_TID, 'unknown transfer ID'), rinfo.port, rinfo.address, () => undefined);
  }

  start(): void {
    this.apply(this.machine.start(this.server.now()));
  }

  abort(reason: string): void {
    this.apply(this.machine.abort(reason));
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.finished) return;
    // The socket is connected, so only the client's packets arrive here; kept as a guard.
    if (rinfo.port !== this.port || rinfo.address !== this.address) {
      this.onStranger(rinfo);
      return;
    }
    // Hot path: an ACK is 4 bytes; skip the general decoder.
    if (msg.length >= 4 && msg[0] === 0 && msg[1] === OP_ACK) {
      this.apply(this.machine.onAck(msg.readUInt16BE(2), this.server.now()));
      return;
    }
    const d = decodePacket(msg);
    if (d.ok && d.packet.op === OP_ERROR) this.apply(this.machine.onClientError(d.packet.code, d.packet.message));
  }

  private apply(actions: readonly Action[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send-data': {
          const at = a.slot * this.slotLen;
          writeDataHeader(this.slots, at, a.block);
          this.pendingSends++;
          this.sock.send(this.slots, at, DATA_HEADER_LEN + a.length, this.onSent);
          break;
        }
        case 'send-oack':
          this.sock.send(encodeOack(a.options), () => undefined);
          break;
        case 'read':
          if (this.pendingSends > 0) this.deferredRead = () => this.read(a.block, a.count);
          else this.read(a.block, a.count);
          break;
        case 'set-timer':
          if (this.timer && this.timerMs === a.ms) this.timer.refresh();
          else {
            clearTimeout(this.timer);
            this.timerMs = a.ms;
            this.timer = setTimeout(() => this.apply(this.machine.onTimeout(this.server.now())), a.ms);
          }
          break;
        case 'cancel-timer':
          clearTimeout(this.timer);
          this.timer = undefined;
          break;
        case 'finish':
          this.finish(a.ok, a.reason, a.sendError);
          return;
      }
    }
  }

  private read(block: number, count: number): void {
    const position = (block - 1) * this.machine.params.blksize;
    const views = count === this.views.length ? this.views : this.views.slice(0, count);
    this.f.read(views, position).then(
      (bytes) => { if (!this.finished) this.apply(this.machine.onRead(block, count, bytes, this.server.now())); },
      (e: unknown) => { if (!this.finished) this.apply(this.machine.onReadError(e instanceof Error ? e.message : String(e))); },
    );
  }

  private finish(ok: boolean, reason: string | undefined, sendError: { code: number; message: string } | undefined): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.deferredRead = undefined;
    if (sendError) {
      this.pendingSends++;
      this.sock.send(encodeError(sendError.code, sendError.message), this.onSent);
    }
    const close = () => {
      this.sock.close();
      this.strangers.close();
      this.f.close().catch(() => undefined).finally(() => this.server.ended(this, ok, reason));
    };
    if (this.pendingSends > 0) this.closeWhenDrained = close;
    else close();
  }
}
