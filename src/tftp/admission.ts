/**
 * Who may start a TFTP transfer (pure). A read request that is never
 * acknowledged holds its slot for timeout × (retries + 1), so one host sending
 * RRQs and never ACKing fills any global limit; three limits keep the daemon
 * serving the others:
 *   - maxTransfers: the total (memory and sockets);
 *   - perClient: transfers one client address may hold at once; a real PXE
 *     client has one or two (UEFI asks for the tsize, then downloads);
 *   - reservedForKnown: slots that only clients metalboot knows hold a DHCP
 *     binding may take, so many spoofed addresses, each under the per-client
 *     cap, still cannot take every slot from the machines being served.
 * The request port cannot tell a spoofed source address from a real one
 * (RFC 1350 has no handshake before the first DATA), hence the reservation.
 */

export interface AdmissionLimits {
  readonly maxTransfers: number;
  readonly perClient: number;
  /** Slots left for known clients only; applied only when the server can tell known from unknown. */
  readonly reservedForKnown: number;
}

export interface AdmissionState {
  /** Transfers running or opening, all clients. */
  readonly total: number;
  /** Those of the requesting client's address. */
  readonly ofClient: number;
  /** Those admitted as unknown clients. */
  readonly unknown: number;
}

/**
 * `busy`: the total is reached; `busy-client`: this address holds its share;
 * `busy-unknown`: the slots left are reserved for known clients.
 */
export type Admission = 'ok' | 'busy' | 'busy-client' | 'busy-unknown';

export function admit(s: AdmissionState, known: boolean, l: AdmissionLimits): Admission {
  if (s.total >= l.maxTransfers) return 'busy';
  if (s.ofClient >= l.perClient) return 'busy-client';
  if (!known && s.unknown >= Math.max(0, l.maxTransfers - l.reservedForKnown)) return 'busy-unknown';
  return 'ok';
}
