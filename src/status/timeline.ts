/**
 * A machine's boot attempts, from its events (pure: events and `now` in, attempts out).
 *
 * One attempt is the path DHCP → TFTP → script → iSCSI → active. Steps are kept in that order;
 * a step absent from a boot (UEFI HTTP boot has no TFTP, a local-disk boot no iSCSI) is simply
 * not there. Each step begins at its own first event (DHCP offer, TFTP start) or, for the steps
 * that are one event (script served, iSCSI login, machine active), where the previous step
 * ended, so the steps of an attempt tile it without gaps and draw as one horizontal bar.
 *
 * A new attempt starts at a DHCP offer (or an ACK with no attempt open):
 * - when there is no attempt yet, or the last one ended (active or failed) and the offer is
 *   to a boot client (PXE, iPXE, HTTP boot; not the booted system's own DHCP);
 * - when the open one is clearly over because the machine restarted: a PXE ROM (PXEClient,
 *   not iPXE) asks again after a TFTP download, or any boot client asks after its script was
 *   served. (iPXE's own DHCP right after its TFTP download belongs to the same attempt.)
 * The superseded attempt is `interrupted`, its running steps failed.
 * Events of an earlier step arriving once a later one has begun (that second DHCP, a TFTP
 * retry) do not reopen it.
 *
 * Syslog lines (iPXE's own messages: "net0: ... ok", sanboot errors) are kept with the latest
 * attempt when they arrive (the boot the machine is in), the last MESSAGES_KEPT of them; they
 * never change its steps. Lines before any attempt belong to none.
 */
import type { MetalbootEvent } from '../events/bus.js';

const STEP_NAMES = ['dhcp', 'tftp', 'script', 'iscsi', 'active'] as const;
export type StepName = (typeof STEP_NAMES)[number];
export type StepState = 'done' | 'running' | 'failed';
export type AttemptState = 'running' | 'active' | 'failed' | 'interrupted';

/** Syslog lines kept per attempt (the newest). */
export const MESSAGES_KEPT = 20;

export interface AttemptMessage {
  /** Epoch ms the line arrived. */
  readonly at: number;
  readonly text: string;
  /** RFC 5424 §6.2.1 severity, 0 (emergency) … 7 (debug). */
  readonly severity: number;
}

export interface TimelineStep {
  readonly name: StepName;
  /** Epoch ms the step began. */
  readonly at: number;
  /** Epoch ms it ended (done or failed); absent while running. */
  readonly endAt?: number;
  /** endAt − at, or now − at while running. */
  readonly durationMs: number;
  readonly state: StepState;
  /** The fact behind the step: address, file, script action, target, state reason, error. Raw data, not UI text. */
  readonly detail?: string;
}

export interface BootAttempt {
  readonly startedAt: number;
  /** Last event of the attempt. */
  readonly lastEventAt: number;
  /** When it became active, failed or was interrupted. */
  readonly endedAt?: number;
  readonly state: AttemptState;
  readonly steps: readonly TimelineStep[];
  /** The machine's syslog lines during the attempt, oldest first, at most MESSAGES_KEPT. */
  readonly messages: readonly AttemptMessage[];
  /** Bus sequence numbers of its first and last event (to group the event history). */
  readonly firstSeq: number;
  readonly lastSeq: number;
}

export interface TimelineOptions {
  readonly now: number;
  /** Attempts kept, newest last; default 10. */
  readonly keep?: number;
  /** machine.state targets that mean "booted"; default ['active']. */
  readonly activeStates?: readonly string[];
  /** machine.state targets that mean the boot failed; default ['failed', 'error']. */
  readonly failedStates?: readonly string[];
}

interface MutStep { name: StepName; at: number; endAt?: number; state: StepState; detail?: string }
interface MutAttempt { startedAt: number; lastEventAt: number; endedAt?: number; state: AttemptState; steps: MutStep[]; messages: AttemptMessage[]; firstSeq: number; lastSeq: number }

const ORDER: Record<StepName, number> = { dhcp: 0, tftp: 1, script: 2, iscsi: 3, active: 4 };

type DhcpEvent = Extract<MetalbootEvent, { type: `dhcp.${string}` }>;

function isBootClient(e: DhcpEvent): boolean {
  return e.ipxe === true || (e.vendorClass?.startsWith('PXEClient') ?? false) || (e.vendorClass?.startsWith('HTTPClient') ?? false);
}

export function buildTimeline(events: readonly MetalbootEvent[], opts: TimelineOptions): BootAttempt[] {
  const keep = opts.keep ?? 10;
  const activeStates = opts.activeStates ?? ['active'];
  const failedStates = opts.failedStates ?? ['failed', 'error'];
  const attempts: MutAttempt[] = [];
  let cur: MutAttempt | undefined;

  const last = (): MutStep | undefined => cur?.steps.at(-1);
  const has = (n: StepName): boolean => cur?.steps.some((s) => s.name === n) ?? false;
  /** The latest step's end, or its start while it runs: where a one-event step begins. */
  const edge = (e: MetalbootEvent): number => { const l = last(); return l ? l.endAt ?? l.at : e.at; };
  const laterBegun = (n: StepName): boolean => { const l = last(); return l !== undefined && ORDER[l.name] > ORDER[n]; };

  const open = (e: MetalbootEvent): MutAttempt => {
    if (cur && cur.state === 'running') {
      cur.state = 'interrupted';
      cur.endedAt = e.at;
      for (const s of cur.steps) if (s.state === 'running') { s.state = 'failed'; s.endAt = e.at; s.detail = 'interrupted'; }
    }
    cur = { startedAt: e.at, lastEventAt: e.at, state: 'running', steps: [], messages: [], firstSeq: e.seq, lastSeq: e.seq };
    attempts.push(cur);
    return cur;
  };
  const finish = (state: 'active' | 'failed', at: number): void => {
    if (!cur) return;
    cur.state = state;
    cur.endedAt = at;
  };
  /** Appends a one-event step (begins where the previous ended) unless a later one exists. */
  const instant = (e: MetalbootEvent, name: StepName, state: StepState, detail?: string): void => {
    if (!cur || laterBegun(name)) return;
    const l = last();
    if (l?.name === name) {
      // The same step again (a second script fetch, another login): it ends here now.
      l.endAt = e.at; l.state = state; if (detail !== undefined) l.detail = detail;
      return;
    }
    if (l && l.state === 'running') { l.state = 'done'; l.endAt = e.at; }
    cur.steps.push({ name, at: edge(e), endAt: e.at, state, ...(detail !== undefined ? { detail } : {}) });
  };

  for (const e of events) {
    if (e.type.startsWith('dhcp.')) {
      const d = e as DhcpEvent;
      const starts = d.type === 'dhcp.offer' || d.type === 'dhcp.proxy-offer';
      const acks = d.type === 'dhcp.ack' || d.type === 'dhcp.proxy-ack';
      const restarted = cur !== undefined && cur.state === 'running' && starts && isBootClient(d) && (
        has('script') || has('iscsi') || (d.ipxe !== true && has('tftp')));
      // After an ended attempt only a boot client starts the next one (not the booted OS's own DHCP).
      if ((starts || (acks && !cur)) && (!cur || (cur.state !== 'running' && isBootClient(d)) || restarted)) open(e);
      if (!cur) continue;
      if (cur.state === 'running' && !laterBegun('dhcp')) {
        let s = cur.steps.find((x) => x.name === 'dhcp');
        if (!s) { s = { name: 'dhcp', at: e.at, state: 'running' }; cur.steps.push(s); }
        if (acks) { s.state = 'done'; s.endAt = e.at; if (d.ip) s.detail = d.ip; }
        else if (d.type === 'dhcp.no-address') { s.state = 'failed'; s.endAt = e.at; s.detail = d.reason ?? 'no address'; }
        else if (starts && s.state !== 'done') { s.state = 'running'; delete s.endAt; }
      }
    } else if (e.type === 'tftp.start' || e.type === 'tftp.end') {
      if (!cur || cur.state !== 'running' || laterBegun('tftp')) { if (cur) touch(cur, e); continue; }
      let s = last()?.name === 'tftp' ? last() : undefined;
      if (e.type === 'tftp.start') {
        const l = last();
        if (l && l.state === 'running' && l.name !== 'tftp') { l.state = 'done'; l.endAt = e.at; }
        if (!s) { s = { name: 'tftp', at: e.at, state: 'running', detail: e.file }; cur.steps.push(s); }
        else { s.state = 'running'; s.detail = e.file; delete s.endAt; }
      } else {
        if (!s) { s = { name: 'tftp', at: e.at - e.durationMs, state: 'running' }; cur.steps.push(s); }
        // A declined transfer (a size query) is the firmware getting ready for the real one.
        if (e.declined) continue;
        s.endAt = e.at;
        s.state = e.ok ? 'done' : 'failed';
        s.detail = e.ok ? e.file : (e.error ?? 'transfer failed');
      }
    } else if (e.type === 'boot.script') {
      if (cur && cur.state === 'running') instant(e, 'script', e.served ? 'done' : 'failed', e.served ? e.action : (e.reason ?? 'refused'));
    } else if (e.type === 'iscsi.login') {
      if (cur && cur.state === 'running') instant(e, 'iscsi', 'done', e.iqn);
    } else if (e.type === 'syslog') {
      if (cur) {
        cur.messages.push({ at: e.at, text: e.text, severity: e.severity });
        if (cur.messages.length > MESSAGES_KEPT) cur.messages.shift();
      }
    } else if (e.type === 'machine.state') {
      if (cur && cur.state === 'running') {
        if (activeStates.includes(e.to)) { instant(e, 'active', 'done', e.reason); finish('active', e.at); }
        else if (failedStates.includes(e.to)) {
          const l = last();
          if (l && l.state === 'running') { l.state = 'failed'; l.endAt = e.at; l.detail = e.reason; }
          finish('failed', e.at);
        }
      }
    }
    if (cur) touch(cur, e);
  }
  // A step failed with nothing after it ends the attempt as failed (TFTP retries reopen it above).
  for (const a of attempts) {
    const l = a.steps.at(-1);
    if (a.state === 'running' && l?.state === 'failed' && l.name !== 'tftp' && l.name !== 'dhcp') { a.state = 'failed'; a.endedAt = l.endAt ?? l.at; }
  }
  return attempts.slice(-keep).map((a) => ({
    startedAt: a.startedAt,
    lastEventAt: a.lastEventAt,
    ...(a.endedAt !== undefined ? { endedAt: a.endedAt } : {}),
    state: a.state,
    firstSeq: a.firstSeq,
    lastSeq: a.lastSeq,
    steps: a.steps.map((s) => ({
      name: s.name, at: s.at,
      ...(s.endAt !== undefined ? { endAt: s.endAt } : {}),
      durationMs: Math.max(0, (s.endAt ?? opts.now) - s.at),
      state: s.state,
      ...(s.detail !== undefined ? { detail: s.detail } : {}),
    })),
    messages: a.messages,
  }));
}

function touch(a: MutAttempt, e: MetalbootEvent): void {
  if (e.seq < a.firstSeq) return;
  a.lastEventAt = Math.max(a.lastEventAt, e.at);
  a.lastSeq = Math.max(a.lastSeq, e.seq);
}

/** The newest step of the newest attempt, for the machines table. */
export function lastStep(attempts: readonly BootAttempt[]): { name: StepName; at: number; state: StepState; attempt: AttemptState } | undefined {
  const a = attempts.at(-1);
  const s = a?.steps.at(-1);
  return a && s ? { name: s.name, at: s.endAt ?? s.at, state: s.state, attempt: a.state } : undefined;
}
