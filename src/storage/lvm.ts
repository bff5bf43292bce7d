/**
 * The `lvm` backend (a BackendCore): thin LVs in one thin pool of one VG, both named
 * in the configuration and created by the administrator, never by us.
 *
 *   image        thin LV  mbi-ID           tags metalboot mb-image mb-sha256=HEX mb-bytes=N
 *   (importing)  thin LV  mbt-ID           renamed to mbi-ID once complete
 *   disk         thin snapshot of the image, mbd-ID     tags metalboot mb-disk mb-from=IMAGE
 *   checkpoint   thin snapshot of the disk, mbc-DISK+NAME  tags metalboot mb-ckpt mb-of=DISK
 *
 * Everything metalboot needs to know is in the LV names and tags, so the
 * VG is its own source of truth and nothing can drift from a sidecar; only
 * LVs tagged `metalboot` are ever listed, changed or removed. The image a
 * disk came from is a tag, not the `origin` field: LVM clears origin when
 * the origin is removed and after a merge (measured in the guest, lvm2
 * 2.03.16), and a reset still has to know the image.
 *
 * Snapshots are thin (`lvcreate -s` of a thin LV without -L), created with
 * -kn so that they are activated like any LV (thin snapshots default to
 * activation skip). Measured merge behaviour (lvm2 2.03.16, kernel 6.1):
 * `lvconvert --merge VG/CKPT` of a thin snapshot whose origin is inactive
 * merges at once ("Volume VG/CKPT replaced origin VG/DISK"): the CKPT LV is
 * gone, DISK keeps its name, uuid and tags, has CKPT's content, no origin,
 * and stays inactive until `lvchange -ay -K`. restore() therefore
 * deactivates the disk first (refused with BusyError if tgtd still has it
 * open), merges, activates, and takes the checkpoint again under the same
 * name so that it can be restored more than once. A crash between those
 * steps leaves the disk inactive (and, after the merge, the checkpoint
 * gone): activateDisks() and the disks service's recovery put both back.
 *
 * Every lvm command gets LVM_SUPPRESS_FD_WARNINGS=1 through `env` (the
 * runner has no environment option) and -y where it could ask. Warnings on
 * stderr (thin over-provisioning, autoextend) are normal and ignored; only
 * the JSON on stdout is parsed (storage/lvm-report.ts).
 */
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { CommandError, type RunResult, type Runner } from '../exec/run.js';
import {
  AlreadyExistsError, BackendError, BusyError, InUseError, NotFoundError, SizeError, StorageError,
  type BackendCore, type BackendDescription, type CheckpointInfo, type DiskInfo, type ImageInfo, type ImportOptions,
  type PoolUsage, type RestoreResult,
} from './backend.js';
import type { PathBsType, VolumeExport } from './export.js';
import { LV_FIELDS, parseLvs, parseVgs, type LvReport } from './lvm-report.js';
import { copySparse, TooLongError } from './write-sparse.js';

export interface LvmBackendOptions {
  readonly vg: string;
  /** Thin pool LV name in the VG (without the VG). */
  readonly pool: string;
  readonly runner: Runner;
  /** tgtd's backing-store type for the disk LVs (default aio: asynchronous I/O suits block devices). */
  readonly bstype?: PathBsType;
  /** Limit for one lvm command (default 120 s; they take 0.3–1 s, more under a busy dmeventd). */
  readonly commandTimeoutMs?: number;
}

const TAG = 'metalboot';
const P_IMAGE = 'mbi-';
const P_IMPORT = 'mbt-';
const P_DISK = 'mbd-';
const P_CKPT = 'mbc-';
/** LVM allows A-Za-z0-9+_.- in LV names; ids cannot contain '+', so it separates disk and checkpoint. */
const CKPT_SEP = '+';

/** VG and pool names as LVM accepts them (we never create them, but they go into argv). */
const LVM_NAME_RE = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;

/** The lvm backend's core; storage/guarded.ts checks names, serialises and guards space for it. */
export class LvmBackend implements BackendCore {
  readonly kind = 'lvm';
  private readonly vg: string;
  private readonly pool: string;
  private readonly bstype: PathBsType;
  private readonly timeoutMs: number;

  constructor(private readonly opts: LvmBackendOptions) {
    if (!LVM_NAME_RE.test(opts.vg)) throw new StorageError(`vg ${JSON.stringify(opts.vg)}`, 'configure', 'invalid VG name');
    if (!LVM_NAME_RE.test(opts.pool)) throw new StorageError(`pool ${JSON.stringify(opts.pool)}`, 'configure', 'invalid thin pool name');
    this.vg = opts.vg;
    this.pool = opts.pool;
    this.bstype = opts.bstype ?? 'aio';
    this.timeoutMs = opts.commandTimeoutMs ?? 120_000;
  }

  private get poolVolume(): string {
    return `pool ${this.vg}/${this.pool}`;
  }

  /** Checks that the VG and the thin pool exist; removes imports interrupted by a crash. */
  async init(): Promise<void> {
    const r = await this.lvm('init', `vg ${this.vg}`, ['vgs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_name,vg_size,vg_free,vg_extent_size', this.vg], [0, 5]);
    if (parseVgs(r.stdout).length === 0) throw new NotFoundError(`vg ${this.vg}`, 'init');
    await this.poolLv('init');
    for (const lv of await this.ours()) {
      if (lv.name.startsWith(P_IMPORT)) await this.lvm('init', `lv ${lv.name}`, ['lvremove', '-y', `${this.vg}/${lv.name}`]);
    }
  }

  describe(): BackendDescription {
    return { fields: { vg: this.vg, pool: this.pool } };
  }

  // ---- images ------------------------------------------------------------

  async importImage(id: string, source: Readable | string, opts: ImportOptions = {}): Promise<ImageInfo> {
    const vol = `image ${id}`;
    let size = opts.sizeBytes;
    if (typeof source === 'string') {
      const st = await stat(source).catch((e: unknown) => { throw new BackendError(vol, 'import', e); });
      if (!st.isFile()) throw new SizeError(vol, 'import', `${source} is not a regular file`);
      size = st.size;
    }
    if (size === undefined) throw new SizeError(vol, 'import', 'sizeBytes is required to import from a stream');
    if (!Number.isSafeInteger(size) || size <= 0) throw new SizeError(vol, 'import', `bad size ${size}`);
    const lvs = await this.ours();
    if (lvs.some((l) => l.name === P_IMAGE + id)) throw new AlreadyExistsError(vol, 'import');
    const tmp = P_IMPORT + id;
    if (lvs.some((l) => l.name === tmp)) await this.lvm('import', vol, ['lvremove', '-y', `${this.vg}/${tmp}`]);
    // A fresh thin LV reads zeros everywhere: copySparse skips zero blocks, which stay unallocated in the pool.
    // lvcreate refuses a byte size that is not whole 512-byte sectors (exit 3, "Error during
    // parsing of command line"); LVM rounds up to whole extents anyway.
    const lvBytes = Math.ceil(size / 512) * 512;
    await this.lvm('import', vol, ['lvcreate', '-y', '-V', `${lvBytes}b`, '-T', `${this.vg}/${this.pool}`, '-n', tmp,
      '--addtag', TAG, '--addtag', 'mb-image']);
    try {
      const fh = await open(`/dev/${this.vg}/${tmp}`, constants.O_WRONLY);
      let r;
      try {
        r = await copySparse(source, fh, size);
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (r.bytes !== size) throw new SizeError(vol, 'import', `got ${r.bytes} bytes, expected ${size}`);
      await this.lvm('import', vol, ['lvchange', '-y', '--addtag', `mb-sha256=${r.sha256}`, '--addtag', `mb-bytes=${r.bytes}`, `${this.vg}/${tmp}`]);
      const readOnly = opts.readOnly ?? true;
      if (readOnly) await this.lvm('import', vol, ['lvchange', '-y', '-pr', `${this.vg}/${tmp}`]);
      await this.lvm('import', vol, ['lvrename', this.vg, tmp, P_IMAGE + id]);
      return { id, sizeBytes: r.bytes, sha256: r.sha256, readOnly };
    } catch (e) {
      await this.lvm('import', vol, ['lvremove', '-y', `${this.vg}/${tmp}`]).catch(() => undefined);
      if (e instanceof TooLongError) throw new SizeError(vol, 'import', `more than the announced ${e.limit} bytes`);
      throw e instanceof StorageError ? e : new BackendError(vol, 'import', e);
    }
  }

  async listImages(): Promise<ImageInfo[]> {
    return (await this.ours()).filter(isImage).map(toImage);
  }

  async getImage(id: string): Promise<ImageInfo | undefined> {
    const lv = (await this.ours()).find((l) => isImage(l) && l.name === P_IMAGE + id);
    return lv && toImage(lv);
  }

  async removeImage(id: string): Promise<void> {
    const vol = `image ${id}`;
    const lvs = await this.ours();
    if (!lvs.some((l) => isImage(l) && l.name === P_IMAGE + id)) throw new NotFoundError(vol, 'remove');
    const users = lvs.filter((l) => isDisk(l) && tagValue(l, 'mb-from') === id).map((l) => l.name.slice(P_DISK.length));
    if (users.length > 0) throw new InUseError(vol, 'remove', users);
    await this.lvm('remove', vol, ['lvremove', '-y', `${this.vg}/${P_IMAGE}${id}`]);
  }

  async setImageReadOnly(id: string): Promise<void> {
    const vol = `image ${id}`;
    const lv = (await this.ours()).find((l) => isImage(l) && l.name === P_IMAGE + id);
    if (!lv) throw new NotFoundError(vol, 'set-read-only');
    if (lv.attr.writable) await this.lvm('set-read-only', vol, ['lvchange', '-y', '-pr', `${this.vg}/${lv.name}`]);
  }

  // ---- disks -------------------------------------------------------------

  async clone(imageId: string, diskId: string): Promise<DiskInfo> {
    const vol = `disk ${diskId}`;
    const lvs = await this.ours();
    const image = lvs.find((l) => isImage(l) && l.name === P_IMAGE + imageId);
    if (!image) throw new NotFoundError(`image ${imageId}`, 'clone');
    if (lvs.some((l) => l.name === P_DISK + diskId)) throw new AlreadyExistsError(vol, 'clone');
    // -s of a thin LV without -L/-V: a thin snapshot in the same pool. -p rw: the golden is read-only.
    await this.lvm('clone', vol, ['lvcreate', '-y', '-s', '-kn', '-p', 'rw', '-n', P_DISK + diskId,
      '--addtag', TAG, '--addtag', 'mb-disk', '--addtag', `mb-from=${imageId}`, `${this.vg}/${image.name}`]);
    return { id: diskId, imageId, sizeBytes: image.sizeBytes, export: this.exportOf(diskId) };
  }

  async removeDisk(diskId: string): Promise<void> {
    const lvs = await this.ours();
    const disk = lvs.find((l) => isDisk(l) && l.name === P_DISK + diskId);
    if (!disk) throw new NotFoundError(`disk ${diskId}`, 'remove');
    await this.removeDiskLv(disk, lvs, 'remove');
  }

  private async removeDiskLv(disk: LvReport, lvs: LvReport[], op: string, keepCheckpoints = false): Promise<void> {
    const diskId = disk.name.slice(P_DISK.length);
    const vol = `disk ${diskId}`;
    if (disk.attr.open) throw new BusyError(vol, op, 'the LV is open (exported or mounted)');
    // Thin snapshots do not depend on their origin: a reset may keep them.
    for (const c of keepCheckpoints ? [] : lvs.filter((l) => isCheckpoint(l) && tagValue(l, 'mb-of') === diskId)) {
      await this.lvm(op, vol, ['lvremove', '-y', `${this.vg}/${c.name}`]);
    }
    await this.lvm(op, vol, ['lvremove', '-y', `${this.vg}/${disk.name}`]);
  }

  async getDisk(diskId: string): Promise<DiskInfo | undefined> {
    const lv = (await this.ours()).find((l) => isDisk(l) && l.name === P_DISK + diskId);
    return lv && this.toDisk(lv);
  }

  async listDisks(): Promise<DiskInfo[]> {
    return (await this.ours()).filter(isDisk).map((l) => this.toDisk(l));
  }

  async reset(diskId: string): Promise<DiskInfo> {
    const lvs = await this.ours();
    const disk = lvs.find((l) => isDisk(l) && l.name === P_DISK + diskId);
    if (!disk) throw new NotFoundError(`disk ${diskId}`, 'reset');
    const imageId = tagValue(disk, 'mb-from');
    if (!imageId || !lvs.some((l) => isImage(l) && l.name === P_IMAGE + imageId)) throw new NotFoundError(`image ${imageId ?? '?'}`, 'reset');
    await this.removeDiskLv(disk, lvs, 'reset', true);
    return this.clone(imageId, diskId);
  }

  /**
   * Activates our disk LVs that are inactive and returns their ids. A crash
   * inside restore() (after `lvchange -an`, or after the merge, which leaves
   * the disk inactive) leaves no /dev node, and tgtd cannot export what is
   * not there. -K: activate even if the LV carries the activation-skip flag.
   */
  async activateDisks(): Promise<{ activated: string[]; failed: StorageError[] }> {
    const activated: string[] = [];
    const failed: StorageError[] = [];
    for (const lv of (await this.ours()).filter((l) => isDisk(l) && !l.attr.active)) {
      const id = lv.name.slice(P_DISK.length);
      try {
        await this.lvm('activate', `disk ${id}`, ['lvchange', '-y', '-ay', '-K', `${this.vg}/${lv.name}`]);
        activated.push(id);
      } catch (e) {
        failed.push(e instanceof StorageError ? e : new BackendError(`disk ${id}`, 'activate', e));
      }
    }
    return { activated, failed };
  }

  /** The disk LV's device node (it is what tgtd exports). */
  devicePath(diskId: string): string {
    return `/dev/${this.vg}/${P_DISK}${diskId}`;
  }

  exportOf(diskId: string): VolumeExport {
    return { bstype: this.bstype, backingStore: this.devicePath(diskId) };
  }

  // ---- checkpoints -------------------------------------------------------

  async checkpoint(diskId: string, name: string): Promise<CheckpointInfo> {
    const lvs = await this.ours();
    if (!lvs.some((l) => isDisk(l) && l.name === P_DISK + diskId)) throw new NotFoundError(`disk ${diskId}`, 'checkpoint');
    const vol = `checkpoint ${diskId}/${name}`;
    if (lvs.some((l) => l.name === ckptLv(diskId, name))) throw new AlreadyExistsError(vol, 'checkpoint');
    await this.snapshotCheckpoint(diskId, name, 'checkpoint');
    return { diskId, name };
  }

  private async snapshotCheckpoint(diskId: string, name: string, op: string): Promise<void> {
    await this.lvm(op, `checkpoint ${diskId}/${name}`, ['lvcreate', '-y', '-s', '-kn', '-n', ckptLv(diskId, name),
      '--addtag', TAG, '--addtag', 'mb-ckpt', '--addtag', `mb-of=${diskId}`, `${this.vg}/${P_DISK}${diskId}`]);
  }

  async restore(diskId: string, name: string): Promise<RestoreResult> {
    const vol = `disk ${diskId}`;
    const lvs = await this.ours();
    const disk = lvs.find((l) => isDisk(l) && l.name === P_DISK + diskId);
    if (!disk) throw new NotFoundError(vol, 'restore');
    const ckpt = lvs.find((l) => isCheckpoint(l) && l.name === ckptLv(diskId, name));
    if (!ckpt) throw new NotFoundError(`checkpoint ${diskId}/${name}`, 'restore');
    if (disk.attr.open) throw new BusyError(vol, 'restore', 'the LV is open (exported or mounted)');
    const diskLv = `${this.vg}/${disk.name}`;
    if (disk.attr.active) {
      try {
        await this.lvm('restore', vol, ['lvchange', '-y', '-an', diskLv]);
      } catch (e) {
        throw new BusyError(vol, 'restore', 'cannot deactivate the LV', { cause: e });
      }
    }
    if (ckpt.origin === disk.name) {
      // Thin merge: with the origin inactive it completes here and the checkpoint LV is consumed.
      await this.lvm('restore', vol, ['lvconvert', '-y', '--merge', `${this.vg}/${ckpt.name}`]);
      await this.lvm('restore', vol, ['lvchange', '-y', '-ay', '-K', diskLv]);
      await this.snapshotCheckpoint(diskId, name, 'restore');
      return { method: 'merge' };
    }
    // The checkpoint no longer names this disk as its origin (an earlier
    // merge gave the disk another thin device): replace the disk by a
    // snapshot of the checkpoint, with the disk's name and tags.
    const imageId = tagValue(disk, 'mb-from') ?? '';
    await this.lvm('restore', vol, ['lvremove', '-y', diskLv]);
    await this.lvm('restore', vol, ['lvcreate', '-y', '-s', '-kn', '-p', 'rw', '-n', disk.name,
      '--addtag', TAG, '--addtag', 'mb-disk', '--addtag', `mb-from=${imageId}`, `${this.vg}/${ckpt.name}`]);
    return { method: 'snapshot' };
  }

  async listCheckpoints(diskId: string): Promise<CheckpointInfo[]> {
    const prefix = P_CKPT + diskId + CKPT_SEP;
    return (await this.ours())
      .filter((l) => isCheckpoint(l) && tagValue(l, 'mb-of') === diskId && l.name.startsWith(prefix))
      .map((l) => ({ diskId, name: l.name.slice(prefix.length) }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async removeCheckpoint(diskId: string, name: string): Promise<void> {
    const vol = `checkpoint ${diskId}/${name}`;
    if (!(await this.ours()).some((l) => isCheckpoint(l) && l.name === ckptLv(diskId, name))) throw new NotFoundError(vol, 'remove-checkpoint');
    await this.lvm('remove-checkpoint', vol, ['lvremove', '-y', `${this.vg}/${ckptLv(diskId, name)}`]);
  }

  // ---- usage -------------------------------------------------------------

  async usage(): Promise<PoolUsage> {
    const pool = await this.poolLv('usage');
    return { dataPercent: pool.dataPercent ?? 0, metadataPercent: pool.metadataPercent ?? 0, totalBytes: pool.sizeBytes };
  }

  // ---- helpers -----------------------------------------------------------

  private async poolLv(op: string): Promise<LvReport> {
    const r = await this.lvm(op, this.poolVolume, ['lvs', ...REPORT, `${this.vg}/${this.pool}`], [0, 5]);
    const pool = parseLvs(r.stdout)[0];
    if (!pool) throw new NotFoundError(this.poolVolume, op);
    if (pool.attr.type !== 'thin-pool') throw new StorageError(this.poolVolume, op, `is not a thin pool (lv_attr ${pool.attr.raw})`);
    return pool;
  }

  /** Our LVs in the VG: tagged metalboot, in this pool. */
  private async ours(): Promise<LvReport[]> {
    const r = await this.lvm('list', `vg ${this.vg}`, ['lvs', ...REPORT, this.vg]);
    return parseLvs(r.stdout).filter((l) => l.tags.includes(TAG) && l.pool === this.pool);
  }

  private toDisk(lv: LvReport): DiskInfo {
    const id = lv.name.slice(P_DISK.length);
    return { id, imageId: tagValue(lv, 'mb-from') ?? '', sizeBytes: lv.sizeBytes, export: this.exportOf(id) };
  }

  /** Runs one lvm command; a failure names the volume, the operation and the lvm command (not `env`). */
  private async lvm(op: string, vol: string, args: string[], okCodes?: number[]): Promise<RunResult> {
    try {
      return await this.opts.runner(['env', 'LVM_SUPPRESS_FD_WARNINGS=1', ...args], { timeoutMs: this.timeoutMs, okCodes, maxBuffer: 16 << 20 });
    } catch (e) {
      const cause = e instanceof CommandError ? new CommandError(args, e.reason, e.code, e.stderr) : e;
      throw new BackendError(vol, op, cause);
    }
  }
}

const REPORT = ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', LV_FIELDS.join(',')];

function ckptLv(diskId: string, name: string): string {
  return `${P_CKPT}${diskId}${CKPT_SEP}${name}`;
}

function tagValue(lv: LvReport, key: string): string | undefined {
  const t = lv.tags.find((x) => x.startsWith(`${key}=`));
  return t?.slice(key.length + 1);
}

function isImage(l: LvReport): boolean {
  return l.name.startsWith(P_IMAGE) && l.tags.includes('mb-image');
}

function isDisk(l: LvReport): boolean {
  return l.name.startsWith(P_DISK) && l.tags.includes('mb-disk');
}

function isCheckpoint(l: LvReport): boolean {
  return l.name.startsWith(P_CKPT) && l.tags.includes('mb-ckpt');
}

function toImage(l: LvReport): ImageInfo {
  const bytes = Number(tagValue(l, 'mb-bytes'));
  return {
    id: l.name.slice(P_IMAGE.length),
    sizeBytes: Number.isSafeInteger(bytes) && bytes > 0 ? bytes : l.sizeBytes,
    sha256: tagValue(l, 'mb-sha256') ?? '',
    readOnly: !l.attr.writable,
  };
}
