/** The `status` section: whether the status page is open without a token. */
import { DEFAULT_STATUS } from '../defaults.js';
import { bool, mapping, opt } from '../readers.js';
import type { StatusConfig } from '../types.js';

export function readStatus(v: unknown, path: string): StatusConfig {
  const m = mapping(v, path, ['public']);
  return { public: opt(m, 'public', path, bool) ?? DEFAULT_STATUS.public };
}
