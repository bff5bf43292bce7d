/**
 * The real daemon with `storage.backend: rbd` on a real Ceph cluster (scripts/ceph-lab.sh) in the
 * daemon's namespace: an image uploaded over the API lands in RBD, a machine's disk is an RBD
 * clone that the daemon's reconcile exports through its managed tgtd (tgt-rbd), the machine's own
 * IQN + CHAP reads the golden bytes and a wrong secret is refused, the status page carries the
 * cluster's health, and deprovisioning removes the clone. Teardown stops the daemon and tgtd
 * before the cluster: a tgtd whose rbd LUNs lost their cluster cannot close them.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseMac } from '../../src/net/mac.js';
import { dataLuns } from '../../src/iscsi/tgtadm.js';
import { tgtdUnavailable } from '../helpers/tgtd.js';
import { cephUnavailable, startCephLab, type CephLab } from '../helpers/ceph.js';
import { toolMissing } from '../helpers/tools.js';
import { buildDiskLab, qemuIscsiOpts, sha256 } from '../helpers/disks.js';

const skip = cephUnavailable() || tgtdUnavailable() || toolMissing('tgt-rbd', 'qemu-iscsi');
const A = parseMac('52:54:00:aa:0d:01');
const MB = 1 << 20;

t.test('the daemon on rbd: import over the API, provision, IQN + CHAP read through tgtd, health, deprovision', { skip, timeout: 600_000 }, async (t) => {
  let ceph: CephLab | undefined;
  const lab = await buildDiskLab(t, 'drbd', '', {
    storage: () => `{ backend: rbd, rbd: { pool: ${ceph!.pool}, cephConf: ${ceph!.conf}, user: ${ceph!.user}, keyring: ${ceph!.keyring} } }`,
  });
  ceph = await startCephLab(t, { netns: lab.ns });
  // LIFO: runs before the cluster stops (buildDiskLab's teardown then finds both already stopped).
  t.teardown(async () => {
    await lab.daemon?.stop().catch(() => undefined);
    await lab.tgtd.stop().catch(() => undefined);
  });
  await lab.start();
  const image = randomBytes(12 * MB);
  const imgFile = path.join(lab.dir, 'golden.raw');
  await writeFile(imgFile, image);

  await t.test('an image uploaded over the API is an RBD image with its protected golden snapshot', async (t) => {
    const up = await lab.upload('/api/v1/images/golden', imgFile);
    t.equal(up.status, 201, up.body);
    t.match(JSON.parse(up.body), { id: 'golden', sizeBytes: 12 * MB, sha256: sha256(image), readOnly: true });
    const snaps = JSON.parse(await ceph!.admin(['rbd', 'snap', 'ls', '--format', 'json', 'metalboot/mbi-golden'])) as { name: string; protected: string }[];
    t.match(snaps, [{ name: 'golden', protected: 'true' }]);
  });

  await t.test('provision: the disk is an RBD clone exported by the daemon\'s tgtd with bstype rbd', async (t) => {
    const r = await lab.api('PUT', `/api/v1/disks/${A}`, { image: 'golden' });
    t.equal(r.status, 201, r.body);
    t.match(r.json(), { mac: A, imageId: 'golden', lun: 1, exported: true });
    const shown = await lab.tgtd.show();
    t.equal(shown.length, 1, 'one target');
    const lun = dataLuns(shown[0]!)[0];
    t.match(lun, { lun: 1, bstype: 'rbd', path: /^metalboot\/mbd-/ }, 'LUN 1 is the RBD clone');
    const spec = lun?.path ?? '';
    const parent = JSON.parse(await ceph!.admin(['rbd', 'info', '--format', 'json', spec])).parent as { pool: string; image: string; snapshot: string } | undefined;
    t.match(parent, { pool: 'metalboot', image: 'mbi-golden', snapshot: 'golden' }, `${spec} is a clone of the golden snapshot`);
    const del = await lab.api('DELETE', '/api/v1/images/golden');
    t.equal(del.status, 409, 'an image with a clone cannot be removed');
  });

  // The CHAP secret never leaves the daemon through the API; read it from the store while stopped.
  await lab.daemon.stop();
  const rec = (await lab.records()).find((x) => x.mac === A)!;
  await lab.start();

  await t.test('after a restart: the machine\'s IQN + CHAP reads the golden bytes through tgtd from RBD; a wrong secret is refused', async (t) => {
    const out = path.join(lab.dir, 'read.raw');
    const ok = await lab.exec(['qemu-img', 'convert', ...(await qemuIscsiOpts(lab.dir, rec)), '-O', 'raw', out], 120_000, [0, 1]);
    t.equal(ok.code, 0, ok.stderr);
    t.equal(sha256(await readFile(out)), sha256(image), 'the golden bytes');
    const bad = await lab.exec(['qemu-img', 'convert', ...(await qemuIscsiOpts(lab.dir, rec, { secret: 'Wrong.secret.0123' })), '-O', 'raw', path.join(lab.dir, 'bad.raw')], 60_000, [0, 1]);
    t.equal(bad.code, 1, 'wrong CHAP secret refused');
    const other = await lab.exec(['qemu-img', 'convert', ...(await qemuIscsiOpts(lab.dir, rec, { initiator: 'iqn.2026-11.lab.intruder:x' })), '-O', 'raw', path.join(lab.dir, 'bad2.raw')], 60_000, [0, 1]);
    t.equal(other.code, 1, 'another initiator name refused');
  });

  await t.test('the status page and /api/v1/storage carry the pool and the cluster\'s health', async (t) => {
    const st = await lab.api('GET', '/api/v1/storage');
    t.match(st.json(), { backend: 'rbd', thresholdPercent: 90, health: /^HEALTH_(OK|WARN)/ });
    const snap = await lab.api('GET', '/api/v1/status');
    t.match(snap.json().pool, { backend: 'rbd', health: /^HEALTH_(OK|WARN)/ });
    t.match(lab.daemon.events('storage.ready'), [{ backend: 'rbd', pool: 'metalboot' }], 'storage.ready names the backend and pool');
    t.match(lab.daemon.events('storage.health'), [{ health: /^HEALTH_(OK|WARN)/ }], 'the reconcile read the cluster\'s health at start');
  });

  await t.test('deprovision removes the target and the clone; the image can go then', async (t) => {
    t.equal((await lab.api('DELETE', `/api/v1/disks/${A}`)).status, 204);
    t.same(await lab.tgtd.show(), [], 'no target left');
    const names = JSON.parse(await ceph!.admin(['rbd', 'ls', '--format', 'json', 'metalboot'])) as string[];
    t.same(names, ['mbi-golden'], 'the clone is gone');
    t.equal((await lab.api('DELETE', '/api/v1/images/golden')).status, 204);
    t.same(JSON.parse(await ceph!.admin(['rbd', 'ls', '--format', 'json', 'metalboot'])), [], 'and the image');
  });
});
