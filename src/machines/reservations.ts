/**
 * A machine's `ip` is its DHCP reservation (server mode): kept in step with the record, the
 * machine's name going along as the reservation's host name.
 */
import type { LeaseService } from '../leases/service.js';
import { parseIpv4 } from '../net/ipv4.js';
import type { Machine } from './model.js';
import { MachineError } from './record.js';

/** Makes the lease table's reservation match `m` (was `old`); a refused change keeps the old one and throws. */
export async function syncReservation(leases: LeaseService | undefined, m: Machine, old: Machine | undefined): Promise<void> {
  // The reservation carries the name as its DHCP host name: a rename updates it too.
  if (!leases || (m.ip === old?.ip && (!m.ip || m.name === old?.name))) return;
  if (!m.ip) { await leases.unreserve(m.mac); return; }
  // reserve() replaces this MAC's reservation, so a refused change keeps the old one.
  const r = await leases.reserve({ mac: m.mac, ip: parseIpv4(m.ip), hostname: m.name });
  if (!r.ok) {
    const why = { 'config-owned': 'this MAC is reserved in the config file', 'not-in-subnet': 'not a host address of any configured subnet', reserved: 'reserved for another MAC', 'in-use': 'leased to another client now' }[r.reason];
    throw new MachineError(m.mac, r.reason === 'not-in-subnet' ? 'invalid' : 'conflict', `ip ${m.ip}: ${why}`);
  }
}
