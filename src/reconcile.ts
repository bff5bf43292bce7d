/**
 * Makes tgtd match the store: every provisioned disk exported as its own target (LUN 1), bound to
 * the machine's initiator name and CHAP account, nothing else of ours left. Runs at start, before
 * each provisioning step, and periodically, so a restarted or tampered tgtd is repaired within one
 * check interval. Targets that are not ours (another IQN prefix) are never touched.
 */
import { errorMessage } from './errors/message.js';
import type { Logger } from './log.js';
import { ApplyPlanError, applyPlan, diffTargets, type DesiredAccount, type DesiredTarget, type PlanOp } from './iscsi/plan.js';
import type { TgtSession, TgtTarget } from './iscsi/tgtadm.js';
import { TgtadmError, TgtdStartError, type Tgtd } from './iscsi/tgtd.js';

export interface DesiredIscsi {
  readonly targets: readonly DesiredTarget[];
  readonly accounts: readonly DesiredAccount[];
}

export interface ReconcileResult {
  /** tgtadm operations run. */
  readonly ran: number;
  /** Changes that could not be made because a session is open. */
  readonly blocked: readonly Extract<PlanOp, { type: 'blocked' }>[];
  readonly started: boolean;
}

export interface ReconcilerOptions {
  readonly tgtd: Tgtd;
  readonly manageTgtd: boolean;
  /** Our targets: `<prefix>:...`. */
  readonly iqnPrefix: string;
  /** Our CHAP accounts. */
  readonly userPrefix: string;
  readonly desired: () => DesiredIscsi;
  readonly intervalMs: number;
  readonly log: Logger;
  /** Logins and logouts, as seen between two looks at tgtd (at most one interval late). */
  readonly onSession?: (kind: 'login' | 'logout', target: string, s: TgtSession) => void;
  /**
   * The storage cluster's health where the backend has one (rbd): read with a reconcile at most
   * once per `healthIntervalMs` (default 30 s: a `ceph health` is a process and a monitor round
   * trip) and logged when it changes. Reported, never a reason to fail or skip a target: with an
   * OSD down the cluster still serves (replica 2).
   */
  readonly storageHealth?: () => Promise<string>;
  readonly healthIntervalMs?: number;
}

export class IscsiUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`tgtd is not available: ${errorMessage(cause)}`, { cause });
    this.name = 'IscsiUnavailableError';
  }
}

export class IscsiReconciler {
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private last: readonly TgtTarget[] = [];
  private failing = false;
  /** Secrets changed since the last reconcile: those accounts are deleted and made again. */
  private readonly rotate = new Set<string>();
  private health: { value: string; at: number } | undefined;
  private healthReading = false;
  readonly counters = { runs: 0, repairs: 0, operations: 0, failures: 0, tgtdStarts: 0 };

  constructor(private readonly o: ReconcilerOptions) {}

  /** Serialised with every other reconcile. Throws IscsiUnavailableError when tgtd cannot be reached. */
  reconcile(reason: string): Promise<ReconcileResult> {
    const p = this.queue.then(() => this.once(reason));
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** tgtd's targets as of the last reconcile (sessions included). */
  lastShow(): readonly TgtTarget[] {
    return this.last;
  }

  /** A fresh view of one target (sessions as tgtd sees them now), or undefined. */
  async target(iqn: string): Promise<TgtTarget | undefined> {
    let shown: TgtTarget[];
    try {
      shown = await this.o.tgtd.show();
    } catch (e) {
      throw new IscsiUnavailableError(e);
    }
    this.seen(shown);
    return shown.find((t) => t.iqn === iqn);
  }

  private sessions = new Map<string, { target: string; s: TgtSession }>();

  /** Compares sessions with the last look and reports logins and logouts. */
  private seen(shown: readonly TgtTarget[]): void {
    const now = new Map<string, { target: string; s: TgtSession }>();
    for (const t of shown) for (const s of t.sessions) now.set(`${t.iqn} ${s.nexus} ${s.initiator}`, { target: t.iqn, s });
    if (this.o.onSession) {
      for (const [k, v] of now) if (!this.sessions.has(k)) this.o.onSession('login', v.target, v.s);
      for (const [k, v] of this.sessions) if (!now.has(k)) this.o.onSession('logout', v.target, v.s);
    }
    this.sessions = now;
  }

  async closeConnection(tid: number, sid: number, cid: number): Promise<void> {
    await this.o.tgtd.run({ op: 'delete-conn', tid, sid, cid });
  }

  /** The next reconcile deletes and re-creates this account (its secret changed). */
  rotateAccount(user: string): void {
    this.rotate.add(user);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.reconcile('periodic').catch(() => undefined);
    }, this.o.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.queue;
  }

  private owned = (iqn: string): boolean => iqn.startsWith(`${this.o.iqnPrefix}:`);

  /**
   * tgtd answered but refused some steps (a missing backing file, a clash): one line per failed
   * step naming its target, and what tgtd now holds is what the next look compares with. Not
   * "unavailable": every other target was made, and the next reconcile tries the failed ones again.
   */
  private async stepsFailed(e: ApplyPlanError, reason: string): Promise<void> {
    this.counters.operations += e.ran;
    for (const f of e.failures) {
      this.o.log.error({ event: 'iscsi.step-failed', reason, target: f.target, step: f.step, err: f.error }, 'tgtd refused a step; the other targets were still made');
    }
    this.last = await this.o.tgtd.show().catch(() => this.last);
    this.seen(this.last);
    if (this.failing) this.o.log.info({ event: 'iscsi.available' }, 'tgtd reachable again');
    this.failing = false;
  }

  /** The storage cluster's health as last read (undefined: no cluster, or not read yet). */
  storageHealth(): string | undefined {
    return this.health?.value;
  }

  /**
   * Reads the cluster's health when due and logs a change; never throws. The reconcile awaits it
   * only up to a bound: a cluster whose monitors do not answer must not hold back tgtd's repair.
   */
  private async checkHealth(reason: string): Promise<void> {
    const read = this.o.storageHealth;
    const now = Date.now();
    if (!read || this.healthReading || (this.health && now - this.health.at < (this.o.healthIntervalMs ?? 30_000))) return;
    this.healthReading = true;
    const reading = this.readHealth(read, reason, now).finally(() => { this.healthReading = false; });
    await Promise.race([reading, new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  private async readHealth(read: () => Promise<string>, reason: string, now: number): Promise<void> {
    const value = await read().catch((e: unknown) => `unknown (${errorMessage(e)})`);
    const before = this.health?.value;
    this.health = { value, at: now };
    if (value === before) return;
    const ok = value.startsWith('HEALTH_OK');
    this.o.log[ok ? 'info' : 'warn']({ event: 'storage.health', reason, health: value, ...(before !== undefined ? { was: before } : {}) },
      ok ? 'storage cluster healthy' : 'storage cluster not healthy; targets are still made');
  }

  private async once(reason: string): Promise<ReconcileResult> {
    await this.checkHealth(reason);
    this.counters.runs++;
    const log = this.o.log;
    let started = false;
    try {
      if (this.o.manageTgtd) {
        if ((await this.o.tgtd.ensureRunning()) === 'started') {
          started = true;
          this.counters.tgtdStarts++;
          log.warn({ event: 'iscsi.tgtd-started', reason }, 'tgtd was not running; started it');
        }
      }
      const [actual, accounts] = [await this.o.tgtd.show(), await this.o.tgtd.accounts()];
      const desired = this.o.desired();
      const rotate = new Set(this.rotate);
      const ops = diffTargets(actual, desired.targets, this.owned, {
        actual: accounts, desired: desired.accounts, owned: (u) => u.startsWith(this.o.userPrefix), recreate: rotate,
      });
      const blocked = ops.filter((o): o is Extract<PlanOp, { type: 'blocked' }> => o.type === 'blocked');
      let ran = 0;
      if (ops.length > blocked.length) {
        try {
          ({ ran } = await applyPlan(this.o.tgtd, ops));
        } catch (e) {
          if (e instanceof ApplyPlanError) await this.stepsFailed(e, reason);
          throw e;
        }
        for (const u of rotate) this.rotate.delete(u);
        this.counters.repairs++;
        this.counters.operations += ran;
        // At start and when asked, making targets is the job; periodically it means tgtd drifted.
        const level = reason === 'periodic' ? 'warn' : 'info';
        log[level]({ event: reason === 'periodic' ? 'iscsi.drift-repaired' : 'iscsi.reconciled', reason, operations: ran, targets: desired.targets.length },
          reason === 'periodic' ? 'tgtd did not match the store; repaired' : 'tgtd reconciled');
        this.last = await this.o.tgtd.show();
      } else {
        this.last = actual;
      }
      this.seen(this.last);
      for (const b of blocked) log.warn({ event: 'iscsi.reconcile-blocked', tid: b.tid, iqn: b.iqn, reason: b.reason }, 'change left for later: session open');
      if (this.failing) log.info({ event: 'iscsi.available' }, 'tgtd reachable again');
      this.failing = false;
      return { ran, blocked, started };
    } catch (e) {
      this.counters.failures++;
      if (e instanceof ApplyPlanError) throw e;
      // One line when tgtd goes away, not one per check.
      if (!this.failing) {
        log.error({ event: 'iscsi.unavailable', reason, err: errorMessage(e) }, 'cannot reconcile tgtd');
      }
      this.failing = true;
      if ((e instanceof TgtadmError && (e.kind === 'not-running' || e.kind === 'spawn' || e.kind === 'timeout')) || e instanceof TgtdStartError) throw new IscsiUnavailableError(e);
      throw e;
    }
  }
}
