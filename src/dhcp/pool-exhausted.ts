/**
 * When to warn that a DHCP pool ran out (pure, clock passed in): at most once per subnet per
 * `intervalMs`, with how many exhausted DISCOVERs went unreported since the last warning. A client
 * retrying every few seconds, or a flood of new MACs, must not become a flood of warnings; the
 * metalboot_dhcp_pool_exhausted_total metric counts every one. Subnets come from the config, so
 * the map is bounded by it. The decision is pure (PoolExhaustionWarnings, clock passed in);
 * warnOnPoolExhaustion feeds it the bus's events and writes the lines.
 */
import type { EventBus } from '../events/bus.js';

export interface PoolExhaustedWarning {
  readonly subnet: string;
  /** Exhausted DISCOVERs in this subnet since the last warning that were not warned about. */
  readonly suppressed: number;
}

export class PoolExhaustionWarnings {
  private readonly bySubnet = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs = 60_000) {}

  /** One exhausted DISCOVER in `subnet` at `now`: the warning to log, or undefined to stay quiet. */
  note(subnet: string, now: number): PoolExhaustedWarning | undefined {
    const s = this.bySubnet.get(subnet);
    if (s && now - s.at < this.intervalMs) { s.suppressed++; return undefined; }
    this.bySubnet.set(subnet, { at: now, suppressed: 0 });
    return { subnet, suppressed: s?.suppressed ?? 0 };
  }
}

/** Logs `dhcp.pool-exhausted` for the bus's exhausted `dhcp.no-address` events, rate-limited as above; returns the unsubscribe. */
export function warnOnPoolExhaustion(bus: EventBus, log: { warn(obj: object, msg: string): void }, clock: () => number, intervalMs = 60_000): () => void {
  const exhausted = new PoolExhaustionWarnings(intervalMs);
  return bus.subscribe((e) => {
    if (e.type !== 'dhcp.no-address' || !e.exhaustedSubnet) return;
    const w = exhausted.note(e.exhaustedSubnet, clock());
    if (w) log.warn({ event: 'dhcp.pool-exhausted', subnet: w.subnet, mac: e.mac, suppressed: w.suppressed }, `DHCP pool of ${w.subnet} exhausted: no address to offer`);
  });
}
