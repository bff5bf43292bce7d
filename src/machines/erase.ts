/**
 * Erase (cleaning, as Ironic calls it): the agent discards or zeroes the machine's disks (all, or
 * those named) and reports what each got; the machine ends `enrolled`, nothing of ours on it.
 */
import type { Mac } from '../net/mac.js';
import type { Operation } from './operations.js';
import { startAgentOperation, type AgentOperationDeps } from './agent-operation.js';

export interface EraseSpec {
  readonly disks?: 'all' | readonly string[];
  readonly method: 'discard' | 'zero';
}

export function erase(d: AgentOperationDeps, mac: Mac, spec: EraseSpec, actor: string): Operation {
  return startAgentOperation(d, mac, {
    kind: 'erase', busy: 'erasing', end: () => 'enrolled', powerOn: true,
    task: { kind: 'erase', then: 'poweroff', disks: spec.disks ?? 'all', method: spec.method },
    result: (r) => r,
  }, actor);
}
