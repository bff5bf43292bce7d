/**
 * The checks every storage backend needs, written once around a backend's core
 * (see BackendCore in backend.ts for what a core may rely on):
 * - every name is validated before the core sees it (InvalidNameError naming the
 *   kind, the name and the verb);
 * - init and every mutation run one at a time through one queue;
 * - import, clone and checkpoint are refused with PoolFullError while usage is
 *   above the threshold, before the core is asked.
 */
import type { Readable } from 'node:stream';
import {
  isAboveThreshold, PoolFullError, SerialQueue, validateId,
  type BackendCore, type BackendDescription, type CheckpointInfo, type DiskInfo, type ImageInfo, type ImportOptions,
  type RestoreResult, type StorageError, type Usage, type VolumeBackend,
} from './backend.js';
import type { VolumeExport } from './export.js';

export interface GuardOptions {
  /** import, clone and checkpoint are refused above this data% (or metadata%); default 90. */
  readonly thresholdPercent?: number;
}

class GuardedBackend implements VolumeBackend {
  readonly kind: string;
  /** Present when the core has it (lvm: disks a crash left inactive); queued like a mutation. */
  readonly activateDisks?: () => Promise<{ activated: string[]; failed: StorageError[] }>;
  /** Present when the core has it (rbd: the Ceph cluster's state); a read, not queued. */
  readonly health?: () => Promise<string>;
  private readonly queue = new SerialQueue();
  private readonly threshold: number;

  constructor(private readonly core: BackendCore, opts: GuardOptions) {
    this.kind = core.kind;
    this.threshold = opts.thresholdPercent ?? 90;
    const activate = core.activateDisks?.bind(core);
    if (activate) this.activateDisks = () => this.queue.run(activate);
    const health = core.health?.bind(core);
    if (health) this.health = health;
  }

  init(): Promise<void> {
    return this.queue.run(() => this.core.init());
  }

  describe(): BackendDescription {
    return this.core.describe();
  }

  async usage(): Promise<Usage> {
    const [u, health] = await Promise.all([this.capacity(), this.health?.()]);
    return health === undefined ? u : { ...u, health };
  }

  /** usage() without the cluster's health: what the threshold needs. */
  private async capacity(): Promise<Usage> {
    return { backend: this.kind, ...(await this.core.usage()), thresholdPercent: this.threshold };
  }

  // ---- images ------------------------------------------------------------

  async importImage(id: string, source: Readable | string, opts: ImportOptions = {}): Promise<ImageInfo> {
    validateId('image', id, 'import');
    return this.mutate(`image ${id}`, 'import', () => this.core.importImage(id, source, opts));
  }

  async listImages(): Promise<ImageInfo[]> {
    return this.core.listImages();
  }

  async getImage(id: string): Promise<ImageInfo | undefined> {
    validateId('image', id, 'get');
    return this.core.getImage(id);
  }

  /** Where the core can say (files: the image's file); undefined otherwise (lvm has no imageSource yet). */
  async imageSource(id: string): Promise<string | undefined> {
    validateId('image', id, 'source');
    return this.core.imageSource?.(id);
  }

  async removeImage(id: string): Promise<void> {
    validateId('image', id, 'remove');
    return this.queue.run(() => this.core.removeImage(id));
  }

  async setImageReadOnly(id: string): Promise<void> {
    validateId('image', id, 'set-read-only');
    return this.queue.run(() => this.core.setImageReadOnly(id));
  }

  // ---- disks -------------------------------------------------------------

  async clone(imageId: string, diskId: string): Promise<DiskInfo> {
    validateId('image', imageId, 'clone');
    validateId('disk', diskId, 'clone');
    return this.mutate(`disk ${diskId}`, 'clone', () => this.core.clone(imageId, diskId));
  }

  async removeDisk(diskId: string): Promise<void> {
    validateId('disk', diskId, 'remove');
    return this.queue.run(() => this.core.removeDisk(diskId));
  }

  async diskExists(diskId: string): Promise<boolean> {
    validateId('disk', diskId, 'exists');
    return (await this.core.getDisk(diskId)) !== undefined;
  }

  async getDisk(diskId: string): Promise<DiskInfo | undefined> {
    validateId('disk', diskId, 'get');
    return this.core.getDisk(diskId);
  }

  async listDisks(): Promise<DiskInfo[]> {
    return this.core.listDisks();
  }

  async reset(diskId: string): Promise<DiskInfo> {
    validateId('disk', diskId, 'reset');
    return this.queue.run(() => this.core.reset(diskId));
  }

  exportOf(diskId: string): VolumeExport {
    validateId('disk', diskId, 'export');
    return this.core.exportOf(diskId);
  }

  // ---- checkpoints -------------------------------------------------------

  async checkpoint(diskId: string, name: string): Promise<CheckpointInfo> {
    validateId('disk', diskId, 'checkpoint');
    validateId('checkpoint', name, 'checkpoint');
    return this.mutate(`checkpoint ${diskId}/${name}`, 'checkpoint', () => this.core.checkpoint(diskId, name));
  }

  async restore(diskId: string, name: string): Promise<RestoreResult> {
    validateId('disk', diskId, 'restore');
    validateId('checkpoint', name, 'restore');
    return this.queue.run(() => this.core.restore(diskId, name));
  }

  async listCheckpoints(diskId: string): Promise<CheckpointInfo[]> {
    validateId('disk', diskId, 'list-checkpoints');
    return this.core.listCheckpoints(diskId);
  }

  async removeCheckpoint(diskId: string, name: string): Promise<void> {
    validateId('disk', diskId, 'remove-checkpoint');
    validateId('checkpoint', name, 'remove-checkpoint');
    return this.queue.run(() => this.core.removeCheckpoint(diskId, name));
  }

  // ---- helpers -----------------------------------------------------------

  /** A mutation that takes space: queued, then refused when the pool is above the threshold. */
  private mutate<T>(volume: string, op: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      const u = await this.capacity();
      if (isAboveThreshold(u)) throw new PoolFullError(volume, op, u);
      return fn();
    });
  }
}

/** A VolumeBackend whose names are checked, mutations serialised and space guarded. */
export function guarded(core: BackendCore, opts: GuardOptions = {}): VolumeBackend {
  return new GuardedBackend(core, opts);
}
