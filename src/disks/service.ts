/**
 * Machine disks: clone a golden image for a machine, export it as an iSCSI target locked to that
 * machine, reset it to the image, checkpoint and restore it, remove it. The store is the truth;
 * storage and tgtd follow it.
 *
 * Crash safety: every operation is journalled (a synced store write) before its first step, and
 * its last step removes the journal entry in the same batch as the record change. At start,
 * recover() finishes or rolls back whatever is left in the journal, removes disks no record
 * owns, and the reconciler makes tgtd match. A provision interrupted before its record was
 * written is rolled back (the machine ends cleanly unprovisioned); after it, the record stands
 * and the next reconcile exports it (the machine ends provisioned).
 */
import { errorMessage } from '../errors/message.js';
import type { Logger } from '../log.js';
import type { Mac } from '../net/mac.js';
import type { RecordStore } from '../store/db.js';
import { NotFoundError, SerialQueue, validateId, type CheckpointInfo, type Usage, type VolumeBackend } from '../storage/backend.js';
import type { DesiredIscsi, IscsiReconciler } from '../reconcile.js';
import {
  chapUserFor, decodeDiskRecord, decodeOpRecord, diskIdFor, initiatorIqnFor, newChapSecret, opId, targetIqnFor,
  type DiskRecord, type OpKind, type OpRecord,
} from './record.js';
import { isValidIscsiName, normalizeIscsiName } from '../iscsi/iqn.js';

export type DiskErrorCode = 'not-found' | 'exists' | 'busy' | 'invalid' | 'image-not-found' | 'not-exported';

/** A refusal the API turns into 4xx; names the machine. */
export class DiskError extends Error {
  /** `reason`: for 'busy', why the disk cannot be touched (the sessions open), without the action. */
  constructor(readonly mac: Mac, readonly code: DiskErrorCode, detail: string, readonly reason?: string) {
    super(`disk of ${mac}: ${detail}`);
    this.name = 'DiskError';
  }
}

export interface DiskServiceOptions {
  readonly backend: VolumeBackend;
  readonly store: RecordStore;
  readonly reconciler: IscsiReconciler;
  readonly iqnPrefix: string;
  readonly mutualChap: boolean;
  readonly log: Logger;
  readonly clock: () => number;
  /**
   * Test hook: called after each step with "<op>:<step>" (e.g. "provision:cloned"); the daemon
   * wires it to METALBOOT_TEST_CRASH_AT, which SIGKILLs itself there. A no-op otherwise.
   */
  readonly crashPoint?: (step: string) => void;
}

export interface ProvisionRequest {
  readonly imageId: string;
  /** Default `<target iqn>:initiator`. */
  readonly initiatorIqn?: string;
}

export class DiskService {
  private readonly records = new Map<Mac, DiskRecord>();
  /** Machines whose target is taken down while their disk is replaced. */
  private readonly detached = new Set<Mac>();
  private readonly queue = new SerialQueue();
  private opSeq = 0;
  /** Disk LVs activated since this service started (by the start sweep or an op's recovery). */
  private activated = 0;

  constructor(private readonly o: DiskServiceOptions) {}

  // ---------------------------------------------------------------- start

  /**
   * Loads records, completes or rolls back journalled operations, removes orphan disks and
   * activates disks a crash left inactive (so that the reconcile after it can export them).
   */
  async recover(): Promise<{ completed: number; rolledBack: number; orphans: number; activated: number }> {
    const log = this.o.log;
    for (const { key, value } of await this.o.store.loadRecords('disks')) {
      const r = decodeDiskRecord(key, value);
      if (typeof r === 'string') log.error({ event: 'disks.corrupt-record', key, reason: r }, 'disk record skipped');
      else this.records.set(r.mac, r);
    }
    let completed = 0;
    let rolledBack = 0;
    for (const { key, value } of await this.o.store.loadRecords('ops')) {
      const op = decodeOpRecord(key, value);
      if (typeof op === 'string') {
        log.error({ event: 'disks.corrupt-journal', key, reason: op }, 'journal entry unreadable; dropped');
        await this.o.store.writeRecords([{ type: 'del', kind: 'ops', key }]);
        continue;
      }
      const outcome = await this.recoverOne(op);
      if (outcome === 'completed') completed++;
      else rolledBack++;
      log.warn({ event: 'disks.recovered', op: op.kind, mac: op.mac, outcome }, `interrupted ${op.kind} ${outcome}`);
    }
    let orphans = 0;
    const wanted = new Set([...this.records.values()].map((r) => r.diskId));
    for (const d of await this.o.backend.listDisks()) {
      if (wanted.has(d.id)) continue;
      await this.o.backend.removeDisk(d.id);
      orphans++;
      log.warn({ event: 'disks.orphan-removed', disk: d.id }, 'disk without a record removed');
    }
    await this.activateDisks('start');
    return { completed, rolledBack, orphans, activated: this.activated };
  }

  /**
   * The lvm backend's restore deactivates the disk before merging; a crash (or a failure) after
   * that leaves it without a /dev node, and tgtd cannot add a LUN for it. Logs each disk it
   * activated and each it could not; never throws for one disk (the others still get exported).
   */
  private async activateDisks(reason: string): Promise<string[]> {
    const r = await this.o.backend.activateDisks?.();
    if (!r) return [];
    this.activated += r.activated.length;
    if (r.activated.length > 0) {
      this.o.log.warn({ event: 'disks.activated', reason, disks: r.activated }, `inactive disk(s) activated: ${r.activated.join(', ')}`);
    }
    for (const e of r.failed) this.o.log.error({ event: 'disks.activate-failed', reason, volume: e.volume, err: e.message }, `${e.volume} is inactive and could not be activated`);
    return r.activated;
  }

  private async recoverOne(op: OpRecord): Promise<'completed' | 'rolled back'> {
    const b = this.o.backend;
    const record = this.records.get(op.mac);
    const done = () => this.o.store.writeRecords([{ type: 'del', kind: 'ops', key: op.id }]);
    switch (op.kind) {
      case 'provision':
        if (record && record.diskId === op.diskId) { await done(); return 'completed'; }
        if (await b.diskExists(op.diskId)) await b.removeDisk(op.diskId);
        await done();
        return 'rolled back';
      case 'reset':
      case 'restore':
        // The record still stands; the disk must exist. A restore cut short in the middle of
        // replacing the disk falls back to a fresh clone: a clean state over a half-written one.
        if (record && !(await b.diskExists(record.diskId))) {
          await b.clone(record.imageId, record.diskId);
        } else if (record) {
          // It exists, but the lvm backend may have left it inactive (deactivated to merge).
          await this.activateDisks(`interrupted ${op.kind}`);
          if (op.kind === 'restore' && op.checkpoint !== undefined) await this.retakeCheckpoint(record, op.checkpoint);
        }
        await done();
        return 'completed';
      case 'deprovision':
        if (await b.diskExists(op.diskId)) await b.removeDisk(op.diskId);
        this.records.delete(op.mac);
        await this.o.store.writeRecords([{ type: 'del', kind: 'disks', key: op.mac }, { type: 'del', kind: 'ops', key: op.id }]);
        return 'completed';
    }
  }

  /**
   * restore() checks that the checkpoint exists before journalling, and only a merge consumes it
   * (lvm: `lvconvert --merge`, then the checkpoint is taken again). Missing after an interrupted
   * restore therefore means the merge happened and the disk holds the checkpoint's content: take
   * it again so the checkpoint stays restorable. A failure here (pool full) is logged, not fatal.
   */
  private async retakeCheckpoint(r: DiskRecord, name: string): Promise<void> {
    const b = this.o.backend;
    try {
      if ((await b.listCheckpoints(r.diskId)).some((c) => c.name === name)) return;
      await b.checkpoint(r.diskId, name);
      this.o.log.warn({ event: 'disks.checkpoint-retaken', mac: r.mac, name }, 'checkpoint consumed by an interrupted restore taken again');
    } catch (e) {
      this.o.log.error({ event: 'disks.checkpoint-lost', mac: r.mac, name, err: errorMessage(e) },
        'checkpoint consumed by an interrupted restore could not be taken again');
    }
  }

  // ---------------------------------------------------------------- what tgtd should have

  desired(): DesiredIscsi {
    const targets = [];
    const accounts = [];
    for (const r of this.records.values()) {
      if (this.detached.has(r.mac)) continue;
      // Name only, no address rule: tgtd ORs the rules, so an address would admit any IQN from it.
      targets.push({
        iqn: r.targetIqn, tid: r.tid,
        luns: [{ lun: 1, ...this.o.backend.exportOf(r.diskId), readonly: false }],
        initiatorNames: [r.initiatorIqn], initiatorAddresses: [],
        incomingUsers: [r.chap.user], outgoingUser: r.mutualChap?.user ?? null,
      });
      accounts.push(r.chap);
      if (r.mutualChap) accounts.push(r.mutualChap);
    }
    return { targets, accounts };
  }

  // ---------------------------------------------------------------- queries

  list(): DiskRecord[] {
    return [...this.records.values()].sort((a, b) => a.mac.localeCompare(b.mac));
  }

  /** With secrets: for the machine's own boot script only. */
  get(mac: Mac): DiskRecord | undefined {
    return this.records.get(mac);
  }

  imageUsers(imageId: string): Mac[] {
    return this.list().filter((r) => r.imageId === imageId).map((r) => r.mac);
  }

  /** The machine whose disk a target exports. */
  macOfTarget(iqn: string): Mac | undefined {
    for (const r of this.records.values()) if (r.targetIqn === iqn) return r.mac;
    return undefined;
  }

  /** Whether tgtd exports the disk and who is logged in to it, as of the reconciler's last look. */
  exportOf(r: DiskRecord): { exported: boolean; sessions: { initiator: string; addresses: string[] }[] } {
    const t = this.o.reconciler.lastShow().find((x) => x.iqn === r.targetIqn);
    return { exported: t !== undefined, sessions: (t?.sessions ?? []).map((s) => ({ initiator: s.initiator, addresses: s.connections.map((c) => c.address) })) };
  }

  /** The storage pool's usage. */
  usage(): Promise<Usage> {
    return this.o.backend.usage();
  }

  listCheckpoints(mac: Mac): Promise<CheckpointInfo[]> {
    return this.o.backend.listCheckpoints(this.require(mac).diskId);
  }

  // ---------------------------------------------------------------- operations

  provision(mac: Mac, req: ProvisionRequest): Promise<DiskRecord> {
    return this.queue.run(async () => {
      if (this.records.has(mac)) throw new DiskError(mac, 'exists', 'already provisioned (reset or deprovision it first)');
      let initiatorIqn = initiatorIqnFor(this.o.iqnPrefix, mac);
      if (req.initiatorIqn !== undefined) {
        if (!isValidIscsiName(req.initiatorIqn)) throw new DiskError(mac, 'invalid', `initiatorIqn ${JSON.stringify(req.initiatorIqn.slice(0, 80))} is not an iSCSI name`);
        initiatorIqn = normalizeIscsiName(req.initiatorIqn);
      }
      if (!(await this.o.backend.getImage(req.imageId))) throw new DiskError(mac, 'image-not-found', `image ${req.imageId} does not exist`);
      await this.o.reconciler.reconcile('provision'); // tgtd must be there before storage is spent
      const diskId = diskIdFor(mac);
      const record: DiskRecord = {
        mac, diskId, imageId: req.imageId,
        targetIqn: targetIqnFor(this.o.iqnPrefix, mac), initiatorIqn,
        chap: { user: chapUserFor(mac), secret: newChapSecret() },
        ...(this.o.mutualChap ? { mutualChap: { user: chapUserFor(mac, true), secret: newChapSecret() } } : {}),
        tid: this.freeTid(), createdAt: this.o.clock(),
      };
      const op = await this.journal('provision', mac, diskId, { imageId: req.imageId });
      try {
        // A disk of this name can only be a leftover no record owns (recover() removes those).
        if (await this.o.backend.diskExists(diskId)) await this.o.backend.removeDisk(diskId);
        await this.o.backend.clone(req.imageId, diskId);
      } catch (e) {
        await this.settle(op);
        throw e;
      }
      this.step('provision:cloned');
      await this.o.store.writeRecords([{ type: 'put', kind: 'disks', key: mac, value: record }, { type: 'del', kind: 'ops', key: op.id }]);
      this.records.set(mac, record);
      // Any account of this name in tgtd has an old secret.
      this.o.reconciler.rotateAccount(record.chap.user);
      if (record.mutualChap) this.o.reconciler.rotateAccount(record.mutualChap.user);
      this.step('provision:committed');
      await this.o.reconciler.reconcile('provision');
      this.step('provision:exported');
      this.o.log.info({ event: 'disks.provisioned', mac, image: req.imageId, disk: diskId, iqn: record.targetIqn }, 'disk provisioned');
      return record;
    });
  }

  /** The disk becomes its image again; the target, IQN and CHAP stay. */
  reset(mac: Mac): Promise<DiskRecord> {
    return this.queue.run(async () => {
      const r = this.require(mac);
      await this.withDetached(r, 'reset', async () => {
        await this.o.backend.reset(r.diskId);
        this.step('reset:replaced');
      });
      this.o.log.info({ event: 'disks.reset', mac, image: r.imageId }, 'disk reset to its image');
      return r;
    });
  }

  checkpoint(mac: Mac, name: string): Promise<CheckpointInfo> {
    return this.queue.run(async () => {
      const r = this.require(mac);
      const c = await this.o.backend.checkpoint(r.diskId, name);
      this.o.log.info({ event: 'disks.checkpoint', mac, name }, 'checkpoint taken');
      return c;
    });
  }

  restore(mac: Mac, name: string): Promise<{ method: string }> {
    return this.queue.run(async () => {
      const r = this.require(mac);
      // Checked before the journal entry: recovery reads a missing checkpoint as consumed by a merge.
      validateId('checkpoint', name, 'restore');
      if (!(await this.o.backend.listCheckpoints(r.diskId)).some((c) => c.name === name)) throw new NotFoundError(`checkpoint ${r.diskId}/${name}`, 'restore');
      let method = '';
      await this.withDetached(r, 'restore', async () => {
        ({ method } = await this.o.backend.restore(r.diskId, name));
        this.step('restore:replaced');
      }, { checkpoint: name });
      this.o.log.info({ event: 'disks.restored', mac, name, method }, 'disk restored from checkpoint');
      return { method };
    });
  }

  deprovision(mac: Mac): Promise<void> {
    return this.queue.run(async () => {
      const r = this.require(mac);
      await this.assertNoSession(r, 'deprovision');
      const op = await this.journal('deprovision', mac, r.diskId, {});
      this.detached.add(mac);
      try {
        await this.detach(r, 'deprovision');
      } catch (e) {
        // Nothing was removed yet: the machine keeps its disk and target.
        this.detached.delete(mac);
        await this.o.store.writeRecords([{ type: 'del', kind: 'ops', key: op.id }]);
        throw e;
      }
      this.step('deprovision:detached');
      try {
        await this.o.backend.removeDisk(r.diskId);
      } catch (e) {
        await this.settle(op);
        throw e;
      }
      this.step('deprovision:removed');
      await this.o.store.writeRecords([{ type: 'del', kind: 'disks', key: mac }, { type: 'del', kind: 'ops', key: op.id }]);
      this.records.delete(mac);
      this.detached.delete(mac);
      await this.o.reconciler.reconcile('deprovision'); // drops the account
      this.o.log.info({ event: 'disks.deprovisioned', mac }, 'disk removed');
    });
  }

  /**
   * Closes the connections of the machine's sessions listed in `stale` (session ids seen before a
   * hard power off, cycle or reset). A powered-off machine never closes its TCP connection and
   * tgtd sends no keep-alive, so its session would stay and block reset and restore; a session
   * that logged in afterwards (the machine booting again) is not in `stale` and is kept.
   */
  async dropSessions(mac: Mac, stale: ReadonlySet<number>): Promise<number> {
    const r = this.records.get(mac);
    if (!r || stale.size === 0) return 0;
    const t = await this.o.reconciler.target(r.targetIqn);
    let n = 0;
    for (const s of t?.sessions ?? []) {
      if (!stale.has(s.nexus)) continue;
      for (const c of s.connections) {
        await this.o.reconciler.closeConnection(t!.tid, s.nexus, c.cid);
        n++;
      }
    }
    if (n) this.o.log.info({ event: 'disks.sessions-closed', mac, connections: n }, 'stale iSCSI connections of a powered-off machine closed');
    return n;
  }

  /** The machine's session ids as tgtd sees them now. */
  async sessionIds(mac: Mac): Promise<Set<number>> {
    const r = this.records.get(mac);
    if (!r) return new Set();
    return new Set(((await this.o.reconciler.target(r.targetIqn))?.sessions ?? []).map((s) => s.nexus));
  }

  // ---------------------------------------------------------------- steps

  private require(mac: Mac): DiskRecord {
    const r = this.records.get(mac);
    if (!r) throw new DiskError(mac, 'not-found', 'not provisioned');
    return r;
  }

  private step(name: string): void {
    this.o.crashPoint?.(name);
  }

  private freeTid(): number {
    const used = new Set([...this.records.values()].map((r) => r.tid));
    let tid = 1;
    while (used.has(tid)) tid++;
    return tid;
  }

  private async journal(kind: OpKind, mac: Mac, diskId: string, extra: { imageId?: string; checkpoint?: string }): Promise<OpRecord> {
    const op: OpRecord = { id: opId(this.o.clock(), this.opSeq++), kind, mac, diskId, startedAt: this.o.clock(), ...extra };
    await this.o.store.writeRecords([{ type: 'put', kind: 'ops', key: op.id, value: op }]);
    this.step(`${kind}:journaled`);
    return op;
  }

  /** A disk someone is logged in to is never detached, replaced or removed. */
  private async assertNoSession(r: DiskRecord, what: string): Promise<void> {
    const t = await this.o.reconciler.target(r.targetIqn);
    if (t && t.sessions.length > 0) {
      const who = t.sessions.map((s) => `${s.initiator}${s.connections[0] ? ` (${s.connections[0].address})` : ''}`).join(', ');
      const why = `iSCSI session open from ${who}; power the machine off first`;
      throw new DiskError(r.mac, 'busy', `cannot ${what}: ${why}`, why);
    }
  }

  /** Takes the target down and checks it is gone (a login may have slipped in: then refuse). */
  private async detach(r: DiskRecord, what: string): Promise<void> {
    const res = await this.o.reconciler.reconcile(what);
    if (res.blocked.some((b) => b.iqn === r.targetIqn) || (await this.o.reconciler.target(r.targetIqn))) {
      const why = 'the target could not be taken down (a session is open)';
      throw new DiskError(r.mac, 'busy', `cannot ${what}: ${why}`, why);
    }
  }

  private async withDetached(r: DiskRecord, kind: 'reset' | 'restore', replace: () => Promise<void>, extra: { checkpoint?: string } = {}): Promise<void> {
    await this.assertNoSession(r, kind);
    const op = await this.journal(kind, r.mac, r.diskId, { imageId: r.imageId, ...extra });
    this.detached.add(r.mac);
    try {
      await this.detach(r, kind);
      await replace();
    } catch (e) {
      await this.settle(op);
      throw e;
    }
    this.detached.delete(r.mac);
    await this.o.store.writeRecords([{ type: 'del', kind: 'ops', key: op.id }]);
    await this.o.reconciler.reconcile(kind);
  }

  /**
   * After a failed step: finish or roll back now, as recover() would at the next start. If even
   * that fails, the journal entry stays and the machine stays detached (its disk may be missing:
   * exporting it would make every reconcile fail) until the next start retries.
   */
  private async settle(op: OpRecord): Promise<void> {
    try {
      const outcome = await this.recoverOne(op);
      this.detached.delete(op.mac);
      this.o.log.warn({ event: 'disks.op-failed', op: op.kind, mac: op.mac, outcome }, `${op.kind} failed; ${outcome}`);
      await this.o.reconciler.reconcile(op.kind).catch(() => undefined);
    } catch (e) {
      this.detached.add(op.mac);
      this.o.log.error({ event: 'disks.op-stuck', op: op.kind, mac: op.mac, err: errorMessage(e) },
        `${op.kind} failed and could not be undone; retried at the next start`);
    }
  }
}

