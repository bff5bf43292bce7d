/**
 * Golden images: imported from a file in the import directory or an upload stream (never buffered whole), raw or
 * qcow2 (converted with qemu-img), read-only once imported, and never removed while a machine's
 * disk was cloned from them (the disk records in the store say which).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { Runner } from '../exec/run.js';
import type { Logger } from '../log.js';
import type { Mac } from '../net/mac.js';
import { InUseError, StorageError, validateId, type ImageInfo, type VolumeBackend } from '../storage/backend.js';
import { ImportPathError, openImportFile } from './import-dir.js';

export type ImageFormat = 'raw' | 'qcow2';

export interface ImageView extends ImageInfo {
  readonly usedBy: readonly Mac[];
}

export interface ImageServiceOptions {
  readonly backend: VolumeBackend;
  /** Which machines' disks come from an image (the disk records). */
  readonly imageUsers: (imageId: string) => Mac[];
  readonly runner: Runner;
  /** Scratch space for uploads that need converting; on the same filesystem as the images is best. */
  readonly tmpDir: string;
  /** importPath reads only files inside this directory (images.importDir). */
  readonly importDir: string;
  readonly log: Logger;
}

/** qemu-img refused or the file is not what it claims; names the image. */
export class ImageFormatError extends StorageError {
  constructor(id: string, detail: string) {
    super(`image ${id}`, 'import', detail);
    this.name = 'ImageFormatError';
  }
}

interface QemuImgInfo {
  format?: unknown;
  'virtual-size'?: unknown;
  'backing-filename'?: unknown;
  'full-backing-filename'?: unknown;
  'format-specific'?: { data?: { 'data-file'?: unknown } };
}

export class ImageService {
  private seq = 0;

  constructor(private readonly o: ImageServiceOptions) {}

  async list(): Promise<ImageView[]> {
    return (await this.o.backend.listImages()).map((i) => ({ ...i, usedBy: this.o.imageUsers(i.id) }));
  }

  /** Where the image's bytes are read from (agent deploy), or undefined (no such image, or a backend that cannot say). */
  async source(id: string): Promise<string | undefined> {
    return this.o.backend.imageSource?.(id);
  }

  async get(id: string): Promise<ImageView | undefined> {
    const i = await this.o.backend.getImage(id);
    return i && { ...i, usedBy: this.o.imageUsers(id) };
  }

  /**
   * From a file on this host, inside the import directory only (import-dir.ts says why). The
   * file is opened once and streamed like an upload, so a qcow2 is spooled to scratch and
   * converted from that private copy: qemu-img never opens a path someone could swap.
   */
  async importPath(id: string, file: string, format: ImageFormat): Promise<ImageInfo> {
    validateId('image', id, 'import');
    let opened;
    try {
      opened = await openImportFile(this.o.importDir, file);
    } catch (e) {
      if (e instanceof ImportPathError) this.o.log.warn({ event: 'images.import-refused', image: id, path: file.slice(0, 200), problem: e.problem, importDir: e.importDir }, 'import path refused');
      throw e;
    }
    const { fh, sizeBytes } = opened;
    try {
      return await this.importStream(id, fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false }), format, sizeBytes, 'path');
    } finally {
      await fh.close();
    }
  }

  /**
   * From an upload. Raw streams straight into the backend (sizeBytes, from Content-Length, is
   * checked against what arrives); qcow2 is spooled to scratch, checked and converted first.
   */
  async importStream(id: string, body: Readable, format: ImageFormat, sizeBytes: number | undefined, source: 'path' | 'upload' = 'upload'): Promise<ImageInfo> {
    validateId('image', id, 'import');
    if (format === 'raw') {
      return this.done(id, await this.o.backend.importImage(id, body, sizeBytes === undefined ? {} : { sizeBytes }), source);
    }
    return this.withScratch(id, async (scratch) => {
      const spooled = path.join(scratch, 'upload.qcow2');
      await pipeline(body, createWriteStream(spooled, { flags: 'wx', mode: 0o600 }));
      if (sizeBytes !== undefined && (await stat(spooled)).size !== sizeBytes) throw new ImageFormatError(id, 'upload ended before Content-Length bytes arrived');
      const raw = await this.convert(id, spooled, scratch);
      return this.done(id, await this.o.backend.importImage(id, raw), source);
    });
  }

  async remove(id: string): Promise<void> {
    validateId('image', id, 'remove');
    // The store is the truth: a disk record names its image even while the disk is being replaced.
    const users = this.o.imageUsers(id);
    if (users.length > 0) throw new InUseError(`image ${id}`, 'remove', users);
    await this.o.backend.removeImage(id);
    this.o.log.info({ event: 'images.removed', image: id }, 'image removed');
  }

  private done(id: string, info: ImageInfo, source: 'path' | 'upload'): ImageInfo {
    this.o.log.info({ event: 'images.imported', image: id, bytes: info.sizeBytes, sha256: info.sha256, source }, 'image imported');
    return info;
  }

  private async withScratch<T>(id: string, fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = path.join(this.o.tmpDir, `import-${id}-${process.pid}-${this.seq++}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      return await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * qcow2 → raw. The file must really be qcow2 (-f qcow2, never probed) and stand alone: a
   * backing file or external data file would make qemu-img read some other file on this host.
   */
  private async convert(id: string, qcow2: string, scratch: string): Promise<string> {
    let info: QemuImgInfo;
    try {
      const r = await this.o.runner(['qemu-img', 'info', '--output=json', '-f', 'qcow2', qcow2], { timeoutMs: 30_000 });
      info = JSON.parse(r.stdout) as QemuImgInfo;
    } catch (e) {
      throw new ImageFormatError(id, `not a readable qcow2 image (${e instanceof Error ? e.message.slice(0, 200) : 'qemu-img failed'})`);
    }
    if (info.format !== 'qcow2') throw new ImageFormatError(id, `qemu-img reports format ${String(info.format)}, not qcow2`);
    if (info['backing-filename'] !== undefined || info['full-backing-filename'] !== undefined) throw new ImageFormatError(id, 'qcow2 images with a backing file are refused');
    if (info['format-specific']?.data?.['data-file'] !== undefined) throw new ImageFormatError(id, 'qcow2 images with an external data file are refused');
    const raw = path.join(scratch, 'converted.raw');
    try {
      // Hours, not seconds: a big image on slow disks; the upload already took as long.
      await this.o.runner(['qemu-img', 'convert', '-q', '-f', 'qcow2', '-O', 'raw', qcow2, raw], { timeoutMs: 6 * 3600_000 });
    } catch (e) {
      throw new ImageFormatError(id, `qemu-img convert failed (${e instanceof Error ? e.message.slice(0, 200) : 'error'})`);
    }
    return raw;
  }
}
