/** dhcp.subnets and dhcp.reservations: each on its own, then the rules between them. */
import {
  cidrBroadcast, cidrContains, formatCidr, formatIpv4, rangeContains, rangesOverlap,
  type Cidr, type Ipv4, type Ipv4Range,
} from '../../net/ipv4.js';
import { nonUnicastMacReason, parseMac, type Mac } from '../../net/mac.js';
import { DEFAULT_LEASE_TIME, LIMITS, MAX_SUBNET_PREFIX } from '../defaults.js';
import { ConfigError } from '../error.js';
import { cidr, dnsName, int, ipv4, key, list, mapping, opt, parsedString, req } from '../readers.js';
import type { ReservationConfig, SubnetConfig } from '../types.js';

export function readSubnet(v: unknown, path: string): SubnetConfig {
  const m = mapping(v, path, ['cidr', 'pool', 'router', 'dns', 'domainName', 'leaseTime']);
  const net = req(m, 'cidr', path, cidr);
  if (net.prefix > MAX_SUBNET_PREFIX) {
    throw new ConfigError(key(path, 'cidr'), `/${net.prefix} is too small to serve (at most /${MAX_SUBNET_PREFIX})`);
  }
  const host = (x: unknown, p: string) => hostIn(net, ipv4(x, p), p);
  const pool = opt(m, 'pool', path, (x, p) => readPool(x, p, net));
  const router = opt(m, 'router', path, host);
  if (pool && router !== undefined && rangeContains(pool, router)) {
    throw new ConfigError(key(path, 'pool'), `${formatRange(pool)} contains the router ${formatIpv4(router)}`);
  }
  const dns = (opt(m, 'dns', path, list) ?? []).map((x, i) => ipv4(x, `${key(path, 'dns')}[${i}]`));
  const domainName = opt(m, 'domainName', path, dnsName);
  const leaseTime = opt(m, 'leaseTime', path, (x, p) => int(x, p, LIMITS.leaseTime)) ?? DEFAULT_LEASE_TIME;

  const s: SubnetConfig = { cidr: net, dns, leaseTime };
  return {
    ...s,
    ...(pool && { pool }),
    ...(router !== undefined && { router }),
    ...(domainName !== undefined && { domainName }),
  };
}

/** An address a host in `net` can have: inside it, and neither its network nor broadcast address. */
function hostIn(net: Cidr, ip: Ipv4, path: string): Ipv4 {
  const ipS = formatIpv4(ip);
  const netS = formatCidr(net);
  if (!cidrContains(net, ip)) throw new ConfigError(path, `${ipS} is outside ${netS}`);
  if (ip === net.network) throw new ConfigError(path, `${ipS} is the network address of ${netS}`);
  if (ip === cidrBroadcast(net)) throw new ConfigError(path, `${ipS} is the broadcast address of ${netS}`);
  return ip;
}

function readPool(v: unknown, path: string, net: Cidr): Ipv4Range {
  const items = list(v, path);
  if (items.length !== 2) throw new ConfigError(path, `expected [first, last] (two addresses), got ${items.length}`);
  // Element parse errors name the element; placement errors name the pool, as one range.
  const [first, last] = items.map((x, i) => ipv4(x, `${path}[${i}]`)) as [Ipv4, Ipv4];
  hostIn(net, first, path);
  hostIn(net, last, path);
  if (first > last) throw new ConfigError(path, `first address ${formatIpv4(first)} is after last address ${formatIpv4(last)}`);
  return { first, last };
}

function formatRange(r: Ipv4Range): string {
  return `${formatIpv4(r.first)}-${formatIpv4(r.last)}`;
}

/**
 * Cross-subnet rules. Pools are compared first: the overlap of two pools is
 * the more concrete message (it can only happen if their subnets overlap too).
 */
export function checkSubnetsTogether(subnets: readonly SubnetConfig[], path: string, serverAddress: Ipv4 | undefined): void {
  subnets.forEach((s, i) => {
    if (s.pool && serverAddress !== undefined && rangeContains(s.pool, serverAddress)) {
      throw new ConfigError(`${path}[${i}].pool`, `${formatRange(s.pool)} contains the server address ${formatIpv4(serverAddress)}`);
    }
    for (let j = 0; j < i; j++) {
      const o = subnets[j]!;
      if (s.pool && o.pool && rangesOverlap(s.pool, o.pool)) {
        throw new ConfigError(`${path}[${i}].pool`, `${formatRange(s.pool)} overlaps ${path}[${j}].pool ${formatRange(o.pool)}`);
      }
    }
  });
  const span = (c: Cidr): Ipv4Range => ({ first: c.network, last: cidrBroadcast(c) });
  subnets.forEach((s, i) => {
    for (let j = 0; j < i; j++) {
      const o = subnets[j]!;
      if (rangesOverlap(span(s.cidr), span(o.cidr))) {
        throw new ConfigError(`${path}[${i}].cidr`, `${formatCidr(s.cidr)} overlaps ${path}[${j}].cidr ${formatCidr(o.cidr)}`);
      }
    }
  });
}

export function readReservations(
  items: readonly unknown[],
  path: string,
  subnets: readonly SubnetConfig[],
  serverAddress: Ipv4 | undefined,
): ReservationConfig[] {
  const byMac = new Map<Mac, number>();
  const byIp = new Map<Ipv4, number>();
  return items.map((v, i) => {
    const p = `${path}[${i}]`;
    const m = mapping(v, p, ['mac', 'ip', 'hostname']);
    const mac = req(m, 'mac', p, readMac);
    const ipPath = `${p}.ip`;
    const ip = req(m, 'ip', p, ipv4);
    const hostname = opt(m, 'hostname', p, dnsName);

    // Inside some subnet and a usable host there; a reservation inside a pool is fine (the allocator skips it).
    const subnet = subnets.find((s) => cidrContains(s.cidr, ip));
    if (!subnet) throw new ConfigError(ipPath, `${formatIpv4(ip)} is outside every subnet in dhcp.subnets`);
    hostIn(subnet.cidr, ip, ipPath);
    if (ip === subnet.router) throw new ConfigError(ipPath, `${formatIpv4(ip)} is the router of ${formatCidr(subnet.cidr)}`);
    if (ip === serverAddress) throw new ConfigError(ipPath, `${formatIpv4(ip)} is the server address`);

    const macAt = byMac.get(mac);
    if (macAt !== undefined) throw new ConfigError(`${p}.mac`, `${mac} is already reserved by ${path}[${macAt}]`);
    const ipAt = byIp.get(ip);
    if (ipAt !== undefined) throw new ConfigError(ipPath, `${formatIpv4(ip)} is already reserved by ${path}[${ipAt}]`);
    byMac.set(mac, i);
    byIp.set(ip, i);

    const r: ReservationConfig = { mac, ip };
    return hostname === undefined ? r : { ...r, hostname };
  });
}

function readMac(v: unknown, path: string): Mac {
  const mac = parsedString(v, path, 'a MAC address string (quote it in YAML)', parseMac);
  // The group bit, broadcast, all-zero: such an address never sends a DHCPDISCOVER.
  const notUnicast = nonUnicastMacReason(mac);
  if (notUnicast) throw new ConfigError(path, `${mac} is ${notUnicast}`);
  return mac;
}
