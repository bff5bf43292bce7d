/**
 * UDP sockets bound to one interface: the fd is opened by the native helper
 * (native/netsock.c, SO_BINDTODEVICE before bind) and handed to node:dgram.
 */
import { errorMessage } from '../errors/message.js';
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NetsockAddon {
  openUdp4(address: string, port: number, device: string, broadcast: boolean, reuse: boolean, rcvbuf: number): number;
  closeFd(fd: number): void;
  /** native/udp-pump.c */
  connectUdp4(fd: number, address: string, port: number): void;
  localPort(fd: number): number;
  pumpStart(fd: number, onPacket: (kind: number, value: number | Buffer) => void): object;
  pumpSend(fd: number, buffer: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number): number;
  pumpClose(handle: object): void;
  pumpStream(handle: object, fileFd: number, slots: Buffer, blksize: number, windowsize: number, fileSize: number, log: Float64Array): void;
  pumpArm(handle: object, first: number, count: number): boolean;
  pumpDrain(handle: object): number;
}

let addon: NetsockAddon | undefined;
/** The native addon (build/Release/netsock.node), loaded once. */
export function loadAddon(): NetsockAddon {
  if (!addon) {
    // dist/src/net/udp-socket.js -> <root>/build/Release/netsock.node
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    addon = createRequire(import.meta.url)(path.join(root, 'build/Release/netsock.node')) as NetsockAddon;
  }
  return addon;
}

export class SocketOpenError extends Error {
  constructor(readonly what: string, cause: unknown) {
    super(`cannot open ${what}: ${errorMessage(cause)}`, { cause });
    this.name = 'SocketOpenError';
  }
}

export interface InterfaceSocketOptions {
  readonly address: string;
  readonly port: number;
  /** Interface name; '' for none. */
  readonly device: string;
  readonly broadcast?: boolean;
  /** Receive buffer in bytes (0: the kernel default). */
  readonly rcvbuf?: number;
}

export async function openInterfaceSocket(opts: InterfaceSocketOptions): Promise<dgram.Socket> {
  const what = `UDP ${opts.address}:${opts.port}${opts.device ? ` on ${opts.device}` : ''}`;
  let fd: number;
  try {
    fd = loadAddon().openUdp4(opts.address, opts.port, opts.device, opts.broadcast ?? false, true, opts.rcvbuf ?? 0);
  } catch (e) {
    throw new SocketOpenError(what, e);
  }
  // No recvBufferSize here: node would set it again with SO_RCVBUF after bind,
  // capped at rmem_max, undoing the native SO_RCVBUFFORCE.
  const sock = dgram.createSocket({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', (e) => { loadAddon().closeFd(fd); reject(new SocketOpenError(what, e)); });
    sock.bind({ fd }, () => resolve());
  });
  return sock;
}
