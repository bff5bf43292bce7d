/**
 * Which source addresses syslog is taken from (pure). UDP syslog has no
 * authentication (RFC 5426 §3.6: "no ... protection against ... spoofing"),
 * so the source address is the only handle: lines are taken only from
 * addresses metalboot serves, and those with a DHCP binding it knows are told
 * apart so that the total limit keeps a share for them (syslog/server.ts).
 *
 *   `served` (default): an address with a binding, or inside a subnet served:
 *                the configured DHCP subnets (server mode; relayed subnets
 *                are configured ones too), the DHCP interface's own subnets
 *                (proxy mode).
 *   `any`:       every address (the behaviour before this filter).
 *   CIDR list:   only addresses inside one of them.
 */
import { cidrContains, tryParseIpv4, unmapIpv4, type Cidr } from '../net/ipv4.js';

export type AcceptFrom = 'served' | 'any' | readonly Cidr[];

/** `bound`: holds a DHCP binding metalboot knows; `served`: accepted without one; `not-served`: dropped. */
export type SourceClass = 'bound' | 'served' | 'not-served';

export interface ServedFacts {
  /** Subnets metalboot serves (see above). */
  readonly subnets: readonly Cidr[];
  /** Whether the address holds a binding metalboot knows (a bound lease of its own, or seen by ProxyDHCP). */
  hasBinding(address: string): boolean;
}

export function sourceClassifier(acceptFrom: AcceptFrom, facts: ServedFacts): (address: string) => SourceClass {
  const inAny = (cidrs: readonly Cidr[], address: string): boolean => {
    const ip = tryParseIpv4(unmapIpv4(address));
    return ip !== undefined && cidrs.some((c) => cidrContains(c, ip));
  };
  if (acceptFrom === 'any') return (a) => (facts.hasBinding(a) ? 'bound' : 'served');
  const allowed = acceptFrom === 'served' ? facts.subnets : acceptFrom;
  return (a) => {
    // An explicit list is the admin's word: a binding outside it does not widen it.
    if (acceptFrom === 'served' && facts.hasBinding(a)) return 'bound';
    if (!inAny(allowed, a)) return 'not-served';
    return facts.hasBinding(a) ? 'bound' : 'served';
  };
}
