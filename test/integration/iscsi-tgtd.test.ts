/**
 * The iSCSI adapter against a real tgtd (private, in its own namespace) and
 * real libiscsi/QEMU initiators: ACLs by initiator name, CHAP, readonly
 * golden LUNs, reconcile plans applied twice, and a tgtd crash (kill -9)
 * rebuilt from the typed description.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplyPlanError, applyPlan, diffTargets, type DesiredAccount, type DesiredTarget } from '../../src/iscsi/plan.js';
import { dataLuns } from '../../src/iscsi/tgtadm.js';
import { Tgtd, TgtadmError, TgtdStartError } from '../../src/iscsi/tgtd.js';
import { nsTgtdRunner, PrivateTgtd, tgtdUnavailable } from '../helpers/tgtd.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { IscsiReconciler } from '../../src/reconcile.js';

const skip = tgtdUnavailable();
const P = 'iqn.2026-11.lab.metalboot:';
const INIT1 = 'iqn.2026-11.lab.init:vm1';
const INIT2 = 'iqn.2026-11.lab.init:vm2';
const SECRET1 = 'vm1-Secret.0123';
const SECRET2 = 'vm2-Secret.4567';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('tgtd + libiscsi: ACL, CHAP, readonly, plans, crash', { skip, timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mbt-iscsi-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const disk1 = randomBytes(4 << 20);
  const golden = randomBytes(1 << 20);
  await writeFile(join(dir, 'disk1.img'), disk1);
  await writeFile(join(dir, 'golden.img'), golden);
  await writeFile(join(dir, 'disk2.img'), Buffer.alloc(1 << 20, 0x5a));
  await writeFile(join(dir, 'secret1'), SECRET1, { mode: 0o600 });

  const lab = await PrivateTgtd.start(t, 'iscsi');
  const tgtd = lab.tgtd;
  const host = `${lab.portal.address}:${lab.portal.port}`;
  t.comment(`private tgtd: ns ${lab.ns}, control port ${lab.controlPort}, portal ${host}`);

  const desired: DesiredTarget[] = [
    {
      iqn: `${P}vm1`, tid: 1,
      luns: [
        { lun: 1, backingStore: join(dir, 'disk1.img'), bstype: 'rdwr', readonly: false },
        { lun: 2, backingStore: join(dir, 'golden.img'), bstype: 'aio', readonly: true },
      ],
      initiatorNames: [INIT1], initiatorAddresses: [], incomingUsers: ['vm1'],
    },
    {
      iqn: `${P}vm2`, tid: 2,
      luns: [{ lun: 1, backingStore: join(dir, 'disk2.img'), bstype: 'aio', readonly: false }],
      initiatorNames: [INIT2], initiatorAddresses: [], incomingUsers: ['vm2'],
    },
  ];
  const accountsWanted: DesiredAccount[] = [{ user: 'vm1', secret: SECRET1 }, { user: 'vm2', secret: SECRET2 }];
  const owned = (iqn: string): boolean => iqn.startsWith(P);
  const plan = async () => diffTargets(await tgtd.show(), desired, owned, { actual: await tgtd.accounts(), desired: accountsWanted });

  // Someone else's target, present before we plan: must survive everything.
  await tgtd.run({ op: 'new-target', tid: 50, iqn: 'iqn.2026-11.other:foreign' });

  await t.test('first plan builds both targets, second plan is empty', async (t) => {
    const first = await plan();
    t.ok(first.length > 10, `${first.length} ops`);
    t.same(await applyPlan(tgtd, first), { ran: first.length, blocked: 0 });
    t.same(await plan(), [], 'idempotent');
    const shown = await tgtd.show();
    t.same(shown.map((x) => [x.tid, x.iqn]), [[1, `${P}vm1`], [2, `${P}vm2`], [50, 'iqn.2026-11.other:foreign']]);
    const vm1 = shown[0]!;
    t.same(dataLuns(vm1).map((l) => [l.lun, l.bstype, l.readonly, l.sizeMb]), [[1, 'rdwr', false, 4], [2, 'aio', true, 1]]);
    t.same(vm1.initiatorNames, [INIT1]);
    t.same(vm1.initiatorAddresses, [], 'no address rule: the IQN rule alone decides');
    t.same(vm1.accounts, [{ user: 'vm1', outgoing: false }]);
  });

  const inq = (initiator: string, url: string) => lab.exec(['iscsi-inq', '-i', initiator, url], 30_000, [0, 1, 10, 255]);
  const url = (cred: string, iqn: string, lun: number): string => `iscsi://${cred}@${host}/${iqn}/${lun}`;

  await t.test('right IQN + right CHAP reads the known bytes', async (t) => {
    const ok = await inq(INIT1, url(`vm1%${SECRET1}`, `${P}vm1`, 1));
    t.equal(ok.code, 0, ok.stderr);
    t.match(ok.stdout, /Peripheral Device Type:DIRECT_ACCESS/);
    // The whole LUN through QEMU's libiscsi driver; the secret comes from a file, not argv.
    const out = join(dir, 'read1.raw');
    const r = await lab.exec(['qemu-img', 'convert', '--object', `secret,id=s0,file=${join(dir, 'secret1')}`, '--image-opts',
      `driver=iscsi,transport=tcp,portal=${host},target=${P}vm1,lun=1,initiator-name=${INIT1},user=vm1,password-secret=s0`, '-O', 'raw', out], 60_000);
    t.equal(r.code, 0);
    t.equal(sha(await readFile(out)), sha(disk1), 'LUN 1 content equals the backing file');
  });

  await t.test('refusals: wrong IQN, wrong secret, no CHAP, other target\'s credentials', async (t) => {
    const wrongIqn = await inq('iqn.2026-11.lab.init:intruder', url(`vm1%${SECRET1}`, `${P}vm1`, 1));
    t.equal(wrongIqn.code, 10);
    t.match(wrongIqn.stderr + wrongIqn.stdout, /Target not found\(515\)/);
    const wrongSecret = await inq(INIT1, url('vm1%vm1-Secret.9999', `${P}vm1`, 1));
    t.equal(wrongSecret.code, 10);
    t.match(wrongSecret.stderr + wrongSecret.stdout, /Authentication failure\(513\)/);
    const noChap = await inq(INIT1, `iscsi://${host}/${P}vm1/1`);
    t.equal(noChap.code, 10);
    t.match(noChap.stderr + noChap.stdout, /Authentication failure\(513\)/);
    const otherCreds = await inq(INIT1, url(`vm2%${SECRET2}`, `${P}vm1`, 1));
    t.equal(otherCreds.code, 10);
    t.match(otherCreds.stderr + otherCreds.stdout, /Authentication failure\(513\)/);
    const otherIqnAndCreds = await inq(INIT2, url(`vm2%${SECRET2}`, `${P}vm1`, 1));
    t.equal(otherIqnAndCreds.code, 10, 'vm2 entirely cannot reach vm1');
    const vm2 = await inq(INIT2, url(`vm2%${SECRET2}`, `${P}vm2`, 1));
    t.equal(vm2.code, 0, 'while vm2 reaches its own target');
    const foreign = await inq(INIT1, url(`vm1%${SECRET1}`, 'iqn.2026-11.other:foreign', 0));
    t.equal(foreign.code, 10, 'a target without ACL admits nobody');
  });

  await t.test('the golden LUN refuses writes (DATA PROTECT) and its file is unchanged', async (t) => {
    const r = await lab.exec(['iscsi-test-cu', '-d', '-V', '-i', INIT1, '-t', 'SCSI.ReadOnly.ReadOnlySBC', url(`vm1%${SECRET1}`, `${P}vm1`, 2)], 60_000, [0, 1]);
    t.equal(r.code, 0, 'iscsi-test-cu ReadOnlySBC passed');
    for (const cmd of ['WRITE10', 'WRITE12', 'WRITE16', 'WRITEVERIFY10', 'ORWRITE']) {
      t.match(r.stdout, new RegExp(`\\[OK\\] ${cmd} returned CHECK_CONDITION DATA PROTECTION\\(0x07\\) WRITE_PROTECTED`), cmd);
    }
    // An initiator cannot lift it: software write protect is a different switch.
    await lab.exec(['iscsi-swp', '-i', INIT1, '-s', 'off', url(`vm1%${SECRET1}`, `${P}vm1`, 2)], 30_000, [0, 1, 10]);
    const again = await lab.exec(['iscsi-test-cu', '-d', '-V', '-i', INIT1, '-t', 'SCSI.ReadOnly.ReadOnlySBC', url(`vm1%${SECRET1}`, `${P}vm1`, 2)], 60_000, [0, 1]);
    t.match(again.stdout, /\[OK\] WRITE10 returned CHECK_CONDITION DATA PROTECTION/);
    t.equal(sha(await readFile(join(dir, 'golden.img'))), sha(golden), 'golden image bytes unchanged');
    t.ok(dataLuns((await tgtd.show())[0]!).find((l) => l.lun === 2)?.readonly, 'still readonly in show');
  });

  await t.test('an open session blocks removal; tgtd agrees ("still active")', async (t) => {
    const q = lab.spawnInNs(['qemu-io', '-r', '--object', `secret,id=s0,file=${join(dir, 'secret1')}`, '--image-opts',
      `driver=iscsi,transport=tcp,portal=${host},target=${P}vm1,lun=1,initiator-name=${INIT1},user=vm1,password-secret=s0`], 60);
    let out = '';
    q.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    q.stdin?.write('read -v 0 16\n');
    const deadline = Date.now() + 10_000;
    let sessions = 0;
    while (Date.now() < deadline) {
      sessions = (await tgtd.show())[0]!.sessions.length;
      if (sessions > 0 && out.includes('read 16/16')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(sessions, 1, 'qemu-io holds a session');
    const first16 = disk1.subarray(0, 16).toString('hex').replace(/(..)/g, '$1 ').trim();
    t.match(out, first16, 'qemu-io read the known first bytes');
    const s = (await tgtd.show())[0]!.sessions[0]!;
    t.equal(s.initiator, INIT1);
    t.equal(s.connections[0]?.address, '127.0.0.1');

    const ops = diffTargets(await tgtd.show(), desired.slice(1), owned);
    t.match(ops.filter((o) => o.type === 'blocked'), [{ tid: 1, iqn: `${P}vm1`, reason: /1 session\(s\) open/ }]);
    t.notOk(ops.some((o) => o.type === 'run' && o.op.op === 'delete-target' && o.op.tid === 1));
    const err = await tgtd.run({ op: 'delete-target', tid: 1, force: false }).catch((e: unknown) => e);
    t.type(err, TgtadmError);
    t.equal((err as TgtadmError).kind, 'busy');
    t.match((err as TgtadmError).message, /this target is still active/);
    q.stdin?.end();
    await new Promise<void>((r) => { const tm = setTimeout(r, 5000); q.once('exit', () => { clearTimeout(tm); r(); }); });
  });

  await t.test('CHAP errors never carry the secret', async (t) => {
    const err = (await tgtd.run({ op: 'new-account', user: 'vm1', secret: 'Another-Secret-42' }).catch((e: unknown) => e)) as TgtadmError;
    t.type(err, TgtadmError);
    t.equal(err.kind, 'exists');
    t.notMatch(JSON.stringify({ m: err.message, a: err.argv, s: err.stderr, st: err.stack }), 'Another-Secret-42');
  });

  await t.test('kill -9 and restart: empty tgtd, rebuilt from the description within 5 s', async (t) => {
    await lab.kill9();
    t.equal(await tgtd.isRunning(), false, 'gone');
    const t0 = performance.now();
    const restartMs = await lab.restart();
    t.same(await tgtd.show(), [], 'a restarted tgtd has no targets');
    t.same(await tgtd.accounts(), [], 'nor accounts');
    const ops = await plan();
    await applyPlan(tgtd, ops);
    const rebuiltMs = performance.now() - t0;
    t.comment(`tgtd answered ${restartMs.toFixed(0)} ms after start; ${ops.length} ops rebuilt everything ${rebuiltMs.toFixed(0)} ms after start`);
    t.ok(rebuiltMs < 5000, `rebuilt in ${rebuiltMs.toFixed(0)} ms`);
    t.same(await plan(), [], 'second plan empty');
    t.notOk((await tgtd.show()).some((x) => x.iqn === 'iqn.2026-11.other:foreign'), 'the foreign target is not ours to recreate');
    const ok = await inq(INIT1, url(`vm1%${SECRET1}`, `${P}vm1`, 1));
    t.equal(ok.code, 0, 'the initiator logs in again');
    t.ok(dataLuns((await tgtd.show())[0]!).find((l) => l.lun === 2)?.readonly, 'golden readonly again');
  });

  await t.test('the reconciler: a target tgtd refuses does not stop the others; each failed step is logged by target', async (t) => {
    const { log, lines } = memoryLogger();
    const broken: DesiredTarget = {
      iqn: `${P}vm3`, tid: 3, luns: [{ lun: 1, backingStore: join(dir, 'no-such-disk.img'), bstype: 'rdwr', readonly: false }],
      initiatorNames: ['iqn.2026-11.lab.init:vm3'], initiatorAddresses: [], incomingUsers: [],
    };
    const r = new IscsiReconciler({
      tgtd, manageTgtd: false, iqnPrefix: P.slice(0, -1), userPrefix: 'vm', intervalMs: 60_000, log,
      desired: () => ({ targets: [broken, ...desired], accounts: accountsWanted }),
    });
    // Start from an empty tgtd (bar the foreign target), so vm1 and vm2 must be made in the same run.
    for (const x of await tgtd.show()) if (owned(x.iqn)) await tgtd.run({ op: 'delete-target', tid: x.tid, force: true });
    const err = await r.reconcile('start').catch((e: unknown) => e);
    t.type(err, ApplyPlanError, 'the reconcile reports the refused steps');
    t.match((err as Error).message, /vm3 new-lun 1/, 'naming the target and the step');
    const made = (await tgtd.show()).filter((x) => owned(x.iqn)).map((x) => x.iqn);
    t.ok(made.includes(`${P}vm1`) && made.includes(`${P}vm2`), `vm1 and vm2 made in the same run (${made.join(', ')})`);
    const vm3 = (await tgtd.show()).find((x) => x.iqn === `${P}vm3`);
    t.same(vm3 ? { luns: dataLuns(vm3).length, names: vm3.initiatorNames } : 'absent', vm3 ? { luns: 0, names: [] } : 'absent', 'the refused target got no LUN and no access rule');
    const ok = await inq(INIT1, url(`vm1%${SECRET1}`, `${P}vm1`, 1));
    t.equal(ok.code, 0, 'vm1 is reachable with its IQN and CHAP');
    const failed = lines().filter((l) => l.event === 'iscsi.step-failed');
    t.same(failed.map((l) => [l.target, l.step]), [[`${P}vm3`, 'new-lun 1']], 'one line per failed step, by target');
    t.equal(lines().filter((l) => l.event === 'iscsi.unavailable').length, 0, 'tgtd is not reported unavailable');
    t.notMatch(JSON.stringify(lines()), SECRET1, 'no secret in the log');
    if (vm3) await tgtd.run({ op: 'delete-target', tid: vm3.tid, force: true });
  });

  await t.test('ensureRunning starts a managed tgtd on its own control port and portal; stop() ends it', async (t) => {
    const port = lab.extraControlPort();
    const pidFile = join(dir, 'managed.pid');
    const managed = new Tgtd({ runner: nsTgtdRunner(lab.ns), controlPort: port, manageTgtd: true, portal: { address: '127.0.0.1', port: 3261 }, pidFile });
    const t0 = performance.now();
    t.equal(await managed.ensureRunning(), 'started');
    t.comment(`managed tgtd (daemon mode) answered ${(performance.now() - t0).toFixed(0)} ms after start`);
    t.equal(await managed.ensureRunning(), 'running');
    t.same(await managed.portals(), [{ address: '127.0.0.1', port: 3261, tpgt: 1 }]);
    await managed.run({ op: 'new-target', tid: 1, iqn: `${P}managed` });
    await managed.stop();
    t.equal(await managed.isRunning(), false);

    // Portal already taken (the private tgtd holds 127.0.0.1:3260): refused, and nothing left running.
    const port2 = lab.extraControlPort();
    const clash = new Tgtd({ runner: nsTgtdRunner(lab.ns), controlPort: port2, manageTgtd: true, portal: { address: '127.0.0.1', port: 3260 }, pidFile: join(dir, 'clash.pid') });
    const err = await clash.ensureRunning().catch((e: unknown) => e);
    t.type(err, TgtdStartError);
    t.match((err as Error).message, /portal 127\.0\.0\.1:3260 not bound/);
    t.equal(await clash.isRunning(), false, 'the misbound tgtd was stopped');
  });
});
