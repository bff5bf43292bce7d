/** The `ipmi` section: session defaults and rate limits of the IPMI client. */
import { DEFAULT_IPMI, LIMITS } from '../defaults.js';
import { ConfigError } from '../error.js';
import { describe, int, mapping, oneOf, opt } from '../readers.js';
import type { IpmiConfig } from '../types.js';

export function readIpmi(v: unknown, path: string): IpmiConfig {
  const m = mapping(v, path, ['timeoutMs', 'retries', 'keepAliveMs', 'maxCommandsPerSecond', 'cipherSuite', 'privilege']);
  const n = (k: keyof typeof LIMITS, name: keyof IpmiConfig, dflt: number) => opt(m, name, path, (x, p) => int(x, p, LIMITS[k])) ?? dflt;
  return {
    timeoutMs: n('ipmiTimeoutMs', 'timeoutMs', DEFAULT_IPMI.timeoutMs),
    retries: n('ipmiRetries', 'retries', DEFAULT_IPMI.retries),
    keepAliveMs: n('ipmiKeepAliveMs', 'keepAliveMs', DEFAULT_IPMI.keepAliveMs),
    maxCommandsPerSecond: n('ipmiMaxCommandsPerSecond', 'maxCommandsPerSecond', DEFAULT_IPMI.maxCommandsPerSecond),
    cipherSuite: opt(m, 'cipherSuite', path, readCipherSuite) ?? DEFAULT_IPMI.cipherSuite,
    privilege: opt(m, 'privilege', path, (x, p) => oneOf(x, p, ['administrator', 'operator'] as const)) ?? DEFAULT_IPMI.privilege,
  };
}

/** `auto`, 17, 3 or 1.5 (IPMI 1.5 sessions; YAML reads it as a number, a string is accepted too). */
export function readCipherSuite(v: unknown, path: string): IpmiConfig['cipherSuite'] {
  if (v === 'auto' || v === '1.5' || v === 1.5) return v === 'auto' ? v : '1.5';
  if (v === 17 || v === '17') return 17;
  if (v === 3 || v === '3') return 3;
  throw new ConfigError(path, `expected auto, 17, 3 or 1.5, got ${describe(v)}`);
}
