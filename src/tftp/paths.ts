/**
 * Safe resolution of a requested TFTP file name to a file under the root.
 *
 * Two layers: checkName is a pure lexical filter that refuses anything that
 * is not a plain relative path of printable ASCII (no `..`, no absolute path,
 * no backslash, no NUL or control byte, no `%` escapes, no empty segment, not
 * over-long); resolveUnderRoot then resolves symlinks with realpath and
 * refuses a result outside the (real) root, so a symlink pointing out is
 * refused even though its name is harmless.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';

/** Longer names are refused; PXE file fields are 128 bytes, Linux names 255. */
export const MAX_NAME_BYTES = 255;

export type NameCheck = { ok: true } | { ok: false; reason: string };

export function checkName(name: string): NameCheck {
  if (name.length === 0) return { ok: false, reason: 'empty name' };
  if (name.length > MAX_NAME_BYTES) return { ok: false, reason: `name longer than ${MAX_NAME_BYTES} bytes` };
  if (name.includes('\0')) return { ok: false, reason: 'NUL byte in name' };
  // latin1-decoded: every wire byte is one char. Printable ASCII only.
  if (/[^\x20-\x7e]/.test(name)) return { ok: false, reason: 'control or non-ASCII byte in name' };
  if (name.includes('\\')) return { ok: false, reason: 'backslash in name' };
  // %2e%2e, %2f, %00, %252e…: no TFTP client needs URL escapes, so none are decoded or allowed.
  if (name.includes('%')) return { ok: false, reason: 'percent-encoding in name' };
  if (name.startsWith('/')) return { ok: false, reason: 'absolute path' };
  for (const seg of name.split('/')) {
    if (seg === '') return { ok: false, reason: 'empty path segment' };
    if (seg === '..') return { ok: false, reason: 'parent directory segment' };
    if (seg === '.') return { ok: false, reason: 'dot segment' };
  }
  return { ok: true };
}

export type Resolved =
  | { ok: true; path: string }
  | { ok: false; kind: 'refused' | 'not-found'; reason: string };

/** `root` must already be a real path (no symlinks), see realRoot. */
export async function resolveUnderRoot(root: string, name: string): Promise<Resolved> {
  const c = checkName(name);
  if (!c.ok) return { ok: false, kind: 'refused', reason: c.reason };
  let real: string;
  try {
    real = await realpath(path.join(root, name));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, kind: 'not-found', reason: 'no such file' };
    if (code === 'ELOOP') return { ok: false, kind: 'refused', reason: 'symlink loop' };
    return { ok: false, kind: 'refused', reason: `cannot resolve: ${code ?? String(e)}` };
  }
  if (!real.startsWith(root.endsWith('/') ? root : `${root}/`)) {
    return { ok: false, kind: 'refused', reason: 'resolves outside the root' };
  }
  return { ok: true, path: real };
}

export async function realRoot(root: string): Promise<string> {
  return realpath(root);
}
