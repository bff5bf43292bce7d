/**
 * The LVM backend end to end, run INSIDE the test guest (real dm-thin):
 *   node dist/test/guest/lvm-scenario.js OUTDIR      (via test/guest/run-in-guest)
 * on a scratch /dev/vdb. Every check is recorded as {name, ok, detail, ms}
 * in OUTDIR/results.json (a --rw share), plus the raw lvs JSON at a few
 * points for the fixtures; the exit status is 0 only if every check passed.
 * All scenarios share one boot because each boot costs 7-10 s under TCG.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { runCommand } from '../../src/exec/run.js';
import { BusyError, InUseError, PoolFullError, SizeError } from '../../src/storage/backend.js';
import { LV_FIELDS } from '../../src/storage/lvm-report.js';
import { LvmBackend } from '../../src/storage/lvm.js';

const OUT = process.argv[2] ?? '/tmp';
const DEV = process.env.MB_SCENARIO_DEV ?? '/dev/vdb';
const VG = 'mbvg';
const MiB = 1 << 20;

interface Check { name: string; ok: boolean; detail?: unknown; ms: number }
const results: Check[] = [];
const facts: Record<string, unknown> = {};

async function step(name: string, fn: () => Promise<unknown>): Promise<void> {
  const t0 = Date.now();
  try {
    const detail = await fn();
    results.push({ name, ok: true, detail, ms: Date.now() - t0 });
  } catch (e) {
    results.push({ name, ok: false, detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e), ms: Date.now() - t0 });
  }
  const r = results[results.length - 1];
  console.log(`${r?.ok ? 'ok' : 'NOT OK'} ${name} (${r?.ms} ms)${r?.ok ? '' : `: ${String(r?.detail)}`}`);
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

async function sh(argv: string[], timeoutMs = 120_000): Promise<string> {
  return (await runCommand(argv, { timeoutMs, maxBuffer: 16 << 20 })).stdout;
}

/** sha256 of the first `bytes` of a device or file. */
async function sha(path: string, bytes: number): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4 * MiB);
    for (let pos = 0; pos < bytes;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, bytes - pos), pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Writes random bytes at an offset of a block device, synchronously to disk. */
async function scribble(path: string, offset: number, len: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(randomBytes(len), 0, len, offset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function expectReject<E extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => E): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert(e instanceof cls, `expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    return e.message;
  }
  throw new Error(`expected ${cls.name}, but it succeeded`);
}

async function lvsJson(file: string): Promise<void> {
  const out = await sh(['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', LV_FIELDS.join(','), VG]);
  await writeFile(`${OUT}/${file}`, out);
}

async function main(): Promise<void> {
  const lvm = new LvmBackend({ vg: VG, pool: 'pool', runner: runCommand, thresholdPercent: 90 });
  const IMG_SIZE = 64 * MiB;
  // 8 MiB of data, a 52 MiB hole, 4 MiB of data: the hole must stay unallocated.
  const golden = Buffer.alloc(IMG_SIZE);
  randomBytes(8 * MiB).copy(golden, 0);
  randomBytes(4 * MiB).copy(golden, 60 * MiB);
  const goldenSha = createHash('sha256').update(golden).digest('hex');
  await writeFile('/tmp/golden.raw', golden);
  const goldenDev = `/dev/${VG}/mbi-golden`;

  await step('setup: pvcreate, vgcreate, 1 GiB thin pool + 64 MiB thin pool', async () => {
    await sh(['pvcreate', '-y', DEV]);
    await sh(['vgcreate', VG, DEV]);
    await sh(['lvcreate', '-y', '-L', '1G', '-T', `${VG}/pool`]);
    await sh(['lvcreate', '-y', '-L', '64M', '-T', `${VG}/small`]);
    await lvm.init();
    return (await sh(['lvm', 'version'])).split('\n')[0]?.trim();
  });

  await step('import from a path: sha256 and size recorded, read-only, zero blocks not allocated', async () => {
    const before = (await lvm.usage()).dataPercent;
    const t0 = Date.now();
    const img = await lvm.importImage('golden', '/tmp/golden.raw');
    facts.importMs = Date.now() - t0;
    assert(img.sha256 === goldenSha, `sha ${img.sha256} != ${goldenSha}`);
    assert(img.sizeBytes === IMG_SIZE && img.readOnly, JSON.stringify(img));
    assert((await sha(goldenDev, IMG_SIZE)) === goldenSha, 'device content differs');
    const after = (await lvm.usage()).dataPercent;
    // 12 MiB of 1 GiB is 1.17%; a full 64 MiB write would be 6.25%.
    assert(after - before < 2, `pool data grew ${before} -> ${after}%`);
    const list = await lvm.listImages();
    assert(list.length === 1 && list[0]?.id === 'golden', JSON.stringify(list));
    return { img, poolPercent: [before, after] };
  });

  await step('import from a stream with sizeBytes; wrong size is a SizeError and leaves nothing', async () => {
    const data = randomBytes(3 * MiB + 512);
    const img = await lvm.importImage('streamed', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { sizeBytes: data.length, readOnly: false });
    assert(img.sha256 === createHash('sha256').update(data).digest('hex') && !img.readOnly, JSON.stringify(img));
    const msg = await expectReject(lvm.importImage('short', Readable.from([data]), { sizeBytes: data.length + 1 }), SizeError);
    await expectReject(lvm.importImage('long', Readable.from([data]), { sizeBytes: 10 }), SizeError);
    const names = (await lvm.listImages()).map((i) => i.id).sort();
    assert(names.join() === 'golden,streamed', names.join());
    const lvs = await sh(['lvs', '--noheadings', '-o', 'lv_name', VG]);
    assert(!/mbt-/.test(lvs), `staging LV left: ${lvs}`);
    await lvm.setImageReadOnly('streamed');
    assert((await lvm.getImage('streamed'))?.readOnly === true, 'setImageReadOnly');
    await lvm.removeImage('streamed');
    return msg;
  });

  const m1 = lvm.devicePath('m1');
  await step('clone: thin snapshot, same content; writing to it leaves the golden unchanged', async () => {
    const t0 = Date.now();
    const d = await lvm.clone('golden', 'm1');
    facts.cloneMs = Date.now() - t0;
    assert(d.devicePath === m1 && d.imageId === 'golden', JSON.stringify(d));
    assert((await sha(m1, IMG_SIZE)) === goldenSha, 'clone differs from golden');
    await scribble(m1, 0, MiB);
    await scribble(m1, 30 * MiB, MiB);
    assert((await sha(m1, IMG_SIZE)) !== goldenSha, 'write did not change the clone');
    assert((await sha(goldenDev, IMG_SIZE)) === goldenSha, 'golden changed');
    assert(await lvm.diskExists('m1'), 'diskExists');
    await lvsJson('lvs-scenario-clone.json');
    return { cloneMs: facts.cloneMs };
  });

  await step('an image with a disk cannot be removed (InUseError)', async () => expectReject(lvm.removeImage('golden'), InUseError));

  await step('checkpoint, write, checkpoint, write; restore c1 (merge), c2 and c1 again (sibling lost its origin: snapshot)', async () => {
    const s1 = await sha(m1, IMG_SIZE);
    facts.c1Sha = s1;
    await lvm.checkpoint('m1', 'c1');
    await scribble(m1, 4 * MiB, MiB);
    const s2 = await sha(m1, IMG_SIZE);
    await lvm.checkpoint('m1', 'c2');
    await scribble(m1, 50 * MiB, MiB);
    const s3 = await sha(m1, IMG_SIZE);
    assert(new Set([s1, s2, s3]).size === 3, 'writes did not change the disk');
    await lvsJson('lvs-scenario-ckpt.json');
    const methods: string[] = [];
    let t0 = Date.now();
    methods.push((await lvm.restore('m1', 'c1')).method);
    facts.restoreMs = Date.now() - t0;
    assert((await sha(m1, IMG_SIZE)) === s1, 'restore c1: content differs');
    await lvsJson('lvs-scenario-after-restore.json');
    t0 = Date.now();
    methods.push((await lvm.restore('m1', 'c2')).method);
    facts.restore2Ms = Date.now() - t0;
    assert((await sha(m1, IMG_SIZE)) === s2, 'restore c2: content differs');
    methods.push((await lvm.restore('m1', 'c1')).method);
    assert((await sha(m1, IMG_SIZE)) === s1, 'restore c1 again: content differs');
    const cks = (await lvm.listCheckpoints('m1')).map((c) => c.name).join();
    assert(cks === 'c1,c2', `checkpoints ${cks}`);
    assert((await sha(goldenDev, IMG_SIZE)) === goldenSha, 'golden changed');
    facts.restoreMethods = methods;
    return { methods };
  });

  await step('restore while the disk is open is refused (BusyError), disk untouched', async () => {
    const before = await sha(m1, IMG_SIZE);
    const fh = await open(m1, 'r');
    try {
      const msg = await expectReject(lvm.restore('m1', 'c2'), BusyError);
      assert((await sha(m1, IMG_SIZE)) === before, 'disk changed');
      return msg;
    } finally {
      await fh.close();
    }
  });

  await step('removeCheckpoint; reset = golden content again, checkpoints kept and restorable', async () => {
    await lvm.removeCheckpoint('m1', 'c2');
    assert((await lvm.listCheckpoints('m1')).map((c) => c.name).join() === 'c1', 'c2 not removed');
    const t0 = Date.now();
    const d = await lvm.reset('m1');
    facts.resetMs = Date.now() - t0;
    assert(d.imageId === 'golden', JSON.stringify(d));
    assert((await sha(m1, IMG_SIZE)) === goldenSha, 'reset disk differs from golden');
    assert((await lvm.listCheckpoints('m1')).map((c) => c.name).join() === 'c1', 'reset did not keep checkpoint c1');
    await lvm.restore('m1', 'c1');
    assert((await sha(m1, IMG_SIZE)) === facts.c1Sha, 'c1 restored after a reset differs from c1');
    await lvm.reset('m1');
    assert((await sha(m1, IMG_SIZE)) === goldenSha, 'second reset differs from golden');
    return { resetMs: facts.resetMs };
  });

  await step('tgtd exports the disk; libiscsi and qemu-img read it over iSCSI; exported disk is busy', async () => {
    const iqn = 'iqn.2024-01.org.metalboot.test:m1';
    const tgtd = spawn('tgtd', ['-f', '--iscsi', 'portal=127.0.0.1:3260'], { stdio: 'ignore' });
    try {
      const adm = (...a: string[]) => sh(['tgtadm', '--lld', 'iscsi', ...a], 10_000);
      for (let i = 0; ; i++) { // tgtd's management socket appears after a moment
        try { await adm('--op', 'show', '--mode', 'target'); break; } catch (e) { if (i > 50) throw e; await new Promise((r) => setTimeout(r, 100)); }
      }
      await adm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn);
      await adm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', m1);
      await adm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
      const url = `iscsi://127.0.0.1/${iqn}/1`;
      const inq = await sh(['iscsi-inq', url], 30_000);
      const cap = await sh(['iscsi-readcapacity16', url], 30_000);
      assert(/IET|VIRTUAL-DISK/i.test(inq), `inquiry: ${inq}`);
      const total = /Total size:\s*(\d+)/i.exec(cap);
      assert(total && Number(total[1]) === IMG_SIZE, `capacity: ${cap}`);
      await sh(['qemu-img', 'convert', '-f', 'raw', '-O', 'raw', url, '/tmp/over-iscsi.raw'], 120_000);
      const got = createHash('sha256').update(await readFile('/tmp/over-iscsi.raw')).digest('hex');
      assert(got === goldenSha, 'content read over iSCSI differs');
      const busy = await expectReject(lvm.removeDisk('m1'), BusyError);
      await adm('--op', 'delete', '--mode', 'logicalunit', '--tid', '1', '--lun', '1');
      await adm('--op', 'delete', '--mode', 'target', '--tid', '1');
      return { inquiry: inq.split('\n').filter((l) => /Vendor|Product/i.test(l)).map((l) => l.trim()), capacity: IMG_SIZE, busy };
    } finally {
      // tgtd does not exit on SIGTERM while it has targets: drop them first, SIGKILL as the last resort.
      await sh(['tgtadm', '--lld', 'iscsi', '--op', 'delete', '--mode', 'target', '--tid', '1', '--force'], 10_000).catch(() => undefined);
      tgtd.kill('SIGTERM');
      const exited = await new Promise<boolean>((r) => { tgtd.once('exit', () => r(true)); setTimeout(() => r(false), 3000).unref(); });
      if (!exited) tgtd.kill('SIGKILL');
      tgtd.unref();
      facts.tgtdExitedOnTerm = exited;
    }
  });

  await step('removeDisk after the export is gone; then the image can be removed', async () => {
    await lvm.removeDisk('m1');
    assert(!(await lvm.diskExists('m1')), 'disk still exists');
    await lvm.removeImage('golden');
    assert((await lvm.listImages()).length === 0, 'image still listed');
  });

  await step('pool-full: above the threshold, clone and checkpoint are refused with PoolFullError', async () => {
    const small = new LvmBackend({ vg: VG, pool: 'small', runner: runCommand, thresholdPercent: 50 });
    await small.init();
    const data = randomBytes(40 * MiB);
    await writeFile('/tmp/big.raw', data);
    await small.importImage('big', '/tmp/big.raw');
    const u = await small.usage();
    assert(u.dataPercent > 50, `usage ${u.dataPercent}`);
    const msg = await expectReject(small.clone('big', 'm2'), PoolFullError);
    assert(!(await small.diskExists('m2')), 'disk created anyway');
    await expectReject(small.importImage('more', '/tmp/big.raw'), PoolFullError);
    await lvsJson('lvs-scenario-small-pool.json');
    return { usage: u, msg };
  });
}

// A bound on the whole scenario, below run-in-guest's: results.json is written either way.
const deadline = setTimeout(() => {
  results.push({ name: 'scenario deadline (240 s) passed', ok: false, ms: 0 });
  void writeFile(`${OUT}/results.json`, JSON.stringify({ results, facts }, null, 1)).finally(() => process.exit(1));
}, 240_000);
deadline.unref();

main()
  .catch((e: unknown) => { results.push({ name: 'scenario crashed', ok: false, detail: String((e as Error)?.stack ?? e), ms: 0 }); })
  .finally(async () => {
    await writeFile(`${OUT}/results.json`, JSON.stringify({ results, facts }, null, 1));
    process.exitCode = results.length > 0 && results.every((r) => r.ok) ? 0 : 1;
  });
