/** The `storage` section: which backend holds the disks, and its settings. */
import { DEFAULT_STORAGE, LIMITS } from '../defaults.js';
import { ConfigError } from '../error.js';
import { int, key, mapping, oneOf, opt, readAbsolutePath, str, underDataDir } from '../readers.js';
import type { StorageConfig } from '../types.js';

/** LVM VG/LV names: letters, digits and + _ . - (lvm(8) "Valid names"), not starting with -. */
const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;

export function readStorage(v: unknown, path: string, dataDir: string): StorageConfig {
  const m = mapping(v, path, ['backend', 'file', 'lvm', 'maxPoolPercent']);
  const backend = opt(m, 'backend', path, (x, p) => oneOf(x, p, ['file', 'lvm'] as const)) ?? DEFAULT_STORAGE.backend;
  const file = mapping(m['file'] ?? {}, key(path, 'file'), ['dir']);
  const fileDir = opt(file, 'dir', key(path, 'file'), readAbsolutePath) ?? underDataDir(dataDir, 'volumes');
  const percent = (x: unknown, p: string) => int(x, p, LIMITS.maxPoolPercent);
  const sharedMax = opt(m, 'maxPoolPercent', path, percent);
  let lvmMax: number | undefined;
  let lvm: StorageConfig['lvm'];
  if (m['lvm'] !== undefined || backend === 'lvm') {
    const lp = key(path, 'lvm');
    const l = mapping(m['lvm'] ?? {}, lp, ['vg', 'thinPool', 'maxPoolPercent']);
    lvmMax = opt(l, 'maxPoolPercent', lp, percent);
    const name = (x: unknown, p: string) => {
      const s = str(x, p);
      if (!LVM_NAME.test(s) || s === '.' || s === '..') throw new ConfigError(p, `${JSON.stringify(s)} is not a valid LVM name`);
      return s;
    };
    const vg = opt(l, 'vg', lp, name);
    const thinPool = opt(l, 'thinPool', lp, name);
    if (backend === 'lvm' && (vg === undefined || thinPool === undefined)) throw new ConfigError(key(lp, vg === undefined ? 'vg' : 'thinPool'), 'is required when storage.backend is lvm');
    if (vg !== undefined && thinPool !== undefined) lvm = { vg, thinPool };
  }
  // storage.lvm.maxPoolPercent is the documented spelling for the thin pool; storage.maxPoolPercent
  // (either backend) is kept. Both given: the lvm one wins for the lvm backend.
  const maxPoolPercent = (backend === 'lvm' ? lvmMax : undefined) ?? sharedMax ?? DEFAULT_STORAGE.maxPoolPercent;
  return { backend, fileDir, maxPoolPercent, ...(lvm ? { lvm } : {}) };
}
