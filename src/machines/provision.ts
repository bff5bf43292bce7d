/**
 * The provision operation: disk from the image → target → sanboot → next boot from the network →
 * power. One operation module: it gets the services it needs (Provisioning), runs its steps
 * through machines/operations.ts (each stored before it runs, so a restart can name where it
 * stopped) and holds the machine through MachineClaims; settleInterruptedProvision finishes or
 * fails what a restart cut short. Other operations (inspect, deploy, …) are modules like this one.
 */
import type { DiskService } from '../disks/service.js';
import { errorMessage } from '../errors/message.js';
import type { Logger } from '../log.js';
import type { Mac } from '../net/mac.js';
import { checkId } from '../storage/backend.js';
import type { MachineClaims } from './claims.js';
import { transition, type Machine } from './model.js';
import type { Operation, Operations } from './operations.js';
import type { MachinePower } from './power.js';
import { MachineError } from './record.js';
import type { MachineRecords } from './records.js';

export const PROVISION = 'provision';

export interface Provisioning {
  readonly records: MachineRecords;
  readonly power: MachinePower;
  readonly operations: Operations;
  readonly claims: MachineClaims;
  readonly clock: () => number;
  readonly log: Logger;
  /**
   * Test hook (METALBOOT_TEST_CRASH_AT, wired in daemon.ts): called with `machine-provision:<step>`
   * once that step of a provision is stored and before it runs. A no-op otherwise.
   */
  readonly crashPoint?: (step: string) => void;
}

/** 202-style: checks what can be checked now, returns the operation; the steps run in the background. */
export function startProvision(p: Provisioning, disks: DiskService, mac: Mac, image: string | undefined, actor: string): Operation {
  const { records } = p;
  const m = records.require(mac);
  const img = image ?? m.image;
  if (!img) throw new MachineError(mac, 'invalid', 'no image given and none set on the machine');
  const bad = checkId(img);
  if (!bad.ok) throw new MachineError(mac, 'invalid', `image ${JSON.stringify(img.slice(0, 60))}: ${bad.reason}`);
  p.claims.refuse(m, 'provision');
  transition(m, 'provisioning', 'provision'); // throws TransitionError (409) before anything starts
  const had = disks.get(mac);
  if (had && had.imageId !== img) throw new MachineError(mac, 'conflict', `has a disk from image ${had.imageId}; deprovision it first`);
  p.claims.claim(mac, PROVISION, 'provisioning');
  return p.operations.start(PROVISION, mac, async (stored) => {
    const step = async (name: string): Promise<void> => {
      await stored(name);
      p.crashPoint?.(`machine-provision:${name}`);
    };
    try {
      await records.setState(mac, 'provisioning', `provision ${img}`, actor);
    } catch (e) {
      p.claims.release(mac);
      throw e;
    }
    try {
      if (!disks.get(mac)) {
        await step('disk');
        await disks.provision(mac, { imageId: img });
      }
      await step('boot-mode');
      const cur = records.require(mac);
      if (cur.image !== img || cur.bootMode !== 'sanboot') await records.write({ ...cur, image: img, bootMode: 'sanboot', updatedAt: p.clock() });
      if (cur.power) {
        const withPower = { ...cur, power: cur.power };
        await step('bootdev');
        await p.power.nextBootNetwork(withPower);
        await step('power');
        await p.power.startFresh(withPower);
      }
      await records.setState(mac, 'ready', 'disk and target ready', actor);
      return { image: img, targetIqn: disks.get(mac)?.targetIqn };
    } catch (e) {
      await records.setState(mac, 'error', errorMessage(e), actor).catch(() => undefined);
      throw e;
    } finally {
      p.claims.release(mac);
    }
  });
}

/**
 * A machine caught in `provisioning` by a restart: its operation died with the daemon. The disk
 * journal (disks/service.ts recover(), run before this) has already finished or rolled back the
 * disk step, so the disk is consistent; what the operation's stored step says decides the rest:
 * - no disk: `error` (the disk was rolled back; provision again);
 * - a disk and no BMC: only the boot-mode store write was left, so it is done here, the machine
 *   is `ready` and the operation is rewritten as succeeded (finished at restart);
 * - a disk and a BMC: the boot device and power may not have been set, and a power cycle must not
 *   happen behind the admin's back after a restart, so `error` naming the step. The disk is kept:
 *   provisioning again (allowed from `error`) skips the disk step and runs bootdev and power.
 */
export async function settleInterruptedProvision(p: Provisioning, disks: DiskService | undefined, m: Machine): Promise<void> {
  const { records } = p;
  const op = p.operations.interrupted(PROVISION, m.mac)[0];
  const step = op?.step ?? 'unknown';
  const disk = disks?.get(m.mac);
  if (disk && !m.power) {
    await records.write({ ...m, image: disk.imageId, bootMode: 'sanboot', updatedAt: p.clock() });
    await records.setState(m.mac, 'ready', `provision finished at restart (interrupted at step ${step}; disk completed by the disk journal, no BMC steps)`, 'metalboot');
    if (op) await p.operations.finishInterrupted(op.id, { image: disk.imageId, targetIqn: disk.targetIqn }, `interrupted at step ${step}; finished at restart`);
  } else {
    const why = disk
      ? `provision interrupted by a restart at step ${step}; the disk is kept, boot device and power were not confirmed: provision again to finish`
      : `provision interrupted by a restart at step ${step}; the disk was rolled back: provision again`;
    await records.setState(m.mac, 'error', why, 'metalboot');
  }
  p.log.warn({ event: 'machines.provision-interrupted', mac: m.mac, step, ...(op ? { operation: op.id } : {}), state: records.get(m.mac)?.state }, 'provision interrupted by a restart settled');
}
