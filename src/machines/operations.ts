/**
 * Long-running actions (provision, image import) as operations: an id to poll, the current step, and
 * the result. Kept in memory (the last `keep`) and written to the store when it starts, at each step
 * and when it ends, so `GET /api/v1/operations` still answers after a restart, and an operation the
 * daemon died under (kill -9, power loss) is listed as failed at the step it had reached instead of
 * vanishing. Steps are published on the bus.
 */
import { errorMessage } from '../errors/message.js';
import { randomBytes } from 'node:crypto';
import type { EventBus } from '../events/bus.js';
import type { Mac } from '../net/mac.js';
import type { RecordStore } from '../store/db.js';

export type OperationStatus = 'running' | 'succeeded' | 'failed';

export interface Operation {
  readonly id: string;
  readonly kind: string;
  readonly mac?: Mac;
  readonly status: OperationStatus;
  readonly step: string;
  readonly steps: readonly { readonly step: string; readonly at: number }[];
  readonly startedAt: number;
  readonly finishedAt?: number;
  readonly error?: string;
  readonly result?: unknown;
}

export class Operations {
  private readonly ops = new Map<string, Operation>();
  /** Operations found `running` in the store at load: the daemon stopped under them. */
  private readonly interrupted_: Operation[] = [];

  constructor(private readonly store: RecordStore, private readonly bus: EventBus, private readonly clock: () => number, private readonly keep = 1000) {}

  async load(): Promise<void> {
    const settled: Operation[] = [];
    for (const { value } of await this.store.loadRecords('operations')) {
      const v = value as unknown as Operation;
      if (typeof v.id !== 'string' || typeof v.kind !== 'string' || typeof v.startedAt !== 'number') continue;
      if (v.status !== 'running') { this.ops.set(v.id, v); continue; }
      // A running operation in the store means the daemon stopped under it: failed, at the step
      // it had reached (the step was stored before it began), and stored so, once.
      const step = typeof v.step === 'string' ? v.step : 'unknown';
      const failed: Operation = { ...v, status: 'failed', finishedAt: this.clock(), error: `interrupted by a daemon restart at step ${step}` };
      this.ops.set(v.id, failed);
      this.interrupted_.push(failed);
      settled.push(failed);
    }
    if (settled.length) await this.store.writeRecords(settled.map((op) => ({ type: 'put' as const, kind: 'operations' as const, key: op.id, value: op })));
  }

  /** The operations of `kind` for `mac` that a restart interrupted (found running at load), newest first. */
  interrupted(kind: string, mac: Mac): Operation[] {
    return this.interrupted_.filter((o) => o.kind === kind && o.mac === mac).sort((a, b) => b.startedAt - a.startedAt);
  }

  /**
   * Rewrites an interrupted operation once its owner has finished it at restart (the disk journal
   * completed a provision that had nothing left but store writes): succeeded, with a note.
   */
  async finishInterrupted(id: string, result: unknown, note: string): Promise<void> {
    const op = this.ops.get(id);
    if (!op || op.status !== 'failed') return;
    const { error: _dropped, ...rest } = op;
    const done: Operation = { ...rest, status: 'succeeded', step: 'done', finishedAt: this.clock(), result: { ...(typeof result === 'object' && result ? result : {}), note } };
    this.ops.set(id, done);
    await this.store.writeRecords([{ type: 'put', kind: 'operations', key: id, value: done }]);
  }

  list(filter: { mac?: Mac; status?: OperationStatus } = {}): Operation[] {
    return [...this.ops.values()].filter((o) => (!filter.mac || o.mac === filter.mac) && (!filter.status || o.status === filter.status))
      .sort((a, b) => b.startedAt - a.startedAt);
  }

  get(id: string): Operation | undefined {
    return this.ops.get(id);
  }

  /**
   * Starts `run` in the background and returns the operation at once (HTTP 202). `step` resolves
   * once the step is stored: a caller that must survive a crash there awaits it.
   */
  start(kind: string, mac: Mac | undefined, run: (step: (name: string) => Promise<void>) => Promise<unknown>): Operation {
    const h = this.begin(kind, mac);
    void run(h.step).then((r) => h.finish(undefined, r), (e: unknown) => h.finish(e));
    return h.current();
  }

  /**
   * Runs `run` as an operation the caller awaits (an upload is done by the request that carries
   * it): listable and pollable by others while it runs; the result or error is kept.
   */
  async track<T>(kind: string, mac: Mac | undefined, run: (step: (name: string) => void) => Promise<T>): Promise<{ op: Operation; result: T }> {
    const h = this.begin(kind, mac);
    try {
      const result = await run(h.step);
      await h.finish(undefined, result);
      return { op: h.current(), result };
    } catch (e) {
      await h.finish(e);
      throw e;
    }
  }

  private begin(kind: string, mac: Mac | undefined): { step: (name: string) => Promise<void>; finish: (err: unknown, result?: unknown) => Promise<void>; current: () => Operation } {
    const id = `${kind}-${this.clock().toString(36)}-${randomBytes(3).toString('hex')}`;
    const now = this.clock();
    let op: Operation = { id, kind, ...(mac ? { mac } : {}), status: 'running', step: 'queued', steps: [{ step: 'queued', at: now }], startedAt: now };
    this.put(op);
    // Stored while running too (batches keep their order in the group commit, so a later step or
    // the final state always lands after this): a restart finds it and says where it stopped.
    const persist = (o: Operation): Promise<void> => this.store.writeRecords([{ type: 'put', kind: 'operations', key: id, value: o }]).catch(() => undefined);
    void persist(op);
    const step = (name: string): Promise<void> => {
      op = { ...op, step: name, steps: [...op.steps, { step: name, at: this.clock() }] };
      this.put(op);
      this.bus.publish({ type: 'operation', id, kind, ...(mac ? { mac } : {}), status: 'running', step: name });
      return persist(op);
    };
    const finish = async (err: unknown, result?: unknown) => {
      op = err === undefined
        ? { ...op, status: 'succeeded', step: 'done', finishedAt: this.clock(), ...(result !== undefined ? { result } : {}) }
        : { ...op, status: 'failed', finishedAt: this.clock(), error: errorMessage(err) };
      this.put(op);
      this.bus.publish({ type: 'operation', id, kind, ...(mac ? { mac } : {}), status: op.status, step: op.step, ...(op.error ? { error: op.error } : {}) });
      await persist(op);
    };
    return { step, finish, current: () => op };
  }

  private put(op: Operation): void {
    this.ops.delete(op.id);
    this.ops.set(op.id, op);
    while (this.ops.size > this.keep) {
      const oldest = this.ops.keys().next().value as string;
      this.ops.delete(oldest);
      void this.store.writeRecords([{ type: 'del', kind: 'operations', key: oldest }]).catch(() => undefined);
    }
  }
}
