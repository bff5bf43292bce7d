import t from 'tap';
import { readFileSync } from 'node:fs';
import { decodeAttr, LvmReportError, parseLvs, parseVgs } from '../../src/storage/lvm-report.js';

/** Captured from lvm2 2.03.16 in the test guest; see test/fixtures/lvm/README.md. */
const fixture = (name: string): string => readFileSync(new URL(`../../../test/fixtures/lvm/${name}`, import.meta.url), 'utf8');

t.test('golden, clones, checkpoint and pool', async (t) => {
  const lvs = parseLvs(fixture('lvs-with-ckpt.json'));
  t.same(lvs.map((l) => l.name), ['disk1', 'disk2', 'disk2.ck1', 'img', 'pool']);
  const [disk1, , ck1, img, pool] = lvs;
  t.match(disk1, { vg: 'vgt', sizeBytes: 67108864, pool: 'pool', origin: 'img', dataPercent: 12.5, metadataPercent: undefined, tags: ['mb-disk', 'metalboot'] });
  t.match(disk1?.attr, { type: 'thin', writable: true, active: true, open: false, target: 't', zero: true, health: '-', skipActivation: false });
  t.equal(ck1?.origin, 'disk2');
  t.match(img, { origin: undefined, tags: ['mb-image', 'metalboot'] });
  t.equal(img?.attr.writable, false, 'Vri: read-only');
  t.match(pool, { pool: undefined, sizeBytes: 268435456, dataPercent: 3.91, metadataPercent: 11.13, tags: ['metalboot'] });
  t.match(pool?.attr, { type: 'thin-pool', active: true, open: true });
});

t.test('after a merge with the origin inactive', async (t) => {
  const disk2 = parseLvs(fixture('lvs-after-merge-inactive.json')).find((l) => l.name === 'disk2');
  t.match(disk2, { origin: undefined, dataPercent: undefined, tags: ['mb-disk', 'metalboot'] });
  t.match(disk2?.attr, { raw: 'Vwi---tz--', active: false, open: false, writable: true });
});

t.test('hidden LVs of lvs -a and the pool at 81%', async (t) => {
  const all = parseLvs(fixture('lvs-merge-pending.json'));
  t.match(all.find((l) => l.name === '[pool_tdata]')?.attr, { type: 'thin-pool-data' });
  t.match(all.find((l) => l.name === '[pool_tmeta]')?.attr, { type: 'metadata' });
  t.match(all.find((l) => l.name === '[lvol0_pmspare]'), { tags: [], dataPercent: undefined, attr: { active: false } });
  t.match(parseLvs(fixture('lvs-pool-78.json')), [{ name: 'pool', dataPercent: 81.64, metadataPercent: 12.99 }]);
  t.match(parseLvs(fixture('lvs-select-tag.json')).find((l) => l.name === 'disk1'), { origin: undefined });
});

t.test('no such LV: empty list; vgs', async (t) => {
  t.same(parseLvs(fixture('lvs-missing.json')), []);
  t.same(parseVgs(fixture('vgs.json')), [{ name: 'vgt', sizeBytes: 2143289344, freeBytes: 1866465280, extentBytes: 4194304 }]);
  t.same(parseVgs(fixture('lvs-with-ckpt.json')), [], 'no vg section in an lvs report');
});

t.test('attr positions', async (t) => {
  t.match(decodeAttr('Vwi-aotz-k'), { type: 'thin', open: true, skipActivation: true });
  t.match(decodeAttr('twi-aotzD-'), { type: 'thin-pool', health: 'D' });
  t.match(decodeAttr('Vwi-s-tz--'), { suspended: true, active: false });
  t.match(decodeAttr('-wi-a-----'), { type: 'plain', target: '-' });
  t.match(decodeAttr('Xwi-a-----'), { type: 'other' });
  t.throws(() => decodeAttr('Vwi-a'), LvmReportError);
});

t.test('malformed reports are refused with LvmReportError', async (t) => {
  const row = { lv_name: 'a', vg_name: 'v', lv_attr: 'Vwi-a-tz--', lv_size: '1', pool_lv: '', origin: '', data_percent: '', metadata_percent: '', lv_tags: '' };
  const doc = (r: unknown): string => JSON.stringify({ report: [{ lv: [r] }] });
  t.equal(parseLvs(doc(row)).length, 1);
  for (const [why, text] of [
    ['not JSON', 'WARNING: Sum of all thin volume sizes exceeds'],
    ['no report', '{}'],
    ['lv not an array', '{"report":[{"lv":{}}]}'],
    ['row not an object', '{"report":[{"lv":[1]}]}'],
    ['size with a suffix (no --units b --nosuffix)', doc({ ...row, lv_size: '64.00m' })],
    ['fractional size', doc({ ...row, lv_size: '1.5' })],
    ['percent not a number', doc({ ...row, data_percent: 'x' })],
    ['missing field', doc({ ...row, lv_tags: undefined })],
    ['empty name', doc({ ...row, lv_name: '' })],
    ['non-string', doc({ ...row, lv_size: 1 })],
  ] as const) t.throws(() => parseLvs(text), LvmReportError, why);
});

t.test('scenario captures: a merge orphans the sibling checkpoint', async (t) => {
  const before = parseLvs(fixture('lvs-scenario-ckpt.json'));
  t.same(before.filter((l) => l.tags.includes('mb-ckpt')).map((l) => [l.name, l.origin]), [['mbc-m1+c1', 'mbd-m1'], ['mbc-m1+c2', 'mbd-m1']]);
  const after = parseLvs(fixture('lvs-scenario-after-restore.json'));
  t.same(after.filter((l) => l.tags.includes('mb-ckpt')).map((l) => [l.name, l.origin]), [['mbc-m1+c1', 'mbd-m1'], ['mbc-m1+c2', undefined]]);
  t.match(after.find((l) => l.name === 'mbd-m1'), { origin: undefined, tags: ['mb-disk', 'mb-from=golden', 'metalboot'] });
  t.match(parseLvs(fixture('lvs-scenario-small-pool.json')).find((l) => l.name === 'small'), { dataPercent: 62.5, attr: { type: 'thin-pool' } });
});
