/**
 * The daemon's one event stream. Protocol servers and services publish what happened (typed
 * domain facts, no UI strings); the boot timeline, the status page, metrics, logs and the SSE
 * API read from it. Subscribers are called synchronously and may not throw into publishers: a
 * failing subscriber is counted and skipped. A bounded ring of recent events serves late
 * subscribers (the status page on load, `metalboot events`).
 */
import type { Mac } from '../net/mac.js';

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
  | { readonly type: 'ipmi.command'; readonly mac: Mac; readonly bmc: string; readonly command: string; readonly ok: boolean; readonly ms: number; readonly error?: string }
  | { readonly type: 'machine.state'; readonly mac: Mac; readonly from: string; readonly to: string; readonly reason: string; readonly actor: string }
  | { readonly type: 'machine.changed'; readonly mac: Mac; readonly what: string; readonly actor: string }
  | { readonly type: 'operation'; readonly id: string; readonly kind: string; readonly mac?: Mac; readonly status: 'running' | 'succeeded' | 'failed'; readonly step: string; readonly error?: string }
  | { readonly type: 'syslog'; readonly mac?: Mac; readonly ip: string; readonly severity: number; readonly text: string };

export type MetalbootEvent = EventBody & Base;
export type EventType = MetalbootEvent['type'];

export type Subscriber = (e: MetalbootEvent) => void;

export class EventBus {
  private readonly subs = new Set<Subscriber>();
  private readonly ring: MetalbootEvent[] = [];
  private head = 0;
  private seq = 0;
  readonly counters = { published: 0, subscriberErrors: 0 };

  constructor(private readonly clock: () => number = Date.now, private readonly keep = 2000) {}

  /**
   * Takes ownership of `body` (publishers build it fresh): it is stamped in place rather than
   * copied, since a DHCP storm publishes tens of thousands of these a second.
   */
  publish(body: EventBody): MetalbootEvent {
    const e = body as MetalbootEvent & { at: number; seq: number };
    e.at = this.clock();
    e.seq = ++this.seq;
    this.counters.published++;
    if (this.ring.length < this.keep) this.ring.push(e);
    else { this.ring[this.head] = e; this.head = (this.head + 1) % this.keep; }
    for (const s of this.subs) {
      try { s(e); } catch { this.counters.subscriberErrors++; }
    }
    return e;
  }

  subscribe(s: Subscriber): () => void {
    this.subs.add(s);
    return () => { this.subs.delete(s); };
  }

  /** Recent events, oldest first; `afterSeq` for resuming. */
  recent(filter: (e: MetalbootEvent) => boolean = () => true, afterSeq = 0): MetalbootEvent[] {
    const ordered = this.ring.length < this.keep ? this.ring : [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
    return ordered.filter((e) => e.seq > afterSeq && filter(e));
  }
}
