/**
 * Importing an image "from a path on the server" reads that file as root and keeps its bytes
 * where the API can clone them to a machine: any path would let an API token holder read
 * /etc/shadow. So a path is only accepted inside one configured directory (images.importDir),
 * after every symbolic link in it is resolved, and the file is opened once and read through
 * that descriptor: what was checked is what is read, even if the directory changes meanwhile.
 */
import { constants } from 'node:fs';
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isInside } from '../fs/under-root.js';

export type ImportPathProblem = 'not-absolute' | 'outside' | 'not-found' | 'not-a-file';

/** A server-side import path was refused; names the request field and the import directory. */
export class ImportPathError extends Error {
  readonly field = 'path';
  constructor(readonly problem: ImportPathProblem, readonly file: string, readonly importDir: string, detail?: string) {
    super(`path: ${JSON.stringify(file.slice(0, 200))} ${describe(problem, importDir)}${detail ? ` (${detail})` : ''}`);
    this.name = 'ImportPathError';
  }
}

function describe(problem: ImportPathProblem, dir: string): string {
  switch (problem) {
    case 'not-absolute': return `is not absolute; give a file inside the import directory ${dir} (images.importDir)`;
    case 'outside': return `is outside the import directory ${dir} (images.importDir); copy the file there or upload it with PUT /api/v1/images/<id>`;
    case 'not-found': return `does not exist in the import directory ${dir} (images.importDir)`;
    case 'not-a-file': return `is not a regular file (import directory ${dir})`;
  }
}

export interface OpenedImport {
  readonly fh: FileHandle;
  readonly sizeBytes: number;
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * Opens `file` for reading if it is a regular file inside `importDir` once every link is
 * resolved. The lexical check comes first, so a path that names somewhere else is refused
 * without being looked at; the descriptor's own path (/proc/self/fd) is checked last, so a
 * directory swapped for a link between the checks and the open is caught too. The caller closes.
 */
export async function openImportFile(importDir: string, file: string): Promise<OpenedImport> {
  const dir = path.resolve(importDir);
  if (!path.isAbsolute(file)) throw new ImportPathError('not-absolute', file, dir);
  if (!isInside(dir, file)) throw new ImportPathError('outside', file, dir);
  let realDir: string;
  let real: string;
  try {
    realDir = await realpath(dir);
  } catch (e) {
    throw new ImportPathError('not-found', file, dir, `the import directory itself: ${codeOf(e)}`);
  }
  try {
    real = await realpath(file);
  } catch (e) {
    const code = codeOf(e);
    throw new ImportPathError(code === 'ENOENT' || code === 'ENOTDIR' ? 'not-found' : 'not-a-file', file, dir, code === 'ENOENT' ? undefined : code);
  }
  if (!isInside(realDir, real)) throw new ImportPathError('outside', file, dir, 'a symbolic link in it leads out');
  let fh: FileHandle;
  try {
    fh = await open(real, OPEN_FLAGS);
  } catch (e) {
    const code = codeOf(e);
    if (code === 'ELOOP') throw new ImportPathError('outside', file, dir, 'it was replaced by a symbolic link');
    throw new ImportPathError(code === 'ENOENT' ? 'not-found' : 'not-a-file', file, dir, code);
  }
  try {
    const opened = await readlink(`/proc/self/fd/${fh.fd}`);
    if (!isInside(realDir, opened)) throw new ImportPathError('outside', file, dir, 'a directory on the way was replaced by a symbolic link');
    const st = await fh.stat();
    if (!st.isFile()) throw new ImportPathError('not-a-file', file, dir);
    return { fh, sizeBytes: st.size };
  } catch (e) {
    await fh.close();
    if (e instanceof ImportPathError) throw e;
    throw new ImportPathError('not-a-file', file, dir, codeOf(e));
  }
}

function codeOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message.slice(0, 100) : String(e));
}
