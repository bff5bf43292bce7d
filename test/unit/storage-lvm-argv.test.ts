/**
 * LvmBackend against a scripted runner: which lvm commands it runs (thin
 * snapshots without -L, tags, env LVM_SUPPRESS_FD_WARNINGS) and how it
 * refuses, with lvs answers built from the captured JSON's shape.
 */
import t from 'tap';
import type { RunOptions, Runner } from '../../src/exec/run.js';
import { CommandError } from '../../src/exec/run.js';
import { BackendError, BusyError, InUseError, NotFoundError, PoolFullError } from '../../src/storage/backend.js';
import { guarded } from '../../src/storage/guarded.js';
import { LvmBackend } from '../../src/storage/lvm.js';

interface Lv { name: string; attr?: string; size?: number; pool?: string; origin?: string; data?: string; meta?: string; tags: string[] }

function report(lvs: Lv[]): string {
  return JSON.stringify({ report: [{ lv: lvs.map((l) => ({
    lv_name: l.name, vg_name: 'vg0', lv_attr: l.attr ?? 'Vwi-a-tz--', lv_size: String(l.size ?? 67108864), pool_lv: l.pool ?? 'pool',
    origin: l.origin ?? '', data_percent: l.data ?? '1.00', metadata_percent: l.meta ?? '', lv_tags: l.tags.join(','),
  })) }] });
}

function fake(lvs: Lv[], poolData = '10.00', poolMeta = '5.00', fail?: (argv: readonly string[]) => boolean) {
  const calls: string[][] = [];
  const runner: Runner = async (argv: readonly string[], _o: RunOptions) => {
    calls.push([...argv]);
    const cmd = argv[2];
    if (cmd === 'lvs' && argv[argv.length - 1] === 'vg0/pool') return { stdout: report([{ name: 'pool', attr: 'twi-aotz--', pool: '', data: poolData, meta: poolMeta, tags: [], size: 1 << 30 }]), stderr: '', code: 0 };
    if (cmd === 'lvs') return { stdout: report(lvs), stderr: '', code: 0 };
    if (fail?.(argv)) throw new CommandError(argv, 'exit', 5, '  device-mapper: reload ioctl failed');
    return { stdout: '', stderr: '  WARNING: Sum of all thin volume sizes exceeds the size of thin pool', code: 0 };
  };
  return { calls, backend: guarded(new LvmBackend({ vg: 'vg0', pool: 'pool', runner }), { thresholdPercent: 80 }) };
}

const IMG: Lv = { name: 'mbi-deb', attr: 'Vri-a-tz--', tags: ['mb-image', 'metalboot', 'mb-sha256=ab', 'mb-bytes=1000'] };
const DISK: Lv = { name: 'mbd-n1', origin: 'mbi-deb', tags: ['mb-disk', 'metalboot', 'mb-from=deb'] };
const CKPT: Lv = { name: 'mbc-n1+before', origin: 'mbd-n1', tags: ['mb-ckpt', 'metalboot', 'mb-of=n1'] };
const FOREIGN: Lv = { name: 'mbd-x', tags: ['mb-disk'] };

t.test('clone is a thin snapshot with tags, through env', async (t) => {
  const { calls, backend } = fake([IMG, FOREIGN]);
  const d = await backend.clone('deb', 'n2');
  t.same(d, { id: 'n2', imageId: 'deb', sizeBytes: 67108864, export: { bstype: 'aio', backingStore: '/dev/vg0/mbd-n2' } });
  const create = calls.find((c) => c[2] === 'lvcreate');
  t.same(create, ['env', 'LVM_SUPPRESS_FD_WARNINGS=1', 'lvcreate', '-y', '-s', '-kn', '-p', 'rw', '-n', 'mbd-n2',
    '--addtag', 'metalboot', '--addtag', 'mb-disk', '--addtag', 'mb-from=deb', 'vg0/mbi-deb']);
  t.notOk(calls.some((c) => c.includes('-L')), 'never -L');
  t.same(await backend.listImages(), [{ id: 'deb', sizeBytes: 1000, sha256: 'ab', readOnly: true }]);
  t.same((await backend.listDisks()).map((x) => x.id), [], 'an LV without the metalboot tag is not ours');
});

t.test('refusals', async (t) => {
  await t.rejects(fake([IMG, DISK]).backend.removeImage('deb'), InUseError);
  await t.rejects(fake([IMG]).backend.clone('nope', 'n2'), NotFoundError);
  await t.rejects(fake([IMG], '80.01').backend.clone('deb', 'n2'), PoolFullError);
  // Thin pool metadata running out is as fatal as data (the pool goes read-only): same threshold.
  const meta = fake([IMG, DISK], '10.00', '80.01');
  await t.rejects(meta.backend.clone('deb', 'n2'), PoolFullError, 'clone refused on metadata%');
  await t.rejects(meta.backend.checkpoint('n1', 'c'), PoolFullError, 'checkpoint refused on metadata%');
  t.notOk(meta.calls.some((c) => c[2] === 'lvcreate'), 'nothing created');
  await t.resolves(fake([IMG, DISK], '80.00', '80.00').backend.clone('deb', 'n2'), 'at the threshold itself: allowed');
  await t.rejects(fake([IMG, { ...DISK, attr: 'Vwi-aotz--' }, CKPT]).backend.restore('n1', 'before'), BusyError);
  await t.rejects(fake([IMG, { ...DISK, attr: 'Vwi-aotz--' }]).backend.removeDisk('n1'), BusyError);
});

t.test('restore: deactivate, merge, activate, checkpoint again', async (t) => {
  const { calls, backend } = fake([IMG, DISK, CKPT]);
  t.same(await backend.restore('n1', 'before'), { method: 'merge' });
  t.same(calls.filter((c) => c[2] !== 'lvs').map((c) => c.slice(2).join(' ')), [
    'lvchange -y -an vg0/mbd-n1',
    'lvconvert -y --merge vg0/mbc-n1+before',
    'lvchange -y -ay -K vg0/mbd-n1',
    'lvcreate -y -s -kn -n mbc-n1+before --addtag metalboot --addtag mb-ckpt --addtag mb-of=n1 vg0/mbd-n1',
  ]);
  t.same(await backend.listCheckpoints('n1'), [{ diskId: 'n1', name: 'before' }]);
});

t.test('a failing lvm command is a BackendError naming lvcreate, not env', async (t) => {
  const runner: Runner = async (argv) => {
    if (argv[2] === 'lvs') return { stdout: report(argv[argv.length - 1] === 'vg0/pool' ? [{ name: 'pool', attr: 'twi-aotz--', pool: '', data: '1.00', meta: '1.00', tags: [] }] : [IMG]), stderr: '', code: 0 };
    throw new CommandError(argv, 'exit', 5, '  Insufficient free space');
  };
  const e = await guarded(new LvmBackend({ vg: 'vg0', pool: 'pool', runner })).clone('deb', 'n3').catch((x: unknown) => x);
  t.ok(e instanceof BackendError);
  t.match((e as Error).message, /^clone disk n3: lvcreate exited with 5: +Insufficient free space/);
});

t.test('activateDisks: only our inactive disks, with -K; one failure does not stop the others', async (t) => {
  const off = (name: string): Lv => ({ ...DISK, name, attr: 'Vwi---tz--', tags: ['mb-disk', 'metalboot', 'mb-from=deb'] });
  const { calls, backend } = fake([IMG, DISK, off('mbd-n2'), off('mbd-n3'), off('mbd-n4'), { ...CKPT, attr: 'Vwi---tz--' }, { ...FOREIGN, attr: 'Vwi---tz--' }],
    '10.00', '5.00', (argv) => argv.includes('vg0/mbd-n3'));
  const r = await backend.activateDisks!();
  t.same(r.activated, ['n2', 'n4']);
  t.same(r.failed.map((e) => [e.name, e.volume, e.op]), [['BackendError', 'disk n3', 'activate']]);
  t.same(calls.filter((c) => c[2] !== 'lvs').map((c) => c.slice(2).join(' ')), [
    'lvchange -y -ay -K vg0/mbd-n2', 'lvchange -y -ay -K vg0/mbd-n3', 'lvchange -y -ay -K vg0/mbd-n4',
  ], 'the active disk, the checkpoint and the untagged LV are left alone');
});
