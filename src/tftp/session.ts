/**
 * One running TFTP transfer, from its first packet to its last: the client's
 * own socket (its TID), the window buffer and file reads, the one timer, and
 * the replay of what the native streaming thread sent. It carries out the
 * actions of an RrqTransfer (tftp/transfer.ts, the pure state machine) and
 * tells its host (the server: tftp/server.ts) only what the host keeps track
 * of: packets from strangers, a refused stream, and the end.
 */
import { errorMessage } from '../errors/message.js';
import type dgram from 'node:dgram';
import { ConnectedUdp, STREAM_RECORD, streamRecord, type PeerPacket } from '../net/connected-udp.js';
import {
  DATA_HEADER_LEN, ERR_UNKNOWN_TID, OP_ACK, OP_ERROR, decodePacket, encodeError, encodeOack, writeDataHeader,
  type RequestPacket,
} from './packet.js';
import { netasciiFile, type OpenFile } from './provider.js';
import { openTftpSocket, type TftpBind } from './socket.js';
import { MIN_RTO_MS, RrqTransfer, negotiate, type Action, type TransferLimits } from './transfer.js';

/**
 * How a transfer ended. `declined`: the client answered our OACK with an ERROR (RFC 2347 §"the
 * client may respond with ERROR 8"), as UEFI PXE firmware does to learn a file's tsize before
 * the real download; counted apart so that every UEFI boot does not look like a failure.
 */
export type TransferResult = 'completed' | 'failed' | 'declined';

/** What a transfer needs of the server that runs it. */
export interface TransferHost {
  now(): number;
  /** True once the server is stopping: a transfer that finishes opening then is dropped. */
  stopping(): boolean;
  /** A packet to the transfer's port from anyone but its client (answered by the transfer). */
  wrongTid(from: string): void;
  /** The transfer could not stream; it goes on through JavaScript. */
  streamRefused(client: string, e: unknown): void;
  /** The transfer has finished and closed its sockets and file. */
  ended(t: TransferSession, result: TransferResult, reason: string | undefined): void;
}

/** Streaming (see TransferSession): the largest window the native side sends, and the records its log holds. */
const MAX_STREAM_WINDOW = 64;
const STREAM_LOG_RECORDS = 64;
/** While streaming, how often the timer looks at the log at the latest (ms): half the smallest retransmission timeout. */
const STREAM_CHECK_MS = MIN_RTO_MS / 2;

/**
 * Opens an admitted request's transfer: its sockets, the netascii view of the
 * file when asked for, and the state machine with the options negotiated.
 * Undefined (everything closed again) when the host began stopping meanwhile;
 * on an error everything is closed and the error thrown. `file` is the name as
 * logged; the caller starts the transfer once it has registered it.
 */
export async function openSession(
  host: TransferHost, bind: TftpBind, req: RequestPacket, client: { address: string; port: number },
  file: string, opened: OpenFile, limits: TransferLimits,
): Promise<TransferSession | undefined> {
  let f = opened;
  let sock: ConnectedUdp | undefined;
  let strangers: dgram.Socket | undefined;
  // Set once the transfer exists; the client cannot know the port before our first packet.
  let transfer: TransferSession | undefined;
  try {
    if (req.mode === 'netascii') f = await netasciiFile(f);
    // The transfer's TID: a socket connected to the client, so the kernel
    // hands it only the client's packets, with its packet path in native code
    // (net/connected-udp.ts: lock-step speed is one round trip per block). A
    // second, unconnected socket on the same port receives everything else:
    // strangers get an ERROR (RFC 1350 §4) without touching the transfer.
    sock = ConnectedUdp.open(
      { address: bind.address, device: bind.device, peerAddress: client.address, peerPort: client.port },
      (p) => transfer?.onPacket(p),
    );
    strangers = await openTftpSocket(bind, sock.port);
  } catch (e) {
    await f.close().catch(() => undefined);
    sock?.close();
    strangers?.close();
    throw e;
  }
  if (host.stopping()) {
    await f.close().catch(() => undefined);
    sock.close();
    strangers.close();
    return undefined;
  }
  const params = negotiate(req.options, f.size, limits);
  const machine = new RrqTransfer(f.size, params, limits.retries);
  transfer = new TransferSession(host, sock, strangers, client.address, client.port, file, req.mode, f, machine);
  return transfer;
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
export class TransferSession {
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
    private readonly host: TransferHost,
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
    this.startedAt = host.now();
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
        host.streamRefused(this.key, e);
      }
    }
    strangers.on('message', (_msg, rinfo) => this.onStranger(rinfo));
    strangers.on('error', () => undefined);
  }

  /** RFC 1350 §4: an error to a sender that is not this transfer's client; the transfer goes on. */
  private onStranger(rinfo: dgram.RemoteInfo): void {
    if (this.finished) return;
    this.host.wrongTid(`${rinfo.address}:${rinfo.port}`);
    this.strangers.send(encodeError(ERR_UNKNOWN_TID, 'unknown transfer ID'), rinfo.port, rinfo.address, () => undefined);
  }

  start(): void {
    this.apply(this.machine.start(this.host.now()));
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
        this.apply(this.machine.onAck(p.block, this.host.now()));
      } else if (p.kind === 'log') {
        this.replay(p.count);
      } else if (p.kind === 'settled') {
        this.rearm();
      } else if (p.kind === 'other') {
        // An ACK that is not exactly 4 bytes (trailing bytes) still counts, as before the fast path.
        if (p.data.length >= 4 && p.data[0] === 0 && p.data[1] === OP_ACK) {
          this.apply(this.machine.onAck(p.data.readUInt16BE(2), this.host.now()));
          return;
        }
        const d = decodePacket(p.data);
        if (d.ok && d.packet.op === OP_ERROR) this.apply(this.machine.onClientError(d.packet.code, d.packet.message));
      }
      // A receive error (an ICMP unreachable, say) changes nothing: the retry budget decides when the client is gone.
    } catch (e) {
      this.apply(this.machine.onReadError(errorMessage(e)));
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
  private setTimer(ms: number, from = this.host.now()): void {
    this.timerGeneration++;
    this.deadline = from + ms;
    this.wakeIn(Math.max(0, this.deadline - this.host.now()));
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
      const now = this.host.now();
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
      (bytes) => { if (!this.finished) this.apply(this.machine.onRead(block, count, bytes, this.host.now())); },
      (e: unknown) => { if (!this.finished) this.apply(this.machine.onReadError(errorMessage(e))); },
    );
  }

  private finish(result: TransferResult, reason: string | undefined, sendError: { code: number; message: string } | undefined): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    if (sendError) this.sock.sendOne(encodeError(sendError.code, sendError.message));
    this.sock.close();
    this.strangers.close();
    this.f.close().catch(() => undefined).finally(() => this.host.ended(this, result, reason));
  }
}
