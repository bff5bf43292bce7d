/**
 * Per-machine event history, fed from the bus: the bus ring is shared by every machine, so a
 * DHCP storm from others would push one machine's boot out of it; here each MAC keeps its own
 * last `perMac` events. Bounded: at most `maxMacs` machines, least recently active dropped first.
 */
import type { EventBus, MetalbootEvent } from '../events/bus.js';
import type { Mac } from '../net/mac.js';

export interface MacHistoryOptions {
  readonly perMac?: number;
  readonly maxMacs?: number;
}

export class MacHistory {
  private readonly byMac = new Map<Mac, MetalbootEvent[]>();
  private readonly perMac: number;
  private readonly maxMacs: number;

  constructor(opts: MacHistoryOptions = {}) {
    this.perMac = opts.perMac ?? 200;
    this.maxMacs = opts.maxMacs ?? 1024;
  }

  /** Subscribes to the bus and first takes what its ring still holds; returns the unsubscribe. */
  attach(bus: EventBus): () => void {
    for (const e of bus.recent()) this.add(e);
    return bus.subscribe((e) => this.add(e));
  }

  add(e: MetalbootEvent): void {
    if (!e.mac) return;
    let list = this.byMac.get(e.mac);
    if (list) this.byMac.delete(e.mac); // re-insert: Map order is the eviction order
    else list = [];
    list.push(e);
    if (list.length > this.perMac) list.splice(0, list.length - this.perMac);
    this.byMac.set(e.mac, list);
    if (this.byMac.size > this.maxMacs) this.byMac.delete(this.byMac.keys().next().value as Mac);
  }

  /** Oldest first. */
  of(mac: Mac): readonly MetalbootEvent[] {
    return this.byMac.get(mac) ?? [];
  }

  /** MACs seen, most recently active first. */
  macs(): Mac[] {
    return [...this.byMac.keys()].reverse();
  }

  get size(): number {
    return this.byMac.size;
  }
}
