/**
 * What a machine boots, from what metalboot knows about it. Pure: the HTTP route gathers the
 * machine, its disk and who is asking, and renders the script this returns.
 */
import type { Machine } from '../machines/model.js';
import type { DiskRecord } from '../disks/record.js';

/** For MACs metalboot has no machine for (config `machines.unknown`). */
export type UnknownPolicy = 'ignore' | 'menu' | 'local' | 'inspect';

export type BootAction =
  | { readonly kind: 'sanboot'; readonly machine: Machine; readonly disk: DiskRecord }
  | { readonly kind: 'wait'; readonly machine: Machine }
  | { readonly kind: 'local'; readonly firmware: Machine['firmware'] }
  | { readonly kind: 'netboot'; readonly machine: Machine }
  | { readonly kind: 'menu'; readonly machine?: Machine; readonly disk?: DiskRecord }
  /** An agent operation runs on the machine (inspect, deploy, erase): boot the agent ramdisk. */
  | { readonly kind: 'agent' }
  /** `machines.unknown: inspect` and a machine never inspected: start an inspection, then boot the agent. */
  | { readonly kind: 'inspect' }
  | { readonly kind: 'none' };

export function bootActionFor(machine: Machine | undefined, disk: DiskRecord | undefined, unknown: UnknownPolicy, agent: { readonly running: boolean; readonly inventoried: boolean } = { running: false, inventoried: false }): BootAction {
  if (agent.running) return { kind: 'agent' };
  if (!machine || machine.state === 'discovered') {
    if (unknown === 'inspect') return agent.inventoried ? { kind: 'none' } : { kind: 'inspect' };
    if (unknown === 'local') return { kind: 'local', firmware: machine?.firmware ?? 'unknown' };
    if (unknown === 'menu') return machine ? { kind: 'menu', machine } : { kind: 'menu' };
    return { kind: 'none' };
  }
  // Its image is on its own disk: a PXE boot (boot order, or the BMC's override lost) goes there.
  if (machine.state === 'deployed') return { kind: 'local', firmware: machine.firmware };
  switch (machine.bootMode) {
    case 'local': return { kind: 'local', firmware: machine.firmware };
    case 'netboot': return machine.netboot ? { kind: 'netboot', machine } : { kind: 'local', firmware: machine.firmware };
    case 'menu': return disk && (machine.state === 'ready' || machine.state === 'active') ? { kind: 'menu', machine, disk } : { kind: 'menu', machine };
    case 'sanboot':
      if (machine.state === 'provisioning') return { kind: 'wait', machine };
      if (disk && (machine.state === 'ready' || machine.state === 'active')) return { kind: 'sanboot', machine, disk };
      // enrolled, error, maintenance, or no disk: nothing of ours to boot; the local disk, if any.
      return { kind: 'local', firmware: machine.firmware };
  }
}
