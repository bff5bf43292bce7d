// bench/lib/clone-bench.mjs — the metalboot side of bench/clone: drives the two VolumeBackend
// implementations from this checkout's dist/ and prints (or writes) one JSON document.
//
//   node clone-bench.mjs file-import DIST ROOT ID BYTES KEYHEX
//       FileBackend at ROOT: importImage(ID) from a stream of BYTES bytes of AES-128-CTR keystream
//       (`openssl enc -aes-128-ctr -K KEYHEX -iv 0 -nosalt </dev/zero | head -c BYTES`).
//   node clone-bench.mjs file-clone DIST ROOT ID REPS
//       FileBackend at ROOT: REPS × { sync + drop caches; time clone(ID, disk); check; removeDisk }.
//   node clone-bench.mjs file-remove DIST ROOT ID
//       FileBackend at ROOT: removeImage(ID).
//   node clone-bench.mjs lvm DIST OUTDIR DEV SIZES_GIB REPS FULL_MAX_GIB POOL_GIB
//       INSIDE the test guest: VG + thin pool on DEV, golden thin LVs of each size (empty, 256 MiB
//       spread, fully written when size <= FULL_MAX_GIB), REPS timed LvmBackend.clone() of each;
//       writes OUTDIR/lvm.json (OUTDIR is a --rw share).
//
// Every external command the backends run goes through a wrapping runner that records its argv[0]
// (the lvm subcommand for lvm) and its wall time, so each clone comes with its breakdown.
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { open, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [mode, dist, ...args] = process.argv.slice(2);
if (!mode || !dist) {
  console.error('usage: node clone-bench.mjs file-import|file-clone|file-remove|lvm DIST ...');
  process.exit(2);
}
const imp = (p) => import(pathToFileURL(path.join(dist, p)).href);
const { runCommand } = await imp('src/exec/run.js');
const MiB = 1 << 20;
const GiB = 1 << 30;
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** Commands run by the backend since the last reset(), with their wall times. */
let cmds = [];
const timedRunner = async (argv, opts) => {
  const name = argv[0] === 'env' ? argv.find((a, i) => i > 0 && !a.includes('=')) : argv[0];
  const t0 = nowMs();
  try {
    return await runCommand(argv, opts);
  } finally {
    cmds.push({ cmd: name, ms: round(nowMs() - t0) });
  }
};
const round = (x) => Math.round(x * 1000) / 1000;

async function sh(argv, timeoutMs = 300_000) {
  return (await runCommand(argv, { timeoutMs, maxBuffer: 16 << 20 })).stdout;
}

async function dropCaches() {
  await sh(['sync']);
  await writeFile('/proc/sys/vm/drop_caches', '3\n');
}

/** sha256 of `len` bytes at `pos`. */
async function shaAt(file, pos, len) {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, pos);
    return createHash('sha256').update(buf.subarray(0, bytesRead)).digest('hex');
  } finally {
    await fh.close();
  }
}

/** The clone reads the same as the image at its start, middle and end (1 MiB each). */
async function sameSamples(a, b, size) {
  for (const pos of [0, Math.floor(size / 2 / MiB) * MiB, Math.max(0, size - MiB)]) {
    if ((await shaAt(a, pos, MiB)) !== (await shaAt(b, pos, MiB))) return `differs at ${pos}`;
  }
  return 'ok';
}

// ---- file backend (host) ---------------------------------------------------

/** Through the factory, as the daemon makes it: the guard's name checks, queue and threshold are timed too. */
async function fileBackend(root) {
  const { createBackend } = await imp('src/storage/factory.js');
  const fb = createBackend({ backend: 'file', dir: root, maxPoolPercent: 90 }, { runner: timedRunner });
  await fb.init();
  return fb;
}

if (mode === 'file-import') {
  const [root, id, bytesS, key] = args;
  const bytes = Number(bytesS);
  const fb = await fileBackend(root);
  const gen = spawn('sh', ['-c', 'openssl enc -aes-128-ctr -K "$1" -iv 00000000000000000000000000000000 -nosalt </dev/zero 2>/dev/null | head -c "$2"', 'sh', key, String(bytes)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => gen.on('exit', (code) => r(code)));
  const t0 = nowMs();
  const img = await fb.importImage(id, gen.stdout, { sizeBytes: bytes });
  const ms = nowMs() - t0;
  const code = await exited;
  if (code !== 0) throw new Error(`generator exited with ${code}`);
  const file = path.join(root, 'images', `${id}.raw`);
  const st = await stat(file);
  // FIEMAP extents as filefrag counts them (btrfs merges physically contiguous ones; for the JSON only).
  const fiemapExtents = Number(/(\d+) extents? found/.exec(await sh(['filefrag', file]))?.[1]);
  console.log(JSON.stringify({ id, bytes: img.sizeBytes, allocatedBytes: st.blocks * 512, fiemapExtents, sha256: img.sha256, cloneMode: fb.describe().fields.cloneMode, importMs: round(ms) }));
} else if (mode === 'file-clone') {
  const [root, id, repsS] = args;
  const fb = await fileBackend(root);
  const img = await fb.getImage(id);
  if (!img) throw new Error(`no image ${id} in ${root}`);
  const src = path.join(root, 'images', `${id}.raw`);
  const reps = [];
  for (let r = 1; r <= Number(repsS); r++) {
    const diskId = `bench-${id}-${r}`;
    await dropCaches();
    cmds = [];
    const t0 = nowMs();
    const d = await fb.clone(id, diskId);
    const ms = nowMs() - t0;
    const breakdown = cmds;
    cmds = [];
    // Checks, after the clock: size, content samples, and (btrfs) that the clone shares all its extents.
    const st = await stat(d.export.backingStore);
    if (st.size !== img.sizeBytes) throw new Error(`clone ${diskId} has ${st.size} bytes, image ${img.sizeBytes}`);
    const same = await sameSamples(src, d.export.backingStore, img.sizeBytes);
    if (same !== 'ok') throw new Error(`clone ${diskId} ${same}`);
    let exclusiveBytes;
    if (fb.describe().fields.cloneMode === 'reflink') {
      // "Total Exclusive Set-shared Filename"; --raw gives bytes.
      const line = (await sh(['btrfs', 'filesystem', 'du', '--raw', d.export.backingStore])).trim().split('\n').pop() ?? '';
      exclusiveBytes = Number(line.trim().split(/\s+/)[1]);
    }
    await fb.removeDisk(diskId);
    // Give the freed blocks back to the sparse backing file, as bench/clone does after each full
    // copy, so that every rep writes (if it writes) into the same kind of space.
    await sh(['fstrim', root]);
    reps.push({ ms: round(ms), cmds: breakdown, exclusiveBytes, allocatedBytes: st.blocks * 512 });
  }
  console.log(JSON.stringify({ id, bytes: img.sizeBytes, cloneMode: fb.describe().fields.cloneMode, reps }));
} else if (mode === 'file-remove') {
  const [root, id] = args;
  const fb = await fileBackend(root);
  await fb.removeImage(id);
  console.log(JSON.stringify({ removed: id }));
} else if (mode === 'lvm') {
  await lvmMain(...args);
} else {
  console.error(`clone-bench: unknown mode ${mode}`);
  process.exit(2);
}

// ---- lvm backend (inside the guest) -----------------------------------------

async function lvmMain(out, dev, sizesS, repsS, fullMaxS, poolS) {
  const { createBackend } = await imp('src/storage/factory.js');
  const VG = 'mbclonevg';
  const sizes = sizesS.split(',').map(Number);
  const reps = Number(repsS);
  const fullMax = Number(fullMaxS);
  const doc = { facts: {}, images: [], error: undefined };
  const save = () => writeFile(path.join(out, 'lvm.json'), JSON.stringify(doc, null, 1));
  // Bounded below run-in-guest's own timeout, so lvm.json is written either way.
  setTimeout(() => { doc.error = 'guest script timed out'; void save().finally(() => process.exit(1)); }, Number(process.env.MB_CLONE_GUEST_BUDGET_S ?? 1500) * 1000).unref();
  const log = (s) => console.log(`[guest] ${s}`);
  try {
    doc.facts.kernel = (await sh(['uname', '-r'])).trim();
    doc.facts.lvm = (await sh(['lvm', 'version'])).split('\n')[0]?.trim();
    // The cost of starting any lvm command under TCG: the floor under every lvm step below.
    const noop = [];
    for (let i = 0; i < 3; i++) { const t0 = nowMs(); await sh(['lvm', 'version']); noop.push(round(nowMs() - t0)); }
    doc.facts.lvmVersionMs = noop;
    await sh(['pvcreate', '-y', dev]);
    await sh(['vgcreate', VG, dev]);
    await sh(['lvcreate', '-y', '-L', `${poolS}G`, '-T', `${VG}/pool`]);
    doc.facts.pool = JSON.parse(await sh(['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'lv_name,lv_size,chunk_size,lv_metadata_size,zero', `${VG}/pool`])).report[0].lv[0];
    log(`thin pool ${VG}/pool ${poolS} GiB on ${dev}: ${doc.facts.lvm}`);
    const lvm = createBackend({ backend: 'lvm', vg: VG, thinPool: 'pool', maxPoolPercent: 90 }, { runner: timedRunner });
    await lvm.init();

    const chunk = randomBytes(16 * MiB);
    const variants = [];
    for (const g of sizes) {
      variants.push({ g, kind: 'empty' }, { g, kind: '256m' });
      if (g <= fullMax) variants.push({ g, kind: 'full' });
    }
    // Golden images: thin LVs made exactly as LvmBackend.importImage leaves them (mbt-ID created
    // with the tags metalboot mb-image, written, tagged mb-bytes, made read-only, renamed to mbi-ID),
    // but written directly instead of through importImage, which hashes every byte of the virtual
    // size (about 15 s per GiB under TCG). mb-sha256 is not set.
    for (const v of variants) {
      const id = `g${v.g}-${v.kind}`;
      const bytes = v.g * GiB;
      const lv = `${VG}/mbt-${id}`;
      await sh(['lvcreate', '-y', '-V', `${bytes}b`, '-T', `${VG}/pool`, '-n', `mbt-${id}`, '--addtag', 'metalboot', '--addtag', 'mb-image']);
      const t0 = nowMs();
      const fh = await open(`/dev/${lv}`, 'r+');
      let written = 0;
      try {
        if (v.kind === '256m') {
          // 16 pieces of 16 MiB, one at the start of each 1/16 of the LV.
          for (let i = 0; i < 16; i++) { await fh.write(chunk, 0, chunk.length, i * (bytes / 16)); written += chunk.length; }
        } else if (v.kind === 'full') {
          for (let pos = 0; pos < bytes; pos += chunk.length) {
            chunk.writeBigUInt64LE(BigInt(pos), 0); // no two 16 MiB pieces alike (dm-thin does not dedup anyway)
            await fh.write(chunk, 0, chunk.length, pos);
            written += chunk.length;
          }
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      const writeMs = nowMs() - t0;
      await sh(['lvchange', '-y', '--addtag', `mb-bytes=${bytes}`, lv]);
      await sh(['lvchange', '-y', '-pr', lv]);
      await sh(['lvrename', VG, `mbt-${id}`, `mbi-${id}`]);
      const info = await lvm.getImage(id);
      if (!info || info.sizeBytes !== bytes || !info.readOnly) throw new Error(`backend does not see image ${id}: ${JSON.stringify(info)}`);
      const rep = JSON.parse(await sh(['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'lv_name,lv_size,data_percent,lv_dm_path', `${VG}/mbi-${id}`])).report[0].lv[0];
      // dm-thin status: "0 SECTORS thin MAPPED_SECTORS HIGHEST_MAPPED", exact where data% is rounded.
      const status = (await sh(['dmsetup', 'status', rep.lv_dm_path])).trim().split(/\s+/);
      const allocatedBytes = Number(status[3]) * 512;
      log(`image ${id}: ${v.g} GiB virtual, ${written / MiB} MiB written in ${Math.round(writeMs)} ms, ${rep.data_percent}% allocated`);
      doc.images.push({ id, gib: v.g, kind: v.kind, writtenBytes: written, allocatedBytes, dataPercent: Number(rep.data_percent), writeMs: round(writeMs), reps: [] });
      await save();
    }

    for (const im of doc.images) {
      for (let r = 1; r <= reps; r++) {
        const diskId = `bench-${im.id}-${r}`;
        // No drop_caches here: the guest's root (lvm, its libraries, node) is the host's file
        // system over 9p, and dropping the guest's caches would time re-reading those over 9p.
        cmds = [];
        const t0 = nowMs();
        const d = await lvm.clone(im.id, diskId);
        const ms = nowMs() - t0;
        const breakdown = cmds;
        cmds = [];
        const same = await sameSamples(`/dev/${VG}/mbi-${im.id}`, d.export.backingStore, im.gib * GiB);
        if (same !== 'ok') throw new Error(`clone ${diskId} ${same}`);
        if (d.sizeBytes !== im.gib * GiB) throw new Error(`clone ${diskId}: ${d.sizeBytes} bytes`);
        await lvm.removeDisk(diskId);
        im.reps.push({ ms: round(ms), cmds: breakdown });
        log(`clone ${im.id} rep ${r}: ${Math.round(ms)} ms (${breakdown.map((c) => `${c.cmd} ${Math.round(c.ms)}`).join(', ')})`);
      }
      await save();
    }
    const u = await lvm.usage();
    doc.facts.poolUsage = { dataPercent: u.dataPercent, metadataPercent: u.metadataPercent };
  } catch (e) {
    doc.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    log(`ERROR ${doc.error}`);
  }
  await save();
  process.exit(doc.error ? 1 : 0);
}
