/**
 * Leases as a service: the pure LeaseTable decides, the store makes it
 * durable (a synced, group-committed write before the caller may reply), and
 * the conflict prober checks never-used addresses before their first offer.
 */
import type { SubnetConfig } from '../config/types.js';
import { tryParseIpv4, unmapIpv4, type Ipv4 } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';
import type { ConflictProber } from '../net/ping.js';
import type { Store, StoredReservation } from '../store/db.js';
import type { Lease } from './lease.js';
import type { Assignable, ClientDetails, LeaseTable, OfferChoice } from './table.js';

/** How many conflicting addresses one DISCOVER may skip before giving up. */
const MAX_PROBES_PER_DISCOVER = 4;

export interface LeaseEvents {
  /** An address answered the conflict check and was quarantined. */
  conflict?(ip: Ipv4, mac: Mac): void;
}

export class LeaseService {
  constructor(
    private readonly table: LeaseTable,
    private readonly store: Store,
    private readonly prober: ConflictProber,
    private readonly clock: () => number,
    private readonly events: LeaseEvents = {},
  ) {}

  subnetOf(ip: Ipv4): SubnetConfig | undefined {
    return this.table.subnetOf(ip);
  }

  leaseOf(mac: Mac): Lease | undefined {
    return this.table.leaseOf(mac);
  }

  hostnameFor(mac: Mac, fallback: string | undefined): string | undefined {
    return this.table.reservationOf(mac)?.hostname ?? fallback;
  }

  list(): Lease[] {
    return this.table.list();
  }

  counts(): { bound: number; declined: number; offered: number } {
    return this.table.counts(this.clock());
  }

  offerOf(mac: Mac): Ipv4 | undefined {
    return this.table.offerOf(mac, this.clock());
  }

  assignable(mac: Mac, ip: Ipv4, subnet: SubnetConfig): Assignable {
    return this.table.assignable(mac, ip, subnet, this.clock());
  }

  /** Picks and holds an address for a DISCOVER, probing fresh ones first. */
  async offer(mac: Mac, subnet: SubnetConfig, requested: Ipv4 | undefined): Promise<OfferChoice> {
    for (let attempt = 0; attempt <= MAX_PROBES_PER_DISCOVER; attempt++) {
      const choice = this.table.chooseOffer(mac, subnet, requested, this.clock());
      if (!choice.ok) return choice;
      // Hold it before probing, so a concurrent DISCOVER does not pick it too.
      this.table.holdOffer(mac, choice.ip, this.clock());
      if (!choice.needsProbe) return choice;
      if (!(await this.prober.inUse(choice.ip))) {
        this.table.markProbedClean(choice.ip);
        return choice;
      }
      const q = this.table.quarantine(choice.ip, this.clock(), mac);
      this.events.conflict?.(choice.ip, mac);
      await this.store.putLeases([q]);
      requested = undefined;
    }
    return { ok: false, reason: 'every address probed was in use', exhausted: true };
  }

  forgetOffer(mac: Mac): void {
    this.table.forgetOffer(mac);
  }

  /** Binds and persists; resolves once the lease is on disk. */
  async bind(mac: Mac, ip: Ipv4, subnet: SubnetConfig, details: ClientDetails): Promise<Lease> {
    const before = this.table.leaseOf(mac);
    const lease = this.table.bind(mac, ip, subnet.leaseTime, details, this.clock());
    // A client that moved had its old lease marked released by the table;
    // write that too (same batch), or after a restart the old address would
    // still load as bound to this client and stay unusable until it expired.
    const old = before && before.ip !== ip ? this.table.get(before.ip) : undefined;
    await this.store.putLeases(old && old !== before ? [old, lease] : [lease]);
    return lease;
  }

  async release(mac: Mac, ip: Ipv4): Promise<Lease | undefined> {
    const l = this.table.release(mac, ip, this.clock());
    if (l) await this.store.putLeases([l]);
    return l;
  }

  /**
   * Milliseconds since `mac`'s binding of `ip` began (its first ACK, not the last renewal: a
   * spoofed INIT-REBOOT re-ACK must not restart it); undefined when it holds no bound lease there.
   */
  msSinceBound(mac: Mac, ip: Ipv4): number | undefined {
    const l = this.table.leaseOf(mac);
    return l && l.state === 'bound' && l.ip === ip ? this.clock() - (l.boundAt ?? l.updatedAt) : undefined;
  }

  /** The bound, unexpired lease on `ip`, if any: who holds the address by our own ACK. */
  leaseAt(ip: Ipv4): Lease | undefined {
    const l = this.table.get(ip);
    return l && l.state === 'bound' && l.mac !== undefined && l.expiresAt > this.clock() ? l : undefined;
  }

  /** leaseAt for a socket's source address ("10.0.0.5" or "::ffff:10.0.0.5"). */
  leaseAtAddress(address: string): Lease | undefined {
    const ip = tryParseIpv4(unmapIpv4(address));
    return ip === undefined ? undefined : this.leaseAt(ip);
  }

  async decline(mac: Mac, ip: Ipv4): Promise<Lease> {
    const l = this.table.quarantine(ip, this.clock(), mac);
    await this.store.putLeases([l]);
    return l;
  }

  reservations(): ReturnType<LeaseTable['reservations']> {
    return this.table.reservations();
  }

  /** Adds or replaces an API reservation and persists it. */
  async reserve(r: StoredReservation): Promise<ReturnType<LeaseTable['reserve']>> {
    const res = this.table.reserve(r, this.clock());
    if (res.ok) await this.store.putReservation(r);
    return res;
  }

  /** Removes an API reservation; false when there is none (or it is a config one). */
  async unreserve(mac: Mac): Promise<boolean> {
    if (!this.table.unreserve(mac)) return false;
    await this.store.deleteReservation(mac);
    return true;
  }

  sweep(): number {
    return this.table.sweepOffers(this.clock());
  }
}
