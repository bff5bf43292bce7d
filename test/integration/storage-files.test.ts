/**
 * The file backend on real file systems mounted from loop files: btrfs
 * (reflink clones: extents shared, a 1 GiB clone well under a second) and
 * ext4 / tmpfs (no reflink: sparse copies, cloneMode 'copy').
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { runCommand } from '../../src/exec/run.js';
import { InUseError, NotFoundError, PoolFullError, SizeError } from '../../src/storage/backend.js';
import { FileBackend } from '../../src/storage/files.js';
import { guarded } from '../../src/storage/guarded.js';

const MiB = 1 << 20;
// Longer than tap's 30 s default file limit (a guest boot under TCG, or a 1 GiB image).
t.setTimeout(600_000);
const skip = process.getuid?.() !== 0 ? 'needs root to mount loop file systems'
  : !existsSync('/usr/sbin/mkfs.btrfs') && !existsSync('/sbin/mkfs.btrfs') ? 'btrfs-progs is not installed' : false;

async function sh(argv: string[], timeoutMs = 60_000): Promise<string> {
  return (await runCommand(argv, { timeoutMs })).stdout;
}

/** A file system of `size` on a loop file under /var/tmp, unmounted and deleted in teardown. */
async function mountFs(t: { teardown(fn: () => unknown): void }, fs: 'btrfs' | 'ext4' | 'tmpfs', size: string): Promise<string> {
  const base = await mkdtemp(`/var/tmp/mb-storage-${fs}-`);
  const mnt = path.join(base, 'mnt');
  await mkdir(mnt);
  t.teardown(async () => {
    await sh(['umount', mnt]).catch(() => sh(['umount', '-l', mnt]).catch(() => undefined));
    await rm(base, { recursive: true, force: true });
  });
  if (fs === 'tmpfs') {
    await sh(['mount', '-t', 'tmpfs', '-o', `size=${size}`, 'mbtest', mnt]);
  } else {
    const img = path.join(base, 'fs.img');
    await sh(['truncate', '-s', size, img]);
    await sh(fs === 'btrfs' ? ['mkfs.btrfs', '-q', img] : ['mkfs.ext4', '-q', '-F', img]);
    await sh(['mount', '-o', 'loop', img, mnt]);
  }
  return mnt;
}

async function sha(p: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(p, 'r');
  try {
    for await (const c of fh.createReadStream({ highWaterMark: 4 * MiB })) h.update(c as Buffer);
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

async function scribble(p: string, offset: number, len: number): Promise<void> {
  const fh = await open(p, 'r+');
  try { await fh.write(randomBytes(len), 0, len, offset); await fh.sync(); } finally { await fh.close(); }
}

/** A source image of `mib` MiB of data (a random 1 MiB block repeated: real extents, cheap to make), written at `p`. */
async function makeImage(p: string, mib: number, holeMib = 0): Promise<string> {
  const block = randomBytes(MiB);
  const h = createHash('sha256');
  const fh = await open(p, 'w');
  try {
    for (let i = 0; i < mib; i++) { await fh.write(block, 0, MiB, i * MiB); h.update(block); }
    if (holeMib > 0) { await fh.truncate((mib + holeMib) * MiB); h.update(Buffer.alloc(holeMib * MiB)); }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

t.test('btrfs: reflink clones share extents, 1 GiB clone under a second; checkpoint, restore, reset, in-use', { skip, timeout: 300_000 }, async (t) => {
  const mnt = await mountFs(t, 'btrfs', '4G');
  const src = path.join(path.dirname(mnt), 'golden.raw');
  const goldenSha = await makeImage(src, 1024);
  const b = guarded(new FileBackend({ root: path.join(mnt, 'store'), runner: runCommand }));
  await b.init();
  t.equal(b.describe().fields['cloneMode'], 'reflink', 'btrfs: reflink mode detected');
  t.equal(b.describe().note, undefined, 'nothing to warn about');

  let t0 = Date.now();
  const img = await b.importImage('golden', src);
  t.comment(`import 1 GiB: ${Date.now() - t0} ms`);
  t.match(img, { id: 'golden', sizeBytes: 1024 * MiB, sha256: goldenSha, readOnly: true });
  const imgPath = path.join(mnt, 'store/images/golden.raw');
  t.equal((await stat(imgPath)).mode & 0o777, 0o400, 'golden is 0400 (read-only, root only)');
  await sh(['sync']);

  const used0 = (await b.usage()).dataPercent;
  t0 = Date.now();
  const d = await b.clone('golden', 'node-01');
  const cloneMs = Date.now() - t0;
  t.comment(`reflink clone of 1 GiB: ${cloneMs} ms`);
  t.ok(cloneMs < 1000, `clone took ${cloneMs} ms (< 1000)`);
  t.same(d, { id: 'node-01', imageId: 'golden', sizeBytes: 1024 * MiB, export: { bstype: 'rdwr', backingStore: path.join(mnt, 'store/disks/node-01.raw') } });
  t.equal((await stat(d.export.backingStore)).mode & 0o777, 0o600, 'clone is writable, root only');
  const frag = await sh(['filefrag', '-v', d.export.backingStore]);
  t.match(frag, /shared/, 'filefrag: the clone\'s extents are shared');
  await sh(['sync']);
  const used1 = (await b.usage()).dataPercent;
  t.ok(used1 - used0 < 1, `filesystem use grew ${(used1 - used0).toFixed(2)}% for a 1 GiB clone (4 GiB fs)`);

  await scribble(d.export.backingStore, 0, MiB);
  t.not(await sha(d.export.backingStore), goldenSha, 'the clone changed');
  t.equal(await sha(imgPath), goldenSha, 'the golden did not');

  await t.rejects(b.removeImage('golden'), InUseError, 'image with a disk cannot be removed');
  await t.rejects(b.clone('golden', 'node-01'), { name: 'AlreadyExistsError' });
  await t.rejects(b.clone('nope', 'node-02'), NotFoundError);

  await b.checkpoint('node-01', 'c1');
  const s1 = await sha(d.export.backingStore);
  await scribble(d.export.backingStore, 512 * MiB, MiB);
  t.not(await sha(d.export.backingStore), s1);
  t.same(await b.restore('node-01', 'c1'), { method: 'reflink' });
  t.equal(await sha(d.export.backingStore), s1, 'restore gives c1 back');
  await scribble(d.export.backingStore, 3 * MiB, MiB);
  await b.restore('node-01', 'c1');
  t.equal(await sha(d.export.backingStore), s1, 'the checkpoint can be restored twice');
  t.same(await b.listCheckpoints('node-01'), [{ diskId: 'node-01', name: 'c1' }]);

  const r = await b.reset('node-01');
  t.equal(r.imageId, 'golden');
  t.equal(await sha(d.export.backingStore), goldenSha, 'reset: the golden content again');
  t.same(await b.listCheckpoints('node-01'), [{ diskId: 'node-01', name: 'c1' }], 'reset keeps the checkpoints');
  await b.restore('node-01', 'c1');
  t.equal(await sha(d.export.backingStore), s1, 'a checkpoint taken before the reset restores after it');

  // A fresh backend on the same directory sees the same volumes (sidecars).
  const again = guarded(new FileBackend({ root: path.join(mnt, 'store'), runner: runCommand }));
  await again.init();
  t.same((await again.listDisks()).map((x) => [x.id, x.imageId]), [['node-01', 'golden']]);
  t.same((await again.listImages()).map((x) => x.sha256), [goldenSha]);

  await b.removeDisk('node-01');
  t.notOk(await b.diskExists('node-01'));
  await b.removeImage('golden');
  t.same(await b.listImages(), []);
});

t.test('ext4: no reflink, sparse copies; stream import; pool-full refusal', { skip, timeout: 300_000 }, async (t) => {
  const mnt = await mountFs(t, 'ext4', '256M');
  const b = guarded(new FileBackend({ root: path.join(mnt, 'store'), runner: runCommand }), { thresholdPercent: 50 });
  await b.init();
  t.equal(b.describe().fields['cloneMode'], 'copy', 'ext4: sparse-copy mode detected');
  t.match(b.describe().note, /cannot reflink/, 'the storage.ready line says clones are full copies');

  // 8 MiB of data then a 56 MiB hole: stays sparse through import and clone.
  const src = path.join(path.dirname(mnt), 'sparse.raw');
  const sparseSha = await makeImage(src, 8, 56);
  const img = await b.importImage('sparse', src);
  t.equal(img.sha256, sparseSha);
  const d = await b.clone('sparse', 'm1');
  const st = await stat(d.export.backingStore);
  t.equal(st.size, 64 * MiB);
  t.ok(st.blocks * 512 < 16 * MiB, `clone allocates ${st.blocks * 512} bytes of 64 MiB (sparse copy)`);
  t.equal(await sha(d.export.backingStore), sparseSha);
  await scribble(d.export.backingStore, 0, MiB);
  t.equal(await sha(path.join(mnt, 'store/images/sparse.raw')), sparseSha, 'golden unchanged');
  await b.checkpoint('m1', 'before');
  const s = await sha(d.export.backingStore);
  await scribble(d.export.backingStore, 10 * MiB, MiB);
  t.same(await b.restore('m1', 'before'), { method: 'copy' });
  t.equal(await sha(d.export.backingStore), s);

  const data = randomBytes(3 * MiB + 7);
  const streamed = await b.importImage('streamed', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { sizeBytes: data.length, readOnly: false });
  t.match(streamed, { sizeBytes: data.length, readOnly: false, sha256: createHash('sha256').update(data).digest('hex') });
  await t.rejects(b.importImage('short', Readable.from([data]), { sizeBytes: data.length + 1 }), SizeError);
  await t.rejects(b.importImage('long', Readable.from([data]), { sizeBytes: 10 }), SizeError);
  t.same((await b.listImages()).map((i) => i.id), ['sparse', 'streamed'], 'failed imports leave nothing');

  // Fill past 50%: 100 MiB of data in an image, then clones until refused.
  const big = path.join(path.dirname(mnt), 'big.raw');
  await writeFile(big, randomBytes(100 * MiB));
  await b.importImage('big', big);
  let refused: unknown;
  for (let i = 0; i < 3 && !refused; i++) await b.clone('big', `b${i}`).catch((e: unknown) => { refused = e; });
  t.ok(refused instanceof PoolFullError, `clone refused with PoolFullError: ${String((refused as Error)?.message)}`);
  t.ok((await b.usage()).dataPercent > 50);
  await t.rejects(b.checkpoint('m1', 'late'), PoolFullError, 'checkpoint refused too');
  t.same((await readFile(path.join(mnt, 'store/disks/m1.json'), 'utf8')).trim(), JSON.stringify({ v: 1, id: 'm1', imageId: 'sparse' }), 'sidecar JSON');
});

t.test('tmpfs: copy mode reported', { skip }, async (t) => {
  const mnt = await mountFs(t, 'tmpfs', '32M');
  const b = guarded(new FileBackend({ root: mnt, runner: runCommand }));
  await b.init();
  t.equal(b.describe().fields['cloneMode'], 'copy');
  await writeFile(path.join(path.dirname(mnt), 'x.raw'), randomBytes(MiB));
  await b.importImage('x', path.join(path.dirname(mnt), 'x.raw'));
  const d = await b.clone('x', 'y');
  t.equal(await sha(d.export.backingStore), (await b.getImage('x'))?.sha256);
});
