/** storage/factory.ts: the configured backend, wrapped, with its settings and threshold. */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand, type Runner } from '../../src/exec/run.js';
import { InvalidNameError } from '../../src/storage/backend.js';
import { createBackend } from '../../src/storage/factory.js';

t.test('file: the directory, bstype and threshold from the config; guarded', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mb-factory-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const b = createBackend({ backend: 'file', dir, bstype: 'aio', maxPoolPercent: 75 }, { runner: runCommand });
  await b.init();
  t.equal(b.kind, 'file');
  t.match(b.describe().fields, { dir, cloneMode: /^(reflink|copy)$/ }, 'the storage.ready fields');
  t.match(await b.usage(), { backend: 'file', thresholdPercent: 75 });
  t.same(b.exportOf('n1'), { bstype: 'aio', backingStore: path.join(dir, 'disks/n1.raw') });
  t.throws(() => b.exportOf('../n1'), InvalidNameError, 'names are checked');
});

t.test('lvm: VG, pool and bstype from the config', async (t) => {
  const calls: string[][] = [];
  const runner: Runner = async (argv) => { calls.push([...argv]); return { stdout: '', stderr: '', code: 0 }; };
  const b = createBackend({ backend: 'lvm', vg: 'vg9', thinPool: 'tp', maxPoolPercent: 60 }, { runner });
  t.equal(b.kind, 'lvm');
  t.same(b.describe(), { fields: { vg: 'vg9', pool: 'tp' } });
  t.same(b.exportOf('n1'), { bstype: 'aio', backingStore: '/dev/vg9/mbd-n1' }, 'aio by default');
  t.same(createBackend({ backend: 'lvm', vg: 'vg9', thinPool: 'tp', bstype: 'rdwr', maxPoolPercent: 60 }, { runner }).exportOf('n1').bstype, 'rdwr');
  t.same(calls, [], 'nothing runs before init');
});
