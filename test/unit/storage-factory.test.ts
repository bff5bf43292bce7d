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

t.test('rbd: pool, conf, cephx id and keyring from the config; health beside the usage', async (t) => {
  const calls: string[][] = [];
  const runner: Runner = async (argv) => {
    calls.push([...argv]);
    const sub = argv.slice(argv.indexOf('json') + 1).join(' ');
    if (sub === 'osd pool get-quota p1') return { stdout: '{"pool_name":"p1","pool_id":1,"quota_max_objects":0,"quota_max_bytes":1000,"current_num_objects":2,"current_num_bytes":500}', stderr: '', code: 0 };
    if (sub === 'health') return { stdout: '{"status":"HEALTH_WARN","checks":{"OSD_DOWN":{"severity":"HEALTH_WARN","summary":{"message":"1 osds down","count":1},"muted":false}},"mutes":[]}', stderr: '', code: 0 };
    throw new Error(`unexpected ${argv.join(' ')}`);
  };
  const b = createBackend({ backend: 'rbd', pool: 'p1', cephConf: '/etc/ceph/c.conf', user: 'mb', keyring: '/etc/ceph/k', maxPoolPercent: 40 }, { runner });
  t.equal(b.kind, 'rbd');
  t.same(b.describe(), { fields: { pool: 'p1', cephConf: '/etc/ceph/c.conf', user: 'mb' } });
  t.same(b.exportOf('n1'), { bstype: 'rbd', backingStore: 'p1/mbd-n1', bsopts: 'conf=/etc/ceph/c.conf;id=mb' });
  t.same(await b.usage(), { backend: 'rbd', dataPercent: 50, totalBytes: 1000, thresholdPercent: 40, health: 'HEALTH_WARN OSD_DOWN' }, 'the quota and the cluster\'s health');
  t.ok(calls.every((c) => c.includes('--keyring') && c[c.indexOf('--id') + 1] === 'mb'), 'every command as the configured user');
  calls.length = 0;
  await t.rejects(b.clone('img', 'd1'), { name: 'PoolFullError' }, 'the guard refuses above the threshold');
  t.same(calls.map((c) => c.slice(c.indexOf('json') + 1).join(' ')), ['osd pool get-quota p1'], 'the refusal asks for capacity only, not health');
});
