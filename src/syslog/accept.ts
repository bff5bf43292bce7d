/**
 * Which source addresses syslog is taken from (pure). UDP syslog has no
 * authentication (RFC 5426 §3.6: "no ... protection against ... spoofing"),
 * so the source address is the only handle: lines are taken only from
 * addresses metalboot serves, and those holding a lease of its own are told
 * apart so that the total limit keeps a share for them (syslog/server.ts).
 *
 *   `served` (default): an address inside a subnet served: the configured
 *                DHCP subnets (server mode; relayed subnets are configured
 *                ones too), the DHCP interface's own subnets (proxy mode,
 *                re-read when they may have changed).
 *   `any`:       every address (the behaviour before this filter).
 *   CIDR list:   only addresses inside one of them.
 */
import type { DhcpConfig } from '../config/types.js';
import { cidrContains, tryParseIpv4, unmapIpv4, type Cidr, type Ipv4 } from '../net/ipv4.js';

export type AcceptFrom = 'served' | 'any' | readonly Cidr[];

/** `bound`: holds a DHCP binding metalboot knows; `served`: accepted without one; `not-served`: dropped. */
export type SourceClass = 'bound' | 'served' | 'not-served';

/** Served subnets that may change while running (proxy mode: the interface's addresses). */
export interface SubnetSource {
  current(): readonly Cidr[];
  /** Called for an address outside current(): the list again, re-read if it is old enough. */
  afterMiss(): readonly Cidr[];
}

export interface ServedFacts {
  /** Subnets metalboot serves (see above). */
  readonly subnets: readonly Cidr[] | SubnetSource;
  /**
   * Whether the address holds a binding metalboot itself made: a bound, unexpired lease of its
   * own (server mode). Nothing else counts: what ProxyDHCP sees a client ask for is any address a
   * sender likes, so in proxy mode this is always false.
   */
  hasBinding(address: string): boolean;
}

/**
 * The subnets metalboot serves, for `served`: the configured DHCP subnets in server mode (a
 * relay's subnet is one of them); in proxy mode the DHCP interface's own IPv4 subnets, where the
 * clients whose PXE requests it answers live. The interface may get (or change) its address after
 * the start, so proxy mode reads them again on a miss (`readInterface`: net/interfaces.ts).
 */
export function servedSubnets(dhcp: Pick<DhcpConfig, 'mode' | 'interface' | 'subnets'>, readInterface: (iface: string) => readonly Cidr[], clock: () => number): readonly Cidr[] | SubnetSource {
  if (dhcp.mode === 'server') return dhcp.subnets.map((s) => s.cidr);
  if (dhcp.mode === 'off') return [];
  return new RereadSubnets(() => readInterface(dhcp.interface), clock);
}

export function sourceClassifier(acceptFrom: AcceptFrom, facts: ServedFacts): (address: string) => SourceClass {
  const inAny = (cidrs: readonly Cidr[], ip: Ipv4): boolean => cidrs.some((c) => cidrContains(c, ip));
  if (acceptFrom === 'any') return (a) => (facts.hasBinding(a) ? 'bound' : 'served');
  const src: SubnetSource = acceptFrom !== 'served' ? fixed(acceptFrom)
    : 'current' in facts.subnets ? facts.subnets : fixed(facts.subnets);
  return (a) => {
    // The subnets first, in every mode: a binding outside them widens nothing (an explicit list
    // is the admin's word; in server mode every lease is inside a served subnet anyway).
    const ip = tryParseIpv4(unmapIpv4(a));
    if (ip === undefined) return 'not-served';
    if (!inAny(src.current(), ip) && !inAny(src.afterMiss(), ip)) return 'not-served';
    return facts.hasBinding(a) ? 'bound' : 'served';
  };
}

function fixed(cidrs: readonly Cidr[]): SubnetSource {
  return { current: () => cidrs, afterMiss: () => cidrs };
}

/**
 * A subnet list read again after a miss, at most once per `minIntervalMs`: an interface that gets
 * its address after the start is served without a restart, and a flood from outside costs one
 * read per interval.
 */
export class RereadSubnets implements SubnetSource {
  private cidrs: readonly Cidr[];
  private readAt: number;

  constructor(private readonly read: () => readonly Cidr[], private readonly clock: () => number, private readonly minIntervalMs = 10_000) {
    this.cidrs = read();
    this.readAt = clock();
  }

  current(): readonly Cidr[] {
    return this.cidrs;
  }

  afterMiss(): readonly Cidr[] {
    const now = this.clock();
    if (now - this.readAt >= this.minIntervalMs) {
      this.readAt = now;
      this.cidrs = this.read();
    }
    return this.cidrs;
  }
}
