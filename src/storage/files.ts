/**
 * The `file` backend (a BackendCore): images and disks are files under one directory,
 * clones are reflinks (btrfs, XFS with reflink=1) or, where the file system
 * cannot share extents, sparse copies.
 *
 *   ROOT/images/ID.raw   + ID.json    golden image, 0400 when read-only (0600 before)
 *   ROOT/disks/ID.raw    + ID.json    machine disk (what tgtd exports), 0600
 *   ROOT/checkpoints/DISK/NAME.raw    checkpoint of a disk
 *   ROOT/tmp/                         staging; emptied at init
 *
 * Metadata lives in one small JSON sidecar per volume, not in a manifest:
 * every operation changes exactly one volume's record, so each write is one
 * atomic tmp + fsync + rename of a file nobody else touches, with no shared
 * file to rewrite and no lock around it. A volume exists when its sidecar
 * exists: data is put in place first and the sidecar last, and removal goes
 * the other way, so a crash leaves at worst a .raw without a sidecar, which
 * is ignored and deleted at the next init.
 *
 * Cloning runs cp (coreutils 9.1 refuses --reflink=always together with
 * --sparse=always, "--reflink can be used only with --sparse=auto"; a
 * reflink keeps holes anyway). Which of the two works is probed once at
 * init on a scratch file and told in describe() (cloneMode) for the start's log line.
 *
 * Images and disks are machines' whole file systems (with their secrets): every directory here
 * is 0700 and every file is created 0600 (0400 for a read-only image) with explicit modes, so
 * they are root's alone whatever the process umask.
 */
import { constants } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CommandError, type Runner } from '../exec/run.js';
import {
  AlreadyExistsError, BackendError, InUseError, NotFoundError, SizeError, StorageError,
  type BackendCore, type BackendDescription, type CheckpointInfo, type DiskInfo, type ImageInfo, type ImportOptions,
  type PoolUsage, type RestoreResult,
} from './backend.js';
import type { PathBsType, VolumeExport } from './export.js';
import { copySparse, TooLongError } from './write-sparse.js';

export type CloneMode = 'reflink' | 'copy';

/** Root's alone (see the header). */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
const READ_ONLY_MODE = 0o400;

export interface FileBackendOptions {
  readonly root: string;
  readonly runner: Runner;
  /** tgtd's backing-store type for the disk files (default rdwr: plain reads and writes work on any filesystem). */
  readonly bstype?: PathBsType;
  /** Limit for one cp; a sparse copy of a big image takes a while (default 30 min). */
  readonly copyTimeoutMs?: number;
}

interface ImageMeta { v: 1; id: string; sizeBytes: number; sha256: string; readOnly: boolean }
interface DiskMeta { v: 1; id: string; imageId: string }

/** The file backend's core; storage/guarded.ts checks names, serialises and guards space for it. */
export class FileBackend implements BackendCore {
  readonly kind = 'file';
  private mode: CloneMode | undefined;
  private readonly root: string;
  private readonly bstype: PathBsType;
  private readonly copyTimeoutMs: number;
  private tmpSeq = 0;

  constructor(private readonly opts: FileBackendOptions) {
    this.root = path.resolve(opts.root);
    this.bstype = opts.bstype ?? 'rdwr';
    this.copyTimeoutMs = opts.copyTimeoutMs ?? 30 * 60_000;
  }

  async init(): Promise<void> {
    for (const d of ['images', 'disks', 'checkpoints', 'tmp']) await mkdir(this.dir(d), { recursive: true, mode: DIR_MODE });
    await rm(this.dir('tmp'), { recursive: true, force: true });
    await mkdir(this.dir('tmp'), { mode: DIR_MODE });
    // mkdir's mode is cut by the umask and leaves existing directories alone.
    for (const d of [this.root, ...['images', 'disks', 'checkpoints', 'tmp'].map((x) => this.dir(x))]) await chmod(d, DIR_MODE);
    // A .raw without its sidecar is the remains of an interrupted operation.
    for (const d of ['images', 'disks']) {
      const names = new Set(await readdir(this.dir(d)));
      for (const n of names) {
        if (n.endsWith('.raw') && !names.has(`${n.slice(0, -4)}.json`)) await rm(path.join(this.dir(d), n), { force: true });
      }
    }
    this.mode = await this.probe();
  }

  describe(): BackendDescription {
    return {
      fields: { dir: this.root, cloneMode: this.mode },
      ...(this.mode === 'copy' ? { note: 'this filesystem cannot reflink, so clones are full (sparse) copies' } : {}),
    };
  }

  private async probe(): Promise<CloneMode> {
    const a = this.tmpPath('probe');
    const b = this.tmpPath('probe-clone');
    const fh = await open(a, 'wx', FILE_MODE);
    try { await fh.write(Buffer.alloc(64 << 10, 0x5a)); } finally { await fh.close(); }
    try {
      await this.opts.runner(['cp', '--reflink=always', a, b], { timeoutMs: 30_000 });
      return 'reflink';
    } catch (e) {
      if (!(e instanceof CommandError) || e.reason !== 'exit') throw new BackendError(`directory ${this.root}`, 'probe', e);
      return 'copy';
    } finally {
      await rm(a, { force: true });
      await rm(b, { force: true });
    }
  }

  // ---- images ------------------------------------------------------------

  async importImage(id: string, source: Readable | string, opts: ImportOptions = {}): Promise<ImageInfo> {
    const vol = `image ${id}`;
    if (await this.readImage(id)) throw new AlreadyExistsError(vol, 'import');
    let limit = opts.sizeBytes;
    if (typeof source === 'string') {
      const st = await stat(source).catch((e: unknown) => { throw new BackendError(vol, 'import', e); });
      if (!st.isFile()) throw new SizeError(vol, 'import', `${source} is not a regular file`);
      limit = st.size;
    }
    const tmp = this.tmpPath(`img-${id}`);
    try {
      const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, FILE_MODE);
      let r;
      try {
        r = await copySparse(source, fh, limit);
        if (opts.sizeBytes !== undefined && r.bytes !== opts.sizeBytes) throw new SizeError(vol, 'import', `got ${r.bytes} bytes, expected ${opts.sizeBytes}`);
        if (r.bytes === 0) throw new SizeError(vol, 'import', 'image is empty');
        await fh.truncate(r.bytes); // trailing zero blocks become a hole
        await fh.sync();
      } finally {
        await fh.close();
      }
      const readOnly = opts.readOnly ?? true;
      // open()'s mode is cut by the umask; set it outright.
      await chmod(tmp, readOnly ? READ_ONLY_MODE : FILE_MODE);
      await rename(tmp, this.imagePath(id));
      const meta: ImageMeta = { v: 1, id, sizeBytes: r.bytes, sha256: r.sha256, readOnly };
      await this.writeJson(this.dir('images'), `${id}.json`, meta);
      return toImage(meta);
    } catch (e) {
      await rm(tmp, { force: true });
      if (e instanceof TooLongError) throw new SizeError(vol, 'import', `more than the announced ${e.limit} bytes`);
      throw wrap(e, vol, 'import');
    }
  }

  async listImages(): Promise<ImageInfo[]> {
    const out: ImageInfo[] = [];
    for (const id of await this.idsIn('images')) {
      const m = await this.readImage(id);
      if (m) out.push(toImage(m));
    }
    return out;
  }

  async getImage(id: string): Promise<ImageInfo | undefined> {
    const m = await this.readImage(id);
    return m && toImage(m);
  }

  async removeImage(id: string): Promise<void> {
    const vol = `image ${id}`;
    if (!(await this.readImage(id))) throw new NotFoundError(vol, 'remove');
    const users = (await this.listDisks()).filter((d) => d.imageId === id).map((d) => d.id);
    if (users.length > 0) throw new InUseError(vol, 'remove', users);
    await unlink(path.join(this.dir('images'), `${id}.json`));
    await syncDir(this.dir('images'));
    await rm(this.imagePath(id), { force: true });
  }

  async setImageReadOnly(id: string): Promise<void> {
    const m = await this.readImage(id);
    if (!m) throw new NotFoundError(`image ${id}`, 'set-read-only');
    await chmod(this.imagePath(id), READ_ONLY_MODE);
    await this.writeJson(this.dir('images'), `${id}.json`, { ...m, readOnly: true });
  }

  // ---- disks -------------------------------------------------------------

  async clone(imageId: string, diskId: string): Promise<DiskInfo> {
    const vol = `disk ${diskId}`;
    if (!(await this.readImage(imageId))) throw new NotFoundError(`image ${imageId}`, 'clone');
    if (await this.readDisk(diskId)) throw new AlreadyExistsError(vol, 'clone');
    await this.copyInto(this.imagePath(imageId), this.devicePath(diskId), vol, 'clone');
    await this.writeJson(this.dir('disks'), `${diskId}.json`, { v: 1, id: diskId, imageId } satisfies DiskMeta);
    return this.diskInfo({ v: 1, id: diskId, imageId });
  }

  async removeDisk(diskId: string): Promise<void> {
    if (!(await this.readDisk(diskId))) throw new NotFoundError(`disk ${diskId}`, 'remove');
    await this.unlinkDisk(diskId);
  }

  private async unlinkDisk(diskId: string, keepCheckpoints = false): Promise<void> {
    await unlink(path.join(this.dir('disks'), `${diskId}.json`));
    await syncDir(this.dir('disks'));
    await rm(this.devicePath(diskId), { force: true });
    if (!keepCheckpoints) await rm(this.checkpointDir(diskId), { recursive: true, force: true });
  }

  async getDisk(diskId: string): Promise<DiskInfo | undefined> {
    const m = await this.readDisk(diskId);
    return m && this.diskInfo(m);
  }

  async listDisks(): Promise<DiskInfo[]> {
    const out: DiskInfo[] = [];
    for (const id of await this.idsIn('disks')) {
      const m = await this.readDisk(id);
      if (m) out.push(await this.diskInfo(m));
    }
    return out;
  }

  async reset(diskId: string): Promise<DiskInfo> {
    const m = await this.readDisk(diskId);
    if (!m) throw new NotFoundError(`disk ${diskId}`, 'reset');
    if (!(await this.readImage(m.imageId))) throw new NotFoundError(`image ${m.imageId}`, 'reset');
    await this.unlinkDisk(diskId, true);
    return this.clone(m.imageId, diskId);
  }

  /** The disk's file (it is what tgtd exports). */
  devicePath(diskId: string): string {
    return path.join(this.dir('disks'), `${diskId}.raw`);
  }

  exportOf(diskId: string): VolumeExport {
    return { bstype: this.bstype, backingStore: this.devicePath(diskId) };
  }

  // ---- checkpoints -------------------------------------------------------

  async checkpoint(diskId: string, name: string): Promise<CheckpointInfo> {
    const vol = `checkpoint ${diskId}/${name}`;
    if (!(await this.readDisk(diskId))) throw new NotFoundError(`disk ${diskId}`, 'checkpoint');
    if (await exists(this.checkpointPath(diskId, name))) throw new AlreadyExistsError(vol, 'checkpoint');
    await mkdir(this.checkpointDir(diskId), { recursive: true, mode: DIR_MODE });
    await this.copyInto(this.devicePath(diskId), this.checkpointPath(diskId, name), vol, 'checkpoint');
    return { diskId, name };
  }

  /**
   * Copies the checkpoint to a new file and renames it over the disk: the
   * disk changes atomically, but a process holding the old file open (tgtd)
   * keeps reading the old inode, so the disk must not be exported meanwhile.
   */
  async restore(diskId: string, name: string): Promise<RestoreResult> {
    if (!(await this.readDisk(diskId))) throw new NotFoundError(`disk ${diskId}`, 'restore');
    if (!(await exists(this.checkpointPath(diskId, name)))) throw new NotFoundError(`checkpoint ${diskId}/${name}`, 'restore');
    await this.copyInto(this.checkpointPath(diskId, name), this.devicePath(diskId), `disk ${diskId}`, 'restore');
    return { method: this.mode ?? 'copy' };
  }

  async listCheckpoints(diskId: string): Promise<CheckpointInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.checkpointDir(diskId));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new BackendError(`disk ${diskId}`, 'list-checkpoints', e);
    }
    return names.filter((n) => n.endsWith('.raw')).map((n) => ({ diskId, name: n.slice(0, -4) })).sort((a, b) => a.name.localeCompare(b.name));
  }

  async removeCheckpoint(diskId: string, name: string): Promise<void> {
    const vol = `checkpoint ${diskId}/${name}`;
    try {
      await unlink(this.checkpointPath(diskId, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(vol, 'remove-checkpoint');
      throw new BackendError(vol, 'remove-checkpoint', e);
    }
  }

  // ---- usage -------------------------------------------------------------

  async usage(): Promise<PoolUsage> {
    const s = await statfs(this.root);
    const total = s.blocks * s.bsize;
    // Used as df computes it: blocks not free (bfree counts root's reserve as free).
    const used = (s.blocks - s.bfree) * s.bsize;
    return { dataPercent: total > 0 ? (used / total) * 100 : 100, totalBytes: total };
  }

  // ---- helpers -----------------------------------------------------------

  /** cp src to a staging file, make it writable and durable, rename it to dst. */
  private async copyInto(src: string, dst: string, vol: string, op: string): Promise<void> {
    if (!this.mode) throw new StorageError(vol, op, 'backend not initialised (init() not called)');
    const tmp = this.tmpPath(path.basename(dst));
    const argv = this.mode === 'reflink' ? ['cp', '--reflink=always', src, tmp] : ['cp', '--sparse=always', src, tmp];
    try {
      await this.opts.runner(argv, { timeoutMs: this.copyTimeoutMs });
      // cp gives the copy the source's mode (less the umask): a clone of a 0400 image must be
      // writable, and never readable by anyone but root.
      await chmod(tmp, FILE_MODE);
      const fh = await open(tmp, 'r+');
      try { await fh.sync(); } finally { await fh.close(); }
      await rename(tmp, dst);
      await syncDir(path.dirname(dst));
    } catch (e) {
      await rm(tmp, { force: true });
      throw wrap(e, vol, op);
    }
  }

  private async diskInfo(m: DiskMeta): Promise<DiskInfo> {
    const p = this.devicePath(m.id);
    const st = await stat(p).catch(() => undefined);
    return { id: m.id, imageId: m.imageId, sizeBytes: st?.size ?? 0, export: this.exportOf(m.id) };
  }

  private async readImage(id: string): Promise<ImageMeta | undefined> {
    const j = await readJson(path.join(this.dir('images'), `${id}.json`));
    if (!j || typeof j.sha256 !== 'string' || typeof j.sizeBytes !== 'number') return undefined;
    return { v: 1, id, sizeBytes: j.sizeBytes, sha256: j.sha256, readOnly: j.readOnly === true };
  }

  private async readDisk(id: string): Promise<DiskMeta | undefined> {
    const j = await readJson(path.join(this.dir('disks'), `${id}.json`));
    if (!j || typeof j.imageId !== 'string') return undefined;
    return { v: 1, id, imageId: j.imageId };
  }

  private async idsIn(d: string): Promise<string[]> {
    return (await readdir(this.dir(d))).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort();
  }

  private async writeJson(dir: string, name: string, value: unknown): Promise<void> {
    const tmp = this.tmpPath(name);
    const fh = await open(tmp, 'wx', FILE_MODE);
    try {
      await fh.writeFile(`${JSON.stringify(value)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path.join(dir, name));
    await syncDir(dir);
  }

  private dir(d: string): string {
    return path.join(this.root, d);
  }

  private imagePath(id: string): string {
    return path.join(this.dir('images'), `${id}.raw`);
  }

  private checkpointDir(diskId: string): string {
    return path.join(this.dir('checkpoints'), diskId);
  }

  private checkpointPath(diskId: string, name: string): string {
    return path.join(this.checkpointDir(diskId), `${name}.raw`);
  }

  /** Staging names are unique per call, so a failed step never collides with the next. */
  private tmpPath(base: string): string {
    return path.join(this.dir('tmp'), `${base}.${process.pid}.${++this.tmpSeq}`);
  }
}

function toImage(m: ImageMeta): ImageInfo {
  return { id: m.id, sizeBytes: m.sizeBytes, sha256: m.sha256, readOnly: m.readOnly };
}

function wrap(e: unknown, vol: string, op: string): StorageError {
  return e instanceof StorageError ? e : new BackendError(vol, op, e);
}

async function readJson(p: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // a torn sidecar cannot happen (rename), but a hand-edited one can
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** fsync a directory so a rename in it survives a crash. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}
