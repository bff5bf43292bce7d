/**
 * The parsers of rbd/ceph JSON (storage/rbd-report.ts) on output captured from Ceph 16.2.15
 * (Debian 12, scripts/ceph-lab.sh), and their refusals of anything else.
 */
import t from 'tap';
import {
  cephHealth, parseImageMeta, parseList, parsePoolDf, parseQuota, parseSnaps, parseStatus, RbdReportError,
} from '../../src/storage/rbd-report.js';

// `rbd ls -l --format json metalboot` with a golden image, its snapshot and a clone with mb_base.
const LS = '[{"image":"bd1","id":"106173d6a0ae","size":4294967296,"parent":{"pool":"metalboot","pool_namespace":"","image":"big","snapshot":"golden"},"format":2},'
  + '{"image":"bd1","id":"106173d6a0ae","snapshot":"mb_base","snapshot_id":7,"size":4294967296,"parent":{"pool":"metalboot","pool_namespace":"","image":"big","snapshot":"golden"},"format":2,"protected":"false"},'
  + '{"image":"big","id":"105b75e775e8","size":4294967296,"format":2},'
  + '{"image":"big","id":"105b75e775e8","snapshot":"golden","snapshot_id":6,"size":4294967296,"format":2,"protected":"true"}]';
const DF = '{"stats":{"total_bytes":206158430208,"total_avail_bytes":205245227008,"total_used_bytes":913203200,"total_used_raw_bytes":913203200,"total_used_raw_ratio":0.0044296183623373508,"num_osds":3},'
  + '"pools":[{"name":"device_health_metrics","id":1,"stats":{"stored":0,"objects":0,"kb_used":0,"bytes_used":0,"percent_used":0,"max_avail":97468645376}},'
  + '{"name":"metalboot","id":2,"stats":{"stored":19,"objects":1,"kb_used":8,"bytes_used":8192,"percent_used":4.2023771129606757e-08,"max_avail":97468645376}}]}';

t.test('rbd ls -l: images, snapshots (protected as the string "true"), parents', async (t) => {
  const l = parseList(LS);
  t.equal(l.length, 4);
  t.same(l[0], { image: 'bd1', size: 4294967296, parent: { pool: 'metalboot', image: 'big', snapshot: 'golden' } });
  t.same(l[1], { image: 'bd1', size: 4294967296, snapshot: 'mb_base', protected: false, parent: { pool: 'metalboot', image: 'big', snapshot: 'golden' } });
  t.same(l[3], { image: 'big', size: 4294967296, snapshot: 'golden', protected: true });
  t.same(parseList(''), [], 'an empty pool prints nothing');
  t.same(parseList('[]'), []);
  t.throws(() => parseList('{"image":"x"}'), RbdReportError);
  t.throws(() => parseList('[{"size":1}]'), RbdReportError);
  t.throws(() => parseList('[{"image":"x","size":-1}]'), RbdReportError);
  t.throws(() => parseList('Importing image: 100% complete'), RbdReportError);
});

t.test('snap ls, status, image-meta', async (t) => {
  t.same(parseSnaps('[{"id":5,"name":"c1","size":8388608,"protected":"false","timestamp":"Tue Dec  8 00:30:02 2026"}]'), ['c1']);
  t.same(parseSnaps(''), []);
  t.throws(() => parseSnaps('[{"id":5}]'), RbdReportError);
  t.same(parseStatus('{"watchers":[]}'), []);
  t.same(parseStatus('{"watchers":[{"address":"127.0.0.1:0/3375283845","client":4181,"cookie":140}]}'), ['127.0.0.1:0/3375283845']);
  t.throws(() => parseStatus('{}'), RbdReportError);
  const sha = 'a'.repeat(64);
  t.same(parseImageMeta(JSON.stringify({ sha256: sha, bytes: 10, readOnly: true })), { sha256: sha, bytes: 10, readOnly: true });
  t.equal(parseImageMeta(undefined), undefined);
  t.equal(parseImageMeta('not json'), undefined);
  t.equal(parseImageMeta(JSON.stringify({ sha256: 'xyz', bytes: 10 })), undefined, 'a sha256 that is not 64 hex digits');
});

t.test('quota, df, health', async (t) => {
  t.same(parseQuota('{"pool_name":"metalboot","pool_id":2,"quota_max_objects":0,"current_num_objects":1,"quota_max_bytes":0,"current_num_bytes":19}'), { bytes: 19, maxBytes: 0 });
  t.throws(() => parseQuota('{"pool_name":"metalboot"}'), RbdReportError);
  t.same(parsePoolDf(DF, 'metalboot'), { stored: 19, maxAvail: 97468645376, percentUsed: 4.2023771129606757e-08 });
  t.throws(() => parsePoolDf(DF, 'other'), /pool other not listed/);
  t.same(cephHealth('{"status":"HEALTH_OK","checks":{},"mutes":[]}'), { status: 'HEALTH_OK', checks: {} });
  t.same(cephHealth('{"status":"HEALTH_WARN","checks":{"OSD_DOWN":{"severity":"HEALTH_WARN","summary":{"message":"1 osds down","count":1},"muted":false}},"mutes":[]}'),
    { status: 'HEALTH_WARN', checks: { OSD_DOWN: '1 osds down' } });
  t.throws(() => cephHealth('{"status":"FINE"}'), RbdReportError);
});
