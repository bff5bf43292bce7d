/**
 * Who may fetch a script that carries a machine's CHAP secrets (pure). The decision rests only
 * on facts a host on the segment cannot create by sending DHCP packets with a chaddr of its
 * choosing:
 *
 *  - server mode: a bound, unexpired lease metalboot itself ACKed to that MAC, and the request
 *    comes from that lease's address;
 *  - proxy mode: metalboot's own ProxyDHCP ACK (port 4011, unicast to the requester's source
 *    address, PXE 2.1 §2.2.4) went to that address for that MAC within `proxyReplyTtlMs`;
 *  - both modes, for a requester on a directly attached segment: the kernel's neighbour (ARP)
 *    entry for the requesting address names the machine's MAC. A host that puts the machine's
 *    address on its own interface (its own MAC) to reuse the lease of a powered-off machine, or
 *    that asked for a proxy reply with the machine's chaddr from its own address, fails here.
 *
 * DHCPINFORM, the address book (which learns from anything DHCP says) and client-chosen
 * ciaddr/requested addresses are never consulted.
 */
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
  /** Proxy mode: where metalboot recently sent its own 4011 ACKs for the MAC, and when each stops counting. */
  readonly proxyReplies?: readonly { readonly ip: string; readonly expiresAt: number }[];
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
    const live = (f.proxyReplies ?? []).filter((p) => p.expiresAt > f.now);
    if (live.length === 0) return deny('no ProxyDHCP ACK sent for this MAC in this boot');
    if (!live.some((p) => p.ip === from)) return deny('request not from an address a ProxyDHCP ACK for this MAC went to');
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

/**
 * Where metalboot's own ProxyDHCP ACKs went, per MAC, for `ttlMs`: the last `perMac` addresses,
 * so a forged 4011 request with the machine's chaddr cannot push the machine's own address out
 * between its ACK and its script fetch. Bounded: the oldest MACs are dropped once `max` are held
 * (a chaddr flood only evicts, never grows it).
 */
export class ProxyReplies {
  private readonly byMac = new Map<Mac, { ip: string; expiresAt: number }[]>();

  constructor(private readonly ttlMs: number, private readonly max = 4096, private readonly perMac = 4) {}

  record(mac: Mac, ip: string, now: number): void {
    const kept = (this.byMac.get(mac) ?? []).filter((r) => r.ip !== ip && r.expiresAt > now);
    kept.push({ ip, expiresAt: now + this.ttlMs });
    this.byMac.delete(mac); // re-insert: Map order is the eviction order
    this.byMac.set(mac, kept.slice(-this.perMac));
    while (this.byMac.size > this.max) this.byMac.delete(this.byMac.keys().next().value as Mac);
  }

  of(mac: Mac, now: number): readonly { ip: string; expiresAt: number }[] {
    const live = (this.byMac.get(mac) ?? []).filter((r) => r.expiresAt > now);
    if (live.length === 0) this.byMac.delete(mac);
    return live;
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
