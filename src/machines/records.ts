/**
 * The machines and their state history, in memory and in the store: the one place a machine's
 * state changes (checked against model.ts's table, stored with its event in one synced write,
 * published) and the one writer, which undoes its memory change when the store refuses it.
 */
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../log.js';
import { tryParseMac, type Mac } from '../net/mac.js';
import type { RecordStore } from '../store/db.js';
import { MACHINE_STATES, transition, type Machine, type MachineState, type StateEvent } from './model.js';
import { MachineError } from './record.js';

const EVENTS_KEPT = 200;

export interface MachineRecordsOptions {
  readonly store: RecordStore;
  readonly bus: EventBus;
  readonly clock: () => number;
  readonly log: Logger;
}

export class MachineRecords {
  private readonly machines = new Map<Mac, Machine>();
  /** Each machine's state events with their store keys (older ones are trimmed by key). */
  private readonly history = new Map<Mac, { readonly key: string; readonly event: StateEvent }[]>();
  private seq = 0;

  constructor(private readonly o: MachineRecordsOptions) {}

  async load(): Promise<void> {
    for (const { key, value } of await this.o.store.loadRecords('machines')) {
      const mac = tryParseMac(key);
      if (!mac || value['mac'] !== mac || typeof value['state'] !== 'string' || !(MACHINE_STATES as readonly string[]).includes(value['state'] as string)) {
        this.o.log.error({ event: 'machines.corrupt-record', key }, 'machine record skipped');
        continue;
      }
      this.machines.set(mac, value as unknown as Machine);
    }
    for (const { key, value } of await this.o.store.loadRecords('machine-events')) {
      const e = value as unknown as StateEvent;
      if (typeof e.mac !== 'string' || !this.machines.has(e.mac)) continue;
      const list = this.history.get(e.mac) ?? [];
      list.push({ key, event: e });
      this.history.set(e.mac, list);
    }
  }

  get(mac: Mac): Machine | undefined {
    return this.machines.get(mac);
  }

  has(mac: Mac): boolean {
    return this.machines.has(mac);
  }

  require(mac: Mac): Machine {
    const m = this.machines.get(mac);
    if (!m) throw new MachineError(mac, 'not-found', 'not known');
    return m;
  }

  all(): IterableIterator<Machine> {
    return this.machines.values();
  }

  events(mac: Mac): StateEvent[] {
    this.require(mac);
    return (this.history.get(mac) ?? []).map((h) => h.event);
  }

  /**
   * The one place a machine's state changes: checked against model.ts's table, stored with its
   * event (time, actor, from, to, reason) in one synced write, published. The verbs and the
   * network observer call it; a refused change throws TransitionError and stores nothing.
   */
  async setState(mac: Mac, to: MachineState, reason: string, actor: string): Promise<void> {
    const m = this.require(mac);
    if (m.state === to) return;
    transition(m, to, reason);
    const now = this.o.clock();
    const next: Machine = { ...m, state: to, stateReason: reason, updatedAt: now };
    await this.write(next, { mac, at: now, actor, from: m.state, to, reason });
    this.o.log.info({ event: 'machines.state', mac, from: m.state, to, reason, actor }, `${m.state} → ${to}`);
  }

  /**
   * Memory only, for a change that setState stores at once (enrolling a discovered machine: the
   * record and its `enrolled` event go in setState's write).
   */
  stage(m: Machine): void {
    this.machines.set(m.mac, m);
  }

  /**
   * One synced batch: the machine and, when given, its state event (older events trimmed).
   * Memory is updated first, synchronously, so a second change of the same machine made while
   * this one syncs starts from it (updating after the await lost the earlier event from memory:
   * a discovery still syncing when the machine was enrolled vanished from GET .../events).
   */
  async write(m: Machine, ev?: StateEvent): Promise<void> {
    const ops: Parameters<RecordStore['writeRecords']>[0][number][] = [{ type: 'put', kind: 'machines', key: m.mac, value: m }];
    const prevMachine = this.machines.get(m.mac);
    const prevList = this.history.get(m.mac);
    let list = prevList ?? [];
    if (ev) {
      const key = `${m.mac}/${ev.at.toString(36).padStart(9, '0')}-${(this.seq++).toString(36).padStart(4, '0')}`;
      ops.push({ type: 'put', kind: 'machine-events', key, value: ev });
      list = [...list, { key, event: ev }];
      while (list.length > EVENTS_KEPT) {
        ops.push({ type: 'del', kind: 'machine-events', key: list.shift()!.key });
      }
    }
    this.machines.set(m.mac, m);
    this.history.set(m.mac, list);
    try {
      await this.o.store.writeRecords(ops);
    } catch (e) {
      // Not stored: undo, unless a later change already built on this one.
      if (this.machines.get(m.mac) === m) { if (prevMachine) this.machines.set(m.mac, prevMachine); else this.machines.delete(m.mac); }
      if (this.history.get(m.mac) === list) { if (prevList) this.history.set(m.mac, prevList); else this.history.delete(m.mac); }
      throw e;
    }
    if (ev) this.o.bus.publish({ type: 'machine.state', mac: m.mac, from: ev.from ?? 'none', to: ev.to, reason: ev.reason, actor: ev.actor });
  }

  /** The machine and its history, from the store and then from memory. */
  async delete(mac: Mac): Promise<void> {
    const evs = this.history.get(mac) ?? [];
    await this.o.store.writeRecords([
      { type: 'del', kind: 'machines', key: mac },
      ...evs.map((h) => ({ type: 'del' as const, kind: 'machine-events' as const, key: h.key })),
    ]);
    this.machines.delete(mac);
    this.history.delete(mac);
  }
}
