/**
 * A machine's RBD disk exported by a real tgtd through tgt-rbd (bstype rbd, backing store
 * pool/image, --bsopts conf=…;id=…, the cephx key read from the keyring the conf names): the
 * machine's IQN with its CHAP secret reads the golden bytes, a wrong IQN or secret is refused,
 * and writes through iSCSI land in the clone, never in the golden image (rbd diff, rbd export).
 * tgtd, the Ceph cluster and the initiators share one test namespace.
 *
 * The backend comes from the factory (storage.backend: rbd) and the target from the project's
 * own plan (iscsi/plan.ts diffTargets + applyPlan) over the disk's VolumeExport, as the daemon's
 * reconcile makes it. Teardown deletes the target and stops tgtd before the cluster stops: a
 * tgtd whose rbd LUN lost its cluster cannot close it, and a tgtd left running kept the shared
 * test lock's fd.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApplyPlanError, applyPlan, diffTargets, type DesiredTarget } from '../../src/iscsi/plan.js';
import { IscsiReconciler } from '../../src/reconcile.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { createBackend } from '../../src/storage/factory.js';
import { PrivateTgtd, tgtdUnavailable } from '../helpers/tgtd.js';
import { cephUnavailable, startCephLab } from '../helpers/ceph.js';
import { toolMissing } from '../helpers/tools.js';

const skip = cephUnavailable() || tgtdUnavailable() || toolMissing('tgt-rbd', 'qemu-iscsi');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MB = 1 << 20;
const TARGET = 'iqn.2026-12.test.metalboot:rbd-node-1';
const INIT = 'iqn.2026-12.test.init:node-1';
const USER = 'node-1';
const SECRET = `Rbd.${randomBytes(9).toString('hex')}`;

t.test('tgtd exports an RBD clone: IQN + CHAP, golden bytes, writes in the clone only', { skip, timeout: 600_000 }, async (t) => {
  const tgt = await PrivateTgtd.start(t, 'rbdi', 500);
  const ceph = await startCephLab(t, { netns: tgt.ns });
  // LIFO teardown: this runs before the cluster stops.
  t.teardown(() => tgt.destroy());
  const backend = createBackend({ backend: 'rbd', pool: ceph.pool, cephConf: ceph.conf, user: ceph.user, keyring: ceph.keyring, maxPoolPercent: 90 }, { runner: ceph.runner });
  await backend.init();
  const image = randomBytes(16 * MB);
  const imgFile = path.join(ceph.dir, 'golden.raw');
  await writeFile(imgFile, image);
  await backend.importImage('golden', imgFile);
  await backend.clone('golden', 'node-1');

  const disk = await backend.getDisk('node-1');
  const desired: DesiredTarget[] = [{
    iqn: TARGET, tid: 1, luns: [{ lun: 1, ...disk!.export, readonly: false }],
    initiatorNames: [INIT], initiatorAddresses: [], incomingUsers: [USER],
  }];
  const owned = (iqn: string): boolean => iqn === TARGET;
  const accounts = { desired: [{ user: USER, secret: SECRET }], owned: (u: string) => u === USER };
  const ops = diffTargets(await tgt.tgtd.show(), desired, owned, { ...accounts, actual: await tgt.tgtd.accounts() });
  t.same(await applyPlan(tgt.tgtd, ops), { ran: ops.length, blocked: 0 }, `the plan's ${ops.length} steps ran`);
  t.same(diffTargets(await tgt.tgtd.show(), desired, owned, { ...accounts, actual: await tgt.tgtd.accounts() }), [], 'and a second plan has nothing to do');
  const lun = (await tgt.tgtd.show())[0]?.luns.find((l) => l.lun === 1);
  t.match(lun, { bstype: 'rbd', path: 'metalboot/mbd-node-1', readonly: false }, 'LUN 1 is the RBD clone');

  const secretFile = path.join(ceph.dir, 'chap');
  await writeFile(secretFile, SECRET, { mode: 0o600 });
  const opts = (initiator: string, user = USER): string[] => ['--object', `secret,id=s0,file=${secretFile}`, '--image-opts',
    `driver=iscsi,transport=tcp,portal=127.0.0.1:3260,target=${TARGET},lun=1,initiator-name=${initiator},user=${user},password-secret=s0`];
  const inq = (initiator: string, cred: string) => tgt.exec(['iscsi-inq', '-i', initiator, `iscsi://${cred}@127.0.0.1:3260/${TARGET}/1`], 30_000, [0, 1, 10, 255]);

  await t.test('right IQN + CHAP reads the golden bytes through tgtd from RBD', async (t) => {
    const out = path.join(ceph.dir, 'read.raw');
    await tgt.exec(['qemu-img', 'convert', ...opts(INIT), '-O', 'raw', out], 120_000);
    t.equal(sha(await readFile(out)), sha(image));
  });

  await t.test('wrong IQN, wrong secret, no CHAP: refused', async (t) => {
    const ok = await inq(INIT, `${USER}%${SECRET}`);
    t.equal(ok.code, 0, 'the right pair logs in');
    const wrongIqn = await inq('iqn.2026-12.test.init:intruder', `${USER}%${SECRET}`);
    t.equal(wrongIqn.code, 10);
    t.match(wrongIqn.stderr + wrongIqn.stdout, /Target not found\(515\)/);
    const wrongSecret = await inq(INIT, `${USER}%Wrong.secret.123`);
    t.equal(wrongSecret.code, 10);
    t.match(wrongSecret.stderr + wrongSecret.stdout, /Authentication failure\(513\)/);
    const noChap = await tgt.exec(['iscsi-inq', '-i', INIT, `iscsi://127.0.0.1:3260/${TARGET}/1`], 30_000, [0, 1, 10, 255]);
    t.equal(noChap.code, 10);
  });

  await t.test('writes through iSCSI land in the clone, never in the golden image', async (t) => {
    await tgt.exec(['qemu-io', ...opts(INIT), '-c', 'write -P 0xab 1M 2M'], 120_000);
    const diskFile = path.join(ceph.dir, 'disk.raw');
    await ceph.admin(['rbd', 'export', '--no-progress', 'metalboot/mbd-node-1', diskFile]);
    const disk = await readFile(diskFile);
    t.ok(disk.subarray(MB, 3 * MB).equals(Buffer.alloc(2 * MB, 0xab)), 'the clone has the written bytes');
    t.ok(disk.subarray(0, MB).equals(image.subarray(0, MB)) && disk.subarray(3 * MB).equals(image.subarray(3 * MB)), 'and the image\'s elsewhere');
    t.same(JSON.parse(await ceph.admin(['rbd', 'diff', '--format', 'json', '--from-snap', 'golden', 'metalboot/mbi-golden'])), [], 'rbd diff: the golden image is unchanged since its snapshot');
    const goldenFile = path.join(ceph.dir, 'golden-after.raw');
    await ceph.admin(['rbd', 'export', '--no-progress', 'metalboot/mbi-golden@golden', goldenFile]);
    t.equal(sha(await readFile(goldenFile)), sha(image), 'rbd export of the golden snapshot: the imported bytes');
  });

  // The daemon's reconciler over rbd disks: one of them has lost its RBD image (removed behind
  // metalboot's back); tgtd refuses that LUN, the reconcile names it and makes the other.
  const RP = 'iqn.2026-12.test.rbdrec';
  const { log, lines } = memoryLogger();
  await backend.clone('golden', 'node-2');
  const recTarget = (id: string, tid: number): DesiredTarget => ({
    iqn: `${RP}:${id}`, tid, luns: [{ lun: 1, ...backend.exportOf(id), readonly: false }],
    initiatorNames: [`${INIT}-${id}`], initiatorAddresses: [], incomingUsers: [`rc-${id}`],
  });
  // The reconcile waits at most 2 s for the health reading; it is logged when it arrives.
  const healthLines = async (n: number): Promise<Record<string, unknown>[]> => {
    for (let i = 0; i < 100 && lines().filter((l) => l.event === 'storage.health').length < n; i++) await new Promise((r) => setTimeout(r, 100));
    return lines().filter((l) => l.event === 'storage.health');
  };
  const reconciler = new IscsiReconciler({
    tgtd: tgt.tgtd, manageTgtd: false, iqnPrefix: RP, userPrefix: 'rc-', intervalMs: 60_000, log, healthIntervalMs: 0,
    desired: () => ({ targets: [recTarget('node-gone', 11), recTarget('node-2', 12)], accounts: [{ user: 'rc-node-gone', secret: SECRET }, { user: 'rc-node-2', secret: SECRET }] }),
    storageHealth: backend.health!,
  });

  await t.test('reconcile: a target whose RBD image is missing is named and skipped, the other is made', async (t) => {
    const err = await reconciler.reconcile('start').catch((e: unknown) => e);
    t.type(err, ApplyPlanError, 'the reconcile reports the refused step');
    t.same(lines().filter((l) => l.event === 'iscsi.step-failed').map((l) => [l.target, l.step]), [[`${RP}:node-gone`, 'new-lun 1']], 'one line, naming the target');
    const shown = await tgt.tgtd.show();
    t.match(shown.find((x) => x.iqn === `${RP}:node-2`)?.luns.find((l) => l.lun === 1), { bstype: 'rbd', path: 'metalboot/mbd-node-2' }, 'node-2 made, its RBD clone as LUN 1');
    t.same(shown.find((x) => x.iqn === `${RP}:node-gone`)?.luns.filter((l) => l.lun > 0) ?? [], [], 'node-gone has no LUN (and so no access rule)');
    t.same((await healthLines(1)).map((l) => l.health), ['HEALTH_OK'], 'the cluster\'s health logged once');
    t.equal(reconciler.storageHealth(), 'HEALTH_OK');
  });

  await t.test('one OSD stopped while the disk is exported: reads and writes go on, health is HEALTH_WARN', async (t) => {
    t.match((await backend.usage()).health, /^HEALTH_OK/, 'healthy before');
    await ceph.stopOsd(1);
    let u = await backend.usage();
    for (let i = 0; i < 40 && !/OSD_DOWN/.test(u.health ?? ''); i++) { await new Promise((r) => setTimeout(r, 500)); u = await backend.usage(); }
    t.match(u.health, /^HEALTH_WARN .*OSD_DOWN/);
    // The reconcile reports the state and still makes targets: only node-gone is refused, as before.
    const again = await reconciler.reconcile('periodic').catch((e: unknown) => e);
    t.match((again as ApplyPlanError).failures?.map((f) => f.target), [`${RP}:node-gone`], 'with an OSD down, only the missing image is refused');
    t.match((await healthLines(2)).at(-1), { level: 'warn', health: /^HEALTH_WARN .*OSD_DOWN/, was: 'HEALTH_OK' }, 'storage.health logged as a warning');
    t.ok((await tgt.tgtd.show()).some((x) => x.iqn === `${RP}:node-2` && x.luns.some((l) => l.lun === 1)), 'node-2 still exported');
    const io = await tgt.exec(['qemu-io', ...opts(INIT), '-c', 'write -P 0xcd 4M 1M', '-c', 'read -P 0xcd 4M 1M', '-c', 'read -P 0xab 1M 2M'], 120_000);
    t.notMatch(io.stdout + io.stderr, /verification failed|error/i, 'written and read back through tgtd with an OSD down');
    t.equal((io.stdout.match(/^read 1048576\/1048576 bytes|^read 2097152\/2097152 bytes/gm) ?? []).length, 2, 'both reads completed');
    await ceph.startOsd(1);
  });

  for (const x of await tgt.tgtd.show()) if (x.iqn.startsWith(RP)) await tgt.tgtd.run({ op: 'delete-target', tid: x.tid, force: true });
  for (const u of await tgt.tgtd.accounts()) if (u.startsWith('rc-')) await tgt.tgtd.run({ op: 'delete-account', user: u });
  const down = diffTargets(await tgt.tgtd.show(), [], owned, { ...accounts, desired: [], actual: await tgt.tgtd.accounts() });
  t.same(await applyPlan(tgt.tgtd, down), { ran: down.length, blocked: 0 });
  t.same([await tgt.tgtd.show(), await tgt.tgtd.accounts()], [[], []], 'target and account removed by the plan');
});
