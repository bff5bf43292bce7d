/**
 * Operations across a restart, on a real LevelDB store: a running operation is stored when it
 * starts and at each step, so the next start lists it failed at the step it had reached (stored
 * so, once), and an owner that finished it at restart can say so.
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Operations } from '../../src/machines/operations.js';
import { EventBus } from '../../src/events/bus.js';
import { openStore } from '../../src/store/db.js';
import { parseMac } from '../../src/net/mac.js';

const MAC = parseMac('52:54:00:00:00:aa');

t.test('an operation the daemon died under is listed failed at its step after a restart', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-ops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let now = 1000;
  const clock = () => ++now;
  let store = await openStore(dir);
  const ops = new Operations(store, new EventBus(), clock);
  await ops.load();
  let stepStored: Promise<void> | undefined;
  const never = new Promise<never>(() => {});
  const op = ops.start('provision', MAC, async (step) => { await step('disk'); stepStored = step('bootdev'); return never; });
  const done = ops.start('import', undefined, async (step) => { await step('copying'); return { ok: true }; });
  await new Promise((r) => setTimeout(r, 50));
  await stepStored;
  t.equal(ops.get(op.id)?.status, 'running', 'running before the "crash"');
  await store.close(); // what kill -9 leaves: the store as last synced

  store = await openStore(dir);
  t.teardown(() => store.close());
  const after = new Operations(store, new EventBus(), clock);
  await after.load();
  t.match(after.get(op.id), { status: 'failed', step: 'bootdev', error: 'interrupted by a daemon restart at step bootdev', mac: MAC }, 'failed, naming the step');
  t.same(after.get(op.id)?.steps.map((s) => s.step), ['queued', 'disk', 'bootdev'], 'its steps kept');
  t.match(after.get(done.id), { status: 'succeeded' }, 'a finished operation is unchanged');
  t.same(after.interrupted('provision', MAC).map((o) => o.id), [op.id], 'known as interrupted to its owner');
  t.same(after.interrupted('import', MAC), [], 'by kind and machine');
  const raw = (await store.loadRecords('operations')).find((r) => r.key === op.id)?.value;
  t.match(raw, { status: 'failed' }, 'the failed state is stored, not only shown');

  await after.finishInterrupted(op.id, { image: 'golden' }, 'finished at restart');
  t.match(after.get(op.id), { status: 'succeeded', step: 'done', result: { image: 'golden', note: 'finished at restart' } }, 'an owner that finished it says so');
  t.equal(after.get(op.id)?.error, undefined, 'without the interruption error');
  t.match((await store.loadRecords('operations')).find((r) => r.key === op.id)?.value, { status: 'succeeded' }, 'stored');
});
