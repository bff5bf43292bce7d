/**
 * Opening a file that must lie inside a root directory (the TFTP root, netbootDir, boot-assets/),
 * whatever symlinks the root holds and whatever changes while it is opened.
 *
 * Order, so the file that is read is the file that was checked (no check-then-open race):
 *  1. a lexical filter (no absolute name, no `.`/`..`/empty segment, no NUL); callers add their own;
 *  2. realpath of root/name must lie inside realpath(root): a symlink is followed only when it
 *     ends inside the root (a link to /etc/shadow, or a chain of links that leaves it, is refused);
 *  3. open that link-free path with O_NOFOLLOW (a last component swapped for a link since is
 *     refused: ELOOP), O_NONBLOCK (a FIFO cannot hang the open) and O_NOCTTY;
 *  4. fstat the descriptor: only a regular file;
 *  5. verify what was opened: realpath of the path again must be the same link-free path inside
 *     the root, and it must name the same inode (st_dev, st_ino) as the descriptor. A directory
 *     swapped for a link between 2 and 3 makes the open reach another file: either the path now
 *     resolves elsewhere or, swapped back, it names a different inode; both are refused.
 * Portable (no /proc/self/fd needed). A hard link inside the root is the same inode as its
 * target and is served: hard links to other users' files are what the kernel's
 * fs.protected_hardlinks stops; only root should be able to write the roots.
 */
import { constants, type Stats } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

export type UnderRoot =
  | { readonly ok: true; readonly file: FileHandle; readonly stat: Stats; readonly path: string }
  | { readonly ok: false; readonly kind: 'not-found' | 'refused'; readonly reason: string };

/** Lexical check of a relative name (step 1); undefined when it passes. */
export function relativeNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.length > 4096) return 'name too long';
  if (name.includes('\0')) return 'NUL byte in name';
  if (name.startsWith('/')) return 'absolute path';
  for (const seg of name.split('/')) {
    if (seg === '') return 'empty path segment';
    if (seg === '.' || seg === '..') return 'dot segment';
  }
  return undefined;
}

/**
 * Whether `candidate` names something strictly below `root`. Both must be absolute; they are
 * compared as normalised paths, without touching the file system (callers resolve links first).
 */
export function isInside(root: string, candidate: string): boolean {
  if (!path.isAbsolute(root) || !path.isAbsolute(candidate)) return false;
  const rel = path.relative(path.resolve(root), path.resolve(candidate));
  // '..foo' is a child named "..foo"; only '..' itself or '../…' climbs out.
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

function inside(root: string, p: string): boolean {
  return p.startsWith(root.endsWith('/') ? root : `${root}/`);
}

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** Opens root/name read-only when it is a regular file inside root; the caller closes `file`. */
export async function openUnderRoot(root: string, name: string): Promise<UnderRoot> {
  const problem = relativeNameProblem(name);
  if (problem) return { ok: false, kind: 'refused', reason: problem };
  let realRoot: string, real: string;
  try {
    realRoot = await realpath(root);
  } catch (e) {
    return { ok: false, kind: 'not-found', reason: `root ${root}: ${code(e)}` };
  }
  try {
    real = await realpath(path.join(realRoot, name));
  } catch (e) {
    const c = code(e);
    if (c === 'ENOENT' || c === 'ENOTDIR') return { ok: false, kind: 'not-found', reason: 'no such file' };
    return { ok: false, kind: 'refused', reason: c === 'ELOOP' ? 'symlink loop' : `cannot resolve: ${c}` };
  }
  if (!inside(realRoot, real)) return { ok: false, kind: 'refused', reason: 'resolves outside the root' };
  let fh: FileHandle;
  try {
    fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const c = code(e);
    if (c === 'ENOENT') return { ok: false, kind: 'not-found', reason: 'no such file' };
    return { ok: false, kind: 'refused', reason: c === 'ELOOP' ? 'became a symlink while opening' : `cannot open: ${c}` };
  }
  const refuse = async (reason: string): Promise<UnderRoot> => {
    await fh.close().catch(() => undefined);
    return { ok: false, kind: 'refused', reason };
  };
  let st: Stats;
  try {
    st = await fh.stat();
  } catch (e) {
    return refuse(`cannot stat: ${code(e)}`);
  }
  if (!st.isFile()) return refuse('not a regular file');
  try {
    const again = await realpath(real);
    const now = await stat(again);
    if (again !== real || !inside(realRoot, again) || now.dev !== st.dev || now.ino !== st.ino) return refuse('changed while opening');
  } catch (e) {
    return refuse(`changed while opening: ${code(e)}`);
  }
  return { ok: true, file: fh, stat: st, path: real };
}
