/**
 * Which MAC uses which IPv4 address, as DHCP tells us: the ACKed lease in server mode, the
 * requested or client address seen by ProxyDHCP. Used to attribute TFTP transfers, HTTP
 * requests and syslog lines to machines: a sender chooses chaddr and the addresses in what it
 * sends, so this is never a source of authorisation (boot/script-access.ts decides that).
 * Bounded: old entries are dropped once `max` MACs are known.
 */
import type { Mac } from '../net/mac.js';
import { formatIpv4, unmapIpv4 } from '../net/ipv4.js';
import type { Lease } from '../leases/lease.js';
import type { DhcpEventType, MetalbootEvent } from './bus.js';

export class AddressBook {
  private readonly ipOfMac = new Map<Mac, string>();
  private readonly macOfIp = new Map<string, Mac>();

  /**
   * learnFromIgnored: whether the address of a REQUEST ignored (meant for another server) is
   * learnt. Only ProxyDHCP needs it; a DHCP server knows its clients' addresses from its own
   * ACKs, and that REQUEST's option 50 is any address a sender likes: learning it would let
   * anyone remap a client's address to another MAC.
   */
  constructor(private readonly max = 65_536, private readonly learnFromIgnored = true) {}

  /** Feed every bus event; DHCP events that carry an address teach it. */
  learn(e: MetalbootEvent): void {
    if (!e.type.startsWith('dhcp.') || e.type === 'dhcp.nak' || e.type === 'dhcp.no-address') return;
    const d = e as Extract<MetalbootEvent, { type: DhcpEventType }>;
    // ProxyDHCP ignores the REQUEST a client sends the lab's own DHCP server, but the address
    // in it is the one the client is taking: the only place a proxy learns it.
    if (e.type === 'dhcp.ignored' && (d.message !== 'request' || !this.learnFromIgnored)) return;
    // An INFORM's ciaddr is whatever the sender wrote; a client that really holds it was taught
    // by its ACK already.
    if (e.type === 'dhcp.inform') return;
    if (!d.mac || !d.ip || d.ip === '0.0.0.0') return;
    if (e.type === 'dhcp.release' || e.type === 'dhcp.decline') { this.forget(d.mac); return; }
    this.set(d.mac, d.ip);
  }

  /**
   * Learns the active leases of the lease table (bound, not expired), oldest change first so
   * the newest are kept if there are more than `max`. Called at start: a machine that still holds
   * its lease from before a restart sends syslog and TFTP without a new DHCP exchange.
   * Returns how many were learnt.
   */
  seed(leases: readonly Lease[], now: number): number {
    const active = leases.filter((l) => l.state === 'bound' && l.expiresAt > now && l.mac !== undefined)
      .sort((a, b) => a.updatedAt - b.updatedAt);
    for (const l of active) this.set(l.mac!, formatIpv4(l.ip));
    return active.length;
  }

  set(mac: Mac, ip: string): void {
    const old = this.ipOfMac.get(mac);
    if (old === ip && this.macOfIp.get(ip) === mac) return; // the usual case: ACK after OFFER
    if (old !== undefined && this.macOfIp.get(old) === mac) this.macOfIp.delete(old);
    const prev = this.macOfIp.get(ip);
    if (prev !== undefined && prev !== mac) this.ipOfMac.delete(prev);
    this.ipOfMac.delete(mac); // re-insert: Map order is the eviction order
    this.ipOfMac.set(mac, ip);
    this.macOfIp.set(ip, mac);
    if (this.ipOfMac.size > this.max) {
      const [oldest, oip] = this.ipOfMac.entries().next().value as [Mac, string];
      this.ipOfMac.delete(oldest);
      if (this.macOfIp.get(oip) === oldest) this.macOfIp.delete(oip);
    }
  }

  forget(mac: Mac): void {
    const ip = this.ipOfMac.get(mac);
    this.ipOfMac.delete(mac);
    if (ip !== undefined && this.macOfIp.get(ip) === mac) this.macOfIp.delete(ip);
  }

  ipOf(mac: Mac): string | undefined {
    return this.ipOfMac.get(mac);
  }

  macOf(ip: string): Mac | undefined {
    return this.macOfIp.get(unmapIpv4(ip));
  }
}
