/**
 * Group commit: many small durable writes share one synced write.
 *
 * A synced LevelDB write costs an fsync (milliseconds); a DHCP storm issues
 * hundreds of lease writes per second. Paying one fsync per lease would cap
 * throughput at the disk's fsync rate, so submissions that arrive while a
 * write is in flight are queued and written together in the next one. At
 * most one write is in flight, so batches hit the disk in submission order.
 *
 * No I/O of its own: the caller supplies `write` (which must be durable,
 * e.g. a `sync: true` batch) so this is testable without a database.
 */

/** Thrown (as a rejection) by submit() once close() has been called. */
export class StoreClosedError extends Error {
  constructor() {
    super('store is closed');
    this.name = 'StoreClosedError';
  }
}

export interface GroupCommitOptions {
  /**
   * Soft cap on ops per write. A single submission is never split (so it
   * stays atomic), so a batch can exceed this when one submission does.
   */
  readonly maxBatch?: number;
}

export interface GroupCommitStats {
  /** Writes started. */
  readonly batches: number;
  /** Ops handed to writes. */
  readonly ops: number;
  /** Writes that rejected. */
  readonly failedBatches: number;
  /** Largest batch written, in ops. */
  readonly maxBatchSeen: number;
  /** Ops waiting for the next write. */
  readonly queued: number;
}

interface Pending<Op> {
  readonly ops: readonly Op[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class GroupCommitter<Op> {
  private readonly maxBatch: number;
  private pending: Pending<Op>[] = [];
  private queuedOps = 0;
  private writing = false;
  private scheduled = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private drainWaiters: (() => void)[] = [];
  private counters = { batches: 0, ops: 0, failedBatches: 0, maxBatchSeen: 0 };

  constructor(private readonly write: (ops: Op[]) => Promise<void>, opts: GroupCommitOptions = {}) {
    const maxBatch = opts.maxBatch ?? 4096;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
    this.maxBatch = maxBatch;
  }

  /** Resolves once the write holding these ops has resolved; rejects with that write's error. */
  submit(ops: readonly Op[] | Op): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    // Op may itself be an array type only in theory; lease ops are objects.
    const list = Array.isArray(ops) ? (ops as readonly Op[]).slice() : [ops as Op];
    if (list.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ ops: list, resolve, reject });
      this.queuedOps += list.length;
      this.schedule();
    });
  }

  /** Stops accepting submissions and resolves when everything already submitted has been written (or failed). */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= new Promise<void>((resolve) => {
      if (this.isIdle()) resolve();
      else this.drainWaiters.push(resolve);
    });
    return this.closing;
  }

  get stats(): GroupCommitStats {
    return { ...this.counters, queued: this.queuedOps };
  }

  private isIdle(): boolean {
    return !this.writing && !this.scheduled && this.pending.length === 0;
  }

  /**
   * Start a write on the next setImmediate turn rather than synchronously:
   * everything submitted in the current event-loop turn (including I/O
   * callbacks of the same poll phase) joins the same batch.
   */
  private schedule(): void {
    if (this.writing || this.scheduled || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.takeBatch();
    const ops = batch.flatMap((p) => p.ops);
    this.writing = true;
    this.counters.batches++;
    this.counters.ops += ops.length;
    this.counters.maxBatchSeen = Math.max(this.counters.maxBatchSeen, ops.length);
    let failure: { err: unknown } | undefined;
    try {
      await this.write(ops); // a synchronous throw lands here too
    } catch (err) {
      failure = { err };
      this.counters.failedBatches++;
    }
    this.writing = false;
    for (const p of batch) {
      if (failure) p.reject(failure.err);
      else p.resolve();
    }
    this.schedule();
    if (this.isIdle()) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Whole submissions in arrival order, up to maxBatch ops (at least one submission). */
  private takeBatch(): Pending<Op>[] {
    let n = 0;
    let i = 0;
    while (i < this.pending.length) {
      const size = this.pending[i]!.ops.length;
      if (i > 0 && n + size > this.maxBatch) break;
      n += size;
      i++;
    }
    this.queuedOps -= n;
    return this.pending.splice(0, i);
  }
}
