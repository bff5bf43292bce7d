/** The backend-independent parts of storage/backend.ts: the pool threshold and its refusal. */
import t from 'tap';
import { isAboveThreshold, PoolFullError, type Usage } from '../../src/storage/backend.js';

const u = (dataPercent: number, metadataPercent?: number, thresholdPercent = 90): Usage => ({
  backend: metadataPercent === undefined ? 'file' : 'lvm', dataPercent, totalBytes: 1 << 30, thresholdPercent,
  ...(metadataPercent === undefined ? {} : { metadataPercent }),
});

t.test('isAboveThreshold: data or metadata strictly above the threshold', async (t) => {
  t.equal(isAboveThreshold(u(10, 5)), false, 'both low');
  t.equal(isAboveThreshold(u(90, 90)), false, 'at the threshold is still allowed');
  t.equal(isAboveThreshold(u(90.01, 5)), true, 'data above');
  t.equal(isAboveThreshold(u(10, 90.01)), true, 'metadata above with data low (lvm: metadata full turns the pool read-only)');
  t.equal(isAboveThreshold(u(10, 100)), true);
  t.equal(isAboveThreshold(u(10, 60, 50)), true, 'the threshold given is the one used');
  t.equal(isAboveThreshold(u(50)), false, 'file backend: no metadata');
  t.equal(isAboveThreshold(u(95)), true);
});

t.test('PoolFullError names the volume, the operation, the threshold and both figures', async (t) => {
  const e = new PoolFullError('disk m1', 'clone', u(10, 91.5, 90));
  t.equal(e.message, 'clone disk m1: pool is above 90% (data 10.00%, metadata 91.50%)');
  t.equal(new PoolFullError('disk m1', 'checkpoint', u(95)).message, 'checkpoint disk m1: pool is above 90% (data 95.00%)');
});
