/**
 * net/neighbours.ts reads /proc/net/arp (here a temporary file): a small table costs a small
 * buffer (every unauthenticated /boot/<mac>.ipxe reads it), a bigger one is read whole up to
 * MAX_BYTES, and nothing past MAX_BYTES is read.
 */
import t from 'tap';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FIRST_BYTES, MAX_BYTES, readNeighbour } from '../../src/net/neighbours.js';

const HEADER = 'IP address       HW type     Flags       HW address            Mask     Device\n';
/** Rows of one length (the address padded), so where a row ends is known. */
const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const row = (i: number, mac = '52:54:00:00:00:01') => `${ipOf(i).padEnd(17)}0x1         0x2         ${mac}     *        labbr\n`;
/** A table of `n` rows, then the row of 10.99.99.99 → 52:54:00:99:99:99 last. */
const table = (n: number) => HEADER + Array.from({ length: n }, (_, i) => row(i)).join('') + '10.99.99.99     0x1         0x2         52:54:00:99:99:99     *        labbr\n';

/** Bytes asked of Buffer.alloc/allocUnsafe while `fn` runs. */
async function allocated<T>(fn: () => Promise<T>): Promise<{ value: T; bytes: number }> {
  const { alloc, allocUnsafe } = Buffer;
  let bytes = 0;
  Buffer.alloc = ((size: number, ...rest: unknown[]) => { bytes += size; return (alloc as (...a: unknown[]) => Buffer).call(Buffer, size, ...rest); }) as typeof Buffer.alloc;
  Buffer.allocUnsafe = ((size: number) => { bytes += size; return allocUnsafe.call(Buffer, size); }) as typeof Buffer.allocUnsafe;
  try {
    return { value: await fn(), bytes };
  } finally {
    Buffer.alloc = alloc;
    Buffer.allocUnsafe = allocUnsafe;
  }
}

t.test('readNeighbour: a small table costs a small buffer, a big one is read to MAX_BYTES', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mbt-neigh-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = (name: string) => path.join(dir, name);

  await writeFile(file('small'), table(10));
  const small = await allocated(() => readNeighbour('10.99.99.99', file('small')));
  t.same(small.value, { kind: 'entry', mac: '52:54:00:99:99:99' });
  t.ok(small.bytes <= FIRST_BYTES, `a ${table(10).length}-byte table allocated ${small.bytes} bytes (not ${MAX_BYTES})`);

  // Several times the first buffer: read whole, the last row found.
  const mid = table(Math.ceil((FIRST_BYTES * 5) / row(0).length));
  t.ok(mid.length > 4 * FIRST_BYTES && mid.length < MAX_BYTES);
  await writeFile(file('mid'), mid);
  t.same(await readNeighbour('10.99.99.99', file('mid')), { kind: 'entry', mac: '52:54:00:99:99:99' }, 'the last row of a table bigger than the first buffer');
  t.same(await readNeighbour('10.0.0.0', file('mid')), { kind: 'entry', mac: '52:54:00:00:00:01' }, 'and the first');

  // Past MAX_BYTES nothing is read: the last row is not seen, an early one is.
  const big = table(Math.ceil((MAX_BYTES * 1.5) / row(0).length));
  await writeFile(file('big'), big);
  const read = await allocated(() => readNeighbour('10.99.99.99', file('big')));
  t.same(read.value, { kind: 'none' }, 'a row past MAX_BYTES is not read');
  t.ok(read.bytes <= 2 * MAX_BYTES, `bounded allocation for a huge table (${read.bytes} bytes)`);
  t.same(await readNeighbour('10.0.0.5', file('big')), { kind: 'entry', mac: '52:54:00:00:00:01' });
  // The row that ends just before MAX_BYTES is still whole.
  const lastWhole = Math.floor((MAX_BYTES - HEADER.length) / row(0).length) - 1;
  const ip = ipOf(lastWhole);
  t.same(await readNeighbour(ip, file('big')), { kind: 'entry', mac: '52:54:00:00:00:01' }, `${ip}, the last whole row within MAX_BYTES`);
});
