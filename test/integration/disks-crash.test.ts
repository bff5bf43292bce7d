/**
 * Crash safety of disk operations: the daemon SIGKILLs itself right after each step of
 * provision, reset, restore and deprovision (METALBOOT_TEST_CRASH_AT, a test hook), is started
 * again, and then nothing is orphaned: every disk file belongs to a record, tgtd's targets and
 * accounts are exactly the records', and the machine is either fully provisioned (disk,
 * target, account, readable) or cleanly not.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseMac } from '../../src/net/mac.js';
import { dataLuns } from '../../src/iscsi/tgtadm.js';
import { tgtdUnavailable } from '../helpers/tgtd.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { buildDiskLab, qemuIscsiOpts, sha256, type DiskLab } from '../helpers/disks.js';

const skip = netnsUnavailable() || tgtdUnavailable();
const M = parseMac('52:54:00:cc:00:01');
const KEEP = parseMac('52:54:00:cc:00:02');

/** Checks the invariants after a restart; returns whether M is provisioned. */
async function consistent(t: Test, lab: DiskLab, image: Buffer): Promise<boolean> {
  const disks = (await lab.api('GET', '/api/v1/disks')).json().disks as { mac: string; diskId: string; targetIqn: string; chapUser: string; exported: boolean }[];
  const files = (await readdir(path.join(lab.dataDir, 'volumes', 'disks'))).filter((f) => f.endsWith('.raw')).map((f) => f.slice(0, -4)).sort();
  t.same(files, disks.map((d) => d.diskId).sort(), 'disk files are exactly the records\' disks');
  const leftovers = (await readdir(path.join(lab.dataDir, 'volumes', 'disks'))).filter((f) => !f.endsWith('.raw') && !f.endsWith('.json'));
  t.same(leftovers, [], 'no temporary files left');
  // The reconciler runs at start; give the periodic check one round in case a session was in the way.
  let shown = await lab.tgtd.show();
  for (let i = 0; i < 20 && shown.length !== disks.length; i++) { await new Promise((r) => setTimeout(r, 250)); shown = await lab.tgtd.show(); }
  t.same(shown.map((x) => x.iqn).sort(), disks.map((d) => d.targetIqn).sort(), 'tgtd targets are exactly the records\'');
  t.same((await lab.tgtd.accounts()).sort(), disks.map((d) => d.chapUser).sort(), 'tgtd accounts are exactly the records\'');
  for (const x of shown) t.equal(dataLuns(x).length, 1, `${x.iqn}: LUN 1`);
  const m = disks.find((d) => d.mac === M);
  if (!m) return false;
  await lab.daemon.stop();
  const rec = (await lab.records()).find((r) => r.mac === M)!;
  await lab.start();
  const out = path.join(lab.dir, `read-${Date.now()}.raw`);
  await lab.exec(['qemu-img', 'convert', ...(await qemuIscsiOpts(lab.dir, rec)), '-O', 'raw', out], 60_000);
  t.ok(true, 'the provisioned machine logs in with its own IQN and CHAP');
  return true;
}

t.test('kill -9 after every step of every disk operation leaves nothing orphaned', { skip, timeout: 900_000 }, async (t) => {
  const lab = await buildDiskLab(t, 'crash');
  await lab.start();
  const image = randomBytes(4 << 20);
  const imgFile = path.join(lab.dir, 'golden.raw');
  await writeFile(imgFile, image);
  t.equal((await lab.upload('/api/v1/images/golden', imgFile)).status, 201);
  // A bystander machine that must come through every crash untouched.
  t.equal((await lab.api('PUT', `/api/v1/disks/${KEEP}`, { image: 'golden' })).status, 201);

  const crashAt = async (point: string, action: () => Promise<unknown>): Promise<void> => {
    await lab.daemon.stop();
    await lab.start({ METALBOOT_TEST_CRASH_AT: point });
    const died = lab.daemon.exited;
    await action().catch(() => undefined); // the connection drops when the daemon dies
    const r = await Promise.race([died, new Promise<null>((res) => setTimeout(() => res(null), 30_000))]);
    t.match(r, { signal: 'SIGKILL' }, `${point}: the daemon died there`);
    await lab.start();
  };

  for (const step of ['journaled', 'cloned', 'committed', 'exported']) {
    await t.test(`provision, killed after "${step}"`, async (t) => {
      await crashAt(`provision:${step}`, () => lab.api('PUT', `/api/v1/disks/${M}`, { image: 'golden' }));
      const provisioned = await consistent(t, lab, image);
      // Before the record is written the provision is rolled back; from then on it stands.
      t.equal(provisioned, step === 'committed' || step === 'exported', provisioned ? 'ends provisioned' : 'ends cleanly not provisioned');
      t.equal(lab.daemon.events('disks.recovered').length, step === 'journaled' || step === 'cloned' ? 1 : 0, 'journal entry handled at start');
      if (provisioned) t.equal((await lab.api('DELETE', `/api/v1/disks/${M}`)).status, 204);
    });
  }

  t.equal((await lab.api('PUT', `/api/v1/disks/${M}`, { image: 'golden' })).status, 201);
  t.equal((await lab.api('POST', `/api/v1/disks/${M}/checkpoints`, { name: 'c1' })).status, 201);
  for (const [op, steps, call] of [
    ['reset', ['journaled', 'replaced'], () => lab.api('POST', `/api/v1/disks/${M}/reset`)],
    ['restore', ['journaled', 'replaced'], () => lab.api('POST', `/api/v1/disks/${M}/restore`, { checkpoint: 'c1' })],
  ] as const) {
    for (const step of steps) {
      await t.test(`${op}, killed after "${step}"`, async (t) => {
        await crashAt(`${op}:${step}`, call);
        t.ok(await consistent(t, lab, image), 'the machine keeps a disk and its target');
        const again = await call();
        t.equal(again.status, 200, `${op} works after the restart`);
      });
    }
  }

  for (const step of ['journaled', 'detached', 'removed']) {
    await t.test(`deprovision, killed after "${step}"`, async (t) => {
      if (!(await lab.api('GET', `/api/v1/disks/${M}`)).json().mac) t.equal((await lab.api('PUT', `/api/v1/disks/${M}`, { image: 'golden' })).status, 201);
      await crashAt(`deprovision:${step}`, () => lab.api('DELETE', `/api/v1/disks/${M}`));
      t.equal(await consistent(t, lab, image), false, 'an interrupted deprovision is completed at start');
    });
  }

  const keep = (await lab.api('GET', `/api/v1/disks/${KEEP}`)).json();
  t.equal(keep.exported, true, 'the bystander machine was never disturbed');
});
