/**
 * Reconciling tgtd with a typed description, pure: diffTargets() compares
 * what `show` reports with what we want and returns the tgtadm operations
 * that close the gap, in a safe order; applyPlan() runs them.
 *
 * Rules the plan keeps:
 * - Only targets `owned(iqn)` says are ours are changed or removed; others
 *   are never touched, not even their tids are reused.
 * - A target with an open session (I_T nexus) is never removed, and its LUNs
 *   are never removed or swapped: those become 'blocked' entries instead.
 *   (tgtd would refuse the removal anyway without --force, which we never
 *   use here.) Tightening access (unbinds, readonly=1) still proceeds.
 * - Within a target: remove access that should not be there first, then
 *   LUNs, then add accounts, then ACLs last. A new target therefore admits no
 *   one until its LUNs (and their readonly flag) are in place, which closes
 *   the writable window between `new` and `readonly=1`; applyPlan deletes a LUN whose readonly failed.
 * - Never binds ALL or a /0 (tgtadm.ts refuses to build it).
 *
 * CHAP secrets are not visible in `show`, so a changed secret is not drift
 * the plan can see; a caller rotating a secret lists the user in
 * `recreateAccounts`.
 */
import { errorMessage } from '../errors/message.js';
import { checkIscsiName } from './iqn.js';
import type { VolumeExport } from '../storage/export.js';
import {
  checkAddressRule, checkIqnArg, checkLun, checkSecret, checkTid, checkUser, checkVolumeExport, dataLuns, redactSecret, TID_MAX,
  type TgtadmOp, type TgtLun, type TgtTarget,
} from './tgtadm.js';

/** A LUN exporting one volume as its storage backend describes it (bstype, backing store, bsopts). */
export interface DesiredLun extends VolumeExport {
  /** 1.. (LUN 0 is tgtd's controller; iPXE URIs must name LUN 1 explicitly). */
  readonly lun: number;
  /** Golden images: always true. */
  readonly readonly: boolean;
}

export interface DesiredTarget {
  readonly iqn: string;
  /** Preferred tid; used when free, else the lowest free one is chosen. */
  readonly tid?: number;
  readonly luns: readonly DesiredLun[];
  /** `--initiator-name` rules. */
  readonly initiatorNames: readonly string[];
  /** `--initiator-address` rules; these admit ANY initiator name from the address (tgtd ORs the rules). */
  readonly initiatorAddresses: readonly string[];
  /** Accounts bound for incoming (initiator-authenticating) CHAP. */
  readonly incomingUsers: readonly string[];
  /** Account tgtd answers with for mutual CHAP; tgtd allows one. */
  readonly outgoingUser?: string | null;
}

export interface DesiredAccount {
  readonly user: string;
  readonly secret: string;
}

export interface AccountState {
  /** `parseAccountShow` of the running tgtd. */
  readonly actual: readonly string[];
  readonly desired: readonly DesiredAccount[];
  /** Accounts we may delete when no longer desired. Default: none. */
  readonly owned?: (user: string) => boolean;
  /** Users whose secret changed: deleted (after unbinding) and created again. */
  readonly recreate?: ReadonlySet<string>;
}

export type PlanOp =
  /** `target`: the IQN the step belongs to (absent for account create/delete, which are global). */
  | { readonly type: 'run'; readonly op: TgtadmOp; readonly why: string; readonly target?: string }
  | { readonly type: 'blocked'; readonly tid: number; readonly iqn: string; readonly reason: string };

export class PlanError extends Error {
  constructor(readonly iqn: string, readonly reason: string) {
    super(`desired target ${iqn}: ${reason}`);
    this.name = 'PlanError';
  }
}

/** Throws PlanError (naming the target) unless every field would build valid tgtadm argv. */
export function checkDesired(desired: readonly DesiredTarget[], accounts: readonly DesiredAccount[] = []): void {
  const seen = new Set<string>();
  for (const d of desired) {
    const guard = (f: () => unknown): void => {
      try { f(); } catch (e) { throw new PlanError(d.iqn, errorMessage(e)); }
    };
    guard(() => checkIqnArg('targetname', d.iqn));
    if (seen.has(d.iqn)) throw new PlanError(d.iqn, 'listed twice');
    seen.add(d.iqn);
    if (d.tid !== undefined) guard(() => checkTid(d.tid!));
    const luns = new Set<number>();
    for (const l of d.luns) {
      guard(() => { checkLun(l.lun); checkVolumeExport(l); });
      if (luns.has(l.lun)) throw new PlanError(d.iqn, `LUN ${l.lun} listed twice`);
      luns.add(l.lun);
    }
    for (const n of d.initiatorNames) guard(() => checkIqnArg('initiator-name', n));
    for (const a of d.initiatorAddresses) guard(() => checkAddressRule(a));
    for (const u of d.incomingUsers) guard(() => checkUser(u));
    if (d.outgoingUser) {
      guard(() => checkUser(d.outgoingUser!));
      if (d.incomingUsers.includes(d.outgoingUser)) throw new PlanError(d.iqn, `account ${d.outgoingUser} both incoming and outgoing`);
    }
    if (d.initiatorNames.length === 0 && d.initiatorAddresses.length === 0) {
      // Legal (tgtd then refuses every login) but almost surely a caller bug worth failing loudly on.
      throw new PlanError(d.iqn, 'no initiator name or address: nobody could log in');
    }
  }
  const users = new Set<string>();
  for (const a of accounts) {
    try { checkUser(a.user); checkSecret(a.secret); } catch (e) { throw new PlanError(`account ${a.user}`, errorMessage(e)); }
    if (users.has(a.user)) throw new PlanError(`account ${a.user}`, 'listed twice');
    users.add(a.user);
  }
  for (const d of desired) {
    for (const u of [...d.incomingUsers, ...(d.outgoingUser ? [d.outgoingUser] : [])]) {
      if (accounts.length > 0 && !users.has(u)) throw new PlanError(d.iqn, `account ${u} is bound but not among the desired accounts`);
    }
  }
}

/**
 * Whether tgtd's LUN exports the volume we want: the same bstype and backing store. bsopts
 * cannot be compared: `show` does not print them (tgt's usr/target.c prints type, path and
 * flags only), so a LUN keeps the options it was made with until it is made again.
 */
function exportsMatch(have: TgtLun, want: VolumeExport): boolean {
  return have.bstype === want.bstype && have.path === want.backingStore;
}

const run = (op: TgtadmOp, why: string, target?: string): PlanOp => ({ type: 'run', op, why, ...(target !== undefined ? { target } : {}) });

function lunOps(tid: number, iqn: string, l: DesiredLun, why: string): PlanOp[] {
  const volume = { bstype: l.bstype, backingStore: l.backingStore, ...(l.bsopts !== undefined ? { bsopts: l.bsopts } : {}) };
  const ops = [run({ op: 'new-lun', tid, lun: l.lun, ...volume }, why, iqn)];
  if (l.readonly) ops.push(run({ op: 'lun-readonly', tid, lun: l.lun, readonly: true }, `${why}; readonly`, iqn));
  return ops;
}

/**
 * The operations that turn `actual` into `desired`, in order. `owned` says
 * which IQNs metalboot made (e.g. by prefix). Desired targets are checked
 * first (PlanError). An empty result means tgtd already matches.
 */
export function diffTargets(
  actual: readonly TgtTarget[],
  desired: readonly DesiredTarget[],
  owned: (iqn: string) => boolean,
  accounts?: AccountState,
): PlanOp[] {
  checkDesired(desired, accounts?.desired ?? []);
  const ops: PlanOp[] = [];
  const byIqn = new Map(actual.map((t) => [t.iqn, t] as const));
  const wanted = new Set(desired.map((d) => d.iqn));
  const recreate = accounts?.recreate ?? new Set<string>();

  // 1. Owned targets nobody wants: removed, unless someone is logged in.
  const removed = new Set<number>();
  for (const t of actual) {
    if (wanted.has(t.iqn) || !owned(t.iqn)) continue;
    if (t.sessions.length > 0) {
      ops.push({ type: 'blocked', tid: t.tid, iqn: t.iqn, reason: `not wanted, but ${t.sessions.length} session(s) open (${t.sessions.map((s) => s.initiator).join(', ')})` });
      continue;
    }
    ops.push(run({ op: 'delete-target', tid: t.tid, force: false }, 'owned and not wanted', t.iqn));
    removed.add(t.tid);
  }

  // 2. Accounts whose secret is to be replaced: unbind everywhere and delete, then created again below.
  const actualAccounts = new Set(accounts?.actual ?? []);
  for (const user of recreate) {
    if (!actualAccounts.has(user)) continue;
    for (const t of actual) {
      if (removed.has(t.tid)) continue;
      for (const a of t.accounts) if (a.user === user) ops.push(run({ op: 'unbind-account', tid: t.tid, user, outgoing: a.outgoing }, 'secret rotation', t.iqn));
    }
    ops.push(run({ op: 'delete-account', user }, 'secret rotation'));
    actualAccounts.delete(user);
  }
  // Bindings as they will be after step 2 (keyed "tid/user/outgoing").
  const rotated = (user: string): boolean => recreate.has(user) && (accounts?.actual ?? []).includes(user);

  // 3. Accounts wanted but missing.
  for (const a of accounts?.desired ?? []) {
    if (!actualAccounts.has(a.user)) ops.push(run({ op: 'new-account', user: a.user, secret: a.secret }, 'account missing'));
  }

  // 4. Wanted targets: create or fix.
  const usedTids = new Set(actual.filter((t) => !removed.has(t.tid)).map((t) => t.tid));
  const nextTid = (preferred: number | undefined): number => {
    if (preferred !== undefined && !usedTids.has(preferred)) return preferred;
    for (let tid = 1; tid <= TID_MAX; tid++) if (!usedTids.has(tid) && !desired.some((d) => d.tid === tid && !byIqn.has(d.iqn))) return tid;
    throw new PlanError('(any)', 'no free tid');
  };
  for (const d of desired) {
    const a = byIqn.get(d.iqn);
    const wantIn = new Set(d.incomingUsers);
    if (!a) {
      const tid = nextTid(d.tid);
      usedTids.add(tid);
      ops.push(run({ op: 'new-target', tid, iqn: d.iqn }, 'target missing', d.iqn));
      for (const l of [...d.luns].sort((x, y) => x.lun - y.lun)) ops.push(...lunOps(tid, d.iqn, l, `LUN ${l.lun} of a new target`));
      for (const u of wantIn) ops.push(run({ op: 'bind-account', tid, user: u, outgoing: false }, 'new target', d.iqn));
      if (d.outgoingUser) ops.push(run({ op: 'bind-account', tid, user: d.outgoingUser, outgoing: true }, 'new target', d.iqn));
      for (const n of d.initiatorNames) ops.push(run({ op: 'bind-name', tid, iqn: n }, 'new target', d.iqn));
      for (const ad of d.initiatorAddresses) ops.push(run({ op: 'bind-address', tid, address: ad }, 'new target', d.iqn));
      continue;
    }
    const tid = a.tid;
    if (!owned(a.iqn)) {
      ops.push({ type: 'blocked', tid, iqn: a.iqn, reason: 'wanted, but the existing target is not ours to change' });
      continue;
    }
    const busy = a.sessions.length > 0;

    // Access to remove first.
    for (const acc of a.accounts) {
      if (rotated(acc.user)) continue; // already unbound in step 2
      const keep = acc.outgoing ? d.outgoingUser === acc.user : wantIn.has(acc.user);
      if (!keep) ops.push(run({ op: 'unbind-account', tid, user: acc.user, outgoing: acc.outgoing }, 'account binding not wanted', d.iqn));
    }
    for (const n of a.initiatorNames) if (!d.initiatorNames.includes(n)) ops.push(run({ op: 'unbind-name', tid, iqn: n }, 'initiator name not wanted', d.iqn));
    for (const ad of a.initiatorAddresses) if (!d.initiatorAddresses.includes(ad)) ops.push(run({ op: 'unbind-address', tid, address: ad }, 'initiator address not wanted', d.iqn));

    // LUNs.
    const have = new Map(dataLuns(a).map((l) => [l.lun, l] as const));
    const want = new Map(d.luns.map((l) => [l.lun, l] as const));
    for (const [n, l] of have) {
      if (want.has(n)) continue;
      if (busy) ops.push({ type: 'blocked', tid, iqn: a.iqn, reason: `LUN ${n} (${l.path ?? '-'}) not wanted, but sessions are open` });
      else ops.push(run({ op: 'delete-lun', tid, lun: n }, 'LUN not wanted', d.iqn));
    }
    for (const l of [...d.luns].sort((x, y) => x.lun - y.lun)) {
      const h = have.get(l.lun);
      if (!h) {
        ops.push(...lunOps(tid, d.iqn, l, `LUN ${l.lun} missing`));
      } else if (!exportsMatch(h, l)) {
        if (busy) {
          ops.push({ type: 'blocked', tid, iqn: a.iqn, reason: `LUN ${l.lun} is ${h.bstype}:${h.path ?? '-'}, wanted ${l.bstype}:${l.backingStore}, but sessions are open` });
          if (l.readonly && !h.readonly) ops.push(run({ op: 'lun-readonly', tid, lun: l.lun, readonly: true }, 'readonly drift', d.iqn));
        } else {
          ops.push(run({ op: 'delete-lun', tid, lun: l.lun }, 'backing store drift', d.iqn), ...lunOps(tid, d.iqn, l, 'backing store drift'));
        }
      } else if (h.readonly !== l.readonly) {
        ops.push(run({ op: 'lun-readonly', tid, lun: l.lun, readonly: l.readonly }, 'readonly drift', d.iqn));
      }
    }

    // Access to add last.
    const bound = (user: string, outgoing: boolean): boolean => !rotated(user) && a.accounts.some((x) => x.user === user && x.outgoing === outgoing);
    for (const u of wantIn) if (!bound(u, false)) ops.push(run({ op: 'bind-account', tid, user: u, outgoing: false }, 'account binding missing', d.iqn));
    if (d.outgoingUser && !bound(d.outgoingUser, true)) ops.push(run({ op: 'bind-account', tid, user: d.outgoingUser, outgoing: true }, 'outgoing account missing', d.iqn));
    for (const n of d.initiatorNames) if (!a.initiatorNames.includes(n)) ops.push(run({ op: 'bind-name', tid, iqn: n }, 'initiator name missing', d.iqn));
    for (const ad of d.initiatorAddresses) if (!a.initiatorAddresses.includes(ad)) ops.push(run({ op: 'bind-address', tid, address: ad }, 'initiator address missing', d.iqn));
  }

  // 5. Owned accounts nobody wants (after their bindings are gone above).
  if (accounts?.owned) {
    const desiredUsers = new Set(accounts.desired.map((a) => a.user));
    for (const user of actualAccounts) {
      if (desiredUsers.has(user) || !accounts.owned(user)) continue;
      // Still bound to a target we keep or cannot touch: leave it; tgtd would keep it bound anyway.
      const stillBound = actual.some((t) => !removed.has(t.tid) && t.accounts.some((x) => x.user === user) && !(owned(t.iqn) && wanted.has(t.iqn)));
      if (!stillBound) ops.push(run({ op: 'delete-account', user }, 'owned account not wanted'));
    }
  }
  return ops;
}

/** Whether a plan has nothing left to run (blocked entries may remain). */
export function isSettled(ops: readonly PlanOp[]): boolean {
  return ops.every((o) => o.type === 'blocked');
}

export interface PlanRunner {
  run(op: TgtadmOp): Promise<unknown>;
}

/** One plan step that failed, named by its target (or account) and operation; never a secret. */
export interface PlanFailure {
  /** The target's IQN, `account USER` for account create/delete, or `tid N` when the plan did not say. */
  readonly target: string;
  /** e.g. "new-lun 1", "bind-name iqn.…", "new-account mb-i…". */
  readonly step: string;
  readonly why: string;
  /** The error's message (the Tgtd adapter redacts secrets; a new-account secret is scrubbed here too). */
  readonly error: string;
}

/**
 * Some steps of a plan failed; every other target's steps were still run.
 * `skipped`: later steps of a target that already had a failure.
 */
export class ApplyPlanError extends Error {
  constructor(
    readonly failures: readonly PlanFailure[],
    readonly skipped: readonly { readonly target: string; readonly step: string }[],
    readonly ran: number,
    readonly blocked: number,
  ) {
    const list = failures.map((f) => `${f.target} ${f.step}: ${f.error}`).join('; ');
    super(`tgtd plan: ${failures.length} step(s) failed (${ran} ran, ${skipped.length} skipped after a failure): ${list}`);
    this.name = 'ApplyPlanError';
  }
}

/** What a step does, for errors and logs: the op and its object, never a secret. */
export function describeStep(op: TgtadmOp): string {
  switch (op.op) {
    case 'new-lun': case 'delete-lun': return `${op.op} ${op.lun}`;
    case 'lun-readonly': return `${op.op} ${op.lun}=${op.readonly ? 1 : 0}`;
    case 'new-target': return `${op.op} tid ${op.tid}`;
    case 'bind-name': case 'unbind-name': return `${op.op} ${op.iqn}`;
    case 'bind-address': case 'unbind-address': return `${op.op} ${op.address}`;
    case 'bind-account': case 'unbind-account': return `${op.op} ${op.user}${op.outgoing ? ' (outgoing)' : ''}`;
    case 'new-account': case 'delete-account': return `${op.op} ${op.user}`;
    default: return op.op;
  }
}

/**
 * Runs a plan's 'run' entries in order. One failed step does not stop the
 * others: a target whose LUN cannot be added (say, an LV left inactive by a
 * crash) must not leave every other machine's target unmade. Within one
 * target (same tid) the steps after a failure are skipped, because the plan
 * orders them so that access is granted last: an ACL bound after its CHAP
 * binding failed would admit the initiator without CHAP. For the same
 * reason a bind-account of an account whose creation failed is not tried
 * and counts as that target's failure. If setting readonly fails, the LUN
 * just added is deleted, so a LUN meant to be readonly is never left
 * exported writable. Throws ApplyPlanError listing every failure once all
 * steps were tried; the next reconcile re-plans from a fresh `show`.
 */
export async function applyPlan(tgtd: PlanRunner, ops: readonly PlanOp[]): Promise<{ ran: number; blocked: number }> {
  let ran = 0;
  let blocked = 0;
  const failures: PlanFailure[] = [];
  const skipped: { target: string; step: string }[] = [];
  const failedTids = new Set<number>();
  const failedUsers = new Set<string>();
  for (const o of ops) {
    if (o.type === 'blocked') { blocked++; continue; }
    const op = o.op;
    const tid = 'tid' in op ? op.tid : undefined;
    const target = o.target ?? ('user' in op && tid === undefined ? `account ${op.user}` : `tid ${tid ?? '?'}`);
    const step = describeStep(op);
    if (tid !== undefined && failedTids.has(tid)) { skipped.push({ target, step }); continue; }
    if (op.op === 'bind-account' && failedUsers.has(op.user)) {
      failures.push({ target, step, why: o.why, error: `account ${op.user} could not be created` });
      failedTids.add(op.tid);
      continue;
    }
    try {
      await tgtd.run(op);
      ran++;
    } catch (e) {
      if (op.op === 'lun-readonly' && op.readonly) await tgtd.run({ op: 'delete-lun', tid: op.tid, lun: op.lun }).catch(() => undefined);
      const error = redactSecret(op, errorMessage(e));
      failures.push({ target, step, why: o.why, error });
      if (tid !== undefined) failedTids.add(tid);
      if (op.op === 'new-account') failedUsers.add(op.user);
    }
  }
  if (failures.length > 0) throw new ApplyPlanError(failures, skipped, ran, blocked);
  return { ran, blocked };
}

/** Normalises a desired target's names so callers may pass any case; throws PlanError. */
export function normalizeDesired(d: DesiredTarget): DesiredTarget {
  const norm = (s: string): string => {
    const r = checkIscsiName(s);
    if (!r.ok) throw new PlanError(d.iqn, `${JSON.stringify(s)}: ${r.reason}`);
    return r.value.name;
  };
  return { ...d, iqn: norm(d.iqn), initiatorNames: d.initiatorNames.map(norm) };
}
