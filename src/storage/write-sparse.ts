/**
 * Copies an image's bytes (stream or local file) into an open file or block
 * device, hashing them on the way, and skipping blocks that are all zero.
 *
 * Skipping is what keeps a thin pool (and a file system) from allocating
 * the empty part of a disk image: a fresh thin LV reads zeros where nothing
 * was written, and so does a hole in a new file (the caller truncates the
 * file to its final size). It is only correct on a target that reads zeros
 * everywhere to begin with, which is why both backends import into a new
 * volume and rename it into place.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** Granularity of the zero check: the thin pool's default chunk size. */
const BLOCK = 64 << 10;
const ZERO = Buffer.alloc(BLOCK);

export interface CopyResult {
  readonly bytes: number;
  readonly sha256: string;
  /** Bytes actually written (the rest were zero blocks). */
  readonly written: number;
}

export class TooLongError extends Error {
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes`);
    this.name = 'TooLongError';
  }
}

export async function copySparse(source: Readable | string, fh: FileHandle, limit?: number): Promise<CopyResult> {
  const stream = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source;
  const hash = createHash('sha256');
  let pos = 0;
  let written = 0;
  try {
    for await (const raw of stream) {
      const chunk: Buffer = typeof raw === 'string' ? Buffer.from(raw) : (raw as Buffer);
      if (limit !== undefined && pos + chunk.length > limit) throw new TooLongError(limit);
      hash.update(chunk);
      // Pieces aligned to BLOCK in the target, so a zero block is skipped
      // whole however the stream happens to be chunked.
      let off = 0;
      while (off < chunk.length) {
        const abs = pos + off;
        const len = Math.min(BLOCK - (abs % BLOCK), chunk.length - off);
        const piece = chunk.subarray(off, off + len);
        if (!piece.equals(ZERO.subarray(0, len))) {
          let done = 0;
          while (done < len) done += (await fh.write(piece, done, len - done, abs + done)).bytesWritten;
          written += len;
        }
        off += len;
      }
      pos += chunk.length;
    }
  } finally {
    if (typeof source === 'string') stream.destroy();
  }
  return { bytes: pos, sha256: hash.digest('hex'), written };
}
