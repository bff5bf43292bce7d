/**
 * The LVM backend end to end, run INSIDE the test guest (real dm-thin):
 *   node dist/test/guest/lvm-scenario.js OUTDIR      (via test/guest/run-in-guest)
 * on a scratch /dev/vdb. Every check is recorded as {name, ok, detail, ms}
 * in OUTDIR/results.json (a --rw share), plus the raw lvs JSON at a few
 * points for the fixtures; the exit status is 0 only if every check passed.
 * All scenarios share one boot because each boot costs 7-10 s under TCG.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { DiskService } from '../../src/disks/service.js';
import { CHAP_USER_PREFIX, opId, type DiskRecord, type OpRecord } from '../../src/disks/record.js';
import { runCommand } from '../../src/exec/run.js';
import { dataLuns } from '../../src/iscsi/tgtadm.js';
import { Tgtd } from '../../src/iscsi/tgtd.js';
import { parseMac } from '../../src/net/mac.js';
import { IscsiReconciler } from '../../src/reconcile.js';
import { openStore } from '../../src/store/db.js';
import { BusyError, InUseError, PoolFullError, SizeError, type VolumeBackend } from '../../src/storage/backend.js';
import { LV_FIELDS, parseLvs } from '../../src/storage/lvm-report.js';
import { LvmBackend } from '../../src/storage/lvm.js';
import { guarded } from '../../src/storage/guarded.js';
import { memoryLogger } from '../helpers/memory-logger.js';

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


const MAC = parseMac('52:54:00:00:00:31');
const IQN_PREFIX = 'iqn.2026-11.org.metalboot';
const PORTAL = '127.0.0.1:3260';

/**
 * The LV exported the way the daemon exports it: DiskService + IscsiReconciler + the Tgtd adapter
 * (which starts tgtd), so the target has bstype aio, the machine's initiator IQN and a CHAP
 * account, never ALL; read by libiscsi and QEMU with that IQN and CHAP. Then a crash in the
 * middle of a restore, and the recovery that must make the disk exportable again.
 */
async function disksScenario(lvm: VolumeBackend, goldenSha: string, size: number): Promise<void> {
  const mem = memoryLogger();
  const tgtd = new Tgtd({ runner: runCommand, manageTgtd: true, portal: { address: '127.0.0.1', port: 3260 }, pidFile: '/tmp/tgtd.pid' });
  const store = await openStore('/tmp/mbstore');
  /** What the daemon's startStorage does at every start: a reconciler, the disks service, recover(). */
  const start = async () => {
    let disks: DiskService | undefined;
    const reconciler = new IscsiReconciler({
      tgtd, manageTgtd: true, iqnPrefix: IQN_PREFIX, userPrefix: CHAP_USER_PREFIX, desired: () => disks!.desired(), intervalMs: 60_000, log: mem.log,
    });
    disks = new DiskService({ backend: lvm, store, reconciler, iqnPrefix: IQN_PREFIX, mutualChap: false, log: mem.log, clock: Date.now });
    const recovered = await disks.recover();
    return { disks, reconciler, recovered };
  };
  const url = (r: DiskRecord, secret = r.chap.secret): string => `iscsi://${r.chap.user}%${encodeURIComponent(secret)}@${PORTAL}/${r.targetIqn}/1`;
  const inq = (initiator: string, u: string) => runCommand(['iscsi-inq', '-i', initiator, u], { timeoutMs: 30_000, okCodes: [0, 1, 2, 10, 255] });
  /** sha256 of the whole LUN, read by QEMU's iSCSI driver with the machine's IQN and CHAP (secret in a file, not argv). */
  const readOver = async (r: DiskRecord): Promise<string> => {
    await writeFile('/tmp/chap-secret', r.chap.secret, { mode: 0o600 });
    await rm('/tmp/over-iscsi.raw', { force: true });
    await sh(['qemu-img', 'convert', '--object', 'secret,id=s0,file=/tmp/chap-secret', '--image-opts',
      `driver=iscsi,transport=tcp,portal=${PORTAL},target=${r.targetIqn},lun=1,initiator-name=${r.initiatorIqn},user=${r.chap.user},password-secret=s0`,
      '-O', 'raw', '/tmp/over-iscsi.raw'], 120_000);
    const got = createHash('sha256').update(await readFile('/tmp/over-iscsi.raw')).digest('hex');
    await rm('/tmp/over-iscsi.raw', { force: true });
    return got;
  };
  const lvState = async (diskId: string) => {
    const name = lvm.exportOf(diskId).backingStore.split('/').pop()!;
    const lv = parseLvs(await sh(['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', LV_FIELDS.join(','), VG])).find((l) => l.name === name);
    assert(lv, `LV ${name} missing`);
    return { name, active: lv.attr.active };
  };
  let rec: DiskRecord | undefined;
  let disks: DiskService | undefined;
  try {
    await step('disks service provisions a machine; metalboot exports its LV (tgtd started by the reconciler): LUN 1 aio, initiator IQN, CHAP, no address rule', async () => {
      const s = await start();
      disks = s.disks;
      assert(s.recovered.orphans === 0 && s.recovered.activated === 0, `recover: ${JSON.stringify(s.recovered)}`);
      const r = await disks.provision(MAC, { imageId: 'golden' });
      rec = r;
      const tg = (await tgtd.show()).find((x) => x.iqn === r.targetIqn);
      assert(tg, `no target ${r.targetIqn}`);
      const luns = dataLuns(tg).map((l) => [l.lun, l.path, l.bstype, l.readonly]);
      assert(JSON.stringify(luns) === JSON.stringify([[1, lvm.exportOf(r.diskId).backingStore, 'aio', false]]), `LUNs ${JSON.stringify(luns)}`);
      assert(JSON.stringify(tg.initiatorNames) === JSON.stringify([r.initiatorIqn]), `names ${tg.initiatorNames.join()}`);
      assert(tg.initiatorAddresses.length === 0, `address rules ${tg.initiatorAddresses.join()}`);
      assert(JSON.stringify(tg.accounts) === JSON.stringify([{ user: r.chap.user, outgoing: false }]), `accounts ${JSON.stringify(tg.accounts)}`);
      assert((await tgtd.accounts()).includes(r.chap.user), 'CHAP account missing in tgtd');
      return { iqn: r.targetIqn, initiator: r.initiatorIqn, lun: luns[0] };
    });

    await step('the machine\'s IQN + CHAP read its disk (iscsi-inq, iscsi-readcapacity16, qemu-img): the golden bytes; wrong CHAP, wrong IQN, no CHAP refused', async () => {
      const r = rec!;
      const ok = await inq(r.initiatorIqn, url(r));
      assert(ok.code === 0 && /IET|VIRTUAL-DISK/i.test(ok.stdout), `inquiry (exit ${ok.code}): ${ok.stdout}${ok.stderr}`);
      const cap = await sh(['iscsi-readcapacity16', '-i', r.initiatorIqn, url(r)], 30_000);
      const total = /Total size:\s*(\d+)/i.exec(cap);
      assert(total && Number(total[1]) === size, `capacity: ${cap}`);
      assert((await readOver(r)) === goldenSha, 'content read over iSCSI differs from the golden');
      const wrongChap = await inq(r.initiatorIqn, url(r, 'not-the-secret-1234'));
      assert(wrongChap.code !== 0 && /Authentication failure/i.test(wrongChap.stdout + wrongChap.stderr), `wrong CHAP (exit ${wrongChap.code}): ${wrongChap.stderr}`);
      const wrongIqn = await inq('iqn.2026-11.org.intruder:x', url(r));
      assert(wrongIqn.code !== 0, 'a wrong initiator IQN logged in');
      const noChap = await inq(r.initiatorIqn, `iscsi://${PORTAL}/${r.targetIqn}/1`);
      assert(noChap.code !== 0, 'the right IQN without CHAP logged in');
      return { refused: { wrongChap: wrongChap.code, wrongIqn: wrongIqn.code, noChap: noChap.code } };
    });

    await step('an exported disk is busy: removeDisk refused (BusyError)', async () => expectReject(lvm.removeDisk(rec!.diskId), BusyError));

    /**
     * Stand-in for a daemon killed inside LvmBackend.restore(): the journal entry DiskService.restore
     * writes, the target taken down as its detach does, then restore()'s own first lvm steps by hand.
     * tgtd keeps running, as it does when only the daemon dies.
     */
    const crashInRestore = async (r: DiskRecord, merged: boolean): Promise<void> => {
      const op: OpRecord = { id: opId(Date.now(), 0), kind: 'restore', mac: r.mac, diskId: r.diskId, imageId: r.imageId, checkpoint: 'k1', startedAt: Date.now() };
      await store.writeRecords([{ type: 'put', kind: 'ops', key: op.id, value: op }]);
      const tg = (await tgtd.show()).find((x) => x.iqn === r.targetIqn);
      assert(tg, 'target missing before the crash');
      await tgtd.run({ op: 'delete-target', tid: tg.tid, force: false });
      const { name } = await lvState(r.diskId);
      await sh(['lvchange', '-y', '-an', `${VG}/${name}`]);
      if (merged) await sh(['lvconvert', '-y', '--merge', `${VG}/mbc-${r.diskId}+k1`]);
      assert(!(await lvState(r.diskId)).active, 'the disk LV is still active');
    };
    /** The restart: recover(), then the start reconcile that must export every disk again. */
    const restart = async (r: DiskRecord) => {
      const before = mem.lines().length;
      const s = await start();
      disks = s.disks;
      const activatedLine = mem.lines().slice(before).find((l) => l.event === 'disks.activated');
      const res = await s.reconciler.reconcile('start');
      assert((await lvState(r.diskId)).active, 'the disk LV is not active after recovery');
      assert((await store.loadRecords('ops')).length === 0, 'journal entry left');
      const tg = (await tgtd.show()).find((x) => x.iqn === r.targetIqn);
      assert(tg && dataLuns(tg).some((l) => l.lun === 1 && l.path === lvm.exportOf(r.diskId).backingStore), 'not exported again after recovery');
      return { recovered: s.recovered, activatedLine, ran: res.ran, newLines: mem.lines().slice(before) };
    };

    await step('crash after a restore deactivated the disk: recovery activates it (logged), the start reconcile exports it, the old content is read', async () => {
      const r = rec!;
      await disks!.checkpoint(MAC, 'k1');
      // The disk moves on after k1 (written on the LV while exported, as the machine would).
      await scribble(lvm.exportOf(r.diskId).backingStore, 2 * MiB, MiB);
      const current = await sha(lvm.exportOf(r.diskId).backingStore, size);
      assert(current !== goldenSha, 'the write did not change the disk');
      await crashInRestore(r, false);
      const out = await restart(r);
      assert(out.recovered.activated === 1 && out.recovered.completed === 1, `recover: ${JSON.stringify(out.recovered)}`);
      const disksLogged = out.activatedLine?.disks;
      assert(Array.isArray(disksLogged) && disksLogged.includes(r.diskId), `no disks.activated line naming ${r.diskId}: ${JSON.stringify(out.newLines)}`);
      assert((await disks!.listCheckpoints(MAC)).map((c) => c.name).join() === 'k1', 'checkpoint k1 lost');
      assert((await readOver(r)) === current, 'content over iSCSI is not the disk\'s (the restore never ran)');
      return { recovered: out.recovered, logged: { event: out.activatedLine?.event, msg: out.activatedLine?.msg } };
    });

    await step('crash after the merge of a restore: recovery activates the disk, takes the consumed checkpoint again; the checkpoint\'s content is read and k1 restores again', async () => {
      const r = rec!;
      await crashInRestore(r, true);
      assert((await lvm.listCheckpoints(r.diskId)).length === 0, 'the merge did not consume k1');
      const out = await restart(r);
      assert(out.recovered.activated === 1, `recover: ${JSON.stringify(out.recovered)}`);
      assert(out.newLines.some((l) => l.event === 'disks.checkpoint-retaken'), 'no disks.checkpoint-retaken line');
      assert((await disks!.listCheckpoints(MAC)).map((c) => c.name).join() === 'k1', 'checkpoint k1 not taken again');
      assert((await readOver(r)) === goldenSha, 'content over iSCSI is not k1\'s (the golden)');
      await scribble(lvm.exportOf(r.diskId).backingStore, 0, MiB);
      const { method } = await disks!.restore(MAC, 'k1');
      assert(method === 'merge', `restore of the re-taken k1 used ${method}`);
      assert((await readOver(r)) === goldenSha, 'k1 restored: content over iSCSI differs');
      return { recovered: out.recovered, method };
    });

    await step('deprovision: target, CHAP account and LV gone', async () => {
      const r = rec!;
      await disks!.deprovision(MAC);
      assert(!(await tgtd.show()).some((x) => x.iqn === r.targetIqn), 'target left');
      assert(!(await tgtd.accounts()).includes(r.chap.user), 'account left');
      assert(!(await lvm.diskExists(r.diskId)), 'LV left');
    });
  } finally {
    // tgtd ignores SIGTERM: Tgtd.stop() deletes the targets (releasing the LVs) and asks it to exit.
    await tgtd.stop().catch((e: unknown) => { facts.tgtdStopError = String(e); });
    await store.close();
  }
}

async function main(): Promise<void> {
  const lvm = guarded(new LvmBackend({ vg: VG, pool: 'pool', runner: runCommand }), { thresholdPercent: 90 });
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

  const m1 = lvm.exportOf('m1').backingStore;
  await step('clone: thin snapshot, same content; writing to it leaves the golden unchanged', async () => {
    const t0 = Date.now();
    const d = await lvm.clone('golden', 'm1');
    facts.cloneMs = Date.now() - t0;
    assert(d.export.backingStore === m1 && d.export.bstype === 'aio' && d.imageId === 'golden', JSON.stringify(d));
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
    // The merge consumed c1 and took it again of the merged disk: restoring it again merges again.
    await scribble(m1, 20 * MiB, MiB);
    const repeat = (await lvm.restore('m1', 'c1')).method;
    facts.repeatMethod = repeat;
    assert(repeat === 'merge', `restoring c1 again right after its merge used ${repeat}, expected merge`);
    assert((await sha(m1, IMG_SIZE)) === s1, 'restore c1 a second time: content differs');
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
    // c1 was a thin snapshot of m1 itself: lvconvert --merge must be what restored it; c2's
    // origin was the pre-merge m1, gone, so c2 comes back as a snapshot of it.
    assert(methods[0] === 'merge', `first restore used ${methods[0]}, expected merge`);
    assert(methods[1] === 'snapshot', `restore of c2 (its origin replaced by the merge) used ${methods[1]}, expected snapshot`);
    return { methods, repeatMethod: facts.repeatMethod };
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

  await step('removeDisk m1 (the backend alone); the image stays for the disks service', async () => {
    await lvm.removeDisk('m1');
    assert(!(await lvm.diskExists('m1')), 'disk still exists');
  });

  await disksScenario(lvm, goldenSha, IMG_SIZE);

  await step('then the image can be removed', async () => {
    await lvm.removeImage('golden');
    assert((await lvm.listImages()).length === 0, 'image still listed');
  });

  await step('pool-full: above the threshold, clone, checkpoint and import are refused with PoolFullError', async () => {
    const small = guarded(new LvmBackend({ vg: VG, pool: 'small', runner: runCommand }), { thresholdPercent: 50 });
    await small.init();
    // A disk made while the pool is still nearly empty, to be checkpointed once it is full.
    await writeFile('/tmp/tiny.raw', randomBytes(MiB));
    await small.importImage('tiny', '/tmp/tiny.raw');
    await small.clone('tiny', 'm3');
    const data = randomBytes(40 * MiB);
    await writeFile('/tmp/big.raw', data);
    await small.importImage('big', '/tmp/big.raw');
    const u = await small.usage();
    assert(u.dataPercent > 50, `usage ${u.dataPercent}`);
    const msg = await expectReject(small.clone('big', 'm2'), PoolFullError);
    assert(!(await small.diskExists('m2')), 'disk created anyway');
    const ckMsg = await expectReject(small.checkpoint('m3', 'k'), PoolFullError);
    assert((await small.listCheckpoints('m3')).length === 0, 'checkpoint created anyway');
    await expectReject(small.importImage('more', '/tmp/big.raw'), PoolFullError);
    await lvsJson('lvs-scenario-small-pool.json');
    return { usage: u, msg, ckMsg };
  });
}

// A bound on the whole scenario, below run-in-guest's: results.json is written either way.
const deadline = setTimeout(() => {
  results.push({ name: 'scenario deadline (420 s) passed', ok: false, ms: 0 });
  void writeFile(`${OUT}/results.json`, JSON.stringify({ results, facts }, null, 1)).finally(() => process.exit(1));
}, 420_000);
deadline.unref();

main()
  .catch((e: unknown) => { results.push({ name: 'scenario crashed', ok: false, detail: String((e as Error)?.stack ?? e), ms: 0 }); })
  .finally(async () => {
    await writeFile(`${OUT}/results.json`, JSON.stringify({ results, facts }, null, 1));
    process.exitCode = results.length > 0 && results.every((r) => r.ok) ? 0 : 1;
  });
