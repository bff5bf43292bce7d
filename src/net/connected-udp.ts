/**
 * A UDP socket connected to one peer, with its packet path in native code
 * (native/udp-pump.c): a whole batch of packets leaves with one sendmmsg()
 * from the caller's buffer, and each received packet reaches the handler
 * without node:dgram's per-packet objects. For a TFTP transfer's TID, where
 * the per-packet cost of the socket layer is the transfer's speed.
 *
 * Connected: the kernel delivers only the peer's packets to it. Others sent
 * to the same port go to a second, unconnected socket bound beside it with
 * SO_REUSEADDR (the caller's business).
 */
import { loadAddon, SocketOpenError } from './udp-socket.js';

/** What arrived: an ACK-shaped packet (opcode 4, 4 bytes) as its block number, anything else as bytes, or a receive error. */
export type PeerPacket =
  | { readonly kind: 'ack'; readonly block: number }
  | { readonly kind: 'other'; readonly data: Buffer }
  | { readonly kind: 'error'; readonly errno: number }
  /** `count` streaming records were copied into the log (see stream()). */
  | { readonly kind: 'log'; readonly count: number }
  /** Streaming: the records and packets that were waiting have all been handed over. */
  | { readonly kind: 'settled' };

/** Doubles per streaming-log record. */
export const STREAM_RECORD = 6;

/** One window the native side sent on a full-window ACK (see stream()). */
export interface StreamRecord {
  /** The ACK's 16-bit block number and its arrival time (ms, Date.now's clock). */
  readonly ackBlock: number;
  readonly ackAt: number;
  /** The window sent: absolute first block, block count, bytes read, send time (ms). */
  readonly first: number;
  readonly count: number;
  readonly bytes: number;
  readonly sentAt: number;
}

/** Record `i` of a streaming log. */
export function streamRecord(log: Float64Array, i: number): StreamRecord {
  const at = i * STREAM_RECORD;
  return { ackBlock: log[at]!, ackAt: log[at + 1]!, first: log[at + 2]!, count: log[at + 3]!, bytes: log[at + 4]!, sentAt: log[at + 5]! };
}

export interface ConnectedUdpOptions {
  /** Local address to bind (port: ephemeral). */
  readonly address: string;
  /** Interface name ('' for none): SO_BINDTODEVICE before bind. */
  readonly device: string;
  readonly peerAddress: string;
  readonly peerPort: number;
}

export class ConnectedUdp {
  readonly port: number;
  private readonly handle: object;
  private closed = false;
  private readonly oneOffset = new Uint32Array(1);
  private readonly oneLength = new Uint32Array(1);

  private constructor(private readonly fd: number, onPacket: (p: PeerPacket) => void) {
    const addon = loadAddon();
    this.port = addon.localPort(fd);
    this.handle = addon.pumpStart(fd, (kind, value) => {
      if (this.closed) return;
      if (kind === 0) onPacket({ kind: 'ack', block: value as number });
      else if (kind === 1) onPacket({ kind: 'other', data: value as Buffer });
      else if (kind === 2) onPacket({ kind: 'error', errno: value as number });
      else if (kind === 3) onPacket({ kind: 'log', count: value as number });
      else onPacket({ kind: 'settled' });
    });
  }

  /** Opens, binds and connects; `onPacket` is called for every packet from the peer. */
  static open(opts: ConnectedUdpOptions, onPacket: (p: PeerPacket) => void): ConnectedUdp {
    const what = `UDP ${opts.address}:0 to ${opts.peerAddress}:${opts.peerPort}${opts.device ? ` on ${opts.device}` : ''}`;
    const addon = loadAddon();
    let fd: number;
    try {
      fd = addon.openUdp4(opts.address, 0, opts.device, false, true, 0);
    } catch (e) {
      throw new SocketOpenError(what, e);
    }
    try {
      addon.connectUdp4(fd, opts.peerAddress, opts.peerPort);
      return new ConnectedUdp(fd, onPacket);
    } catch (e) {
      addon.closeFd(fd);
      throw new SocketOpenError(what, e);
    }
  }

  /**
   * Sends packets `buffer[offsets[i] .. offsets[i] + lengths[i])`, i < count,
   * now; the buffer may be reused as soon as this returns. Returns how many
   * left (fewer than count when the send queue is full, which the caller treats
   * as loss), or a negative errno when none did.
   */
  send(buffer: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (this.closed) return 0;
    return loadAddon().pumpSend(this.fd, buffer, offsets, lengths, count);
  }

  /** Sends one packet (the whole buffer). */
  sendOne(packet: Buffer): number {
    this.oneOffset[0] = 0;
    this.oneLength[0] = packet.length;
    return this.send(packet, this.oneOffset, this.oneLength, 1);
  }

  /**
   * Streaming from a regular file: from now on a thread of this socket's own
   * receives (blocking), and answers the ACK of the last block of the armed
   * window (see arm()) itself, by reading the next window of `blksize` blocks
   * (at most `windowsize`, 1…64) from `fileFd` into `slots` (slot i at
   * i × (4 + blksize): a DATA header, then the data) and sending it. Each such
   * step is one record; the window sent is armed in turn. Any other packet
   * disarms it and waits for the event loop, so records and packets arrive in
   * the order they happened: a 'log' (the records, copied into `log`, which
   * holds length / STREAM_RECORD of them), packets, then 'settled'. While armed
   * the slots are the thread's; disarm (arm(0, 0)) before touching them.
   */
  stream(fileFd: number, slots: Buffer, blksize: number, windowsize: number, fileSize: number, log: Float64Array): void {
    loadAddon().pumpStream(this.handle, fileFd, slots, blksize, windowsize, fileSize, log);
  }

  /**
   * The window of blocks first…first+count−1 is out (in slots 0…count−1):
   * true when armed, false when records or packets still wait to be handed
   * over (arm again after 'settled'). count 0 disarms, waiting for a step in
   * progress, so the slots are the caller's when it returns.
   */
  arm(first: number, count: number): boolean {
    return this.closed ? false : loadAddon().pumpArm(this.handle, first, count);
  }

  /** Copies the waiting records into the log; their number (now the caller's to read). */
  drain(): number {
    return this.closed ? 0 : loadAddon().pumpDrain(this.handle);
  }

  /** Stops receiving and closes the socket; later sends do nothing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    loadAddon().pumpClose(this.handle);
  }
}
