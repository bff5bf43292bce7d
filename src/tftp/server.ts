/**
 * The TFTP socket shell. The request socket (port 69, on the configured
 * interface when there is one) takes read requests; each accepted request
 * gets its own socket on an ephemeral port (its TID, a ConnectedUdp with its
 * packet path in native code) and an RrqTransfer (tftp/transfer.ts) whose
 * actions this file carries out: packets, positional file reads into one
 * reused window buffer, one timer; and, for regular files, the replay of the
 * windows the native side streamed (see Transfer).
 *
 * Nothing thrown by a packet escapes a socket handler: malformed input is
 * dropped and counted; a packet for a transfer from another address or port
 * gets an "unknown transfer ID" error and leaves the transfer alone.
 */
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import type { TftpConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { ConnectedUdp, STREAM_RECORD, streamRecord, type PeerPacket } from '../net/connected-udp.js';
import { openInterfaceSocket } from '../net/udp-socket.js';
import {
  DATA_HEADER_LEN, ERR_ACCESS, ERR_ILLEGAL_OP, ERR_NOT_FOUND, ERR_UNDEFINED, ERR_UNKNOWN_TID,
  OP_ACK, OP_ERROR, OP_RRQ, OP_WRQ, decodePacket, encodeError, encodeOack, writeDataHeader,
  type RequestPacket,
} from './packet.js';
import { netasciiFile, type FileProvider, type OpenFile } from './provider.js';
import { MAX_BLKSIZE, MIN_RTO_MS, RrqTransfer, negotiate, type Action, type TransferLimits } from './transfer.js';
import { admit, type Admission } from './admission.js';
import { DEFAULT_TFTP } from '../config/defaults.js';

export interface TftpCounters {
  requests: number;
  malformed: number;
  refused: number;
  notFound: number;
  busy: number;
  /** Refused: the client's address already held maxTransfersPerClient transfers. */
  busyClient: number;
  /** Refused: an address without a DHCP binding, and the slots left are reserved for those with one. */
  busyUnknown: number;
  wrongTid: number;
  started: number;
  completed: number;
  failed: number;
  /** Ended by the client at the OACK, before any data: a size query (see TransferResult). */
  declined: number;
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
  /**
   * Whether an address holds a DHCP binding metalboot knows (see tftp/admission.ts); without
   * it, config.reservedTransfers does not apply (every client is treated alike).
   */
  readonly isKnownClient?: (address: string) => boolean;
}

/**
 * How a transfer ended. `declined`: the client answered our OACK with an ERROR (RFC 2347 §"the
 * client may respond with ERROR 8"), as UEFI PXE firmware does to learn a file's tsize before
 * the real download; counted apart so that every UEFI boot does not look like a failure.
 */
export type TransferResult = 'completed' | 'failed' | 'declined';

export type TransferEvent =
  | { readonly phase: 'start'; readonly client: string; readonly file: string; readonly size: number }
  | { readonly phase: 'end'; readonly client: string; readonly file: string; readonly ok: boolean; readonly declined?: true; readonly bytes: number; readonly size: number; readonly durationMs: number; readonly retransmits: number; readonly error?: string };

/** Streaming (see Transfer): the largest window the native side sends, and the records its log holds. */
const MAX_STREAM_WINDOW = 64;
const STREAM_LOG_RECORDS = 64;
/** While streaming, how often the timer looks at the log at the latest (ms): half the smallest retransmission timeout. */
const STREAM_CHECK_MS = MIN_RTO_MS / 2;

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
    requests: 0, malformed: 0, refused: 0, notFound: 0, busy: 0, busyClient: 0, busyUnknown: 0, wrongTid: 0, started: 0, completed: 0, failed: 0, declined: 0, bytes: 0, retransmits: 0,
  };
  private listenSock: dgram.Socket | undefined;
  /** Keyed by "address:port" of the client; includes transfers still opening their file. */
  private readonly transfers = new Map<string, Transfer | 'opening'>();
  /** Per transfer key: its client address and whether it was admitted as a known client (tftp/admission.ts). */
  private readonly admitted = new Map<string, { readonly address: string; readonly known: boolean }>();
  /** Transfers per client address, and of unknown clients; kept in step with `admitted`. */
  private readonly perAddress = new Map<string, number>();
  private unknownActive = 0;
  /** Last warning per kind of refusal (at most one per 10 s each, whatever the flood). */
  private readonly lastRefusalLog = new Map<Admission, number>();
  private closing = false;
  private limits!: TransferLimits;
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
    const known = this.deps.isKnownClient ? this.deps.isKnownClient(rinfo.address) : true;
    const verdict = admit(
      { total: this.transfers.size, ofClient: this.perAddress.get(rinfo.address) ?? 0, unknown: this.unknownActive },
      known, this.admissionLimits(),
    );
    if (verdict !== 'ok') {
      this.refuseBusy(verdict, client, req.filename.slice(0, 300), reply);
      return;
    }
    this.hold(client, rinfo.address, known);
    this.transfers.set(client, 'opening');
    this.begin(req, rinfo, client, reply).catch((e: unknown) => {
      this.release(client);
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
      this.release(client);
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
    let sock: ConnectedUdp | undefined;
    let strangers: dgram.Socket | undefined;
    // Set once the transfer exists; the client cannot know the port before our first packet.
    let transfer: Transfer | undefined;
    try {
      if (req.mode === 'netascii') f = await netasciiFile(f);
      // The transfer's TID: a socket connected to the client, so the kernel
      // hands it only the client's packets, with its packet path in native code
      // (net/connected-udp.ts: lock-step speed is one round trip per block). A
      // second, unconnected socket on the same port receives everything else:
      // strangers get an ERROR (RFC 1350 §4) without touching the transfer.
      const { listen, interface: device } = this.deps.config;
      sock = ConnectedUdp.open(
        { address: listen.host, device: device ?? '', peerAddress: rinfo.address, peerPort: rinfo.port },
        (p) => transfer?.onPacket(p),
      );
      strangers = await this.openSocket(sock.port);
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
      this.release(client);
      this.checkIdle();
      return;
    }
    const params = negotiate(req.options, f.size, this.limits);
    const machine = new RrqTransfer(f.size, params, this.limits.retries);
    const t = new Transfer(this, sock, strangers, rinfo.address, rinfo.port, file, req.mode, f, machine);
    transfer = t;
    this.transfers.set(client, t);
    this.counters.started++;
    this.notify({ phase: 'start', client: rinfo.address, file, size: f.size });
    t.start();
  }

  /** Called by a transfer when it has finished and closed its socket and file. */
  ended(t: Transfer, result: TransferResult, reason: string | undefined): void {
    this.release(t.key);
    const s = t.machine.stats;
    const ok = result === 'completed';
    this.counters.bytes += s.bytesAcked;
    this.counters.retransmits += s.retransmits;
    this.counters[result]++;
    const fields = {
      event: ok ? 'tftp.transfer' : result === 'declined' ? 'tftp.declined' : 'tftp.transfer-failed',
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
      unsent: t.unsent || undefined,
      error: reason,
    };
    if (ok) this.deps.log.info(fields, 'TFTP transfer complete');
    else if (result === 'declined') this.deps.log.info(fields, 'TFTP options declined by the client before any data (a size query)');
    else this.deps.log.warn(fields, 'TFTP transfer failed');
    this.notify({
      phase: 'end', client: t.key.replace(/:\d+$/, ''), file: t.file, ok, ...(result === 'declined' ? { declined: true } : {}), bytes: s.bytesAcked, size: t.machine.size,
      durationMs: fields.durationMs, retransmits: s.retransmits, ...(reason !== undefined ? { error: reason } : {}),
    });
    this.checkIdle();
  }

  private admissionLimits(): { maxTransfers: number; perClient: number; reservedForKnown: number } {
    const c = this.deps.config;
    return {
      maxTransfers: c.maxTransfers,
      perClient: c.maxTransfersPerClient ?? DEFAULT_TFTP.maxTransfersPerClient,
      reservedForKnown: this.deps.isKnownClient ? (c.reservedTransfers ?? 0) : 0,
    };
  }

  /**
   * A request over a limit: an ERROR packet (RFC 1350 §5, code 0 "not defined", the message
   * says which limit), counted by kind, and at most one warning per kind per 10 s.
   */
  private refuseBusy(verdict: Exclude<Admission, 'ok'>, client: string, file: string, reply: (code: number, message: string) => void): void {
    const c = this.deps.config;
    const l = this.admissionLimits();
    const counter = verdict === 'busy' ? 'busy' : verdict === 'busy-client' ? 'busyClient' : 'busyUnknown';
    this.counters[counter]++;
    const now = this.clock();
    if (now - (this.lastRefusalLog.get(verdict) ?? -Infinity) >= 10_000) {
      this.lastRefusalLog.set(verdict, now);
      const fields = { event: `tftp.${verdict}`, client, file, maxTransfers: c.maxTransfers, perClient: l.perClient, reserved: l.reservedForKnown, refused: this.counters[counter] };
      this.deps.log.warn(fields, verdict === 'busy' ? 'too many TFTP transfers; request refused'
        : verdict === 'busy-client' ? 'too many TFTP transfers from this client address; request refused'
          : 'TFTP slots left are reserved for clients with a DHCP binding; request refused');
    }
    reply(ERR_UNDEFINED, verdict === 'busy' ? `server busy: ${c.maxTransfers} transfers in progress, try again later`
      : verdict === 'busy-client' ? `server busy: ${l.perClient} transfers from your address in progress, try again later`
        : 'server busy: the free transfers are reserved for served clients, try again later');
  }

  /** Books an admitted request's slot (undone by release). */
  private hold(key: string, address: string, known: boolean): void {
    this.admitted.set(key, { address, known });
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    if (!known) this.unknownActive++;
  }

  /** Ends a transfer's hold on its slot, whatever way it ended. */
  private release(key: string): void {
    this.transfers.delete(key);
    const a = this.admitted.get(key);
    if (!a) return;
    this.admitted.delete(key);
    const n = (this.perAddress.get(a.address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(a.address, n); else this.perAddress.delete(a.address);
    if (!a.known) this.unknownActive--;
  }

  private notify(e: TransferEvent): void {
    try { this.deps.onTransfer?.(e); } catch { /* a subscriber must not break a transfer */ }
  }

  /** A transfer could not stream (see Transfer); it goes on through JavaScript. */
  streamRefused(client: string, e: unknown): void {
    this.deps.log.warn({ event: 'tftp.stream-refused', client, err: e instanceof Error ? e.message : String(e) }, 'TFTP transfer cannot stream; it goes on without');
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
 * and the DATA packets an action list asks for leave together, straight from
 * their slots, in one native send when the list has been walked. The kernel
 * has copied them when the send returns, so the next read may refill the slots
 * at once.
 *
 * From a regular file the transfer streams (net/connected-udp.ts stream()):
 * the socket's own thread answers each full-window ACK with the next window
 * and logs it, and replay() runs the log through the state machine, which
 * checks every step and keeps the counters, the round-trip estimate and the
 * timer. The slots are the thread's while it is armed: this side disarms it
 * (takeOver) before it sends or reads from them itself, and arms it again
 * with the window that is out (rearm).
 */
class Transfer {
  readonly key: string;
  readonly startedAt: number;
  /** DATA packets the kernel would not take (send queue full): lost, as far as the protocol knows. */
  unsent = 0;
  private readonly slots: Buffer;
  private readonly views: Buffer[];
  private readonly slotLen: number;
  private readonly offsets: Uint32Array;
  private readonly lengths: Uint32Array;
  private queued = 0;
  private queuedFirst = 0;
  /** Streaming: the window that is out (in the slots), the one to arm; undefined while one is being read. */
  private window: { first: number; count: number } | undefined;
  /** The streaming log (undefined: not streaming). */
  private readonly log: Float64Array | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerMs = -1;
  /** When the state machine's timer is due (ms, server clock; 0: not armed). */
  private deadline = 0;
  /** Bumped whenever the timer is set or cancelled: a timeout seen for an older generation is void. */
  private timerGeneration = 0;
  private finished = false;

  constructor(
    private readonly server: TftpServer,
    private readonly sock: ConnectedUdp,
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
    this.offsets = new Uint32Array(count);
    this.lengths = new Uint32Array(count);
    if (f.fd !== undefined && windowsize <= MAX_STREAM_WINDOW) {
      const log = new Float64Array(STREAM_LOG_RECORDS * STREAM_RECORD);
      try {
        sock.stream(f.fd, this.slots, blksize, windowsize, machine.size, log);
        this.log = log;
      } catch (e) {
        // Rare (no thread to be had, say): the transfer goes on through the event loop.
        server.streamRefused(this.key, e);
      }
    }
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
    this.takeOver();
    this.apply(this.machine.abort(reason));
  }

  /** A packet from the client (the socket is connected: nobody else's arrive here). */
  onPacket(p: PeerPacket): void {
    if (this.finished) return;
    try {
      if (p.kind === 'ack') {
        this.apply(this.machine.onAck(p.block, this.server.now()));
      } else if (p.kind === 'log') {
        this.replay(p.count);
      } else if (p.kind === 'settled') {
        this.rearm();
      } else if (p.kind === 'other') {
        // An ACK that is not exactly 4 bytes (trailing bytes) still counts, as before the fast path.
        if (p.data.length >= 4 && p.data[0] === 0 && p.data[1] === OP_ACK) {
          this.apply(this.machine.onAck(p.data.readUInt16BE(2), this.server.now()));
          return;
        }
        const d = decodePacket(p.data);
        if (d.ok && d.packet.op === OP_ERROR) this.apply(this.machine.onClientError(d.packet.code, d.packet.message));
      }
      // A receive error (an ICMP unreachable, say) changes nothing: the retry budget decides when the client is gone.
    } catch (e) {
      this.apply(this.machine.onReadError(e instanceof Error ? e.message : String(e)));
    }
  }

  private apply(actions: readonly Action[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send-data': {
          const at = a.slot * this.slotLen;
          writeDataHeader(this.slots, at, a.block);
          if (this.queued === 0) this.queuedFirst = a.block;
          this.offsets[this.queued] = at;
          this.lengths[this.queued] = DATA_HEADER_LEN + a.length;
          this.queued++;
          break;
        }
        case 'send-oack':
          this.sock.sendOne(encodeOack(a.options));
          break;
        case 'read':
          this.flush();
          // The slots are ours until the window is out again: the streaming thread must not step meanwhile.
          this.window = undefined;
          if (this.log) this.sock.arm(0, 0);
          this.read(a.block, a.count);
          break;
        case 'set-timer':
          this.setTimer(a.ms);
          break;
        case 'cancel-timer':
          this.cancelTimer();
          break;
        case 'finish':
          this.flush();
          this.finish(a.ok ? 'completed' : a.declined ? 'declined' : 'failed', a.reason, a.sendError);
          return;
      }
    }
    this.flush();
  }

  /** Sends the DATA packets queued by apply() (always one whole window, slot i = block first+i) in one go. */
  private flush(): void {
    if (this.queued === 0) return;
    const n = this.sock.send(this.slots, this.offsets, this.lengths, this.queued);
    this.unsent += this.queued - Math.max(0, n);
    this.window = { first: this.queuedFirst, count: this.queued };
    this.queued = 0;
    this.rearm();
  }

  /**
   * The state machine's timer: due `ms` after `from` (now, or for a replayed
   * window its send time). While streaming, the Node timer looks in at least
   * every STREAM_CHECK_MS: windows sent natively since the last replay move the
   * deadline, and their round trips bring a backed-off timeout down again, as
   * an ACK would at once without streaming.
   */
  private setTimer(ms: number, from = this.server.now()): void {
    this.timerGeneration++;
    this.deadline = from + ms;
    this.wakeIn(Math.max(0, this.deadline - this.server.now()));
  }

  private wakeIn(ms: number): void {
    const wait = this.log ? Math.min(ms, STREAM_CHECK_MS) : ms;
    if (this.timer && this.timerMs === wait) this.timer.refresh();
    else {
      clearTimeout(this.timer);
      this.timerMs = wait;
      this.timer = setTimeout(this.onTimer, wait);
    }
  }

  private cancelTimer(): void {
    this.timerGeneration++;
    this.deadline = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * libuv runs due timers before it reads sockets, so after the event loop was
   * held up (a long GC pause, a stalled host) the timer would judge the client
   * silent while its ACKs wait unread. The timeout is handled in the check
   * phase instead, after one turn of reading; an ACK read in that turn re-arms
   * the timer and this timeout is void.
   */
  private readonly onTimer = (): void => {
    if (this.finished) return;
    const generation = this.timerGeneration;
    setImmediate(() => {
      if (this.finished || generation !== this.timerGeneration || this.deadline === 0) return;
      // Windows the streaming thread sent since the last replay are progress: replay re-arms the timer from the last of them.
      if (this.takeOver()) {
        this.rearm();
        return;
      }
      const now = this.server.now();
      if (now < this.deadline) {
        this.rearm();
        this.wakeIn(this.deadline - now);
        return;
      }
      this.deadline = 0;
      this.apply(this.machine.onTimeout(now));
      // The retransmission re-armed the thread (flush); a timeout that sent nothing leaves it to 'settled'.
    });
  };

  /**
   * Streaming: stops the thread (waiting for a step in progress) and replays
   * what it did since the last replay, so the slots and the state machine
   * agree and are this side's. True when there was something to replay.
   */
  private takeOver(): boolean {
    if (!this.log) return false;
    this.sock.arm(0, 0);
    return this.replay(this.sock.drain());
  }

  /** Streaming: hands the window that is out back to the thread (unless one is being read, or the transfer is over). */
  private rearm(): void {
    if (this.log && this.window && !this.finished) this.sock.arm(this.window.first, this.window.count);
  }

  /**
   * Runs `count` streaming records through the state machine: each must be,
   * for it, an ACK that asks for exactly the window the native side sent. The
   * sends are done already; the timer is armed from the last send's time.
   * True when at least one record was replayed.
   */
  private replay(count: number): boolean {
    const log = this.log;
    if (!log || count === 0) return false;
    let timer: { ms: number; from: number } | undefined;
    for (let i = 0; i < count && !this.finished; i++) {
      const r = streamRecord(log, i);
      const acked = this.machine.onAck(r.ackBlock, r.ackAt);
      const read = acked.find((a) => a.type === 'read');
      if (!read || read.block !== r.first || read.count !== r.count || acked.some((a) => a.type === 'finish')) {
        // Never expected: the native side and the state machine disagree. End the transfer rather than send wrong bytes.
        this.apply(this.machine.onReadError(`streaming out of step at block ${r.first} (ACK ${r.ackBlock})`));
        return true;
      }
      this.window = { first: r.first, count: r.count };
      for (const a of this.machine.onRead(r.first, r.count, r.bytes, r.sentAt)) {
        if (a.type === 'set-timer') timer = { ms: a.ms, from: r.sentAt };
        else if (a.type !== 'send-data') this.apply([a]);
      }
    }
    if (timer && !this.finished) this.setTimer(timer.ms, timer.from);
    return true;
  }

  private read(block: number, count: number): void {
    const position = (block - 1) * this.machine.params.blksize;
    const views = count === this.views.length ? this.views : this.views.slice(0, count);
    this.f.read(views, position).then(
      (bytes) => { if (!this.finished) this.apply(this.machine.onRead(block, count, bytes, this.server.now())); },
      (e: unknown) => { if (!this.finished) this.apply(this.machine.onReadError(e instanceof Error ? e.message : String(e))); },
    );
  }

  private finish(result: TransferResult, reason: string | undefined, sendError: { code: number; message: string } | undefined): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    if (sendError) this.sock.sendOne(encodeError(sendError.code, sendError.message));
    this.sock.close();
    this.strangers.close();
    this.f.close().catch(() => undefined).finally(() => this.server.ended(this, result, reason));
  }
}
