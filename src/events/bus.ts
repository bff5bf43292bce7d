/**
 * The daemon's one event stream. Protocol servers and services publish what happened (typed
 * domain facts, no UI strings); the boot timeline, the status page, metrics, logs and the SSE
 * API read from it. Subscribers are called synchronously and may not throw into publishers: a
 * failing subscriber is counted and skipped. A bounded ring of recent events serves late
 * subscribers (the status page on load, `metalboot events`). Syslog lines, whose rate a client
 * controls, are kept in a ring of their own (`apart`): however many come, they cannot push the
 * other events out of the shared ring.
 */
import type { Mac } from '../net/mac.js';
import type { PowerErrorKind } from '../power/driver.js';

interface Base {
  /** Epoch ms, set by the bus. */
  readonly at: number;
  /** Monotonic per bus; lets a client resume a stream (SSE Last-Event-ID). */
  readonly seq: number;
  readonly mac?: Mac;
}

export type DhcpEventType =
  | 'dhcp.offer' | 'dhcp.ack' | 'dhcp.nak' | 'dhcp.decline' | 'dhcp.release' | 'dhcp.inform'
  | 'dhcp.proxy-offer' | 'dhcp.proxy-ack' | 'dhcp.ignored' | 'dhcp.no-address';

export type EventBody =
  | { readonly type: DhcpEventType; readonly mac?: Mac; readonly ip?: string; readonly message?: string; readonly arch?: string; readonly vendorClass?: string; readonly uuid?: string; readonly hostname?: string; readonly ipxe?: boolean; readonly bootFile?: string; readonly reason?: string; /** dhcp.no-address: the subnet whose pool ran out */ readonly exhaustedSubnet?: string }
  | { readonly type: 'tftp.start'; readonly client: string; readonly file: string; readonly size: number; readonly mac?: Mac }
  | { readonly type: 'tftp.end'; readonly client: string; readonly file: string; readonly ok: boolean; readonly declined?: true; readonly bytes: number; readonly size: number; readonly durationMs: number; readonly retransmits: number; readonly error?: string; readonly mac?: Mac }
  | { readonly type: 'boot.script'; readonly mac: Mac; readonly ip: string; readonly action: string; readonly served: boolean; readonly reason?: string }
  | { readonly type: 'iscsi.login' | 'iscsi.logout'; readonly iqn: string; readonly initiator: string; readonly address?: string; readonly mac?: Mac }
  /** One command to a machine's BMC through its power driver; `target` names the BMC (host:port, URL), `error` the PowerError kind. */
  | { readonly type: 'power.command'; readonly mac: Mac; readonly driver: string; readonly target: string; readonly command: string; readonly ok: boolean; readonly ms: number; readonly error?: PowerErrorKind }
  | { readonly type: 'machine.state'; readonly mac: Mac; readonly from: string; readonly to: string; readonly reason: string; readonly actor: string }
  | { readonly type: 'machine.changed'; readonly mac: Mac; readonly what: string; readonly actor: string }
  | { readonly type: 'operation'; readonly id: string; readonly kind: string; readonly mac?: Mac; readonly status: 'running' | 'succeeded' | 'failed'; readonly step: string; readonly error?: string }
  | { readonly type: 'syslog'; readonly mac?: Mac; readonly ip: string; readonly severity: number; readonly text: string };

export type MetalbootEvent = EventBody & Base;
export type EventType = MetalbootEvent['type'];

export type Subscriber = (e: MetalbootEvent) => void;

/** A bounded ring of events, oldest overwritten first. */
class Ring {
  private readonly items: MetalbootEvent[] = [];
  private head = 0;
  /** seq of the newest event overwritten (0: none yet). */
  lost = 0;
  constructor(private readonly keep: number) {}

  push(e: MetalbootEvent): void {
    if (this.items.length < this.keep) this.items.push(e);
    else { this.lost = this.items[this.head]!.seq; this.items[this.head] = e; this.head = (this.head + 1) % this.keep; }
  }

  /** Oldest first. */
  ordered(): MetalbootEvent[] {
    return this.items.length < this.keep ? this.items : [...this.items.slice(this.head), ...this.items.slice(0, this.head)];
  }
}

/** Default separate rings: syslog lines keep at most 500 of their own. */
export const DEFAULT_APART: Readonly<Partial<Record<EventType, number>>> = { syslog: 500 };

export class EventBus {
  private readonly subs = new Set<Subscriber>();
  private readonly ring: Ring;
  private readonly apartRings = new Map<string, Ring>();
  private seq = 0;
  readonly counters = { published: 0, subscriberErrors: 0 };

  /** `keep`: the shared ring's size; `apart`: event types kept in rings of their own, and their sizes. */
  constructor(private readonly clock: () => number = Date.now, keep = 2000, apart: Readonly<Partial<Record<EventType, number>>> = DEFAULT_APART) {
    this.ring = new Ring(keep);
    for (const [type, n] of Object.entries(apart)) if (n !== undefined) this.apartRings.set(type, new Ring(n));
  }

  /**
   * Takes ownership of `body` (publishers build it fresh): it is stamped in place rather than
   * copied, since a DHCP storm publishes tens of thousands of these a second.
   */
  publish(body: EventBody): MetalbootEvent {
    const e = body as MetalbootEvent & { at: number; seq: number };
    e.at = this.clock();
    e.seq = ++this.seq;
    this.counters.published++;
    (this.apartRings.get(e.type) ?? this.ring).push(e);
    for (const s of this.subs) {
      try { s(e); } catch { this.counters.subscriberErrors++; }
    }
    return e;
  }

  subscribe(s: Subscriber): () => void {
    this.subs.add(s);
    return () => { this.subs.delete(s); };
  }

  /**
   * The first seq from which every event is still held: a reader resuming after an older seq
   * has missed some (the SSE gap). With several rings this is not simply the oldest held.
   */
  firstComplete(): number {
    let lost = this.ring.lost;
    for (const r of this.apartRings.values()) lost = Math.max(lost, r.lost);
    return lost + 1;
  }

  /** Recent events, oldest first; `afterSeq` for resuming. */
  recent(filter: (e: MetalbootEvent) => boolean = () => true, afterSeq = 0): MetalbootEvent[] {
    let ordered = this.ring.ordered();
    for (const r of this.apartRings.values()) {
      const more = r.ordered();
      // Each ring is in seq order; merged by seq (publish order).
      if (more.length > 0) ordered = [...ordered, ...more].sort((a, b) => a.seq - b.seq);
    }
    return ordered.filter((e) => e.seq > afterSeq && filter(e));
  }
}
