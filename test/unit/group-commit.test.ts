import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { GroupCommitter, StoreClosedError } from '../../src/store/group-commit.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

/** A fake durable write that takes `ms`, records each batch and checks at most one is in flight. */
function recorder(ms = 2) {
  const batches: number[][] = [];
  const done: boolean[] = [];
  const batchOf = new Map<number, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  const write = async (ops: number[]) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const idx = batches.length;
    batches.push(ops);
    for (const op of ops) batchOf.set(op, idx);
    await sleep(ms);
    done[idx] = true;
    inFlight--;
  };
  return { write, batches, done, batchOf, maxInFlight: () => maxInFlight };
}

t.test('1000 submits in one turn share one write, each resolves after it', async (t) => {
  const r = recorder();
  const gc = new GroupCommitter<number>(r.write);
  const late: number[] = [];
  await Promise.all(
    Array.from({ length: 1000 }, (_, i) =>
      gc.submit(i).then(() => {
        if (!r.done[r.batchOf.get(i)!]) late.push(i);
      }),
    ),
  );
  t.equal(r.batches.length, 1);
  t.same(r.batches[0], Array.from({ length: 1000 }, (_, i) => i), 'ops in submission order');
  t.same(late, [], 'no promise resolved before its write finished');
  t.equal(gc.stats.batches, 1);
  t.equal(gc.stats.ops, 1000);
  t.equal(gc.stats.queued, 0);
});

t.test('1000 submits spread over turns: group commit, one write in flight', async (t) => {
  const r = recorder(3);
  const gc = new GroupCommitter<number>(r.write);
  const order: string[] = [];
  const all: Promise<void>[] = [];
  for (let i = 0; i < 1000; i++) {
    all.push(
      gc.submit([i]).then(() => {
        const b = r.batchOf.get(i)!;
        order.push(r.done[b] ? 'ok' : `early:${i}`);
      }),
    );
    if (i % 10 === 9) await turn(); // ten submitters per event-loop turn
  }
  await Promise.all(all);
  t.ok(r.batches.length < 100, `far fewer writes than submits (${r.batches.length} writes for 1000)`);
  t.ok(r.batches.length >= 2, 'submissions during a write went to a later batch');
  t.equal(r.maxInFlight(), 1, 'at most one write in flight');
  t.same(r.batches.flat(), Array.from({ length: 1000 }, (_, i) => i), 'batches preserve submission order');
  t.equal(order.filter((o) => o !== 'ok').length, 0, 'every promise resolved after its batch write resolved');
  t.equal(gc.stats.batches, r.batches.length);
  t.equal(gc.stats.ops, 1000);
});

t.test('everything queued during a write goes in ONE next batch', async (t) => {
  let release!: () => void;
  const batches: string[][] = [];
  const gc = new GroupCommitter<string>(async (ops) => {
    batches.push(ops);
    if (batches.length === 1) await new Promise<void>((r) => (release = r));
  });
  const a = gc.submit('a');
  await turn();
  t.same(batches, [['a']], 'first write started on its own');
  const rest = [gc.submit('b')];
  await turn();
  rest.push(gc.submit(['c', 'd']));
  await turn();
  rest.push(gc.submit('e'));
  t.equal(batches.length, 1, 'no second write while one is in flight');
  t.equal(gc.stats.queued, 4);
  release();
  await Promise.all([a, ...rest]);
  t.same(batches, [['a'], ['b', 'c', 'd', 'e']]);
});

t.test('a failing write rejects exactly its batch; later batches work', async (t) => {
  const gates: (() => void)[] = [];
  let calls = 0;
  const boom = new Error('disk on fire');
  const gc = new GroupCommitter<string>(async () => {
    const n = ++calls;
    await new Promise<void>((r) => gates.push(r));
    if (n === 2) throw boom;
  });
  const settle = (p: Promise<void>) => p.then(() => 'ok', (e: unknown) => e);
  const a = settle(gc.submit('a'));
  await turn();
  const b = settle(gc.submit('b'));
  const c = settle(gc.submit(['c1', 'c2']));
  gates.shift()!(); // batch 1 (a) succeeds
  t.equal(await a, 'ok');
  await turn();
  const d = settle(gc.submit('d')); // queued behind failing batch 2
  gates.shift()!(); // batch 2 (b, c) fails
  t.equal(await b, boom);
  t.equal(await c, boom);
  await turn();
  gates.shift()!(); // batch 3 (d) succeeds
  t.equal(await d, 'ok');
  t.equal(gc.stats.failedBatches, 1);
  t.equal(gc.stats.batches, 3);

  // A write that throws synchronously is handled the same way.
  const sync = new GroupCommitter<number>(() => {
    throw boom;
  });
  await t.rejects(sync.submit(1), boom);
});

t.test('maxBatch caps batches without splitting a submission', async (t) => {
  const batches: number[][] = [];
  const gc = new GroupCommitter<number>(async (ops) => void batches.push(ops), { maxBatch: 3 });
  await Promise.all([gc.submit([1, 2]), gc.submit([3, 4]), gc.submit([5, 6, 7, 8, 9]), gc.submit(10)]);
  t.same(batches, [[1, 2], [3, 4], [5, 6, 7, 8, 9], [10]]);
  t.throws(() => new GroupCommitter<number>(async () => {}, { maxBatch: 0 }), RangeError);
});

t.test('close drains queued and in-flight writes, then submit rejects', async (t) => {
  const r = recorder(5);
  const gc = new GroupCommitter<number>(r.write);
  const resolved: number[] = [];
  const first = gc.submit(1).then(() => resolved.push(1));
  await turn(); // batch 1 in flight
  const second = gc.submit([2, 3]).then(() => resolved.push(2));
  await gc.close();
  t.same(resolved.sort(), [1, 2], 'all submissions settled before close resolved');
  t.same(r.batches, [[1], [2, 3]]);
  await Promise.all([first, second]);
  await t.rejects(gc.submit(4), StoreClosedError);
  await t.rejects(gc.submit([]), StoreClosedError);
  await gc.close(); // idempotent
  t.equal(r.batches.length, 2);

  const idle = new GroupCommitter<number>(r.write);
  await idle.close(); // closing an idle committer resolves at once
  await t.rejects(idle.submit(1), StoreClosedError);
});

t.test('empty submission resolves without a write', async (t) => {
  let writes = 0;
  const gc = new GroupCommitter<number>(async () => void writes++);
  await gc.submit([]);
  t.equal(writes, 0);
});
