import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { openStore, leaseKey, StoreOpenError, StoreClosedError, SCHEMA_VERSION } from '../../src/store/db.js';
import type { Lease } from '../../src/leases/lease.js';
import { parseIpv4, type Ipv4 } from '../../src/net/ipv4.js';
import { macFromBytes } from '../../src/net/mac.js';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'metalboot-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const BASE = parseIpv4('10.99.0.0');

function lease(i: number, extra: Partial<Lease> = {}): Lease {
  return {
    ip: (BASE + i) as Ipv4,
    mac: macFromBytes(Uint8Array.of(0x52, 0x54, 0, 0, (i >> 8) & 255, i & 255)),
    state: 'bound',
    expiresAt: 1_700_000_000_000 + i,
    updatedAt: 1_699_999_000_000,
    ...extra,
  };
}

t.test('put / load round trip, upsert and delete', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(dir);
  t.teardown(() => store.close());
  t.same(await store.loadLeases(), []);

  const full = lease(1, { hostname: 'node1', clientArch: 7, vendorClass: 'PXEClient:Arch:00007', clientId: '01525400000001' });
  const declined: Lease = { ip: (BASE + 2) as Ipv4, state: 'declined', expiresAt: 5, updatedAt: 4 };
  await store.putLeases([full, declined, lease(3)]);
  t.same(await store.loadLeases(), [full, declined, lease(3)]);

  await store.putLeases([lease(3, { state: 'released' })]);
  t.equal((await store.loadLeases())[2]!.state, 'released', 'put replaces the lease at that address');

  await store.deleteLeases([(BASE + 2) as Ipv4, (BASE + 99) as Ipv4]);
  t.same((await store.loadLeases()).map((l) => l.ip - BASE), [1, 3], 'deleted; deleting an absent address is fine');

  await store.putLeases([]);
  await store.deleteLeases([]);
  await t.rejects(store.putLeases([{ ...lease(1), ip: -1 as Ipv4 }]), RangeError, 'a bad address is refused, not written');
  t.ok(store.stats().groupCommit.batches >= 3);
});

t.test('boundAt round-trips; a record written before it existed loads without it (read as updatedAt)', async (t) => {
  const dir = await tempDir(t);
  const s1 = await openStore(dir);
  await s1.putLeases([lease(1, { boundAt: 1_699_998_000_000 }), lease(2)]);
  await s1.close();
  const s2 = await openStore(dir);
  t.teardown(() => s2.close());
  const [a, b] = await s2.loadLeases();
  t.equal(a!.boundAt, 1_699_998_000_000);
  t.equal(b!.boundAt, undefined);
  t.equal(b!.updatedAt, 1_699_999_000_000);
});

t.test('keys are 8 hex digits and sort by address', async (t) => {
  t.equal(leaseKey(parseIpv4('10.0.0.2')), '0a000002');
  t.equal(leaseKey(parseIpv4('0.0.0.0')), '00000000');
  t.equal(leaseKey(parseIpv4('255.255.255.255')), 'ffffffff');
  t.throws(() => leaseKey(2 ** 32 as Ipv4), RangeError);

  const dir = await tempDir(t);
  const store = await openStore(dir);
  t.teardown(() => store.close());
  // Decimal or dotted-string keys would put 10.x before 9.x and 192.x before 2.x.
  const addrs = ['192.168.1.1', '10.0.0.2', '9.255.255.255', '255.255.255.255', '2.0.0.1', '0.0.0.0', '10.0.0.10'];
  const ls = addrs.map((a): Lease => ({ ip: parseIpv4(a), state: 'declined', expiresAt: 1, updatedAt: 1 }));
  await Promise.all(ls.map((l) => store.putLeases([l])));
  const got = (await store.loadLeases()).map((l) => l.ip);
  t.same(got, ls.map((l) => l.ip).sort((a, b) => a - b));
});

t.test('reopen persists; schema version is written and checked', async (t) => {
  const dir = await tempDir(t);
  const a = await openStore(dir);
  await a.putLeases([lease(1), lease(2)]);
  await a.close();
  await a.close(); // idempotent
  await t.rejects(a.putLeases([lease(3)]), StoreClosedError);
  await t.rejects(a.loadLeases(), StoreClosedError);

  const b = await openStore(dir);
  t.same(await b.loadLeases(), [lease(1), lease(2)]);
  await b.close();

  const raw = new ClassicLevel<string, unknown>(join(dir, 'db'), { valueEncoding: 'json' });
  const meta = raw.sublevel<string, unknown>('meta', { valueEncoding: 'json' });
  t.equal(await meta.get('schemaVersion'), SCHEMA_VERSION);
  await meta.put('schemaVersion', SCHEMA_VERSION + 1);
  await raw.close();
  const err = await openStore(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, StoreOpenError);
  t.equal((err as StoreOpenError).reason, 'newer-schema');
  t.match((err as Error).message, join(dir, 'db'), 'error names the path');
  t.match((err as Error).message, new RegExp(`schema version ${SCHEMA_VERSION + 1}`));
  // The refused open released the lock: the raw DB opens again.
  const again = new ClassicLevel(join(dir, 'db'));
  await again.open();
  await again.close();
});

t.test('corrupt records are skipped and counted, not thrown', async (t) => {
  const dir = await tempDir(t);
  const s1 = await openStore(dir);
  await s1.putLeases([lease(1), lease(5)]);
  await s1.close();

  const raw = new ClassicLevel(join(dir, 'db'));
  const leases = raw.sublevel<string, string>('leases', { valueEncoding: 'utf8' });
  await leases.put(leaseKey((BASE + 2) as Ipv4), '{not json');
  await leases.put(leaseKey((BASE + 3) as Ipv4), JSON.stringify(lease(4))); // ip does not match key
  await leases.put(leaseKey((BASE + 4) as Ipv4), JSON.stringify({ ...lease(4), state: 'stolen' }));
  await leases.put(leaseKey((BASE + 6) as Ipv4), JSON.stringify({ ...lease(6), mac: 'nope' }));
  await leases.put(leaseKey((BASE + 7) as Ipv4), JSON.stringify([1, 2]));
  await leases.put(leaseKey((BASE + 8) as Ipv4), JSON.stringify({ ...lease(8), junk: 'dropped' })); // valid, extra field dropped
  await leases.put(leaseKey((BASE + 9) as Ipv4), JSON.stringify({ ...lease(9), boundAt: 'soon' }));
  await raw.close();

  const seen: [string, string][] = [];
  const s2 = await openStore(dir, { onCorrupt: (key, reason) => seen.push([key, reason]) });
  t.teardown(() => s2.close());
  t.same(await s2.loadLeases(), [lease(1), lease(5), lease(8)]);
  t.equal(s2.stats().corrupt, 6);
  t.same(
    seen.map(([k]) => k),
    [2, 3, 4, 6, 7, 9].map((i) => leaseKey((BASE + i) as Ipv4)),
  );
  t.match(seen[5]![1], /boundAt/);
  t.match(seen[0]![1], /not JSON/);
  t.match(seen[1]![1], /does not match its key/);
  t.match(seen[2]![1], /state/);
  t.match(seen[3]![1], /mac/);
});

t.test('a second open of an open store is a StoreOpenError naming the path', async (t) => {
  const dir = await tempDir(t);
  const first = await openStore(dir);
  t.teardown(() => first.close());
  const err = await openStore(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, StoreOpenError);
  t.equal((err as StoreOpenError).path, join(dir, 'db'));
  t.equal((err as StoreOpenError).reason, 'unavailable');
  t.match((err as Error).message, join(dir, 'db'));
  t.match((err as Error).message, /LEVEL_LOCKED/, `cause is in the message: ${(err as Error).message}`);
  t.ok((err as Error).cause, 'original error kept as cause');
});

t.test('SIGKILL after "committed" loses nothing', async (t) => {
  const dir = await tempDir(t);
  const dbModule = fileURLToPath(new URL('../../src/store/db.js', import.meta.url));
  const script = join(dir, 'writer.mjs');
  await writeFile(
    script,
    `import { openStore } from ${JSON.stringify(dbModule)};
const store = await openStore(process.argv[2]);
const BASE = ${BASE};
const lease = (i) => ({ ip: BASE + i, state: 'bound', expiresAt: 1700000000000 + i, updatedAt: 1 });
const calls = [];
// 400 leases as 8 concurrent 50-lease calls in one turn...
for (let c = 0; c < 8; c++) calls.push(store.putLeases(Array.from({ length: 50 }, (_, j) => lease(c * 50 + j))));
// ...and 100 single-lease calls spread over later turns, so several batches are in play.
for (let i = 400; i < 500; i++) {
  calls.push(store.putLeases([lease(i)]));
  if (i % 7 === 0) await new Promise((r) => setImmediate(r));
}
await Promise.all(calls);
process.stderr.write(JSON.stringify(store.stats()) + '\\n');
process.stdout.write('committed\\n');
setInterval(() => {}, 60000); // wait to be killed; never close the store
`,
  );
  const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, sig) => resolve(sig ?? code)));
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('committed\n')) child.kill('SIGKILL');
  });
  const how = await exited;
  t.equal(how, 'SIGKILL', `child was killed after committing (stderr: ${stderr.trim()})`);
  t.comment(`child stats: ${stderr.trim()}`);

  const store = await openStore(dir);
  t.teardown(() => store.close());
  const got = await store.loadLeases();
  t.equal(got.length, 500, 'all 500 leases survived the kill');
  t.same(got.map((l) => l.ip - BASE), Array.from({ length: 500 }, (_, i) => i));
  t.equal(got[499]!.expiresAt, 1700000000000 + 499);
  t.equal(store.stats().corrupt, 0);
});

t.test('throughput (informational, not asserted)', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(dir);
  t.teardown(() => store.close());

  // 100 concurrent submitters, each putting one lease at a time.
  const workers = 100;
  const perWorker = 30;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let k = 0; k < perWorker; k++) await store.putLeases([lease(w * perWorker + k)]);
    }),
  );
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const n = workers * perWorker;
  const gcStats = store.stats().groupCommit;

  // For contrast: one submitter, one synced write per lease.
  const seqN = 200;
  const s0 = process.hrtime.bigint();
  for (let i = 0; i < seqN; i++) await store.putLeases([lease(10_000 + i)]);
  const seqSecs = Number(process.hrtime.bigint() - s0) / 1e9;

  t.comment(
    `group commit: ${n} leases, 100 concurrent single-lease submitters: ${Math.round(n / secs)} leases/s ` +
      `(${gcStats.batches} synced batches, avg ${(n / gcStats.batches).toFixed(1)} leases/batch)`,
  );
  t.comment(`sequential: ${seqN} single-lease puts, one at a time: ${Math.round(seqN / seqSecs)} leases/s`);
  t.equal((await store.loadLeases()).length, n + seqN);
});

t.test('records: atomic put/delete per kind, survive reopen, corrupt values skipped', async (t) => {
  const dir = await tempDir(t);
  let store = await openStore(dir);
  t.same(await store.loadRecords('disks'), []);
  await store.writeRecords([
    { type: 'put', kind: 'ops', key: '0001', value: { op: 'provision', mac: '52:54:00:00:00:01' } },
    { type: 'put', kind: 'images', key: 'debian', value: { id: 'debian', sizeBytes: 42 } },
  ]);
  await store.writeRecords([
    { type: 'put', kind: 'disks', key: '52:54:00:00:00:01', value: { image: 'debian' } },
    { type: 'del', kind: 'ops', key: '0001' },
  ]);
  t.same(await store.loadRecords('ops'), [], 'journal entry gone in the same batch');
  t.same(await store.loadRecords('disks'), [{ key: '52:54:00:00:00:01', value: { image: 'debian' } }]);
  t.same(await store.loadRecords('images'), [{ key: 'debian', value: { id: 'debian', sizeBytes: 42 } }], 'kinds do not mix');
  await t.rejects(store.writeRecords([{ type: 'put', kind: 'nope' as 'ops', key: 'x', value: {} }]), RangeError);
  await t.rejects(store.writeRecords([{ type: 'del', kind: 'ops', key: '' }]), RangeError);
  await store.close();

  const raw = new ClassicLevel<string, string>(join(dir, 'db'), { valueEncoding: 'utf8' });
  await raw.sublevel<string, string>('disks', { valueEncoding: 'utf8' }).put('broken', '{not json');
  await raw.close();
  const seen: string[] = [];
  store = await openStore(dir, { onCorrupt: (key) => seen.push(key) });
  t.teardown(() => store.close());
  t.same((await store.loadRecords('disks')).map((r) => r.key), ['52:54:00:00:00:01'], 'reopened; the corrupt record is skipped');
  t.same(seen, ['disks/broken']);
});
