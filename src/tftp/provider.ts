/**
 * Where TFTP file contents come from. The server asks a FileProvider to open
 * a requested name; what it gets back can be read at any offset into the
 * server's own buffers, so no provider holds more than the caller asks for.
 * DirectoryProvider serves regular files under a root directory; later
 * providers can serve generated content (an in-memory script is an OpenFile
 * over a Buffer) and be put in front of it.
 */
import { readvSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { realpath } from 'node:fs/promises';
import { checkName } from './paths.js';
import { openUnderRoot } from '../fs/under-root.js';

export interface OpenFile {
  /** Bytes the client will receive. */
  readonly size: number;
  /**
   * Fills `buffers` in order with the bytes from `position`; resolves to the
   * number of bytes read, less than their total only at the end of the file.
   */
  read(buffers: readonly Buffer[], position: number): Promise<number>;
  close(): Promise<void>;
  /** The descriptor of a regular file whose bytes are served as they are (no conversion), for positional reads in native code. */
  readonly fd?: number;
}

export type OpenResult =
  | { ok: true; file: OpenFile }
  | { ok: false; kind: 'not-found' | 'refused'; reason: string };

export interface FileProvider {
  open(name: string): Promise<OpenResult>;
}

const SYNC_READ_MAX = 256 << 10;

class HandleFile implements OpenFile {
  readonly fd: number;

  constructor(private readonly fh: FileHandle, readonly size: number) {
    this.fd = fh.fd;
  }

  async read(buffers: readonly Buffer[], position: number): Promise<number> {
    let total = 0;
    let bufs = buffers;
    for (;;) {
      const want = bufs.reduce((n, b) => n + b.length, 0);
      if (want === 0) return total;
      const bytesRead = want <= SYNC_READ_MAX ? readvSync(this.fh.fd, bufs, position + total) : (await this.fh.readv(bufs, position + total)).bytesRead;
      total += bytesRead;
      if (bytesRead === 0 || bytesRead === want) return total;
      // A short positional read before EOF (rare): continue after what arrived.
      let skip = bytesRead;
      const rest: Buffer[] = [];
      for (const b of bufs) {
        if (skip >= b.length) { skip -= b.length; continue; }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      bufs = rest;
    }
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Regular files under `root`; names are checked by tftp/paths.ts, opened inside the root by fs/under-root.ts (as HTTP does). */
export class DirectoryProvider implements FileProvider {
  private root: Promise<string>;

  constructor(root: string) {
    this.root = realpath(root);
    this.root.catch(() => undefined);
  }

  /** Fails when the root does not exist (the daemon checks this at start). */
  async check(): Promise<string> {
    return this.root;
  }

  async open(name: string): Promise<OpenResult> {
    const root = await this.root;
    const c = checkName(name);
    if (!c.ok) return { ok: false, kind: 'refused', reason: c.reason };
    const r = await openUnderRoot(root, name);
    if (!r.ok) return r;
    return { ok: true, file: new HandleFile(r.file, r.stat.size) };
  }
}

/** An OpenFile over bytes in memory (generated content, tests). */
export function bufferFile(data: Buffer): OpenFile {
  return {
    size: data.length,
    async read(buffers, position) {
      let at = position;
      for (const b of buffers) {
        if (at >= data.length) break;
        at += data.copy(b, 0, at);
      }
      return at - position;
    },
    async close() { /* nothing */ },
  };
}

const CR = 13;
const LF = 10;
const CHUNK = 16 << 10;

interface Checkpoint { conv: number; raw: number; pending: number }

/**
 * netascii (RFC 764 via RFC 1350) on the fly: LF becomes CR LF and CR
 * becomes CR NUL. The converted size is counted once at open with one
 * streaming pass; reads re-convert from the nearest checkpoint at or before
 * the asked offset (the ends of recent reads), so a window restart re-reads
 * at most one window.
 */
export async function netasciiFile(inner: OpenFile): Promise<OpenFile> {
  const chunk = Buffer.allocUnsafe(CHUNK);
  let size = 0;
  for (let pos = 0; pos < inner.size;) {
    const n = await inner.read([chunk], pos);
    if (n === 0) break;
    for (let i = 0; i < n; i++) { const b = chunk[i]!; size += b === LF || b === CR ? 2 : 1; }
    pos += n;
  }
  const checkpoints: Checkpoint[] = [{ conv: 0, raw: 0, pending: -1 }];
  return {
    size,
    async read(buffers, position) {
      let cp = checkpoints[0]!;
      for (const c of checkpoints) if (c.conv <= position && c.conv > cp.conv) cp = c;
      let { conv, raw, pending } = cp;
      const total = buffers.reduce((n, b) => n + b.length, 0);
      let out = 0, bi = 0, bo = 0;
      let chunkStart = raw, chunkLen = 0;
      const emit = (byte: number) => {
        if (conv >= position) {
          while (bo >= buffers[bi]!.length) { bi++; bo = 0; }
          buffers[bi]![bo++] = byte;
          out++;
        }
        conv++;
      };
      while (out < total) {
        if (pending >= 0) { emit(pending); pending = -1; continue; }
        if (raw >= chunkStart + chunkLen) {
          chunkStart = raw;
          chunkLen = await inner.read([chunk], raw);
          if (chunkLen === 0) break;
        }
        const b = chunk[raw - chunkStart]!;
        raw++;
        if (b === LF) { emit(CR); pending = LF; } else if (b === CR) { emit(CR); pending = 0; } else emit(b);
      }
      checkpoints.push({ conv, raw, pending });
      if (checkpoints.length > 8) checkpoints.splice(1, 1);
      return out;
    },
    close: () => inner.close(),
  };
}
