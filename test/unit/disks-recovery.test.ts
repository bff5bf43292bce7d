/**
 * DiskService.recover() after a crash inside an lvm restore, and restore()'s checks before it
 * journals. lvm itself needs device-mapper (only in the test guest: see
 * test/guest/lvm-scenario.ts for the same crash against real LVM and tgtd), so here LvmBackend
 * runs against a STAND-IN for the lvm commands: a small stateful table of LVs answering
 * `lvs --reportformat json`, `lvchange -ay` and `lvcreate -s`. The store is the real one.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskService } from '../../src/disks/service.js';
import { chapUserFor, diskIdFor, initiatorIqnFor, opId, targetIqnFor, type DiskRecord, type OpRecord } from '../../src/disks/record.js';
import { CommandError, type Runner } from '../../src/exec/run.js';
import { parseMac } from '../../src/net/mac.js';
import type { IscsiReconciler } from '../../src/reconcile.js';
import { openStore } from '../../src/store/db.js';
import { NotFoundError } from '../../src/storage/backend.js';
import { guarded } from '../../src/storage/guarded.js';
import { LvmBackend } from '../../src/storage/lvm.js';
import { memoryLogger } from '../helpers/memory-logger.js';

const MAC = parseMac('52:54:00:00:00:41');
const MAC2 = parseMac('52:54:00:00:00:42');
const PREFIX = 'iqn.2026-11.org.metalboot';

interface Lv { name: string; active: boolean; origin: string; tags: string[]; pool?: string }

/** Stand-in for lvm (see the file comment). `fail`: LV names whose activation fails. */
function lvmStandIn(lvs: Lv[], fail: ReadonlySet<string> = new Set()) {
  const calls: string[] = [];
  const runner: Runner = async (argv) => {
    const a = argv.slice(2); // after env LVM_SUPPRESS_FD_WARNINGS=1
    const last = a[a.length - 1] ?? '';
    if (a[0] === 'lvs') {
      const rows = last === 'vg0/pool'
        ? [{ lv_name: 'pool', vg_name: 'vg0', lv_attr: 'twi-aotz--', lv_size: String(1 << 30), pool_lv: '', origin: '', data_percent: '10.00', metadata_percent: '5.00', lv_tags: '' }]
        : lvs.map((l) => ({
          lv_name: l.name, vg_name: 'vg0', lv_attr: `Vwi-${l.active ? 'a' : '-'}-tz--`, lv_size: '67108864', pool_lv: l.pool ?? 'pool',
          origin: l.origin, data_percent: '1.00', metadata_percent: '', lv_tags: l.tags.join(','),
        }));
      return { stdout: JSON.stringify({ report: [{ lv: rows }] }), stderr: '', code: 0 };
    }
    calls.push(a.join(' '));
    const name = last.replace(/^vg0\//, '');
    if (a[0] === 'lvchange' && a.includes('-ay')) {
      if (fail.has(name)) throw new CommandError(argv, 'exit', 5, '  device-mapper: reload ioctl failed');
      lvs.find((l) => l.name === name)!.active = true;
    } else if (a[0] === 'lvcreate' && a.includes('-s')) {
      const tags = a.flatMap((x, i) => (a[i - 1] === '--addtag' ? [x] : []));
      lvs.push({ name: a[a.indexOf('-n') + 1]!, active: true, origin: name, tags });
    }
    return { stdout: '', stderr: '', code: 0 };
  };
  return { calls, backend: guarded(new LvmBackend({ vg: 'vg0', pool: 'pool', runner })) };
}


/** recover() never reconciles; restore() must refuse before it does. Any use is a test failure. */
const noReconciler = new Proxy({}, { get: (_o, k) => { throw new Error(`reconciler.${String(k)} used`); } }) as IscsiReconciler;

function record(mac: typeof MAC): DiskRecord {
  return {
    mac, diskId: diskIdFor(mac), imageId: 'golden', targetIqn: targetIqnFor(PREFIX, mac), initiatorIqn: initiatorIqnFor(PREFIX, mac),
    chap: { user: chapUserFor(mac), secret: 'AbcdefghijkLmnopqrst' }, tid: mac === MAC ? 1 : 2, createdAt: 1,
  };
}

const image: Lv = { name: 'mbi-golden', active: true, origin: '', tags: ['metalboot', 'mb-image', 'mb-sha256=ab', 'mb-bytes=1000'] };
const disk = (mac: typeof MAC, active: boolean): Lv => ({ name: `mbd-${diskIdFor(mac)}`, active, origin: '', tags: ['metalboot', 'mb-disk', 'mb-from=golden'] });

async function setup(t: Test, lvs: Lv[], ops: OpRecord[], fail?: ReadonlySet<string>) {
  const dir = await mkdtemp(join(tmpdir(), 'mb-disks-recovery-'));
  const store = await openStore(dir);
  t.teardown(async () => { await store.close(); await rm(dir, { recursive: true, force: true }); });
  await store.writeRecords([
    ...[MAC, MAC2].map((m) => ({ type: 'put' as const, kind: 'disks' as const, key: m, value: record(m) })),
    ...ops.map((o) => ({ type: 'put' as const, kind: 'ops' as const, key: o.id, value: o })),
  ]);
  const { calls, backend } = lvmStandIn(lvs, fail);
  const mem = memoryLogger();
  const svc = new DiskService({ backend, store, reconciler: noReconciler, iqnPrefix: PREFIX, mutualChap: false, log: mem.log, clock: () => 1000 });
  return { svc, store, calls, mem };
}

const restoreOp = (checkpoint: string): OpRecord => ({ id: opId(5, 0), kind: 'restore', mac: MAC, diskId: diskIdFor(MAC), imageId: 'golden', checkpoint, startedAt: 5 });

t.test('crash after the merge: the disk LV is activated (logged by name), the consumed checkpoint taken again', async (t) => {
  const lvs = [image, disk(MAC, false), disk(MAC2, true)];
  const { svc, store, calls, mem } = await setup(t, lvs, [restoreOp('k1')]);
  const r = await svc.recover();
  t.same(r, { completed: 1, rolledBack: 0, orphans: 0, activated: 1 });
  t.same(calls, [
    `lvchange -y -ay -K vg0/mbd-${diskIdFor(MAC)}`,
    `lvcreate -y -s -kn -n mbc-${diskIdFor(MAC)}+k1 --addtag metalboot --addtag mb-ckpt --addtag mb-of=${diskIdFor(MAC)} vg0/mbd-${diskIdFor(MAC)}`,
  ]);
  t.ok(lvs.every((l) => l.active));
  const activated = mem.lines().find((l) => l.event === 'disks.activated');
  t.same(activated?.disks, [diskIdFor(MAC)]);
  t.match(activated?.msg, diskIdFor(MAC), 'the message names the disk');
  t.ok(mem.lines().some((l) => l.event === 'disks.checkpoint-retaken' && l.name === 'k1'));
  t.same(await store.loadRecords('ops'), [], 'journal entry gone');
});

t.test('crash after the deactivation, before the merge: activated, the checkpoint (still there) left alone', async (t) => {
  const ck: Lv = { name: `mbc-${diskIdFor(MAC)}+k1`, active: true, origin: `mbd-${diskIdFor(MAC)}`, tags: ['metalboot', 'mb-ckpt', `mb-of=${diskIdFor(MAC)}`] };
  const { svc, calls, mem } = await setup(t, [image, disk(MAC, false), ck, disk(MAC2, true)], [restoreOp('k1')]);
  await svc.recover();
  t.same(calls, [`lvchange -y -ay -K vg0/mbd-${diskIdFor(MAC)}`]);
  t.notOk(mem.lines().some((l) => l.event === 'disks.checkpoint-retaken'));
});

t.test('no journal entry (e.g. deactivated by hand): the start sweep activates every inactive disk; a failure is logged, not fatal', async (t) => {
  const { svc, calls, mem } = await setup(t, [image, disk(MAC, false), disk(MAC2, false)], [], new Set([`mbd-${diskIdFor(MAC2)}`]));
  const r = await svc.recover();
  t.equal(r.activated, 1);
  t.same(calls, [`lvchange -y -ay -K vg0/mbd-${diskIdFor(MAC)}`, `lvchange -y -ay -K vg0/mbd-${diskIdFor(MAC2)}`]);
  t.same(mem.lines().find((l) => l.event === 'disks.activated')?.disks, [diskIdFor(MAC)]);
  const failed = mem.lines().find((l) => l.event === 'disks.activate-failed');
  t.equal(failed?.volume, `disk ${diskIdFor(MAC2)}`);
  t.match(failed?.err, /reload ioctl failed/);
});

t.test('restore of a checkpoint that does not exist is refused before anything is journalled or detached', async (t) => {
  const { svc, store, calls } = await setup(t, [image, disk(MAC, true), disk(MAC2, true)], []);
  await svc.recover();
  await t.rejects(svc.restore(MAC, 'nope'), NotFoundError);
  t.same(await store.loadRecords('ops'), [], 'no journal entry (recovery would read it as a consumed checkpoint)');
  t.same(calls, [], 'no lvm command');
});
