/**
 * The kernel's IPv4 neighbour (ARP) table of this network namespace, read from /proc/net/arp
 * (Linux). Who answers ARP for an address is the one fact about a requester on the segment that
 * a forged DHCP packet does not change (boot/script-access.ts).
 */
import { open } from 'node:fs/promises';
import { neighbourFromProcArp, type NeighbourFact } from '../boot/script-access.js';

/** Enough for over 2,500 entries of ~100 bytes (gc_thresh3 is 1024 by default); the rest of a bigger table is not read. */
export const MAX_BYTES = 256 << 10;
/**
 * The first read's buffer, doubled while full up to MAX_BYTES: a lab's table is a few KiB, and
 * every unauthenticated /boot/<mac>.ipxe reads it, so a request must not cost MAX_BYTES of memory.
 */
export const FIRST_BYTES = 8 << 10;

export async function readNeighbour(ip: string, file = '/proc/net/arp'): Promise<NeighbourFact> {
  let fh;
  try {
    fh = await open(file, 'r');
    // procfs files report size 0: read until EOF, bounded.
    let buf = Buffer.allocUnsafe(FIRST_BYTES);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n >= MAX_BYTES) break;
        const bigger = Buffer.allocUnsafe(Math.min(MAX_BYTES, 2 * buf.length));
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return neighbourFromProcArp(buf.subarray(0, n).toString('latin1'), ip);
  } catch {
    return { kind: 'unknown' };
  } finally {
    await fh?.close();
  }
}
