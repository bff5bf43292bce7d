/**
 * storage/guarded.ts, the checks every backend gets: names validated before the core sees them,
 * init and mutations one at a time, import/clone/checkpoint refused above the threshold. The
 * core here is a RECORDING STAND-IN (volumes in maps, every call logged, a gate to hold a call
 * open), because what is tested is the wrapper's order of things, not a backend; the real cores
 * run through the same wrapper in storage-lvm-argv, disks-recovery and storage-files.
 */
import t from 'tap';
import {
  InvalidNameError, NotFoundError, PoolFullError,
  type BackendCore, type CheckpointInfo, type DiskInfo, type ImageInfo, type PoolUsage, type StorageError,
} from '../../src/storage/backend.js';
import type { VolumeExport } from '../../src/storage/export.js';
import { guarded } from '../../src/storage/guarded.js';

class RecordingCore implements BackendCore {
  readonly kind = 'recording';
  readonly calls: string[] = [];
  usageNow: PoolUsage = { dataPercent: 10, metadataPercent: 5, totalBytes: 1000 };
  /** Calls of these names wait until release() is called. */
  hold = new Set<string>();
  private waiting: (() => void)[] = [];
  running = 0;
  maxRunning = 0;
  images = new Map<string, ImageInfo>();
  disks = new Map<string, DiskInfo>();

  release(): void {
    for (const w of this.waiting.splice(0)) w();
  }

  private async step<T>(name: string, fn: () => T): Promise<T> {
    this.calls.push(name);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      if (this.hold.has(name.split(' ')[0]!)) await new Promise<void>((r) => this.waiting.push(r));
      return fn();
    } finally {
      this.running--;
    }
  }

  init() { return this.step('init', () => undefined); }
  describe() { return { fields: { where: 'memory' }, note: 'nothing is kept' }; }
  async usage() { this.calls.push('usage'); return this.usageNow; }
  exportOf(diskId: string): VolumeExport { return { bstype: 'rbd', backingStore: `pool/${diskId}`, bsopts: 'id=test' }; }
  importImage(id: string) {
    return this.step(`importImage ${id}`, () => {
      const i = { id, sizeBytes: 1, sha256: 'ab', readOnly: true };
      this.images.set(id, i);
      return i;
    });
  }
  async listImages() { return [...this.images.values()]; }
  async getImage(id: string) { this.calls.push(`getImage ${id}`); return this.images.get(id); }
  removeImage(id: string) { return this.step(`removeImage ${id}`, () => { this.images.delete(id); }); }
  setImageReadOnly(id: string) { return this.step(`setImageReadOnly ${id}`, () => undefined); }
  clone(imageId: string, diskId: string) {
    return this.step(`clone ${imageId} ${diskId}`, () => {
      if (!this.images.has(imageId)) throw new NotFoundError(`image ${imageId}`, 'clone');
      const d = { id: diskId, imageId, sizeBytes: 1, export: this.exportOf(diskId) };
      this.disks.set(diskId, d);
      return d;
    });
  }
  removeDisk(diskId: string) { return this.step(`removeDisk ${diskId}`, () => { this.disks.delete(diskId); }); }
  async getDisk(diskId: string) { this.calls.push(`getDisk ${diskId}`); return this.disks.get(diskId); }
  async listDisks() { return [...this.disks.values()]; }
  reset(diskId: string) { return this.step(`reset ${diskId}`, () => this.disks.get(diskId)!); }
  checkpoint(diskId: string, name: string) { return this.step(`checkpoint ${diskId} ${name}`, (): CheckpointInfo => ({ diskId, name })); }
  restore(diskId: string, name: string) { return this.step(`restore ${diskId} ${name}`, () => ({ method: 'test' })); }
  async listCheckpoints(diskId: string) { this.calls.push(`listCheckpoints ${diskId}`); return []; }
  removeCheckpoint(diskId: string, name: string) { return this.step(`removeCheckpoint ${diskId} ${name}`, () => undefined); }
}

const settle = () => new Promise((r) => setImmediate(r));

t.test('invalid names never reach the core: every verb, each name it takes', async (t) => {
  const core = new RecordingCore();
  const b = guarded(core);
  const bad = '../x';
  const verbs: [string, () => Promise<unknown>][] = [
    ['importImage', () => b.importImage(bad, '/dev/null')], ['getImage', () => b.getImage(bad)],
    ['removeImage', () => b.removeImage(bad)], ['setImageReadOnly', () => b.setImageReadOnly(bad)],
    ['clone (image)', () => b.clone(bad, 'd1')], ['clone (disk)', () => b.clone('img', bad)],
    ['removeDisk', () => b.removeDisk(bad)], ['diskExists', () => b.diskExists(bad)], ['getDisk', () => b.getDisk(bad)],
    ['reset', () => b.reset(bad)],
    ['checkpoint (disk)', () => b.checkpoint(bad, 'c')], ['checkpoint (name)', () => b.checkpoint('d1', 'a+b')],
    ['restore (disk)', () => b.restore(bad, 'c')], ['restore (name)', () => b.restore('d1', '-rf')],
    ['listCheckpoints', () => b.listCheckpoints(bad)],
    ['removeCheckpoint (disk)', () => b.removeCheckpoint(bad, 'c')], ['removeCheckpoint (name)', () => b.removeCheckpoint('d1', 'a b')],
  ];
  for (const [name, call] of verbs) await t.rejects(call(), InvalidNameError, name);
  t.throws(() => b.exportOf('a/b'), InvalidNameError, 'exportOf');
  t.same(core.calls, [], 'the core was never called (not even for usage)');
  const e = await b.clone('img', 'x y').catch((x: unknown) => x);
  t.match(e, { volume: 'disk "x y"', op: 'clone' }, 'the error names the kind, the name and the verb');
});

t.test('above the threshold: import, clone and checkpoint refused before the core; the rest still runs', async (t) => {
  const core = new RecordingCore();
  const b = guarded(core, { thresholdPercent: 80 });
  await b.importImage('img', '/dev/null');
  await b.clone('img', 'd1');
  core.calls.length = 0;

  core.usageNow = { dataPercent: 80.01, totalBytes: 1000 };
  const full = await b.clone('img', 'd2').catch((e: unknown) => e);
  t.ok(full instanceof PoolFullError, 'clone refused');
  t.match(full, { volume: 'disk d2', op: 'clone', usage: { backend: 'recording', dataPercent: 80.01, thresholdPercent: 80 } });
  await t.rejects(b.importImage('img2', '/dev/null'), PoolFullError, 'import refused');
  await t.rejects(b.checkpoint('d1', 'c1'), PoolFullError, 'checkpoint refused');
  t.same(core.calls, ['usage', 'usage', 'usage'], 'the core was asked for its usage only');

  core.calls.length = 0;
  await b.reset('d1');
  await b.restore('d1', 'c0');
  await b.removeCheckpoint('d1', 'c0');
  await b.removeDisk('d1');
  t.same(core.calls, ['reset d1', 'restore d1 c0', 'removeCheckpoint d1 c0', 'removeDisk d1'], 'reset, restore and removals are not refused (they give space back)');

  core.usageNow = { dataPercent: 10, metadataPercent: 80.5, totalBytes: 1000 };
  await t.rejects(b.clone('img', 'd3'), PoolFullError, 'metadata above the threshold counts too');
  core.usageNow = { dataPercent: 80, metadataPercent: 80, totalBytes: 1000 };
  t.match(await b.clone('img', 'd3'), { id: 'd3' }, 'at the threshold itself: allowed');
  t.same(await b.usage(), { backend: 'recording', dataPercent: 80, metadataPercent: 80, totalBytes: 1000, thresholdPercent: 80 }, 'usage carries the kind and the threshold');
  t.equal((await guarded(new RecordingCore()).usage()).thresholdPercent, 90, 'default threshold 90');
});

t.test('mutations run one at a time; reads do not wait for them; a failure does not stop the queue', async (t) => {
  const core = new RecordingCore();
  const b = guarded(core);
  await b.importImage('img', '/dev/null');
  core.calls.length = 0;
  core.hold.add('clone');
  const c1 = b.clone('img', 'd1');
  const c2 = b.clone('nope', 'd2');
  const ck = b.checkpoint('d1', 'k');
  const rm = b.removeImage('img');
  await settle();
  t.same(core.calls, ['usage', 'clone img d1'], 'the second clone waits for the first');
  t.match(await b.getImage('img'), { id: 'img' }, 'a read runs while a mutation is held');
  t.same(await b.listCheckpoints('d1'), []);
  core.release();
  t.match(await c1, { id: 'd1', export: { bstype: 'rbd', backingStore: 'pool/d1' } });
  await settle();
  core.release();
  await t.rejects(c2, NotFoundError, 'the second clone fails');
  t.same(await ck, { diskId: 'd1', name: 'k' }, 'the queue goes on after a failure');
  await rm;
  t.equal(core.maxRunning, 1, 'never two core mutations at once');
  t.same(core.calls.filter((c) => !c.startsWith('usage')), ['clone img d1', 'getImage img', 'listCheckpoints d1', 'clone nope d2', 'checkpoint d1 k', 'removeImage img']);
});

t.test('init and activateDisks are queued; activateDisks only when the core has it; describe and kind pass through', async (t) => {
  const plain = guarded(new RecordingCore());
  t.equal(plain.activateDisks, undefined, 'a core without activateDisks: the backend has none');
  t.equal(plain.kind, 'recording');
  t.same(plain.describe(), { fields: { where: 'memory' }, note: 'nothing is kept' });

  const core = new RecordingCore();
  const order: string[] = [];
  const withActivate = Object.assign(core, {
    activateDisks: async (): Promise<{ activated: string[]; failed: StorageError[] }> => { order.push(`activate (running ${core.running})`); return { activated: ['d1'], failed: [] }; },
  });
  const b = guarded(withActivate);
  core.hold.add('init');
  const init = b.init();
  const act = b.activateDisks!();
  await settle();
  t.same(order, [], 'activateDisks waits for init');
  core.release();
  await init;
  t.same(await act, { activated: ['d1'], failed: [] });
  t.same(order, ['activate (running 0)'], 'and ran alone');
});

t.test('diskExists asks the core for the disk', async (t) => {
  const core = new RecordingCore();
  const b = guarded(core);
  t.equal(await b.diskExists('d1'), false);
  await b.importImage('img', '/dev/null');
  await b.clone('img', 'd1');
  t.equal(await b.diskExists('d1'), true);
});
