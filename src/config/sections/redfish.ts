/** The `redfish` section: request bounds and per-BMC limits of the Redfish driver. */
import { DEFAULT_REDFISH, LIMITS } from '../defaults.js';
import { int, mapping, opt } from '../readers.js';
import type { RedfishConfig } from '../types.js';

export function readRedfish(v: unknown, path: string): RedfishConfig {
  const m = mapping(v, path, ['timeoutMs', 'retries', 'maxConcurrent', 'maxRequestsPerSecond', 'taskTimeoutMs']);
  const n = (k: keyof typeof LIMITS, name: keyof RedfishConfig) => opt(m, name, path, (x, p) => int(x, p, LIMITS[k])) ?? DEFAULT_REDFISH[name];
  return {
    timeoutMs: n('redfishTimeoutMs', 'timeoutMs'),
    retries: n('redfishRetries', 'retries'),
    maxConcurrent: n('redfishMaxConcurrent', 'maxConcurrent'),
    maxRequestsPerSecond: n('redfishMaxRequestsPerSecond', 'maxRequestsPerSecond'),
    taskTimeoutMs: n('redfishTaskTimeoutMs', 'taskTimeoutMs'),
  };
}
