/**
 * The IPv4 subnets on a network interface, as the kernel has them now (os.networkInterfaces():
 * only interfaces that are up and have an address are listed).
 */
import { networkInterfaces } from 'node:os';
import { parseIpv4, prefixToMask, type Cidr, type Ipv4 } from './ipv4.js';

export function interfaceSubnets(iface: string): Cidr[] {
  return (networkInterfaces()[iface] ?? []).filter((a) => a.family === 'IPv4' && a.cidr).map((a) => {
    const prefix = Number(a.cidr!.split('/')[1]);
    return { network: ((parseIpv4(a.address) & prefixToMask(prefix)) >>> 0) as Ipv4, prefix };
  });
}
