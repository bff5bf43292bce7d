/**
 * The daemon's disks end to end, against real tools: images uploaded and imported (raw, qcow2),
 * disks cloned for two machines and exported by a tgtd the daemon manages, read by a real
 * initiator (QEMU's libiscsi driver, libiscsi's iscsi-inq) with the machine's own IQN and CHAP,
 * refused with anything else; write, checkpoint, reset, restore; an open session blocks a
 * reset; tgtd killed -9 is back with every target and account within 5 s; deprovision.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFile, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import { parseMac } from '../../src/net/mac.js';
import { dataLuns } from '../../src/iscsi/tgtadm.js';
import { tgtdUnavailable } from '../helpers/tgtd.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { buildDiskLab, qemuIscsiOpts, sha256, PORTAL } from '../helpers/disks.js';
import { apiToken } from '../helpers/dhcp-tools.js';
import { NotifyReceiver } from '../helpers/notify-receiver.js';

const skip = netnsUnavailable() || tgtdUnavailable();
const A = parseMac('52:54:00:aa:00:01');
const B = parseMac('52:54:00:bb:00:02');
const MB = 1 << 20;

t.test('disks through the daemon: import, provision, iSCSI access control, reset, restore, tgtd crash, deprovision', { skip, timeout: 600_000 }, async (t) => {
  const lab = await buildDiskLab(t, 'dsk');
  await lab.start();
  const image = randomBytes(8 * MB);
  const imgFile = path.join(lab.dir, 'golden.raw');
  await writeFile(imgFile, image);

  await t.test('images: raw upload, qcow2 import, qcow2 with a backing file refused', async (t) => {
    const up = await lab.upload('/api/v1/images/golden', imgFile);
    t.equal(up.status, 201, up.body);
    t.match(JSON.parse(up.body), { id: 'golden', sizeBytes: 8 * MB, sha256: sha256(image), readOnly: true, operation: /^import-/ });
    const op = await lab.api('GET', `/api/v1/operations/${JSON.parse(up.body).operation}`);
    t.match(op.json(), { kind: 'import', status: 'succeeded', steps: [{ step: 'queued' }, { step: 'receiving' }] }, 'the import is an operation, with its result kept');
    // Server-side imports read only from images.importDir (default <dataDir>/import, made at start).
    const qcow = path.join(lab.dataDir, 'import', 'golden.qcow2');
    await lab.exec(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', imgFile, qcow]);
    const imp = await lab.api('POST', '/api/v1/images/golden-q/import', { path: qcow, format: 'qcow2' });
    t.equal(imp.status, 201, imp.body);
    t.equal(imp.json().sha256, sha256(image), 'qcow2 converted to the same bytes');
    const child = path.join(lab.dataDir, 'import', 'child.qcow2');
    await lab.exec(['qemu-img', 'create', '-f', 'qcow2', '-F', 'qcow2', '-b', qcow, child]);
    const bad = await lab.api('POST', '/api/v1/images/evil/import', { path: child, format: 'qcow2' });
    t.equal(bad.status, 400);
    t.match(bad.json().error, /backing file/);
    const dup = await lab.upload('/api/v1/images/golden', imgFile);
    t.equal(dup.status, 409, 'an image id is not overwritten');
    const badName = await lab.api('POST', '/api/v1/images/..%2Fetc/import', { path: imgFile });
    t.ok(badName.status === 400 || badName.status === 404, `a path-like id is refused (${badName.status})`);
    t.same((await lab.api('GET', '/api/v1/images')).json().images.map((i: { id: string }) => i.id).sort(), ['golden', 'golden-q']);
  });

  await t.test('images: a qcow2 upload is converted; an upload is streamed, never held in memory whole', async (t) => {
    const qcow = path.join(lab.dir, 'up.qcow2');
    await lab.exec(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', imgFile, qcow]);
    const up = await lab.upload('/api/v1/images/golden-qu?format=qcow2', qcow);
    t.equal(up.status, 201, up.body);
    t.equal(JSON.parse(up.body).sha256, sha256(image), 'the uploaded qcow2 became the same raw bytes');
    t.equal((await lab.api('DELETE', '/api/v1/images/golden-qu')).status, 204, 'and can go');
    // 768 MiB through curl -T (which streams too): the daemon's peak RSS must not grow by the size.
    const pid = await lab.daemon.nodePid();
    const hwm = async () => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
    const big = path.join(lab.dir, 'big.raw');
    await lab.exec(['truncate', '-s', `${768 * MB}`, big]);
    const before = await hwm();
    const r = await lab.exec(['curl', '-sS', '-m', '300', '-T', big, '-X', 'PUT', '-H', `Authorization: Bearer ${apiToken(lab.dataDir)}`,
      '-H', 'Content-Type: application/octet-stream', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:8080/api/v1/images/big'], 310_000);
    t.equal(r.stdout, '201', 'a 768 MiB upload');
    const grew = (await hwm()) - before;
    t.ok(grew < 128 * MB, `the daemon's peak RSS grew by ${(grew / MB).toFixed(1)} MiB for 768 MiB uploaded (bound 128 MiB)`);
    t.equal((await lab.api('DELETE', '/api/v1/images/big')).status, 204);
  });

  await t.test('provision two machines; image in use cannot be removed; no secret in any response', async (t) => {
    for (const mac of [A, B]) {
      const r = await lab.api('PUT', `/api/v1/disks/${mac}`, { image: 'golden' });
      t.equal(r.status, 201, r.body);
      t.match(r.json(), { mac, imageId: 'golden', portal: PORTAL, lun: 1, exported: true, chapUser: /^mb-i/ });
      t.notMatch(r.body, /secret/i, 'no secret in the provision response');
    }
    const again = await lab.api('PUT', `/api/v1/disks/${A}`, { image: 'golden' });
    t.equal(again.status, 409);
    const missing = await lab.api('PUT', `/api/v1/disks/52:54:00:cc:00:03`, { image: 'nope' });
    t.equal(missing.status, 404);
    const del = await lab.api('DELETE', '/api/v1/images/golden');
    t.equal(del.status, 409);
    t.match(del.json().error, /in use by 2 disk/);
    const list = await lab.api('GET', '/api/v1/disks');
    t.equal(list.json().disks.length, 2);
    t.notMatch(list.body, /secret/i);
    const shown = await lab.tgtd.show();
    t.equal(shown.length, 2, 'two targets');
    for (const tg of shown) {
      t.same(dataLuns(tg).map((l) => l.lun), [1], 'LUN 1 only');
      t.equal(tg.initiatorNames.length, 1, 'bound to one initiator name');
      t.same(tg.initiatorAddresses, [], 'never ALL, no address rule');
      t.equal(tg.accounts.length, 1);
    }
  });

  // Secrets never leave the daemon through the API; the test reads them from the store.
  await lab.daemon.stop();
  const recs = await lab.records();
  const ra = recs.find((r) => r.mac === A)!;
  const rb = recs.find((r) => r.mac === B)!;
  await lab.start();
  const readLun = async (r: typeof ra, override = {}) => {
    const out = path.join(lab.dir, `read-${Math.random().toString(36).slice(2)}.raw`);
    const res = await lab.exec(['qemu-img', 'convert', ...(await qemuIscsiOpts(lab.dir, r, override)), '-O', 'raw', out], 60_000, [0, 1]);
    return res.code === 0 ? readFile(out) : res.stderr;
  };
  const url = (user: string, secret: string, iqn: string) => `iscsi://${user}%${secret}@${PORTAL}/${iqn}/1`;

  await t.test('after a daemon restart the targets are still there; each machine reads its own clone', async (t) => {
    t.equal((await lab.tgtd.show()).length, 2);
    const a = await readLun(ra);
    t.ok(Buffer.isBuffer(a) && sha256(a) === sha256(image), 'A reads the golden bytes through its own target');
    const inq = await lab.exec(['iscsi-inq', '-i', ra.initiatorIqn, url(ra.chap.user, ra.chap.secret, ra.targetIqn)], 30_000, [0, 10]);
    t.equal(inq.code, 0, 'iscsi-inq logs in with A\'s IQN and CHAP');
  });

  await t.test('refused: wrong IQN, wrong CHAP secret, another machine\'s credentials', async (t) => {
    const inq = (init: string, u: string) => lab.exec(['iscsi-inq', '-i', init, u], 30_000, [0, 10, 1, 255]);
    const wrongIqn = await inq('iqn.2026-11.lab.intruder:x', url(ra.chap.user, ra.chap.secret, ra.targetIqn));
    t.equal(wrongIqn.code, 10);
    t.match(wrongIqn.stdout + wrongIqn.stderr, /Target not found\(515\)/);
    const wrongSecret = await inq(ra.initiatorIqn, url(ra.chap.user, 'not-the-secret-123', ra.targetIqn));
    t.equal(wrongSecret.code, 10);
    t.match(wrongSecret.stdout + wrongSecret.stderr, /Authentication failure\(513\)/);
    const bOnA = await inq(rb.initiatorIqn, url(rb.chap.user, rb.chap.secret, ra.targetIqn));
    t.equal(bOnA.code, 10, 'B\'s IQN and CHAP cannot reach A\'s disk');
    const bCredsOnA = await inq(ra.initiatorIqn, url(rb.chap.user, rb.chap.secret, ra.targetIqn));
    t.equal(bCredsOnA.code, 10, 'A\'s IQN with B\'s CHAP account is refused');
    t.match(bCredsOnA.stdout + bCredsOnA.stderr, /Authentication failure\(513\)/);
  });

  await t.test('write, checkpoint, reset to pristine, restore the checkpoint', async (t) => {
    const w = await lab.exec(['qemu-io', '-c', 'write -P 0xab 0 64k', ...(await qemuIscsiOpts(lab.dir, ra))]);
    t.match(w.stdout, /wrote 65536\/65536/);
    const written = await readLun(ra) as Buffer;
    t.equal(written[0], 0xab, 'A\'s disk changed');
    t.equal(sha256(await readFile(imgFile)), sha256(image));
    const b = await readLun(rb) as Buffer;
    t.equal(sha256(b), sha256(image), 'B\'s disk did not change');
    const ck = await lab.api('POST', `/api/v1/disks/${A}/checkpoints`, { name: 'after-write' });
    t.equal(ck.status, 201, ck.body);
    const reset = await lab.api('POST', `/api/v1/disks/${A}/reset`);
    t.equal(reset.status, 200, reset.body);
    t.equal(sha256(await readLun(ra) as Buffer), sha256(image), 'reset: pristine again');
    const restore = await lab.api('POST', `/api/v1/disks/${A}/restore`, { checkpoint: 'after-write' });
    t.equal(restore.status, 200, restore.body);
    t.equal(sha256(await readLun(ra) as Buffer), sha256(written), 'restore: the checkpoint\'s content is back');
    t.same((await lab.api('GET', `/api/v1/disks/${A}/checkpoints`)).json(), { checkpoints: [{ name: 'after-write' }] });
  });

  await t.test('an open iSCSI session blocks reset and deprovision', async (t) => {
    // qemu-io keeps its session while its stdin stays open.
    const q = spawn('ip', ['netns', 'exec', lab.ns, 'timeout', '-k', '2', '60', 'qemu-io', '-r', ...(await qemuIscsiOpts(lab.dir, ra))], { stdio: ['pipe', 'pipe', 'pipe'] });
    lab.net.track(q);
    const exited = new Promise((r) => q.once('exit', r));
    q.stdin.write('read 0 512\n');
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !((await lab.tgtd.show()).find((x) => x.iqn === ra.targetIqn)?.sessions.length)) await new Promise((r) => setTimeout(r, 100));
    t.equal((await lab.tgtd.show()).find((x) => x.iqn === ra.targetIqn)?.sessions.length, 1, 'qemu-io holds a session');
    const reset = await lab.api('POST', `/api/v1/disks/${A}/reset`);
    t.equal(reset.status, 409, reset.body);
    t.match(reset.json().error, /iSCSI session open from .*initiator/);
    const dep = await lab.api('DELETE', `/api/v1/disks/${A}`);
    t.equal(dep.status, 409);
    const view = (await lab.api('GET', `/api/v1/disks/${A}`)).json();
    t.equal(view.exported, true, 'still exported');
    q.stdin.end('quit\n');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  });

  await t.test('tgtd killed -9: every target, LUN, ACL and account back within 5 s', async (t) => {
    const before = await lab.tgtd.show();
    const pid = Number((await readFile(path.join(lab.dataDir, 'tgtd.pid'), 'utf8')).trim());
    process.kill(pid, 'SIGKILL');
    const killed = Date.now();
    let after = before.slice(0, 0);
    while (Date.now() - killed < 5000) {
      after = await lab.tgtd.show().catch(() => []);
      if (after.length === 2 && after.every((x) => x.accounts.length === 1 && x.initiatorNames.length === 1 && dataLuns(x).length === 1)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const took = Date.now() - killed;
    t.ok(took < 5000, `restored in ${took} ms`);
    const strip = (xs: typeof before) => xs.map((x) => ({ iqn: x.iqn, names: x.initiatorNames, accounts: x.accounts, luns: dataLuns(x).map((l) => [l.lun, l.path]) }));
    t.same(strip(after), strip(before), 'the same targets, LUNs, ACLs and accounts');
    t.same((await lab.tgtd.accounts()).sort(), [ra.chap.user, rb.chap.user].sort());
    const a = await readLun(ra);
    t.ok(Buffer.isBuffer(a), 'A logs in again with its old CHAP secret');
    await lab.daemon.waitForEvent('iscsi.tgtd-started', 5000);
  });

  await t.test('READY=1 (sd_notify) only once tgtd was reconciled: targets deleted while the daemon was down are back when it arrives', async (t) => {
    const strip = (xs: Awaited<ReturnType<typeof lab.tgtd.show>>) => xs.map((x) => ({ iqn: x.iqn, names: x.initiatorNames, accounts: x.accounts, luns: dataLuns(x).map((l) => [l.lun, l.path]) }));
    const before = strip(await lab.tgtd.show());
    await lab.daemon.stop();
    for (const x of await lab.tgtd.show()) await lab.tgtd.run({ op: 'delete-target', tid: x.tid, force: true });
    for (const user of await lab.tgtd.accounts()) await lab.tgtd.run({ op: 'delete-account', user });
    t.same([(await lab.tgtd.show()).length, (await lab.tgtd.accounts()).length], [0, 0], 'tgtd emptied by hand while the daemon is down');
    const rx = await NotifyReceiver.start(path.join(lab.dir, 'notify.sock'));
    t.teardown(() => rx.close());
    // A tgtadm that takes 200 ms a call: the start's reconcile (a dozen calls) then outlasts the
    // listeners' start, so a READY=1 sent before it finished would find tgtd still empty.
    const slow = path.join(lab.dir, 'slow-tgtadm');
    await writeFile(slow, '#!/bin/sh\nsleep 0.2\nexec /usr/sbin/tgtadm "$@"\n', { mode: 0o755 });
    const started = lab.start({ NOTIFY_SOCKET: rx.address }, { tgtadm: slow });
    await rx.waitFor('READY=1', 30_000);
    // Looked at the moment READY=1 arrives, before anything else can run a reconcile.
    t.same(strip(await lab.tgtd.show()), before, 'at READY=1 every target, LUN, ACL and account is already back');
    await started;
  });

  await t.test('deprovision: target, account and disk gone; the image can go once unused', async (t) => {
    const d = await lab.api('DELETE', `/api/v1/disks/${B}`);
    t.equal(d.status, 204, d.body);
    t.same((await lab.tgtd.show()).map((x) => x.iqn), [ra.targetIqn]);
    t.same(await lab.tgtd.accounts(), [ra.chap.user]);
    await t.rejects(access(path.join(lab.dataDir, 'volumes', 'disks', `${rb.diskId}.raw`)), 'B\'s disk file is gone');
    t.equal((await lab.api('DELETE', `/api/v1/disks/${A}`)).status, 204);
    t.equal((await lab.api('DELETE', '/api/v1/images/golden')).status, 204, 'unused image removed');
    t.equal((await lab.tgtd.show()).length, 0);
  });
});
