/**
 * The lease table (pure: no I/O, the time is passed in). It decides which
 * address a client gets and keeps the in-memory view of leases, held offers,
 * reservations and quarantined addresses. The service persists what it
 * returns; the table is updated first, so a second client can never be handed
 * an address whose write is still on its way to disk.
 *
 * Clients are identified by MAC (chaddr), not option 61: machines in a boot
 * lab are keyed by MAC everywhere else too, and PXE ROM, iPXE and the booted
 * OS then share one lease instead of taking three addresses.
 */
import type { ReservationConfig, SubnetConfig } from '../config/types.js';
import { cidrBroadcast, cidrContains, formatCidr, type Ipv4 } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';
import type { Lease } from './lease.js';

export interface LeaseTableOptions {
  readonly subnets: readonly SubnetConfig[];
  readonly reservations: readonly ReservationConfig[];
  readonly offerHoldMs: number;
  readonly quarantineMs: number;
}

export interface ClientDetails {
  readonly hostname?: string;
  readonly clientArch?: number;
  readonly vendorClass?: string;
  readonly clientId?: string;
}

export type OfferChoice =
  | { readonly ok: true; readonly ip: Ipv4; /** never leased or probed: check for a conflict first */ readonly needsProbe: boolean }
  /** exhausted: no free address left in the pool (not a reserved address that is taken). */
  | { readonly ok: false; readonly reason: string; readonly exhausted?: boolean };

/** Why an address cannot go to a client (or 'ok'). */
export type Assignable = 'ok' | 'not-in-subnet' | 'in-use' | 'reserved' | 'quarantined' | 'not-in-pool';

interface HeldOffer {
  readonly ip: Ipv4;
  readonly expiresAt: number;
}

export class LeaseTable {
  private readonly byIp = new Map<Ipv4, Lease>();
  private readonly ipByMac = new Map<Mac, Ipv4>();
  private readonly offers = new Map<Mac, HeldOffer>();
  private readonly offeredTo = new Map<Ipv4, Mac>();
  private readonly reservedByMac = new Map<Mac, ReservationConfig>();
  private readonly reservedByIp = new Map<Ipv4, ReservationConfig>();
  private readonly probedClean = new Set<Ipv4>();
  private readonly cursors = new Map<SubnetConfig, number>();
  private readonly configReserved = new Set<Mac>();

  constructor(private readonly opts: LeaseTableOptions, leases: Iterable<Lease> = []) {
    for (const r of opts.reservations) {
      this.reservedByMac.set(r.mac, r);
      this.reservedByIp.set(r.ip, r);
      this.configReserved.add(r.mac);
    }
    for (const l of leases) this.record(l);
  }

  /** The configured subnet containing addr. */
  subnetOf(addr: Ipv4): SubnetConfig | undefined {
    return this.opts.subnets.find((s) => cidrContains(s.cidr, addr));
  }

  get(ip: Ipv4): Lease | undefined {
    return this.byIp.get(ip);
  }

  leaseOf(mac: Mac): Lease | undefined {
    const ip = this.ipByMac.get(mac);
    return ip === undefined ? undefined : this.byIp.get(ip);
  }

  reservationOf(mac: Mac): ReservationConfig | undefined {
    return this.reservedByMac.get(mac);
  }

  list(): Lease[] {
    return [...this.byIp.values()].sort((a, b) => a.ip - b.ip);
  }

  /** Counts for metrics: addresses in pools, bound now, quarantined now. */
  counts(now: number): { bound: number; declined: number; offered: number } {
    let bound = 0, declined = 0;
    for (const l of this.byIp.values()) {
      if (l.expiresAt <= now) continue;
      if (l.state === 'bound') bound++;
      else if (l.state === 'declined') declined++;
    }
    return { bound, declined, offered: this.offers.size };
  }

  private record(l: Lease): void {
    const old = this.byIp.get(l.ip);
    if (old?.mac !== undefined && this.ipByMac.get(old.mac) === l.ip) this.ipByMac.delete(old.mac);
    this.byIp.set(l.ip, l);
    if (l.mac !== undefined && l.state !== 'declined') {
      const prevIp = this.ipByMac.get(l.mac);
      // A client holds one address per table: its newest lease wins.
      if (prevIp === undefined || (this.byIp.get(prevIp)?.updatedAt ?? 0) <= l.updatedAt) this.ipByMac.set(l.mac, l.ip);
    }
  }

  private dropOffer(mac: Mac): void {
    const o = this.offers.get(mac);
    if (o) {
      this.offers.delete(mac);
      if (this.offeredTo.get(o.ip) === mac) this.offeredTo.delete(o.ip);
    }
  }

  private inPool(subnet: SubnetConfig, ip: Ipv4): boolean {
    return subnet.pool !== undefined && ip >= subnet.pool.first && ip <= subnet.pool.last;
  }

  /** Whether ip may be given to mac in subnet now (RFC 2131 §4.3.1/§4.3.2 checks). */
  assignable(mac: Mac, ip: Ipv4, subnet: SubnetConfig, now: number): Assignable {
    if (!cidrContains(subnet.cidr, ip) || ip === subnet.cidr.network || ip === cidrBroadcast(subnet.cidr)) return 'not-in-subnet';
    const res = this.reservedByIp.get(ip);
    if (res && res.mac !== mac) return 'reserved';
    // A client with a reservation here must not keep renewing a dynamic
    // address it got before the reservation existed, or it would never move
    // to it; but only push it off when the reserved address is available.
    const own = this.reservedByMac.get(mac);
    if (own && own.ip !== ip && cidrContains(subnet.cidr, own.ip) && this.assignable(mac, own.ip, subnet, now) === 'ok') return 'reserved';
    const offeredTo = this.offeredTo.get(ip);
    if (offeredTo !== undefined && offeredTo !== mac && (this.offers.get(offeredTo)?.expiresAt ?? 0) > now) return 'in-use';
    const l = this.byIp.get(ip);
    if (l && l.expiresAt > now) {
      if (l.state === 'declined') return 'quarantined';
      if (l.state === 'bound' && l.mac !== mac) return 'in-use';
    }
    if (!res && !this.inPool(subnet, ip)) return 'not-in-pool';
    return 'ok';
  }

  /**
   * DISCOVER (RFC 2131 §4.3.1): the reserved address, else the client's
   * current or previous address, else the requested one, else a free one.
   */
  chooseOffer(mac: Mac, subnet: SubnetConfig, requested: Ipv4 | undefined, now: number): OfferChoice {
    const res = this.reservedByMac.get(mac);
    if (res && cidrContains(subnet.cidr, res.ip)) {
      const a = this.assignable(mac, res.ip, subnet, now);
      return a === 'ok' ? { ok: true, ip: res.ip, needsProbe: false } : { ok: false, reason: `reserved address ${a}` };
    }
    const held = this.offers.get(mac);
    if (held && held.expiresAt > now && cidrContains(subnet.cidr, held.ip) && this.assignable(mac, held.ip, subnet, now) === 'ok') {
      return { ok: true, ip: held.ip, needsProbe: false };
    }
    const prev = this.leaseOf(mac);
    if (prev && this.assignable(mac, prev.ip, subnet, now) === 'ok') return { ok: true, ip: prev.ip, needsProbe: false };
    if (requested !== undefined && this.assignable(mac, requested, subnet, now) === 'ok') {
      return { ok: true, ip: requested, needsProbe: this.needsProbe(requested) };
    }
    const free = this.findFree(mac, subnet, now);
    return free === undefined ? { ok: false, reason: `pool of ${formatCidr(subnet.cidr)} exhausted`, exhausted: true } : { ok: true, ip: free, needsProbe: this.needsProbe(free) };
  }

  private needsProbe(ip: Ipv4): boolean {
    // A declined record is not a use: the address was found taken by someone
    // we do not know (quarantine() forgets its clean probe for that reason),
    // so once the quarantine passes it is probed again before an offer.
    const history = this.byIp.get(ip);
    return (history === undefined || history.state === 'declined') && !this.probedClean.has(ip) && !this.reservedByIp.has(ip);
  }

  /**
   * Next free pool address from a moving cursor. First pass: addresses with no
   * history at all, so a recently released address stays with its old client
   * as long as possible; second pass: expired and released ones too.
   */
  private findFree(mac: Mac, subnet: SubnetConfig, now: number): Ipv4 | undefined {
    const pool = subnet.pool;
    if (!pool) return undefined;
    const size = pool.last - pool.first + 1;
    const start = this.cursors.get(subnet) ?? 0;
    for (const pass of [0, 1]) {
      for (let i = 0; i < size; i++) {
        const off = (start + i) % size;
        const ip = (pool.first + off) as Ipv4;
        if (pass === 0 && this.byIp.has(ip)) continue;
        if (this.assignable(mac, ip, subnet, now) === 'ok') {
          this.cursors.set(subnet, (off + 1) % size);
          return ip;
        }
      }
    }
    return undefined;
  }

  holdOffer(mac: Mac, ip: Ipv4, now: number): void {
    this.dropOffer(mac);
    this.offers.set(mac, { ip, expiresAt: now + this.opts.offerHoldMs });
    this.offeredTo.set(ip, mac);
  }

  offerOf(mac: Mac, now: number): Ipv4 | undefined {
    const o = this.offers.get(mac);
    return o && o.expiresAt > now ? o.ip : undefined;
  }

  /** The client chose another server (RFC 2131 §4.3.2 SELECTING with a foreign server id). */
  forgetOffer(mac: Mac): void {
    this.dropOffer(mac);
  }

  markProbedClean(ip: Ipv4): void {
    this.probedClean.add(ip);
  }

  /** Binds ip to mac; returns the lease record to persist. */
  bind(mac: Mac, ip: Ipv4, leaseSeconds: number, details: ClientDetails, now: number): Lease {
    this.dropOffer(mac);
    // A renewal or INIT-REBOOT of the address this client holds keeps its binding's start; only a
    // new binding (another address, or one that was released or ran out) starts a new one.
    const cur = this.byIp.get(ip);
    const boundAt = cur && cur.mac === mac && cur.state === 'bound' && cur.expiresAt > now ? (cur.boundAt ?? cur.updatedAt) : now;
    const lease: Lease = {
      ip, mac, state: 'bound', expiresAt: now + leaseSeconds * 1000, updatedAt: now, boundAt,
      ...(details.hostname !== undefined ? { hostname: details.hostname } : {}),
      ...(details.clientArch !== undefined ? { clientArch: details.clientArch } : {}),
      ...(details.vendorClass !== undefined ? { vendorClass: details.vendorClass } : {}),
      ...(details.clientId !== undefined ? { clientId: details.clientId } : {}),
    };
    const prevIp = this.ipByMac.get(mac);
    if (prevIp !== undefined && prevIp !== ip) {
      // The client moved: its old address is free again (kept as released history).
      const old = this.byIp.get(prevIp);
      if (old && old.state === 'bound') this.byIp.set(prevIp, { ...old, state: 'released', expiresAt: now, updatedAt: now });
    }
    this.record(lease);
    return lease;
  }

  /** RFC 2131 §4.3.4 DHCPRELEASE: only the owner can release. */
  release(mac: Mac, ip: Ipv4, now: number): Lease | undefined {
    const l = this.byIp.get(ip);
    if (!l || l.mac !== mac || l.state !== 'bound') return undefined;
    const rel: Lease = { ...l, state: 'released', expiresAt: now, updatedAt: now };
    this.record(rel);
    return rel;
  }

  /**
   * RFC 2131 §4.3.3 DHCPDECLINE, or a failed conflict check: the address is
   * in use by someone we do not know; keep it out of the pool for a while.
   */
  quarantine(ip: Ipv4, now: number, mac?: Mac): Lease {
    if (mac !== undefined) this.dropOffer(mac);
    const holder = this.offeredTo.get(ip);
    if (holder !== undefined) this.dropOffer(holder);
    const prev = this.byIp.get(ip);
    if (prev?.mac !== undefined && this.ipByMac.get(prev.mac) === ip) this.ipByMac.delete(prev.mac);
    const l: Lease = { ip, state: 'declined', expiresAt: now + this.opts.quarantineMs, updatedAt: now };
    this.byIp.set(ip, l);
    this.probedClean.delete(ip);
    return l;
  }

  /** Reservations, config ones first; `source` tells which may be changed through the API. */
  reservations(): { mac: Mac; ip: Ipv4; hostname?: string; source: 'config' | 'api' }[] {
    return [...this.reservedByMac.values()].map((r) => ({ ...r, source: this.configReserved.has(r.mac) ? 'config' as const : 'api' as const }));
  }

  /**
   * Adds or replaces an API reservation. Refused when the address is outside
   * every subnet, reserved for another MAC, or bound to another client now.
   */
  reserve(r: ReservationConfig, now: number): { ok: true } | { ok: false; reason: 'config-owned' | 'not-in-subnet' | 'reserved' | 'in-use' } {
    if (this.configReserved.has(r.mac)) return { ok: false, reason: 'config-owned' };
    const subnet = this.subnetOf(r.ip);
    if (!subnet || r.ip === subnet.cidr.network || r.ip === cidrBroadcast(subnet.cidr)) return { ok: false, reason: 'not-in-subnet' };
    const other = this.reservedByIp.get(r.ip);
    if (other && other.mac !== r.mac) return { ok: false, reason: 'reserved' };
    const l = this.byIp.get(r.ip);
    if (l && l.state === 'bound' && l.expiresAt > now && l.mac !== r.mac) return { ok: false, reason: 'in-use' };
    this.unreserve(r.mac);
    this.reservedByMac.set(r.mac, r);
    this.reservedByIp.set(r.ip, r);
    return { ok: true };
  }

  /** Removes an API reservation; config ones stay (they belong to the config file). */
  unreserve(mac: Mac): boolean {
    if (this.configReserved.has(mac)) return false;
    const r = this.reservedByMac.get(mac);
    if (!r) return false;
    this.reservedByMac.delete(mac);
    if (this.reservedByIp.get(r.ip)?.mac === mac) this.reservedByIp.delete(r.ip);
    return true;
  }

  /** Drops held offers that have run out; returns how many. */
  sweepOffers(now: number): number {
    let n = 0;
    for (const [mac, o] of this.offers) {
      if (o.expiresAt <= now) {
        this.dropOffer(mac);
        n++;
      }
    }
    return n;
  }
}
