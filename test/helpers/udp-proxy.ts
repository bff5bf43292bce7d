/**
 * A small UDP proxy on loopback between one client and one upstream (a real BMC simulator), with
 * a hook that may drop or rewrite each datagram. Used to make a real peer look lossy or hostile.
 */
import dgram from 'node:dgram';
import type { Test } from 'tap';

export type Direction = 'to-upstream' | 'to-client';
/** Return the datagram to forward (possibly modified), or null to drop it. `index` counts per direction. */
export type Mangle = (datagram: Buffer, dir: Direction, index: number) => Buffer | null;

export interface UdpProxy {
  readonly port: number;
  mangle: Mangle;
  readonly counts: { forwarded: number; dropped: number; modified: number };
}

export async function startUdpProxy(t: Test, upstreamPort: number, mangle: Mangle = (b) => b): Promise<UdpProxy> {
  const front = dgram.createSocket('udp4');
  const back = dgram.createSocket('udp4');
  await new Promise<void>((r) => front.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => back.bind(0, '127.0.0.1', r));
  let client: { address: string; port: number } | undefined;
  const index: Record<Direction, number> = { 'to-upstream': 0, 'to-client': 0 };
  const proxy: UdpProxy = { port: front.address().port, mangle, counts: { forwarded: 0, dropped: 0, modified: 0 } };
  const pass = (b: Buffer, dir: Direction, send: (out: Buffer) => void): void => {
    const out = proxy.mangle(Buffer.from(b), dir, index[dir]++);
    if (!out) { proxy.counts.dropped++; return; }
    if (!out.equals(b)) proxy.counts.modified++;
    proxy.counts.forwarded++;
    send(out);
  };
  front.on('message', (b, rinfo) => {
    client = { address: rinfo.address, port: rinfo.port };
    pass(b, 'to-upstream', (out) => back.send(out, upstreamPort, '127.0.0.1'));
  });
  back.on('message', (b) => {
    if (client) { const c = client; pass(b, 'to-client', (out) => front.send(out, c.port, c.address)); }
  });
  t.teardown(() => { front.close(); back.close(); });
  return proxy;
}
