/**
 * Deploy: the agent streams an image onto one of the machine's local disks (resuming a cut
 * download with Range, skipping zero ranges only after discarding the disk), flushes, reads it
 * back and checks the sha256 the image store recorded (src/agent/agent.sh). Then the machine
 * boots that disk: with a BMC, boot device disk (persistent) and power on (the agent powered
 * off); without one, the agent reboots it and its PXE boot gets a script that exits to the local
 * disk (boot/policy.ts: `deployed`). An image larger than the chosen disk is refused before
 * power-on when the inventory is known, and by the agent otherwise.
 */
import type { Mac } from '../net/mac.js';
import type { ImageInfo } from '../storage/backend.js';
import { chooseDisk } from '../agent/inventory.js';
import type { Operation } from './operations.js';
import { startAgentOperation, type AgentOperationDeps } from './agent-operation.js';
import type { Inventories } from './inventory.js';
import { MachineError } from './record.js';

export interface DeployDeps extends AgentOperationDeps {
  readonly inventories: Inventories;
  readonly images: { get(id: string): Promise<ImageInfo | undefined>; source(id: string): Promise<string | undefined> };
}

export interface DeploySpec {
  readonly image: string;
  /** A disk name or serial; absent: the smallest disk that holds the image. */
  readonly disk?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function deploy(d: DeployDeps, mac: Mac, spec: DeploySpec, actor: string): Promise<Operation> {
  const m = d.records.require(mac);
  const img = await d.images.get(spec.image);
  if (!img || (await d.images.source(spec.image)) === undefined) throw new MachineError(mac, 'not-found', `image ${spec.image}: does not exist or cannot be read for a deploy (deploy not started)`);
  const inv = d.inventories.get(mac);
  if (inv) {
    const disk = chooseDisk(inv, spec.disk, img.sizeBytes);
    const disks = inv.disks.map((x) => `${x.name} ${x.sizeBytes} bytes`).join(', ') || 'none';
    if (!disk) throw new MachineError(mac, 'invalid', spec.disk ? `disk ${spec.disk}: not among its disks (${disks})` : `image ${img.id} (${img.sizeBytes} bytes) fits none of its disks (${disks})`);
    if (disk.sizeBytes < img.sizeBytes) throw new MachineError(mac, 'invalid', `image ${img.id} (${img.sizeBytes} bytes) does not fit disk ${disk.name} (${disk.sizeBytes} bytes)`);
  }
  const powered = m.power !== undefined;
  return startAgentOperation(d, mac, {
    kind: 'deploy', busy: 'deploying', end: () => 'deployed', powerOn: true,
    task: { kind: 'deploy', then: powered ? 'poweroff' : 'reboot', image: { id: img.id, sizeBytes: img.sizeBytes, sha256: img.sha256 }, ...(spec.disk ? { disk: spec.disk } : {}) },
    afterAgent: async (step) => {
      if (!powered) return;
      step('bootdev-disk');
      await d.power.bootdev(mac, { device: 'disk', persistent: true, efi: d.records.get(mac)?.firmware === 'uefi' }, actor);
      step('power-on-disk');
      // The agent powers off once it has its answer: wait for that (bounded), then power on.
      for (let i = 0; i < 60 && (await d.power.powerState(mac)) === 'on'; i++) await sleep(1000);
      await d.power.power(mac, (await d.power.powerState(mac)) === 'on' ? 'cycle' : 'on', actor);
    },
    result: (r) => ({ image: img.id, ...(typeof r === 'object' && r ? r : {}) }),
  }, actor);
}
