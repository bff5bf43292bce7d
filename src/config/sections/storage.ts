/**
 * The `storage` section: which backend holds the disks (`storage.backend`), its own section
 * (`storage.<backend>`), and what every backend shares. A new backend adds its settings to
 * StorageConfig (types.ts), its reader here and its line in STORAGE_SECTIONS.
 */
import { PATH_BS_TYPES, type PathBsType } from '../../storage/export.js';
import { CEPH_NAME_RE, CEPH_PATH_RE } from '../../storage/rbd.js';
import { DEFAULT_STORAGE, LIMITS } from '../defaults.js';
import { ConfigError } from '../error.js';
import { int, key, mapping, oneOf, opt, readAbsolutePath, str, underDataDir, type Obj } from '../readers.js';
import type { StorageConfig } from '../types.js';

/** How a backend section is read (see STORAGE_SECTIONS). */
interface SectionContext {
  readonly dataDir: string;
  /** This is the backend `storage.backend` names: required settings must be there. */
  readonly chosen: boolean;
  /** The old spelling `iscsi.bstype`, for the chosen backend only. */
  readonly legacyBstype: PathBsType | undefined;
}
type BackendName = StorageConfig['backend'];
/** A section's settings; its own maxPoolPercent, when it has one, wins over storage.maxPoolPercent. */
type Section<B extends BackendName> = Omit<Extract<StorageConfig, { backend: B }>, 'maxPoolPercent'> & { readonly maxPoolPercent?: number };
type SectionReader<B extends BackendName> = (v: unknown, path: string, ctx: SectionContext) => Section<B> | undefined;

/**
 * One reader per backend section `storage.<name>`, keyed by the name `storage.backend` takes.
 * Every section present is checked; only the chosen one must be complete (a reader returns
 * undefined for a section that is not chosen and not complete).
 */
const STORAGE_SECTIONS: { readonly [B in BackendName]: SectionReader<B> } = {
  file: readFileSection,
  lvm: readLvmSection,
  rbd: readRbdSection,
};

const readPoolPercent = (x: unknown, p: string): number => int(x, p, LIMITS.maxPoolPercent);
const readPathBstype = (x: unknown, p: string): PathBsType => oneOf(x, p, PATH_BS_TYPES);

export function readStorage(v: unknown, path: string, dataDir: string, legacyBstype: PathBsType | undefined): StorageConfig {
  const names = Object.keys(STORAGE_SECTIONS) as BackendName[];
  const m = mapping(v, path, ['backend', 'maxPoolPercent', ...names]);
  const backend = opt(m, 'backend', path, (x, p) => oneOf(x, p, names)) ?? DEFAULT_STORAGE.backend;
  const sharedMax = opt(m, 'maxPoolPercent', path, readPoolPercent);
  let section: Section<BackendName> | undefined;
  for (const name of names) {
    const chosen = name === backend;
    if (!chosen && m[name] === undefined) continue;
    // TypeScript cannot tie the key to its reader's type; the mapped type of STORAGE_SECTIONS does.
    const read = STORAGE_SECTIONS[name] as SectionReader<BackendName>;
    const s = read(m[name] ?? {}, key(path, name), { dataDir, chosen, legacyBstype: chosen ? legacyBstype : undefined });
    if (chosen) section = s;
  }
  if (!section) throw new ConfigError(key(path, backend), `is required when storage.backend is ${backend}`);
  // A backend without a bstype choice (one whose volumes are not paths) cannot take the old key.
  if (legacyBstype !== undefined && !('bstype' in section && section.bstype === legacyBstype)) {
    throw new ConfigError('iscsi.bstype', `the ${backend} backend has no bstype choice`);
  }
  const { maxPoolPercent: own, ...settings } = section;
  return { ...settings, maxPoolPercent: own ?? sharedMax ?? DEFAULT_STORAGE.maxPoolPercent } as StorageConfig;
}

/** `iscsi.bstype`, the old spelling of the path backends' `storage.<name>.bstype` (kept working). */
export function legacyBstypeOf(iscsi: unknown): PathBsType | undefined {
  if (typeof iscsi !== 'object' || iscsi === null || Array.isArray(iscsi)) return undefined; // readIscsi names the mistake
  return opt(iscsi as Obj, 'bstype', 'iscsi', readPathBstype);
}

/**
 * A path backend's bstype: `storage.<name>.bstype`, else the old `iscsi.bstype` (it was the one
 * knob before each backend described its export), else absent: the backend's own default.
 */
function sectionBstype(s: Obj, path: string, legacy: PathBsType | undefined): PathBsType | undefined {
  const own = opt(s, 'bstype', path, readPathBstype);
  if (own !== undefined && legacy !== undefined && own !== legacy) {
    throw new ConfigError('iscsi.bstype', `is the old spelling of ${key(path, 'bstype')}, which says ${own}; keep one`);
  }
  return own ?? legacy;
}

function readFileSection(v: unknown, path: string, ctx: SectionContext): Section<'file'> {
  const m = mapping(v, path, ['dir', 'bstype']);
  const bstype = sectionBstype(m, path, ctx.legacyBstype);
  return { backend: 'file', dir: opt(m, 'dir', path, readAbsolutePath) ?? underDataDir(ctx.dataDir, 'volumes'), ...(bstype ? { bstype } : {}) };
}

/** LVM VG/LV names: letters, digits and + _ . - (lvm(8) "Valid names"), not starting with -. */
const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;

function readLvmSection(v: unknown, path: string, ctx: SectionContext): Section<'lvm'> | undefined {
  const m = mapping(v, path, ['vg', 'thinPool', 'maxPoolPercent', 'bstype']);
  const maxPoolPercent = opt(m, 'maxPoolPercent', path, readPoolPercent);
  const name = (x: unknown, p: string) => {
    const s = str(x, p);
    if (!LVM_NAME.test(s) || s === '.' || s === '..') throw new ConfigError(p, `${JSON.stringify(s)} is not a valid LVM name`);
    return s;
  };
  const vg = opt(m, 'vg', path, name);
  const thinPool = opt(m, 'thinPool', path, name);
  const bstype = sectionBstype(m, path, ctx.legacyBstype);
  if (vg === undefined || thinPool === undefined) {
    if (ctx.chosen) throw new ConfigError(key(path, vg === undefined ? 'vg' : 'thinPool'), 'is required when storage.backend is lvm');
    return undefined;
  }
  // storage.lvm.maxPoolPercent is the documented spelling for the thin pool; storage.maxPoolPercent
  // (either backend) is kept. Both given: the lvm one wins for the lvm backend.
  return { backend: 'lvm', vg, thinPool, ...(bstype ? { bstype } : {}), ...(maxPoolPercent !== undefined ? { maxPoolPercent } : {}) };
}

/**
 * `storage.rbd`: the pool and cephx user the administrator made. The pool, the id and the conf
 * path go into argv and into tgtd's `--bsopts conf=…;id=…`, hence the narrow charsets.
 */
function readRbdSection(v: unknown, path: string, ctx: SectionContext): Section<'rbd'> | undefined {
  const m = mapping(v, path, ['pool', 'cephConf', 'user', 'keyring', 'maxPoolPercent']);
  const maxPoolPercent = opt(m, 'maxPoolPercent', path, readPoolPercent);
  const cephName = (what: string) => (x: unknown, p: string) => {
    const s = str(x, p);
    if (!CEPH_NAME_RE.test(s)) throw new ConfigError(p, `${JSON.stringify(s)} is not a valid ${what} (letters, digits, "_", "." and "-", at most 100)`);
    return s;
  };
  const confPath = (x: unknown, p: string) => {
    const s = readAbsolutePath(x, p);
    if (!CEPH_PATH_RE.test(s)) throw new ConfigError(p, 'must not contain blanks, ";" or "=" (it goes into tgtd\'s --bsopts)');
    return s;
  };
  const pool = opt(m, 'pool', path, cephName('Ceph pool name'));
  const user = opt(m, 'user', path, cephName('cephx id')) ?? 'metalboot';
  const cephConf = opt(m, 'cephConf', path, confPath) ?? '/etc/ceph/ceph.conf';
  const keyring = opt(m, 'keyring', path, readAbsolutePath);
  if (pool === undefined) {
    if (ctx.chosen) throw new ConfigError(key(path, 'pool'), 'is required when storage.backend is rbd');
    return undefined;
  }
  return { backend: 'rbd', pool, cephConf, user, ...(keyring ? { keyring } : {}), ...(maxPoolPercent !== undefined ? { maxPoolPercent } : {}) };
}
