/** The `syslog` section: the listener for boot-time logs and its rate limits. */
import { parseCidr } from '../../net/ipv4.js';
import { DEFAULT_SYSLOG, SYSLOG_LIMITS, SYSLOG_MAX_ACCEPT_CIDRS } from '../defaults.js';
import { ConfigError } from '../error.js';
import { bool, int, key, mapping, opt, parsedString, readIpv4HostPort, typeError } from '../readers.js';
import type { SyslogConfig } from '../types.js';

export function readSyslog(v: unknown, path: string): SyslogConfig {
  const m = mapping(v, path, ['enabled', 'listen', 'maxPerSecondPerSource', 'burst', 'acceptFrom', 'maxPerSecondTotal', 'burstTotal']);
  const maxPerSecondPerSource = opt(m, 'maxPerSecondPerSource', path, (x, p) => int(x, p, SYSLOG_LIMITS.maxPerSecondPerSource)) ?? DEFAULT_SYSLOG.maxPerSecondPerSource;
  const burst = opt(m, 'burst', path, (x, p) => int(x, p, SYSLOG_LIMITS.burst)) ?? DEFAULT_SYSLOG.burst;
  if (burst < maxPerSecondPerSource) throw new ConfigError(key(path, 'burst'), `${burst} is below maxPerSecondPerSource ${maxPerSecondPerSource} (a bucket smaller than one second of messages)`);
  const maxPerSecondTotal = opt(m, 'maxPerSecondTotal', path, (x, p) => int(x, p, SYSLOG_LIMITS.maxPerSecondTotal)) ?? DEFAULT_SYSLOG.maxPerSecondTotal;
  const burstTotal = opt(m, 'burstTotal', path, (x, p) => int(x, p, SYSLOG_LIMITS.burstTotal)) ?? DEFAULT_SYSLOG.burstTotal;
  if (burstTotal < maxPerSecondTotal) throw new ConfigError(key(path, 'burstTotal'), `${burstTotal} is below maxPerSecondTotal ${maxPerSecondTotal} (a bucket smaller than one second of messages)`);
  const acceptFrom = opt(m, 'acceptFrom', path, readSyslogAcceptFrom) ?? DEFAULT_SYSLOG.acceptFrom;
  return {
    acceptFrom, maxPerSecondTotal, burstTotal,
    enabled: opt(m, 'enabled', path, bool) ?? DEFAULT_SYSLOG.enabled,
    listen: opt(m, 'listen', path, readIpv4HostPort) ?? readIpv4HostPort(DEFAULT_SYSLOG.listen, key(path, 'listen')),
    maxPerSecondPerSource,
    burst,
  };
}

function readSyslogAcceptFrom(v: unknown, path: string): SyslogConfig['acceptFrom'] {
  if (v === 'served' || v === 'any') return v;
  if (!Array.isArray(v)) throw typeError(path, '"served", "any" or a list of CIDRs', v);
  if (v.length === 0) throw new ConfigError(path, 'an empty list accepts nothing; disable syslog instead');
  if (v.length > SYSLOG_MAX_ACCEPT_CIDRS) throw new ConfigError(path, `${v.length} CIDRs; at most ${SYSLOG_MAX_ACCEPT_CIDRS}`);
  return v.map((c, i) => parsedString(c, `${path}[${i}]`, 'a CIDR string', parseCidr));
}
