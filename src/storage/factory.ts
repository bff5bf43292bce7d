/**
 * The one place a storage backend is chosen: `storage.backend` names it, its settings come
 * from its own config section, and every backend is wrapped by storage/guarded.ts. A new
 * backend is a new file beside files.ts and lvm.ts, its settings in config/types.ts
 * (StorageConfig) with their reader in config/sections/storage.ts, and one line here.
 */
import type { StorageConfig } from '../config/types.js';
import type { Runner } from '../exec/run.js';
import type { BackendCore, VolumeBackend } from './backend.js';
import { FileBackend } from './files.js';
import { guarded } from './guarded.js';
import { LvmBackend } from './lvm.js';
import { RbdBackend } from './rbd.js';

export interface BackendDeps {
  readonly runner: Runner;
}

type Settings<B extends StorageConfig['backend']> = Extract<StorageConfig, { backend: B }>;

const BACKENDS: { readonly [B in StorageConfig['backend']]: (s: Settings<B>, d: BackendDeps) => BackendCore } = {
  file: (s, d) => new FileBackend({ root: s.dir, runner: d.runner, bstype: s.bstype }),
  lvm: (s, d) => new LvmBackend({ vg: s.vg, pool: s.thinPool, runner: d.runner, bstype: s.bstype }),
  rbd: (s, d) => new RbdBackend({ pool: s.pool, cephConf: s.cephConf, user: s.user, ...(s.keyring ? { keyring: s.keyring } : {}), runner: d.runner }),
};

/** The configured backend, guarded; call its init() before use. */
export function createBackend(settings: StorageConfig, deps: BackendDeps): VolumeBackend {
  // TypeScript cannot tie the table's key to its entry's parameter; the mapped type above does.
  const make = BACKENDS[settings.backend] as (s: StorageConfig, d: BackendDeps) => BackendCore;
  return guarded(make(settings, deps), { thresholdPercent: settings.maxPoolPercent });
}
