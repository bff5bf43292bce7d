/**
 * The rbd VolumeBackend against a real Ceph cluster (scripts/ceph-lab.sh): import streamed (a
 * stream and a file), golden snapshot protected, clone, checkpoint, restore and reset by rollback
 * (checked byte for byte with `rbd export`), writes landing in the clone only (`rbd diff` of the
 * golden image since its snapshot is empty), an image with clones refused, usage from the pool,
 * and what a crash leaves (a staging image, a rollback cut short) put right by init().
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createBackend } from '../../src/storage/factory.js';
import type { RbdStorageConfig } from '../../src/config/types.js';
import { AlreadyExistsError, BusyError, InUseError, NotFoundError, PoolFullError, SizeError } from '../../src/storage/backend.js';
import { cephUnavailable, startCephLab, type CephLab } from '../helpers/ceph.js';

const MB = 1 << 20;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function exported(ceph: CephLab, spec: string): Promise<string> {
  const file = path.join(ceph.dir, `export-${Math.random().toString(36).slice(2)}`);
  await ceph.admin(['rbd', 'export', '--no-progress', spec, file]);
  const { readFile, rm } = await import('node:fs/promises');
  const b = await readFile(file);
  await rm(file);
  return sha(b);
}

t.test('rbd backend on a real cluster', { skip: cephUnavailable(), timeout: 600_000 }, async (t) => {
  const ceph = await startCephLab(t);
  t.comment(`cluster started in ${ceph.startSeconds.toFixed(1)} s`);
  const settings: RbdStorageConfig = { backend: 'rbd', pool: ceph.pool, cephConf: ceph.conf, user: ceph.user, keyring: ceph.keyring, maxPoolPercent: 90 };
  const backend = createBackend(settings, { runner: ceph.runner });
  await backend.init();
  t.same(backend.describe().fields, { pool: 'metalboot', cephConf: ceph.conf, user: 'metalboot' });

  const image = Buffer.concat([randomBytes(3 * MB), Buffer.alloc(4 * MB), randomBytes(MB + 512)]);
  const imgFile = path.join(ceph.dir, 'golden.raw');
  await writeFile(imgFile, image);

  await t.test('import: a stream and a file, hashed on the way; duplicates and short streams refused', async (t) => {
    const a = await backend.importImage('golden', Readable.from([image.subarray(0, MB), image.subarray(MB)]), { sizeBytes: image.length });
    t.same(a, { id: 'golden', sizeBytes: image.length, sha256: sha(image), readOnly: true });
    const b = await backend.importImage('golden-f', imgFile);
    t.equal(b.sha256, sha(image));
    t.same(await backend.getImage('golden'), a, 'read back from image-meta');
    await t.rejects(backend.importImage('golden', imgFile), AlreadyExistsError);
    await t.rejects(backend.importImage('short', Readable.from([randomBytes(MB)]), { sizeBytes: 2 * MB }), SizeError);
    await t.rejects(backend.importImage('long', Readable.from([randomBytes(2 * MB)]), { sizeBytes: MB }), SizeError);
    t.same((await backend.listImages()).map((i) => i.id), ['golden', 'golden-f'], 'refused imports leave nothing');
    const snaps = JSON.parse(await ceph.admin(['rbd', 'snap', 'ls', '--format', 'json', 'metalboot/mbi-golden']));
    t.match(snaps, [{ name: 'golden', protected: 'true' }], 'the golden snapshot is protected');
    t.equal(await exported(ceph, 'metalboot/mbi-golden@golden'), sha(image), 'rbd export of the golden snapshot is the bytes imported');
    t.ok(!JSON.stringify(await ceph.admin(['rbd', 'ls', '--format', 'json', 'metalboot'])).includes('mbt-'), 'no staging image left');
  });

  await t.test('clone, write, checkpoint, restore, reset: by rollback, the golden image untouched', async (t) => {
    const d = await backend.clone('golden', 'node-1');
    t.match(d, { id: 'node-1', imageId: 'golden', export: { bstype: 'rbd', backingStore: 'metalboot/mbd-node-1' } });
    t.same(backend.exportOf('node-1'), { bstype: 'rbd', backingStore: 'metalboot/mbd-node-1', bsopts: `conf=${ceph.conf};id=metalboot` });
    t.same((await backend.listDisks()).map((x) => x.id), ['node-1']);
    t.equal(await exported(ceph, 'metalboot/mbd-node-1'), sha(image), 'a fresh clone reads the image');
    await ceph.admin(['rbd', 'bench', '--io-type', 'write', '--io-size', '64K', '--io-total', '1M', '--io-pattern', 'seq', 'metalboot/mbd-node-1']);
    const written = await exported(ceph, 'metalboot/mbd-node-1');
    t.not(written, sha(image), 'the write changed the disk');
    t.equal(JSON.parse(await ceph.admin(['rbd', 'diff', '--format', 'json', '--from-snap', 'golden', 'metalboot/mbi-golden'])).length, 0, 'rbd diff: nothing written to the golden image');
    t.equal(await exported(ceph, 'metalboot/mbi-golden@golden'), sha(image), 'golden bytes unchanged');

    await backend.checkpoint('node-1', 'c1');
    await t.rejects(backend.checkpoint('node-1', 'c1'), AlreadyExistsError);
    t.same(await backend.listCheckpoints('node-1'), [{ diskId: 'node-1', name: 'c1' }], 'mb_base is not a checkpoint');
    await ceph.admin(['rbd', 'bench', '--io-type', 'write', '--io-size', '64K', '--io-total', '2M', '--io-pattern', 'rand', 'metalboot/mbd-node-1']);
    t.not(await exported(ceph, 'metalboot/mbd-node-1'), written);
    t.same(await backend.restore('node-1', 'c1'), { method: 'rollback' });
    t.equal(await exported(ceph, 'metalboot/mbd-node-1'), written, 'restore gives the checkpoint\'s bytes back');
    await backend.reset('node-1');
    t.equal(await exported(ceph, 'metalboot/mbd-node-1'), sha(image), 'reset gives the image\'s bytes back');
    t.same(await backend.listCheckpoints('node-1'), [{ diskId: 'node-1', name: 'c1' }], 'reset keeps the checkpoints');
    await backend.restore('node-1', 'c1');
    t.equal(await exported(ceph, 'metalboot/mbd-node-1'), written, 'and the checkpoint is restorable after a reset');
    await t.rejects(backend.restore('node-1', 'nope'), NotFoundError);
  });

  await t.test('an image with clones cannot be removed; a disk open elsewhere cannot be rolled back', async (t) => {
    const e = await backend.removeImage('golden').then(() => undefined, (x: unknown) => x);
    t.type(e, InUseError);
    t.same((e as InUseError).users, ['node-1']);
    await backend.removeImage('golden-f');
    t.same((await backend.listImages()).map((i) => i.id), ['golden']);
    // A watcher, as tgtd's librbd registers one: `rbd watch` holds it until it reads a newline.
    const { spawn } = await import('node:child_process');
    const holder = spawn('rbd', ['-c', ceph.conf, '--id', 'admin', 'watch', 'metalboot/mbd-node-1'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const watchers = async (): Promise<number> => JSON.parse(await ceph.admin(['rbd', 'status', '--format', 'json', 'metalboot/mbd-node-1'])).watchers.length;
    try {
      for (let i = 0; i < 40 && (await watchers()) === 0; i++) await new Promise((r) => setTimeout(r, 250));
      await t.rejects(backend.reset('node-1'), BusyError, 'reset refused while the image is open');
      await t.rejects(backend.restore('node-1', 'c1'), BusyError, 'restore too');
    } finally {
      holder.stdin.end('\n');
      await new Promise((r) => { holder.on('exit', r); setTimeout(r, 5000); });
      holder.kill('SIGKILL');
    }
    t.equal(await watchers(), 0, 'the watcher left');
  });

  await t.test('usage: the pool\'s share of the cluster, or its quota', async (t) => {
    const u = await backend.usage();
    t.equal(u.backend, 'rbd');
    t.ok(u.dataPercent >= 0 && u.dataPercent < 50, `${u.dataPercent}%`);
    t.ok(u.totalBytes > 0);
    await ceph.admin(['ceph', 'osd', 'pool', 'set-quota', 'metalboot', 'max_bytes', String(64 * MB)]);
    const q = await backend.usage();
    t.equal(q.totalBytes, 64 * MB, 'quota is the total');
    await ceph.admin(['ceph', 'osd', 'pool', 'set-quota', 'metalboot', 'max_bytes', '0']);
    t.match((await backend.usage()).health, /^HEALTH_(OK|WARN)/, 'usage carries the cluster\'s health');
    // The threshold refuses a clone from the pool's figures (a quota just above what is stored).
    await ceph.admin(['ceph', 'osd', 'pool', 'set-quota', 'metalboot', 'max_bytes', String(MB)]);
    const full = await backend.usage();
    if (full.dataPercent > 90) await t.rejects(backend.clone('golden', 'node-full'), PoolFullError, `refused at ${full.dataPercent.toFixed(0)}%`);
    else t.fail(`a 1 MiB quota should be over 90% (${full.dataPercent}%)`);
    await ceph.admin(['ceph', 'osd', 'pool', 'set-quota', 'metalboot', 'max_bytes', '0']);
  });

  await t.test('one OSD stopped: disks still read and written (replica 2), health says HEALTH_WARN', async (t) => {
    t.match((await backend.usage()).health, /^HEALTH_OK/);
    await ceph.stopOsd(2);
    let u = await backend.usage();
    for (let i = 0; i < 40 && !/OSD_DOWN/.test(u.health ?? ''); i++) { await new Promise((r) => setTimeout(r, 500)); u = await backend.usage(); }
    t.match(u.health, /^HEALTH_WARN .*OSD_DOWN/, `usage().health: ${u.health}`);
    const d = await backend.clone('golden', 'node-3');
    await ceph.admin(['rbd', 'bench', '--io-type', 'write', '--io-size', '64K', '--io-total', '2M', '--io-pattern', 'rand', 'metalboot/mbd-node-3'], 120_000);
    t.not(await exported(ceph, 'metalboot/mbd-node-3'), sha(image), 'written and read back with an OSD down');
    await backend.removeDisk(d.id);
    await ceph.startOsd(2);
  });

  await t.test('after a crash: staging images removed, a rollback cut short finished', async (t) => {
    // What a kill -9 in the middle of an import or a clone leaves: a staging image with a snapshot.
    await ceph.admin(['rbd', 'clone', 'metalboot/mbi-golden@golden', 'metalboot/mbt-node-2.1.1']);
    await ceph.admin(['rbd', 'snap', 'create', 'metalboot/mbt-node-2.1.1@mb_base']);
    // A reset killed during its rollback: the marker is set, the disk half written.
    await ceph.admin(['rbd', 'bench', '--io-type', 'write', '--io-size', '64K', '--io-total', '1M', '--io-pattern', 'rand', 'metalboot/mbd-node-1']);
    t.not(await exported(ceph, 'metalboot/mbd-node-1'), sha(image));
    await ceph.admin(['rbd', 'image-meta', 'set', 'metalboot/mbd-node-1', 'metalboot.rollback', 'mb_base']);
    const fresh = createBackend(settings, { runner: ceph.runner });
    await fresh.init();
    const names = JSON.parse(await ceph.admin(['rbd', 'ls', '--format', 'json', 'metalboot'])) as string[];
    t.same(names.sort(), ['mbd-node-1', 'mbi-golden'], 'the staging clone is gone');
    t.equal(await exported(ceph, 'metalboot/mbd-node-1'), sha(image), 'the interrupted reset was finished');
    const meta = (await ceph.admin(['rbd', 'image-meta', 'list', '--format', 'json', 'metalboot/mbd-node-1'])).trim();
    // (A clone inherits its parent's image-meta, so the disk also carries the image's `metalboot` key.)
    t.notOk('metalboot.rollback' in (meta === '' ? {} : JSON.parse(meta)), `marker removed (image-meta: ${meta})`);
    await fresh.removeDisk('node-1');
    await fresh.removeImage('golden');
    t.same(await fresh.listImages(), []);
  });
});
