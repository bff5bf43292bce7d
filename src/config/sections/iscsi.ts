/** The `iscsi` section: the portal machines reach, target names, and how tgtd is driven. */
import { formatIpv4 } from '../../net/ipv4.js';
import { DEFAULT_ISCSI, LIMITS } from '../defaults.js';
import { ConfigError } from '../error.js';
import { bool, int, key, mapping, oneOf, opt, readAbsolutePath, readIpv4HostPort, str } from '../readers.js';
import type { DhcpConfig, IscsiConfig } from '../types.js';

/** The portal machines can reach: the DHCP server address, else publicUrl's host when it is an IPv4 address or loopback. */
export function portalDefault(dhcp: DhcpConfig, publicUrl: string): string | undefined {
  if (dhcp.mode !== 'off' && dhcp.serverAddress !== undefined) return formatIpv4(dhcp.serverAddress);
  const host = new URL(publicUrl).hostname;
  if (host === '[::1]' || host === 'localhost') return '127.0.0.1'; // a daemon only this host can reach
  return /^[0-9.]+$/.test(host) && host !== '0.0.0.0' ? host : undefined;
}

/** RFC 3720 §3.2.6.3.1: "iqn." yyyy-mm "." reversed domain, lower case, no spaces. */
const IQN_PREFIX = /^iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[a-z0-9.-]+)?$/;

export function readIscsi(v: unknown, path: string, portalHost: string | undefined): IscsiConfig {
  // bstype: the old spelling of storage.<backend>.bstype, read by sections/storage.ts.
  const m = mapping(v, path, ['enabled', 'portal', 'iqnPrefix', 'tgtadm', 'bstype', 'manageTgtd', 'controlPort', 'checkIntervalMs', 'mutualChap', 'chapSecretsVia']);
  const enabled = opt(m, 'enabled', path, bool) ?? DEFAULT_ISCSI.enabled;
  let portal = opt(m, 'portal', path, readIpv4HostPort);
  if (portal === undefined) {
    if (portalHost === undefined && enabled) {
      throw new ConfigError(key(path, 'portal'), 'not set, and neither dhcp.serverAddress nor an IPv4 http.publicUrl gives an address machines can reach; set it, or iscsi.enabled: false');
    }
    portal = { host: portalHost ?? '127.0.0.1', port: DEFAULT_ISCSI.port };
  }
  if (portal.host === '0.0.0.0') throw new ConfigError(key(path, 'portal'), 'must be an address machines can reach, not 0.0.0.0');
  const iqnPrefix = opt(m, 'iqnPrefix', path, (x, p) => {
    const s = str(x, p);
    if (s.length > 200 || !IQN_PREFIX.test(s)) throw new ConfigError(p, `${JSON.stringify(s.slice(0, 80))} is not an iqn.yyyy-mm.reversed.domain name (lower case)`);
    return s;
  }) ?? DEFAULT_ISCSI.iqnPrefix;
  return {
    enabled, portal, iqnPrefix,
    tgtadm: opt(m, 'tgtadm', path, readAbsolutePath) ?? DEFAULT_ISCSI.tgtadm,
    manageTgtd: opt(m, 'manageTgtd', path, bool) ?? DEFAULT_ISCSI.manageTgtd,
    controlPort: opt(m, 'controlPort', path, (x, p) => int(x, p, LIMITS.tgtdControlPort)) ?? DEFAULT_ISCSI.controlPort,
    checkIntervalMs: opt(m, 'checkIntervalMs', path, (x, p) => int(x, p, LIMITS.iscsiCheckIntervalMs)) ?? DEFAULT_ISCSI.checkIntervalMs,
    mutualChap: opt(m, 'mutualChap', path, bool) ?? DEFAULT_ISCSI.mutualChap,
    chapSecretsVia: opt(m, 'chapSecretsVia', path, (x, p) => oneOf(x, p, ['control-socket', 'argv'] as const)) ?? DEFAULT_ISCSI.chapSecretsVia,
  };
}
