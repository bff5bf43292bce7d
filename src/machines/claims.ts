/**
 * Which machines an operation holds: marked synchronously when the operation is accepted (its
 * state, e.g. `provisioning`, is stored a moment later), so nothing else may take the disk
 * meanwhile. The verbs that would pull the disk from under it ask `refuse` first.
 */
import type { Mac } from '../net/mac.js';
import type { Machine, MachineState } from './model.js';
import type { Operations } from './operations.js';
import { MachineError } from './record.js';

export class MachineClaims {
  private readonly held = new Map<Mac, { readonly kind: string; readonly state: MachineState }>();
  /** The stored states that mean an operation of that kind holds the machine (after a restart too). */
  private readonly states = new Map<MachineState, string>();

  constructor(private readonly operations: Operations) {}

  /** Operation `kind` runs with the machine in `state`: register once per kind. */
  kind(kind: string, state: MachineState): void {
    this.states.set(state, kind);
  }

  claim(mac: Mac, kind: string, state: MachineState): void {
    this.held.set(mac, { kind, state });
  }

  release(mac: Mac): void {
    this.held.delete(mac);
  }

  /** A running operation owns the machine until it ends: 409 naming the state and the operation. */
  refuse(m: Machine, action: string): void {
    const h = this.held.get(m.mac) ?? (this.states.has(m.state) ? { kind: this.states.get(m.state)!, state: m.state } : undefined);
    if (!h) return;
    const op = this.operations.list({ mac: m.mac, status: 'running' }).find((o) => o.kind === h.kind);
    throw new MachineError(m.mac, 'conflict', `cannot ${action} while ${h.state}${op ? ` (operation ${op.id} is running)` : ''}`);
  }
}
