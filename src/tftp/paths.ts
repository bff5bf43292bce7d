/**
 * The lexical check of a requested TFTP file name.
 *
 * checkName is a pure lexical filter that refuses anything that is not a
 * plain relative path of printable ASCII (no `..`, no absolute path, no
 * backslash, no NUL or control byte, no `%` escapes, no empty segment, not
 * over-long). The provider then opens the name with fs/under-root.ts, which
 * refuses a file whose real path is outside the root, so a symlink pointing
 * out is refused even though its name is harmless.
 */

/** Longer names are refused; PXE file fields are 128 bytes, Linux names 255. */
const MAX_NAME_BYTES = 255;

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
