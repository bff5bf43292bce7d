/** The `images` section. */
import { resolve as resolvePath } from 'node:path';
import { ConfigError } from '../error.js';
import { key, mapping, opt, readAbsolutePath, underDataDir } from '../readers.js';
import type { ImagesConfig } from '../types.js';

/** images.importDir: the one directory server-side image imports may read from. */
export function readImages(v: unknown, path: string, dataDir: string): ImagesConfig {
  const m = mapping(v, path, ['importDir']);
  const importDir = opt(m, 'importDir', path, readAbsolutePath) ?? underDataDir(dataDir, 'import');
  // The root would let an import read any file on the host again.
  if (resolvePath(importDir) === '/') throw new ConfigError(key(path, 'importDir'), 'must not be /');
  return { importDir };
}
