/**
 * Which machine is at an address and which address a machine has, from the two sources the
 * daemon holds: the lease table (server mode; bindings metalboot made itself) and the address
 * book (what DHCP traffic said; any sender can teach it, so it attributes but never authorises).
 */
import type { Lease } from '../leases/lease.js';
import { formatIpv4 } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';
import type { AddressBook } from './addresses.js';

export interface Attribution {
  /** A machine's address: its bound, unexpired lease in server mode; else what the client asked the lab's server for (proxy mode). */
  ipOf(mac: Mac): string | undefined;
  /** Which MAC a source address is: its lease holder in server mode, else the address book. */
  macAt(ip: string): Mac | undefined;
  /**
   * Whether an address holds a DHCP binding metalboot made: a bound, unexpired lease of its own
   * on that address (the lease table, never the address book). In proxy mode metalboot binds
   * nothing, so no address counts (syslog share, TFTP reserved slots).
   */
  hasBinding(ip: string): boolean;
}

/** What of the lease service is read (absent: metalboot hands out no addresses). */
export interface LeaseLookup {
  leaseOf(mac: Mac): Lease | undefined;
  /** The bound, unexpired lease on an address, if any. */
  leaseAtAddress(address: string): Lease | undefined;
}

export function attribution(leases: LeaseLookup | undefined, addresses: Pick<AddressBook, 'ipOf' | 'macOf'>, clock: () => number): Attribution {
  return {
    ipOf: (mac) => {
      const l = leases?.leaseOf(mac);
      return l && l.state === 'bound' && l.expiresAt > clock() ? formatIpv4(l.ip) : addresses.ipOf(mac);
    },
    macAt: (ip) => leases?.leaseAtAddress(ip)?.mac ?? addresses.macOf(ip),
    hasBinding: (ip) => leases?.leaseAtAddress(ip) !== undefined,
  };
}
