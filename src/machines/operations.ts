/**
 * Long-running actions (provision, import) as operations: an id to poll, the current step, and
 * the result. Kept in memory (the last `keep`) and each finished one written to the store, so
 * `GET /api/v1/operations` still answers after a restart. Steps are published on the bus.
 */
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

  constructor(private readonly store: RecordStore, private readonly bus: EventBus, private readonly clock: () => number, private readonly keep = 1000) {}

  async load(): Promise<void> {
    for (const { value } of await this.store.loadRecords('operations')) {
      const v = value as unknown as Operation;
      if (typeof v.id === 'string' && typeof v.kind === 'string') {
        // A running operation in the store means the daemon stopped under it.
        this.ops.set(v.id, v.status === 'running' ? { ...v, status: 'failed', error: 'interrupted by a daemon restart' } : v);
      }
    }
  }

  list(filter: { mac?: Mac; status?: OperationStatus } = {}): Operation[] {
    return [...this.ops.values()].filter((o) => (!filter.mac || o.mac === filter.mac) && (!filter.status || o.status === filter.status))
      .sort((a, b) => b.startedAt - a.startedAt);
  }

  get(id: string): Operation | undefined {
    return this.ops.get(id);
  }

  /** Starts `run` in the background and returns the operation at once (HTTP 202). */
  start(kind: string, mac: Mac | undefined, run: (step: (name: string) => void) => Promise<unknown>): Operation {
    const id = `${kind}-${this.clock().toString(36)}-${randomBytes(3).toString('hex')}`;
    const now = this.clock();
    let op: Operation = { id, kind, ...(mac ? { mac } : {}), status: 'running', step: 'queued', steps: [{ step: 'queued', at: now }], startedAt: now };
    this.put(op);
    const step = (name: string) => {
      op = { ...op, step: name, steps: [...op.steps, { step: name, at: this.clock() }] };
      this.put(op);
      this.bus.publish({ type: 'operation', id, kind, ...(mac ? { mac } : {}), status: 'running', step: name });
    };
    void (async () => {
      try {
        const result = await run(step);
        op = { ...op, status: 'succeeded', step: 'done', finishedAt: this.clock(), ...(result !== undefined ? { result } : {}) };
      } catch (e) {
        op = { ...op, status: 'failed', finishedAt: this.clock(), error: e instanceof Error ? e.message : String(e) };
      }
      this.put(op);
      this.bus.publish({ type: 'operation', id, kind, ...(mac ? { mac } : {}), status: op.status, step: op.step, ...(op.error ? { error: op.error } : {}) });
      await this.store.writeRecords([{ type: 'put', kind: 'operations', key: id, value: op }]).catch(() => undefined);
    })();
    return op;
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
