/** A DHCP lease as kept in the store and served by the API. */
import type { Ipv4 } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';

/**
 * bound: ACKed and not yet expired. released: given back by the client (kept
 * so the same client gets the same address again). declined: the client or a
 * conflict check found the address in use; quarantined until expiresAt.
 */
export type LeaseState = 'bound' | 'released' | 'declined';

export interface Lease {
  readonly ip: Ipv4;
  /** Absent for declined addresses whose owner is unknown. */
  readonly mac?: Mac;
  readonly state: LeaseState;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  /** Epoch milliseconds of the last change. */
  readonly updatedAt: number;
  /**
   * Epoch milliseconds of the binding's start: the ACK that gave this client this address,
   * kept across renewals and INIT-REBOOTs of it (updatedAt is not, so a spoofed re-ACK could not
   * reopen the DECLINE window). Absent on records written before it existed: read as updatedAt.
   */
  readonly boundAt?: number;
  readonly hostname?: string;
  /** RFC 4578 option 93 client system architecture. */
  readonly clientArch?: number;
  readonly vendorClass?: string;
  /** Option 61 client identifier, hex. */
  readonly clientId?: string;
}
