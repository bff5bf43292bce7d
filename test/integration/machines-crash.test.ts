/**
 * Issue 13 ("Also:"): a kill -9 in the middle of a machine provision. The real daemon (file
 * storage, a tgtd it manages) runs in a test namespace with ipmi_sim as the machine's BMC on the
 * namespace's loopback; METALBOOT_TEST_CRASH_AT=machine-provision:<step> makes it SIGKILL itself as
 * the provision enters that step. After the restart the operation must still be listed, failed at
 * that step; the machine must not claim `ready` when the boot device and power never ran (it is
 * `error`, naming the step, its disk kept); and provisioning again must finish it with no manual
 * clean-up. A machine without a BMC, interrupted after its disk, has nothing left but a store write:
 * that is finished at restart (`ready`, the operation succeeded with a note).
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tgtdUnavailable } from '../helpers/tgtd.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { ipmiSimUnavailable, startIpmiSim, type Sim } from '../helpers/ipmi-sim.js';
import { buildDiskLab, type DiskLab } from '../helpers/disks.js';

const skip = netnsUnavailable() || tgtdUnavailable() || ipmiSimUnavailable();
const M = '52:54:00:cd:00:01';
const NOBMC = '52:54:00:cd:00:02';

interface Op { id: string; kind: string; status: string; step: string; steps: { step: string }[]; error?: string; result?: { note?: string } }

async function provisionOps(lab: DiskLab, mac: string): Promise<Op[]> {
  return ((await lab.api('GET', `/api/v1/operations?mac=${mac}`)).json().operations as Op[]).filter((o) => o.kind === 'provision');
}

/** Starts the daemon armed at `point`, starts a provision, waits (≤30 s) for the SIGKILL, restarts it. Returns the operation id seen before the kill, if the 202 came back. */
async function crashDuringProvision(t: Test, lab: DiskLab, mac: string, point: string): Promise<string | undefined> {
  await lab.daemon.stop();
  await lab.start({ METALBOOT_TEST_CRASH_AT: point });
  const died = lab.daemon.exited;
  const r = await lab.api('POST', `/api/v1/machines/${mac}/provision`, { image: 'golden' }).catch(() => undefined);
  const id = r?.status === 202 ? (r.json().operation.id as string) : undefined;
  const gone = await Promise.race([died, new Promise<null>((res) => setTimeout(() => res(null), 30_000))]);
  t.match(gone, { signal: 'SIGKILL' }, `${point}: the daemon died there`);
  await lab.start();
  return id;
}

async function waitOp(lab: DiskLab, id: string): Promise<Op> {
  let op: Op = { id, kind: 'provision', status: 'running', step: '', steps: [] };
  for (let i = 0; i < 150 && op.status === 'running'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    op = (await lab.api('GET', `/api/v1/operations/${id}`)).json();
  }
  return op;
}

function resetSim(sim: Sim): void {
  writeFileSync(path.join(sim.dir, 'power'), '0\n');
  writeFileSync(path.join(sim.dir, 'boot'), 'none\n');
}

t.test('kill -9 at each provision step: the operation stays listed as failed at that step, the machine is not falsely ready, a new provision finishes it', { skip, timeout: 900_000 }, async (t) => {
  const lab = await buildDiskLab(t, 'mcr');
  const sim = await startIpmiSim(t, { netns: lab.ns });
  await lab.start();
  const imgFile = path.join(lab.dir, 'golden.raw');
  await writeFile(imgFile, randomBytes(4 << 20));
  t.equal((await lab.upload('/api/v1/images/golden', imgFile)).status, 201, 'image uploaded');
  const enrol = await lab.api('PUT', `/api/v1/machines/${M}`, { name: 'crashy', firmware: 'bios', power: { driver: 'ipmi', host: '127.0.0.1', port: sim.port, user: sim.user, password: sim.password } });
  t.equal(enrol.status, 201, enrol.body);
  t.equal((await lab.api('PUT', `/api/v1/machines/${NOBMC}`, { name: 'nobmc', firmware: 'bios' })).status, 201);

  for (const step of ['disk', 'boot-mode', 'bootdev', 'power']) {
    await t.test(`killed as the provision enters "${step}"`, async (t) => {
      resetSim(sim);
      const seenId = await crashDuringProvision(t, lab, M, `machine-provision:${step}`);
      const ops = await provisionOps(lab, M);
      const op = seenId ? ops.find((o) => o.id === seenId) : ops[0];
      t.ok(op, `the interrupted provision is still listed (${ops.length} provision operations)`);
      t.match(op, { status: 'failed', step, error: `interrupted by a daemon restart at step ${step}` }, 'failed, naming the step it stopped at');
      t.same(op?.steps.map((s) => s.step).slice(-1), [step], 'its steps end at the interrupted one');
      t.equal((await lab.api('GET', `/api/v1/operations?mac=${M}&status=running`)).json().operations.length, 0, 'nothing left running');

      const m = (await lab.api('GET', `/api/v1/machines/${M}`)).json();
      t.equal(m.state, 'error', 'the machine is not ready: its boot device and power were never confirmed');
      t.match(m.stateReason, `at step ${step}`, 'its state names the interrupted step');
      const disk = await lab.api('GET', `/api/v1/disks/${M}`);
      // disk: the crash came before the disk service started, so there is none; later steps keep it.
      t.equal(disk.status, step === 'disk' ? 404 : 200, step === 'disk' ? 'no disk was made' : 'the finished disk is kept');
      t.equal(sim.power(), 0, 'the BMC was never told to power on');
      if (step === 'disk' || step === 'boot-mode' || step === 'bootdev') t.equal(sim.bootDevice(), 'none', 'nor to boot from PXE');

      // Retriable without clean-up: the disk step is skipped when the disk exists, BMC steps run.
      const again = await lab.api('POST', `/api/v1/machines/${M}/provision`, { image: 'golden' });
      t.equal(again.status, 202, 'provision accepted again');
      const done = await waitOp(lab, again.json().operation.id as string);
      t.equal(done.status, 'succeeded', `provision again: ${done.error ?? ''}`);
      t.same(done.steps.map((s) => s.step), step === 'disk' ? ['queued', 'disk', 'boot-mode', 'bootdev', 'power'] : ['queued', 'boot-mode', 'bootdev', 'power'], 'steps of the retry');
      t.equal((await lab.api('GET', `/api/v1/machines/${M}`)).json().state, 'ready', 'ready after the retry');
      t.equal(sim.bootDevice(), 'pxe', 'the BMC boots from PXE');
      t.equal(sim.power(), 1, 'and is powered on');
      t.equal((await lab.api('POST', `/api/v1/machines/${M}/deprovision`)).status, 200, 'deprovision for the next round');
    });
  }

  await t.test('a machine without a BMC killed after its disk: finished at restart', async (t) => {
    const seenId = await crashDuringProvision(t, lab, NOBMC, 'machine-provision:boot-mode');
    const ops = await provisionOps(lab, NOBMC);
    const op = seenId ? ops.find((o) => o.id === seenId) : ops[0];
    t.match(op, { status: 'succeeded', step: 'done', result: { note: 'interrupted at step boot-mode; finished at restart' } }, 'listed, succeeded, saying it was finished at restart');
    const m = (await lab.api('GET', `/api/v1/machines/${NOBMC}`)).json();
    t.match(m, { state: 'ready', image: 'golden', bootMode: 'sanboot' }, 'ready with its image and boot mode written');
    t.equal((await lab.api('GET', `/api/v1/disks/${NOBMC}`)).status, 200, 'its disk exists');
  });
});
