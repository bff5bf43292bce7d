import t from 'tap';
import { checkId, InvalidNameError, isAboveThreshold, MAX_ID_LENGTH, PoolFullError, SerialQueue, StorageError, validateId } from '../../src/storage/backend.js';
import { LvmBackend } from '../../src/storage/lvm.js';
import { FileBackend } from '../../src/storage/files.js';
import { guarded } from '../../src/storage/guarded.js';
import type { Runner } from '../../src/exec/run.js';

t.test('ids: safe charset and length', async (t) => {
  for (const ok of ['node-01', 'debian-12.5', 'A', '0', 'x'.repeat(MAX_ID_LENGTH), 'a.b-c']) t.ok(checkId(ok).ok, `accepted ${ok}`);
  for (const bad of ['', 'x'.repeat(MAX_ID_LENGTH + 1), '-rf', '.hidden', 'a/b', '../x', 'a..b', 'a_tdata', 'a+b', 'a b', 'é', 'a\0', 'a\n', '@tag', 'a:b']) {
    t.notOk(checkId(bad).ok, `refused ${JSON.stringify(bad)}`);
  }
});

t.test('validateId throws an InvalidNameError naming the kind, the id and the op', async (t) => {
  const e = t.throws(() => validateId('disk', '../etc', 'clone')) as unknown;
  t.ok(e instanceof InvalidNameError && e instanceof StorageError);
  t.match(e, { volume: 'disk "../etc"', op: 'clone', message: /^clone disk "\.\.\/etc": invalid name/ });
});

t.test('backends validate before running anything', async (t) => {
  const calls: string[][] = [];
  const runner: Runner = async (argv) => { calls.push([...argv]); return { stdout: '', stderr: '', code: 0 }; };
  const lvm = guarded(new LvmBackend({ vg: 'vg0', pool: 'pool', runner }));
  await t.rejects(lvm.clone('img', 'a b'), InvalidNameError);
  await t.rejects(lvm.checkpoint('d1', '../x'), InvalidNameError);
  await t.rejects(lvm.removeImage('-y'), InvalidNameError);
  t.throws(() => lvm.exportOf('x/y'), InvalidNameError);
  t.same(lvm.exportOf('node-01'), { bstype: 'aio', backingStore: '/dev/vg0/mbd-node-01' });
  t.same(calls, [], 'no lvm command ran');
  t.throws(() => new LvmBackend({ vg: '-vg', pool: 'p', runner }), StorageError);
  const fb = guarded(new FileBackend({ root: '/srv/mb', runner }));
  t.same(fb.exportOf('node-01'), { bstype: 'rdwr', backingStore: '/srv/mb/disks/node-01.raw' });
  t.same(guarded(new FileBackend({ root: '/srv/mb', runner, bstype: 'aio' })).exportOf('n'), { bstype: 'aio', backingStore: '/srv/mb/disks/n.raw' }, 'bstype from the config');
  await t.rejects(fb.importImage('a/b', '/dev/null'), InvalidNameError);
});

t.test('threshold and PoolFullError message', async (t) => {
  const u = { backend: 'lvm' as const, dataPercent: 91.5, metadataPercent: 10, totalBytes: 1, thresholdPercent: 90 };
  t.ok(isAboveThreshold(u));
  t.notOk(isAboveThreshold({ ...u, dataPercent: 90 }));
  t.ok(isAboveThreshold({ ...u, dataPercent: 1, metadataPercent: 95 }));
  t.match(new PoolFullError('disk d1', 'clone', u), { message: 'clone disk d1: pool is above 90% (data 91.50%, metadata 10.00%)' });
});

t.test('SerialQueue runs one at a time and survives a failure', async (t) => {
  const q = new SerialQueue();
  const order: string[] = [];
  const slow = (name: string, ms: number, fail = false) => () => new Promise<string>((res, rej) => setTimeout(() => { order.push(name); fail ? rej(new Error(name)) : res(name); }, ms));
  const a = q.run(slow('a', 30));
  const b = q.run(slow('b', 1, true));
  const c = q.run(slow('c', 1));
  t.equal(await a, 'a');
  await t.rejects(b, /b/);
  t.equal(await c, 'c');
  t.same(order, ['a', 'b', 'c']);
});
