/**
 * The TFTP listener: the request socket (port 69, on the configured interface
 * when there is one) takes read requests, admits or refuses them
 * (tftp/admission.ts), opens the file, and hands each accepted request to a
 * TransferSession (tftp/session.ts: its own socket, timers and retransmits)
 * through a small host interface; it keeps the counters, the slots, the log of
 * each transfer's end, and start/stop.
 *
 * Nothing thrown by a packet escapes a socket handler: malformed input is
 * dropped and counted; a packet for a transfer from another address or port
 * gets an "unknown transfer ID" error and leaves the transfer alone.
 */
import { errorMessage } from '../errors/message.js';
import type dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import type { TftpConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import {
  ERR_ACCESS, ERR_ILLEGAL_OP, ERR_NOT_FOUND, ERR_UNDEFINED, OP_RRQ, OP_WRQ, decodePacket, encodeError,
  type RequestPacket,
} from './packet.js';
import type { FileProvider } from './provider.js';
import { openSession, type TransferHost, type TransferResult, type TransferSession } from './session.js';
import { openTftpSocket, type TftpBind } from './socket.js';
import { MAX_BLKSIZE, type TransferLimits } from './transfer.js';
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

export type TransferEvent =
  | { readonly phase: 'start'; readonly client: string; readonly file: string; readonly size: number }
  | { readonly phase: 'end'; readonly client: string; readonly file: string; readonly ok: boolean; readonly declined?: true; readonly bytes: number; readonly size: number; readonly durationMs: number; readonly retransmits: number; readonly error?: string };

/** IPv4 (20) + UDP (8) + TFTP header (4) = 32 bytes of each frame are not data. */
const FRAME_OVERHEAD = 32;

async function interfaceMtu(name: string): Promise<number | undefined> {
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
  private readonly transfers = new Map<string, TransferSession | 'opening'>();
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
  private readonly bind: TftpBind;
  /** What the transfers see of this server (tftp/session.ts). */
  private readonly host: TransferHost;

  constructor(private readonly deps: TftpServerDeps) {
    this.clock = deps.clock ?? Date.now;
    this.bind = { address: deps.config.listen.host, device: deps.config.interface ?? '' };
    this.host = {
      now: this.clock,
      stopping: () => this.closing,
      wrongTid: (from) => this.countWrongTid(from),
      streamRefused: (client, e) => this.streamRefused(client, e),
      ended: (t, result, reason) => this.ended(t, result, reason),
    };
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
    const sock = await openTftpSocket(this.bind, config.listen.port, 4 << 20);
    sock.on('message', (msg, rinfo) => {
      try { this.onRequest(sock, msg, rinfo); } catch (e) {
        log.error({ event: 'tftp.error', client: rinfo.address, err: errorMessage(e) }, 'TFTP request failed');
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
      log.error({ event: 'tftp.error', client, file: req.filename.slice(0, 300), err: errorMessage(e) }, 'TFTP transfer could not start');
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
    const t = await openSession(this.host, this.bind, req, rinfo, file, opened.file, this.limits);
    if (!t) {
      this.release(client);
      this.checkIdle();
      return;
    }
    this.transfers.set(client, t);
    this.counters.started++;
    this.notify({ phase: 'start', client: rinfo.address, file, size: t.machine.size });
    t.start();
  }

  /** Called by a transfer when it has finished and closed its socket and file. */
  private ended(t: TransferSession, result: TransferResult, reason: string | undefined): void {
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

  /** A transfer could not stream (see tftp/session.ts); it goes on through JavaScript. */
  private streamRefused(client: string, e: unknown): void {
    this.deps.log.warn({ event: 'tftp.stream-refused', client, err: errorMessage(e) }, 'TFTP transfer cannot stream; it goes on without');
  }

  private countWrongTid(from: string): void {
    this.counters.wrongTid++;
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ event: 'tftp.wrong-tid', from }, 'TFTP packet from an unknown transfer ID');
  }

  private checkIdle(): void {
    if (this.transfers.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }
}

