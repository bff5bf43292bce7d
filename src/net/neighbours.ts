/**
 * The kernel's IPv4 neighbour (ARP) table of this network namespace, read from /proc/net/arp
 * (Linux). Who answers ARP for an address is the one fact about a requester on the segment that
 * a forged DHCP packet does not change (boot/script-access.ts).
 */
import { open } from 'node:fs/promises';
import { neighbourFromProcArp, type NeighbourFact } from '../boot/script-access.js';

/** Enough for over 2,500 entries of ~100 bytes (gc_thresh3 is 1024 by default); the rest of a bigger table is not read. */
const MAX_BYTES = 256 << 10;

export async function readNeighbour(ip: string, file = '/proc/net/arp'): Promise<NeighbourFact> {
  let fh;
  try {
    fh = await open(file, 'r');
    // procfs files report size 0: read until EOF, bounded.
    const buf = Buffer.alloc(MAX_BYTES);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, MAX_BYTES - n, null);
      if (bytesRead === 0 || n + bytesRead >= MAX_BYTES) { n += bytesRead; break; }
      n += bytesRead;
    }
    return neighbourFromProcArp(buf.subarray(0, n).toString('latin1'), ip);
  } catch {
    return { kind: 'unknown' };
  } finally {
    await fh?.close();
  }
}
