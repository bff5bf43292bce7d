/**
 * The data directory holds secrets in clear (BMC passwords and CHAP secrets in the LevelDB files,
 * the API token) and the machines' disks: nobody but root may read any of it, whatever umask the
 * daemon was started with. New files get explicit modes where metalboot creates them (and the
 * daemon runs with umask 077 for what libraries and children create); this module fixes what an
 * older version, another umask or a hand copy left: every directory 0700, every file without
 * group and other bits (0644 -> 0600, a read-only image's 0444 -> 0400).
 *
 * The walk never follows a symbolic link and never leaves the tree it was given: each entry is
 * opened with O_NOFOLLOW relative to its already-open parent (through /proc/self/fd/N, Linux's
 * openat), and the mode is set on that descriptor (fchmod). A link planted in the tree, or a
 * directory swapped for a link while the walk runs, therefore cannot make it chmod a file
 * elsewhere (/etc/passwd 0600 would lock every user out). It does not cross into another file
 * system (like find -xdev): a separately mounted storage directory is walked as its own root.
 */
import { errorMessage } from '../errors/message.js';
import { constants } from 'node:fs';
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isInside } from '../fs/under-root.js';

/** Owner bits only: group, other, setuid, setgid and sticky bits go. */
export function privateMode(mode: number): number {
  return mode & 0o700;
}

/** Whether a mode gives anything to group or other (or carries set-id/sticky bits). */
export function needsTightening(mode: number): boolean {
  return (mode & 0o7077) !== 0;
}

export interface TightenLimits {
  /** Directory levels below the root walked at most. */
  readonly maxDepth: number;
  /** Entries looked at in all; the walk stops (truncated) beyond. */
  readonly maxEntries: number;
}

/** A data directory is a few levels deep (volumes/checkpoints/<disk>/<name>.raw) and holds a few files per machine. */
export const DEFAULT_TIGHTEN_LIMITS: TightenLimits = { maxDepth: 16, maxEntries: 200_000 };

export interface TightenResult {
  readonly root: string;
  /** Paths whose mode was changed, with the mode they had. */
  readonly tightened: { readonly path: string; readonly from: number; readonly to: number }[];
  /** Entries that needed it but could not be changed (not ours without CAP_FOWNER, unreadable, ...). */
  readonly failed: { readonly path: string; readonly error: string }[];
  /** Subtrees not walked because they are on another file system. */
  readonly otherFs: string[];
  /** The walk hit maxDepth or maxEntries. */
  readonly truncated: boolean;
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * Makes `root` 0700 and strips group/other bits from everything below it. `root` itself may be a
 * symbolic link (the admin's configured path); nothing below it is followed. A missing root is
 * not an error (nothing to tighten).
 */
export async function tightenTree(root: string, limits: TightenLimits = DEFAULT_TIGHTEN_LIMITS): Promise<TightenResult> {
  const res: { -readonly [K in keyof TightenResult]: TightenResult[K] } = { root, tightened: [], failed: [], otherFs: [], truncated: false };
  let fh: FileHandle;
  try {
    fh = await open(root, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return res;
    res.failed.push({ path: root, error: errText(e) });
    return res;
  }
  try {
    const st = await fh.stat();
    await fix(fh, root, st.mode, res);
    let entries = 0;
    await walk(fh, root, st.dev, 0);

    async function walk(dir: FileHandle, shown: string, dev: number, depth: number): Promise<void> {
      if (depth >= limits.maxDepth) { res.truncated = true; return; }
      let names: string[];
      try {
        names = await readdir(`/proc/self/fd/${dir.fd}`);
      } catch (e) {
        res.failed.push({ path: shown, error: errText(e) });
        return;
      }
      for (const name of names) {
        if (++entries > limits.maxEntries) { res.truncated = true; return; }
        const at = `/proc/self/fd/${dir.fd}/${name}`;
        const p = path.join(shown, name);
        let l;
        try { l = await lstat(at); } catch { continue; } // gone meanwhile
        // Links are never followed; device nodes, sockets and FIFOs are not opened (opening a
        // device can have side effects); their modes are left as they are.
        if (!l.isFile() && !l.isDirectory()) continue;
        if (l.dev !== dev) { res.otherFs.push(p); continue; }
        if (l.isFile() && !needsTightening(l.mode)) continue;
        // A second name for the inode may live outside the tree (a hard link to /etc/passwd):
        // its mode is not this tree's to change.
        if (l.isFile() && l.nlink > 1) { res.failed.push({ path: p, error: `has ${l.nlink} hard links; left alone` }); continue; }
        let child: FileHandle;
        try {
          child = await open(at, OPEN_FLAGS | (l.isDirectory() ? constants.O_DIRECTORY : 0));
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          // ELOOP: swapped for a link since the lstat; ENOENT: removed. Neither is ours to chase.
          if (code !== 'ELOOP' && code !== 'ENOENT') res.failed.push({ path: p, error: errText(e) });
          continue;
        }
        try {
          const cst = await child.stat();
          if (cst.dev !== dev) { res.otherFs.push(p); continue; }
          await fix(child, p, cst.mode, res);
          if (cst.isDirectory()) await walk(child, p, dev, depth + 1);
        } finally {
          await child.close();
        }
        if (res.truncated) return;
      }
    }
  } finally {
    await fh.close();
  }
  return res;
}

/**
 * At start, before anything is opened: the data directory (BMC passwords, CHAP secrets and the
 * API token in clear) and the file backend's volume directory, when there is one, made root's
 * alone, with one warning naming what was changed. A storage directory elsewhere, or mounted
 * below dataDir (not walked with it), is walked as its own tree.
 */
export async function securePrivateDirs(dataDir: string, storageDir: string | undefined, log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void }): Promise<void> {
  const walked = [await tightenTree(dataDir)];
  if (storageDir !== undefined && (!isInside(dataDir, storageDir) || walked[0]!.otherFs.some((p) => p === storageDir || isInside(p, storageDir)))) {
    walked.push(await tightenTree(storageDir));
  }
  for (const r of walked) {
    const fields = { root: r.root, ...(r.truncated ? { truncated: true } : {}) };
    if (r.tightened.length > 0) {
      log.warn({ event: 'files.tightened', ...fields, count: r.tightened.length, paths: r.tightened.slice(0, 50).map((x) => `${x.path} (${x.from.toString(8).padStart(4, '0')} -> ${x.to.toString(8).padStart(4, '0')})`) },
        'files readable by other users were made private to root');
    }
    if (r.failed.length > 0) log.warn({ event: 'files.tighten-failed', ...fields, count: r.failed.length, paths: r.failed.slice(0, 20).map((x) => `${x.path}: ${x.error}`) }, 'could not make these private');
    if (r.otherFs.length > 0) log.info({ event: 'files.other-fs', ...fields, paths: r.otherFs.slice(0, 20) }, 'other file systems below the data directory were not walked');
  }
}

async function fix(fh: FileHandle, p: string, mode: number, res: { tightened: TightenResult['tightened']; failed: TightenResult['failed'] }): Promise<void> {
  if (!needsTightening(mode)) return;
  const to = privateMode(mode);
  try {
    await fh.chmod(to);
    res.tightened.push({ path: p, from: mode & 0o7777, to });
  } catch (e) {
    res.failed.push({ path: p, error: errText(e) });
  }
}

function errText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code ?? errorMessage(e);
}
