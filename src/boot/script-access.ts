/**
 * Who may fetch a script that carries a machine's CHAP secrets (pure). The decision rests only
 * on facts a host on the segment cannot create by sending DHCP packets with a chaddr of its
 * choosing:
 *
 *  - server mode: a bound, unexpired lease metalboot itself ACKed to that MAC, and the request
 *    comes from that lease's address;
 *  - proxy mode: metalboot sent its own ProxyDHCP reply for that MAC within the window (this
 *    boot), and the requester is on a directly attached segment;
 *  - both modes, for a requester on a directly attached segment: the kernel's neighbour (ARP)
 *    entry for the requesting address names the machine's MAC. A host that puts the machine's
 *    address on its own interface (its own MAC) to reuse the lease of a powered-off machine, or
 *    that solicited a proxy reply with the machine's chaddr, fails here.
 *
 * Why proxy mode does not pin the address: iPXE (QEMU's ROM, snponly.efi) takes the ProxyDHCP
 * offer on port 67 as it is (it has next-server and a file name) and never asks on port 4011,
 * so no reply of ours is addressed to the machine; the offer is broadcast, and the address the
 * machine announces in its REQUEST to the other server is chosen by whoever sends it. The only
 * binding of address to MAC that a forged DHCP packet does not create is ARP.
 *
 * DHCPINFORM, the address book (which learns from anything DHCP says) and client-chosen
 * ciaddr/requested addresses are never consulted.
 */
import type { Lease } from '../leases/lease.js';
import { formatIpv4, tryParseIpv4, type Ipv4 } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';

/** What the neighbour table says about the requesting address. */
export type NeighbourFact =
  /** A complete entry with this link-layer address. */
  | { readonly kind: 'entry'; readonly mac: Mac }
  /** No complete entry: the requester is not on a directly attached segment (it came via a router). */
  | { readonly kind: 'none' }
  /** The table could not be read (e.g. no /proc): nothing is known. */
  | { readonly kind: 'unknown' };

export interface ScriptAccessFacts {
  readonly mode: 'server' | 'proxy' | 'off';
  readonly now: number;
  /** Server mode: the lease table's record for the MAC, if any. */
  readonly lease?: { readonly ip: string; readonly bound: boolean; readonly expiresAt: number };
  /** Proxy mode: until when the last ProxyDHCP reply metalboot sent for the MAC counts (this boot). */
  readonly proxyReplyUntil?: number;
  readonly neighbour: NeighbourFact;
  /**
   * Server mode: the requester is in a subnet served through a relay (not the DHCP interface's
   * own), so no neighbour entry can exist for it; the lease alone decides.
   */
  readonly relayed: boolean;
}

export type ScriptAccess =
  | { readonly ok: true; readonly via: 'lease' | 'proxy-reply' }
  | { readonly ok: false; readonly reason: string };

const deny = (reason: string): ScriptAccess => ({ ok: false, reason });

export function scriptAccess(mac: Mac, from: string, f: ScriptAccessFacts): ScriptAccess {
  let via: 'lease' | 'proxy-reply';
  if (f.mode === 'server') {
    const l = f.lease;
    if (!l || !l.bound || l.expiresAt <= f.now) return deny('no bound lease for this MAC');
    if (l.ip !== from) return deny('request not from the address leased to this MAC');
    via = 'lease';
  } else if (f.mode === 'proxy') {
    if (f.proxyReplyUntil === undefined || f.proxyReplyUntil <= f.now) return deny('no ProxyDHCP reply sent for this MAC in this boot');
    via = 'proxy-reply';
  } else {
    return deny('DHCP is off: no address is known to belong to this MAC');
  }
  const n = f.neighbour;
  if (n.kind === 'entry') {
    return n.mac === mac ? { ok: true, via } : deny('the requesting address answers ARP with another MAC');
  }
  // No entry: only a relayed server-mode client may lack one; a proxy-mode ACK went to an address
  // on this segment, so the entry must be there. Unreadable table: refuse rather than guess.
  if (n.kind === 'none' && f.mode === 'server' && f.relayed) return { ok: true, via };
  return deny(n.kind === 'unknown' ? 'neighbour table unreadable' : 'no neighbour entry for the requesting address');
}

/** Where scriptAccessPolicy reads the facts from (the daemon's lease table, proxy replies, ARP). */
export interface ScriptAccessSources {
  readonly mode: ScriptAccessFacts['mode'];
  readonly clock: () => number;
  /** Server mode: the lease table. */
  readonly leases?: { leaseOf(mac: Mac): Lease | undefined; subnetOf(ip: Ipv4): unknown };
  /** The DHCP interface's own address: requesters in its subnet are not relayed. */
  readonly serverAddress?: Ipv4;
  readonly proxyReplies: ProxyReplies;
  /** The neighbour table's entry for an address (net/neighbours.ts readNeighbour). */
  readonly neighbour: (ip: string) => Promise<NeighbourFact>;
}

/** The script access check of one request: gathers the facts above, then decides (scriptAccess). */
export function scriptAccessPolicy(s: ScriptAccessSources): (mac: Mac, from: string) => Promise<ScriptAccess> {
  const leases = s.leases;
  const ifaceSubnet = leases && s.serverAddress !== undefined ? leases.subnetOf(s.serverAddress) : undefined;
  return async (mac, from) => {
    const now = s.clock();
    const l = leases?.leaseOf(mac);
    const fromIp = tryParseIpv4(from);
    const pr = s.proxyReplies.of(mac, now);
    const subnet = leases && fromIp !== undefined ? leases.subnetOf(fromIp) : undefined;
    return scriptAccess(mac, from, {
      mode: s.mode, now, neighbour: await s.neighbour(from),
      relayed: subnet !== undefined && subnet !== ifaceSubnet,
      ...(l ? { lease: { ip: formatIpv4(l.ip), bound: l.state === 'bound', expiresAt: l.expiresAt } } : {}),
      ...(pr !== undefined ? { proxyReplyUntil: pr } : {}),
    });
  };
}

/**
 * When metalboot last sent a ProxyDHCP reply (offer or ACK) for each MAC; it counts for `ttlMs`.
 * Bounded: the oldest MACs are dropped once `max` are held (a chaddr flood only evicts, never
 * grows it; an evicted machine is refused until its next boot, never wrongly admitted).
 */
export class ProxyReplies {
  private readonly until = new Map<Mac, number>();

  constructor(private readonly ttlMs: number, private readonly max = 4096) {}

  record(mac: Mac, now: number): void {
    this.until.delete(mac); // re-insert: Map order is the eviction order
    this.until.set(mac, now + this.ttlMs);
    while (this.until.size > this.max) this.until.delete(this.until.keys().next().value as Mac);
  }

  /** Until when the last reply for `mac` counts, if it still does. */
  of(mac: Mac, now: number): number | undefined {
    const u = this.until.get(mac);
    if (u !== undefined && u <= now) { this.until.delete(mac); return undefined; }
    return u;
  }
}

/**
 * /proc/net/arp (Linux, per network namespace): "IP address  HW type  Flags  HW address  Mask  Device".
 * Flags 0x2 (ATF_COM) marks a complete entry. Returns the MAC of `ip`'s complete entry, if any.
 * Input is bounded and malformed lines are skipped.
 */
export function neighbourFromProcArp(text: string, ip: string): NeighbourFact {
  const lines = text.split('\n', 65_537);
  let found: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 6 || f[0] !== ip) continue;
    const flags = Number.parseInt(f[2]!, 16);
    if (!Number.isFinite(flags) || (flags & 0x2) === 0) continue;
    const mac = f[3]!.toLowerCase();
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) || mac === '00:00:00:00:00:00') continue;
    // The same address answering with two MACs (on two interfaces): nothing can be concluded.
    if (found !== undefined && found !== mac) return { kind: 'unknown' };
    found = mac;
  }
  return found === undefined ? { kind: 'none' } : { kind: 'entry', mac: found as Mac };
}
