/** The UDP sockets TFTP binds: the request socket, and each transfer's second socket on its own port. */
import dgram from 'node:dgram';
import { openInterfaceSocket } from '../net/udp-socket.js';

/** Where TFTP's sockets live: the listen address, and the interface when one is configured ('' for none). */
export interface TftpBind {
  readonly address: string;
  readonly device: string;
}

/** A socket on the listen address (and interface); port 0 for a transfer's own TID. */
export async function openTftpSocket(bind: TftpBind, port: number, rcvbuf = 0): Promise<dgram.Socket> {
  const { address, device } = bind;
  if (device) return openInterfaceSocket({ address, port, device, rcvbuf });
  // reuseAddr: a transfer binds a second socket to its own port (see tftp/session.ts).
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ address, port }, () => { sock.off('error', reject); resolve(); });
  });
  return sock;
}
