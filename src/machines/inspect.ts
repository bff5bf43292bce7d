/**
 * Inspect: the machine boots the agent ramdisk, which posts its inventory (kept per machine,
 * machines/inventory.ts) and powers the machine off. The machine ends in the state it started
 * in (`discovered` stays discovered, with its inventory). Also the auto-enrolment of
 * `machines.unknown: inspect`: a never-seen PXE client asking for its script is recorded as
 * discovered and inspected on that very boot (no BMC needed: it is booting already).
 */
import type { Mac } from '../net/mac.js';
import type { Inventory } from '../agent/inventory.js';
import type { Operation } from './operations.js';
import { startAgentOperation, type AgentOperationDeps } from './agent-operation.js';
import type { Inventories } from './inventory.js';

export interface InspectDeps extends AgentOperationDeps {
  readonly inventories: Inventories;
}

export interface InspectResult {
  readonly firmware: Inventory['firmware'];
  readonly cpus: number;
  readonly memoryBytes: number;
  readonly disks: number;
  readonly nics: number;
}

export function inspect(d: InspectDeps, mac: Mac, actor: string, o: { readonly powerOn?: boolean } = {}): Operation {
  let inv: Inventory | undefined;
  return startAgentOperation<InspectResult>(d, mac, {
    kind: 'inspect', task: { kind: 'inspect', then: 'poweroff' }, busy: 'inspecting', end: (from) => from,
    powerOn: o.powerOn ?? true,
    onInventory: async (i) => { inv = i; await d.inventories.put(mac, i); },
    result: () => {
      if (!inv) throw new Error('the agent finished without an inventory');
      return { firmware: inv.firmware, cpus: inv.cpu.threads, memoryBytes: inv.memoryBytes, disks: inv.disks.length, nics: inv.nics.length };
    },
  }, actor);
}
