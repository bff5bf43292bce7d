/**
 * What the services ask of a storage backend: golden images, per-machine
 * disks cloned from them, checkpoints of a disk, how tgtd exports a disk,
 * and the numbers needed to refuse work before the pool runs out of space.
 *
 * A backend is written as a BackendCore (storage/files.ts, storage/lvm.ts,
 * one file each) and reaches the services as a VolumeBackend through
 * storage/guarded.ts, which validates every name, runs mutations one at a
 * time and refuses space-taking work above the threshold, once for all
 * backends; storage/factory.ts picks the backend from the configuration.
 *
 * Every failure is a StorageError subclass that names the volume and the
 * operation, so an API handler can map it to a status code without parsing
 * messages, and a log line says which disk was refused and why.
 */
import { errorMessage } from '../errors/message.js';
import type { Readable } from 'node:stream';
import type { VolumeExport } from './export.js';

export interface ImageInfo {
  readonly id: string;
  /** Bytes imported (the device or file may be rounded up, e.g. to an LVM extent). */
  readonly sizeBytes: number;
  /** Lower-case hex sha256 of the imported bytes. */
  readonly sha256: string;
  readonly readOnly: boolean;
}

export interface DiskInfo {
  readonly id: string;
  /** The image this disk was cloned from (kept after restores and resets). */
  readonly imageId: string;
  readonly sizeBytes: number;
  /** How tgtd exports it (the backend's exportOf). */
  readonly export: VolumeExport;
}

export interface CheckpointInfo {
  readonly diskId: string;
  readonly name: string;
}

/** How full a backend's pool is, as the backend measures it. */
export interface PoolUsage {
  /** Thin pool data% (lvm), filesystem used% (file) or pool used% / quota (rbd), 0..100. */
  readonly dataPercent: number;
  /** A second figure that fills up on its own, e.g. the lvm thin pool's metadata%. */
  readonly metadataPercent?: number;
  readonly totalBytes: number;
}

export interface Usage extends PoolUsage {
  /** The backend's kind ("file", "lvm", …). */
  readonly backend: string;
  /** Percent above which clone, checkpoint and import are refused. */
  readonly thresholdPercent: number;
  /**
   * The storage cluster's own health where it has one (rbd: HEALTH_OK, HEALTH_WARN, HEALTH_ERR and
   * the names of its checks, e.g. "HEALTH_WARN OSD_DOWN"); shown, never a reason to refuse.
   */
  readonly health?: string;
}

export interface ImportOptions {
  /**
   * Required when the source is a stream (an LV must be created with its
   * size before the first byte is written); checked against the bytes that
   * arrive. For a path the file's size is used.
   */
  readonly sizeBytes?: number;
  /** Mark the image read-only once imported (default true: a golden image is not written). */
  readonly readOnly?: boolean;
}

export interface RestoreResult {
  /** How the disk got the checkpoint's content back, for the log and the API: lvm "merge" or "snapshot", file "reflink" or "copy", … */
  readonly method: string;
}

/** What a backend says about itself for the `storage.ready` log line. */
export interface BackendDescription {
  /** Where its volumes are and what it found at init, e.g. `{ dir, cloneMode }` or `{ vg, pool }`. */
  readonly fields: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Something the administrator should know, appended to "storage ready; ". */
  readonly note?: string;
}

export interface VolumeBackend {
  /** A name for logs, metrics and the API ("file", "lvm", …). */
  readonly kind: string;

  /** Checks the pool/directory and probes capabilities; call once before anything else. */
  init(): Promise<void>;

  importImage(id: string, source: Readable | string, opts?: ImportOptions): Promise<ImageInfo>;
  listImages(): Promise<ImageInfo[]>;
  /** undefined when there is no such image. */
  getImage(id: string): Promise<ImageInfo | undefined>;
  /** Refused with InUseError while any disk cloned from it exists. */
  removeImage(id: string): Promise<void>;
  setImageReadOnly(id: string): Promise<void>;
  /**
   * Where an image's bytes can be read (a file or a block device), for the agent's deploy
   * download; undefined when there is no such image. Backends that cannot say leave it out:
   * the file backend has it, the lvm backend does not yet (a deploy from it is refused before it starts).
   */
  imageSource?(id: string): Promise<string | undefined>;

  /** Refused with PoolFullError when usage is above the threshold. */
  clone(imageId: string, diskId: string): Promise<DiskInfo>;
  /** Removes the disk and its checkpoints. */
  removeDisk(diskId: string): Promise<void>;
  diskExists(diskId: string): Promise<boolean>;
  getDisk(diskId: string): Promise<DiskInfo | undefined>;
  listDisks(): Promise<DiskInfo[]>;
  /** Drops the disk and clones it again from its image; its checkpoints are kept (restorable later). */
  reset(diskId: string): Promise<DiskInfo>;
  /**
   * Makes every disk usable again after a crash: the lvm backend activates
   * disk LVs left inactive (a restore deactivates the disk before merging).
   * Returns the ids it activated and, without stopping at the first, the
   * disks it could not (each error names its disk). Backends with nothing
   * to do (files are always there) leave it out.
   */
  activateDisks?(): Promise<{ activated: string[]; failed: StorageError[] }>;

  checkpoint(diskId: string, name: string): Promise<CheckpointInfo>;
  /**
   * Gives the disk the checkpoint's content back; the checkpoint stays. The
   * disk must not be in use (exported): the lvm backend has to deactivate it.
   */
  restore(diskId: string, name: string): Promise<RestoreResult>;
  listCheckpoints(diskId: string): Promise<CheckpointInfo[]>;
  removeCheckpoint(diskId: string, name: string): Promise<void>;

  usage(): Promise<Usage>;
  /**
   * The storage cluster's own health where the backend has one (rbd: "HEALTH_WARN OSD_DOWN"),
   * the same string as Usage.health; absent for backends without a cluster. Never throws.
   */
  health?(): Promise<string>;
  /** Pure: how tgtd exports the disk (bstype, backing store, options); does not check that it exists. */
  exportOf(diskId: string): VolumeExport;
  /** Call after init(). */
  describe(): BackendDescription;
}

/**
 * What a backend implements (one file beside files.ts and lvm.ts): VolumeBackend's verbs
 * without the checks storage/guarded.ts does for every backend. A core may rely on them:
 * - every image, disk and checkpoint name it gets passed checkId (so it can go into a
 *   path, an LV or image name and an argv);
 * - init, the mutations (import, remove, set-read-only, clone, reset, activate, checkpoint,
 *   restore, remove-checkpoint) run one at a time, never interleaved with one another;
 *   reads may run beside them;
 * - import, clone and checkpoint are only called while usage() is at or below the threshold.
 *   reset is not refused: it removes the disk before it clones it again, so it gives back
 *   at least what it takes.
 * A core never calls the wrapper, so it may call its own methods inside a mutation.
 */
export interface BackendCore extends Omit<VolumeBackend, 'usage' | 'diskExists'> {
  /** Without the threshold: the wrapper adds it. */
  usage(): Promise<PoolUsage>;
  /**
   * The storage cluster's own health where it has one (rbd), for Usage.health. Kept out of
   * usage() so the threshold check before every clone does not pay for it; never throws.
   */
  health?(): Promise<string>;
}

// ---- names ---------------------------------------------------------------

/**
 * Ids of images and disks and checkpoint names. One charset for both
 * backends: they become LV names (with a 4-char prefix, and "+" joining a
 * disk and a checkpoint name, which is why "+" is not allowed here) and file
 * names. No "_": LVM reserves LV names containing _tdata, _tmeta, _pmspare,
 * _rimage… and refusing the character avoids all of them. No leading "." or
 * "-" (hidden files, option-looking argv). 48 chars keeps the longest LV
 * name (mbc-DISK+NAME, 101 chars) under LVM's 127.
 */
export const MAX_ID_LENGTH = 48;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;

export type VolumeKind = 'image' | 'disk' | 'checkpoint';

export function checkId(id: string): { ok: true } | { ok: false; reason: string } {
  if (typeof id !== 'string' || id.length === 0) return { ok: false, reason: 'empty name' };
  if (id.length > MAX_ID_LENGTH) return { ok: false, reason: `longer than ${MAX_ID_LENGTH} characters` };
  if (!ID_RE.test(id)) return { ok: false, reason: 'only letters, digits, "." and "-" are allowed, starting with a letter or digit' };
  if (id.includes('..')) return { ok: false, reason: 'contains ".."' };
  return { ok: true };
}

/** Throws InvalidNameError naming the volume kind and the operation. */
export function validateId(kind: VolumeKind, id: string, op: string): void {
  const c = checkId(id);
  if (!c.ok) throw new InvalidNameError(kind, String(id), op, c.reason);
}

// ---- errors --------------------------------------------------------------

export class StorageError extends Error {
  constructor(
    /** e.g. "disk node-01", "image debian-12", "pool vg0/pool". */
    readonly volume: string,
    /** The verb that failed: "clone", "restore", "import", … */
    readonly op: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${op} ${volume}: ${message}`, options);
    this.name = 'StorageError';
  }
}

export class InvalidNameError extends StorageError {
  constructor(kind: VolumeKind, id: string, op: string, readonly reason: string) {
    super(`${kind} ${JSON.stringify(id.slice(0, 80))}`, op, `invalid name: ${reason}`);
    this.name = 'InvalidNameError';
  }
}

export class NotFoundError extends StorageError {
  constructor(volume: string, op: string) {
    super(volume, op, 'does not exist');
    this.name = 'NotFoundError';
  }
}

export class AlreadyExistsError extends StorageError {
  constructor(volume: string, op: string) {
    super(volume, op, 'already exists');
    this.name = 'AlreadyExistsError';
  }
}

/** An image that still has disks cloned from it. */
export class InUseError extends StorageError {
  constructor(volume: string, op: string, readonly users: readonly string[]) {
    super(volume, op, `in use by ${users.length} disk(s): ${users.slice(0, 5).join(', ')}${users.length > 5 ? ', …' : ''}`);
    this.name = 'InUseError';
  }
}

/** A disk that cannot be deactivated or replaced because something has it open (tgtd). */
export class BusyError extends StorageError {
  constructor(volume: string, op: string, detail: string, options?: { cause?: unknown }) {
    super(volume, op, `busy: ${detail}`, options);
    this.name = 'BusyError';
  }
}

export class PoolFullError extends StorageError {
  constructor(volume: string, op: string, readonly usage: Usage) {
    const meta = usage.metadataPercent !== undefined ? `, metadata ${usage.metadataPercent.toFixed(2)}%` : '';
    super(volume, op, `pool is above ${usage.thresholdPercent}% (data ${usage.dataPercent.toFixed(2)}%${meta})`);
    this.name = 'PoolFullError';
  }
}

/** A size given or found that does not fit (stream shorter/longer than announced, empty image). */
export class SizeError extends StorageError {
  constructor(volume: string, op: string, detail: string) {
    super(volume, op, detail);
    this.name = 'SizeError';
  }
}

/** An external command or a system call failed; `cause` has the CommandError or errno error. */
export class BackendError extends StorageError {
  constructor(volume: string, op: string, cause: unknown) {
    super(volume, op, errorMessage(cause), { cause });
    this.name = 'BackendError';
  }
}

/** True when usage is above its threshold (data or, for lvm, metadata). */
export function isAboveThreshold(u: Usage): boolean {
  return u.dataPercent > u.thresholdPercent || (u.metadataPercent !== undefined && u.metadataPercent > u.thresholdPercent);
}

/**
 * Runs mutations one at a time. Every backend needs it (storage/guarded.ts
 * holds one per backend): LVM takes its own VG lock but a reset (remove +
 * clone) or a restore (deactivate, merge, activate, re-snapshot) must not
 * interleave with another operation on the same disk, and the file backend's
 * rename dance must not either. Storage operations are rare and short next to
 * a boot, so one queue is enough. The disk service uses one too.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
