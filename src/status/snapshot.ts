/**
 * The status page's data: one JSON snapshot (machines, leases, transfers, iSCSI sessions, pool,
 * counters) and one per-machine view (row, boot timeline, event history). Reads only; every
 * source is optional so the page works in any daemon set-up (proxy DHCP, no iSCSI, ...).
 * Only fields listed here leave the daemon: disk records carry CHAP secrets, so sessions and
 * images are copied field by field, never spread.
 */
import type { EventBus, MetalbootEvent } from '../events/bus.js';
import type { AddressBook } from '../events/addresses.js';
import type { Lease } from '../leases/lease.js';
import { formatIpv4 } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';
import type { Usage } from '../storage/backend.js';
import type { MacHistory } from './history.js';
import { buildTimeline, lastStep, type BootAttempt } from './timeline.js';
import type { DaemonProbes, MachineRow } from './types.js';

export interface StatusSources {
  readonly bus: EventBus;
  readonly history: MacHistory;
  readonly probes: DaemonProbes;
  readonly clock: () => number;
  readonly addresses?: AddressBook;
  readonly leases?: () => readonly Lease[];
  /** tgtd targets with their sessions (reconciler.lastShow()). */
  readonly targets?: () => readonly { readonly iqn: string; readonly sessions: readonly { readonly initiator: string; readonly connections: readonly { readonly address: string }[] }[] }[];
  /** Which machine owns which target, and its image. */
  readonly disks?: () => readonly { readonly mac: Mac; readonly targetIqn: string; readonly imageId: string }[];
  readonly poolUsage?: () => Promise<Usage | undefined>;
}

/** What the page reads of storage (the reconciler and the disk service; absent when iSCSI is off). */
export interface StorageStatus {
  readonly reconciler: { lastShow(): ReturnType<NonNullable<StatusSources['targets']>> };
  readonly disks: { list(): ReturnType<NonNullable<StatusSources['disks']>>; usage(): Promise<Usage> };
}

/**
 * The storage sources: tgtd's targets, which machine owns which (copied field by field: disk
 * records hold CHAP secrets), and the pool's usage, read at most every `usageMaxAgeMs` (usage()
 * may run lvs: one reading serves every page for a few seconds).
 */
export function storageSources(st: StorageStatus, clock: () => number, usageMaxAgeMs = 5000): Pick<StatusSources, 'targets' | 'disks' | 'poolUsage'> {
  let usageAt = -Infinity;
  let usage: Promise<Usage | undefined> | undefined;
  return {
    targets: () => st.reconciler.lastShow(),
    disks: () => st.disks.list().map((r) => ({ mac: r.mac, targetIqn: r.targetIqn, imageId: r.imageId })),
    poolUsage: () => {
      if (!usage || clock() - usageAt > usageMaxAgeMs) { usageAt = clock(); usage = st.disks.usage().catch(() => undefined); }
      return usage;
    },
  };
}

export type Health = 'ok' | 'busy' | 'warn' | 'bad' | 'idle';

export interface MachineView {
  mac: string;
  name: string;
  ip: string | null;
  state: string;
  power: 'on' | 'off' | 'unknown' | null;
  image: string | null;
  lastStep: string | null;
  lastStepAt: number | null;
  /** done | running | failed of that step, when it comes from the timeline. */
  lastStepState: string | null;
  health: Health;
  /** Where the row comes from: the machines service, or only what DHCP and the others saw. */
  source: 'machines' | 'events';
}

export interface StatusSnapshot {
  now: number;
  lastSeq: number;
  machines: MachineView[];
  leases: { mac: string | null; ip: string; state: string; expiresAt: number; hostname: string | null }[];
  transfers: { client: string; mac: string | null; file: string; size: number; bytes: number; startedAt: number; retransmits: number }[];
  sessions: { target: string; initiator: string; addresses: string[]; mac: string | null }[];
  pool: { backend: string; dataPercent: number; metadataPercent: number | null; thresholdPercent: number; totalBytes: number; health: string | null } | null;
  counters: Record<string, Record<string, number>>;
}

const STUCK_MS = 10 * 60_000;
const MAX_ROWS = 1000;

export function healthOf(state: string, attempts: readonly BootAttempt[], now: number): Health {
  if (/fail|error/i.test(state)) return 'bad';
  const a = attempts.at(-1);
  if (!a) return state === 'active' ? 'ok' : 'idle';
  if (a.state === 'failed' || a.steps.at(-1)?.state === 'failed') return 'bad';
  if (a.state === 'active') return 'ok';
  if (a.state === 'interrupted') return 'warn';
  return now - a.lastEventAt > STUCK_MS ? 'warn' : 'busy';
}

function lastDhcp(events: readonly MetalbootEvent[]): { hostname?: string; ip?: string } {
  const out: { hostname?: string; ip?: string } = {};
  for (let i = events.length - 1; i >= 0 && (out.hostname === undefined || out.ip === undefined); i--) {
    const e = events[i]!;
    if (!e.type.startsWith('dhcp.')) continue;
    const d = e as Extract<MetalbootEvent, { type: `dhcp.${string}` }>;
    if (out.hostname === undefined && d.hostname) out.hostname = d.hostname;
    if (out.ip === undefined && d.ip && d.ip !== '0.0.0.0') out.ip = d.ip;
  }
  return out;
}

export class StatusModel {
  constructor(private readonly s: StatusSources) {}

  timeline(mac: Mac): BootAttempt[] {
    return buildTimeline(this.s.history.of(mac), { now: this.s.clock() });
  }

  private view(row: MachineRow | undefined, mac: Mac, now: number, images: Map<string, string>): MachineView {
    const events = this.s.history.of(mac);
    const attempts = buildTimeline(events, { now });
    const step = lastStep(attempts);
    const seen = lastDhcp(events);
    const state = row?.state ?? (attempts.length === 0 ? 'seen' : ({ running: 'booting', active: 'booted', failed: 'failed', interrupted: 'interrupted' } as const)[attempts.at(-1)!.state]);
    return {
      mac,
      name: row?.name ?? seen.hostname ?? mac,
      ip: row?.ip ?? this.s.addresses?.ipOf(mac) ?? seen.ip ?? null,
      state,
      power: row?.power ?? null,
      image: row?.image ?? images.get(mac) ?? null,
      lastStep: row?.lastStep ?? step?.name ?? null,
      lastStepAt: row?.lastStepAt ?? step?.at ?? null,
      lastStepState: row?.lastStep !== undefined ? null : step?.state ?? null,
      health: healthOf(state, attempts, now),
      source: row ? 'machines' : 'events',
    };
  }

  machines(): MachineView[] {
    const now = this.s.clock();
    const images = new Map((this.s.disks?.() ?? []).map((d) => [d.mac as string, d.imageId]));
    const rows = this.s.probes.machines?.rows();
    // Machines the service knows, then MACs only seen in events (an unenrolled DHCP client), as the
    // page's live rows add them: a reload must not drop what the stream just showed.
    const known = new Set((rows ?? []).map((r) => r.mac as string));
    const seen = this.s.history.macs().filter((m) => !known.has(m));
    return [...(rows ?? []).map((r) => this.view(r, r.mac as Mac, now, images)), ...seen.map((m) => this.view(undefined, m, now, images))].slice(0, MAX_ROWS);
  }

  machine(mac: Mac): { machine: MachineView | null; timeline: BootAttempt[]; events: readonly MetalbootEvent[] } {
    const now = this.s.clock();
    const images = new Map((this.s.disks?.() ?? []).map((d) => [d.mac as string, d.imageId]));
    const row = this.s.probes.machines?.rows().find((r) => r.mac === mac);
    const events = this.s.history.of(mac);
    const known = row !== undefined || events.length > 0;
    return { machine: known ? this.view(row, mac, now, images) : null, timeline: buildTimeline(events, { now }), events };
  }

  async snapshot(extraCounters: Record<string, Record<string, number>> = {}): Promise<StatusSnapshot> {
    const now = this.s.clock();
    const { probes, addresses } = this.s;
    const owner = new Map((this.s.disks?.() ?? []).map((d) => [d.targetIqn, d.mac as string]));
    let pool: StatusSnapshot['pool'] = null;
    try {
      const u = await this.s.poolUsage?.();
      if (u) pool = { backend: u.backend, dataPercent: u.dataPercent, metadataPercent: u.metadataPercent ?? null, thresholdPercent: u.thresholdPercent, totalBytes: u.totalBytes, health: u.health ?? null };
    } catch { /* pool unreadable right now: shown as unknown */ }
    const d = probes.dhcp?.counters;
    const counters: Record<string, Record<string, number>> = {
      events: { ...this.s.bus.counters },
      ...(d ? { dhcp: { received: d.received, malformed: d.malformed, replies: d.replies, ignored: d.ignored, errors: d.errors, ...Object.fromEntries(d.byEvent) } } : {}),
      ...(probes.tftp ? { tftp: { ...probes.tftp.counters } } : {}),
      ...(probes.syslog ? { syslog: { ...probes.syslog.counters } } : {}),
      ...extraCounters,
    };
    return {
      now,
      lastSeq: this.s.bus.recent().at(-1)?.seq ?? 0,
      machines: this.machines(),
      leases: (this.s.leases?.() ?? []).slice(0, MAX_ROWS).map((l) => ({
        mac: l.mac ?? null, ip: formatIpv4(l.ip), state: l.state === 'bound' && l.expiresAt <= now ? 'expired' : l.state, expiresAt: l.expiresAt, hostname: l.hostname ?? null,
      })),
      transfers: (probes.tftp?.transfersInProgress() ?? []).map((t) => ({
        client: t.client, mac: addresses?.macOf(t.client) ?? null, file: t.file, size: t.size, bytes: t.bytes, startedAt: t.startedAt, retransmits: t.retransmits,
      })),
      sessions: (this.s.targets?.() ?? []).flatMap((t) => t.sessions.map((s) => ({
        target: t.iqn, initiator: s.initiator, addresses: s.connections.map((c) => c.address), mac: owner.get(t.iqn) ?? null,
      }))),
      pool,
      counters,
    };
  }
}
