/**
 * iSCSI names (RFC 3720 §3.2.6, stringprep profile RFC 3722, naa. format
 * RFC 3980): validation, normalisation, and building target names from a
 * machine name or a MAC.
 *
 * We accept a deliberately narrow subset: after normalisation a name is ASCII
 * `a-z 0-9 - . :` only. RFC 3722 would also allow other Unicode, but every
 * name we build or compare goes through tgtadm argv, `--op show` text and
 * iPXE's `iscsi:` URI, and a single case-folded ASCII spelling keeps "is this
 * the same target?" a plain string comparison.
 */
import { createHash } from 'node:crypto';
import { parseMac } from '../net/mac.js';

/** RFC 3720 §3.2.6.1: an iSCSI name is at most 223 bytes (UTF-8). */
export const ISCSI_NAME_MAX = 223;

export class IqnError extends Error {
  constructor(readonly input: string, readonly reason: string) {
    super(`invalid iSCSI name ${JSON.stringify(input.slice(0, 80))}: ${reason}`);
    this.name = 'IqnError';
  }
}

export type IscsiName =
  | { readonly kind: 'iqn'; readonly name: string; readonly date: string; readonly authority: string; readonly unique: string | null }
  | { readonly kind: 'eui' | 'naa'; readonly name: string; readonly hex: string };

const ALLOWED = /^[a-z0-9.:-]+$/;
/** iqn.YYYY-MM.reversed.domain[:anything] — the domain labels are DNS-ish, at least one. */
const IQN_RE = /^iqn\.(\d{4})-(\d{2})\.([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::(.*))?$/;

/** The result of checking a name: the normalised spelling, or why not. */
export function checkIscsiName(input: string): { readonly ok: true; readonly value: IscsiName } | { readonly ok: false; readonly reason: string } {
  // RFC 3722 maps case; surrounding blanks are never part of a name (they come from config files and show output).
  const s = input.trim().toLowerCase();
  if (s.length === 0) return { ok: false, reason: 'empty' };
  if (Buffer.byteLength(s, 'utf8') > ISCSI_NAME_MAX) return { ok: false, reason: `longer than ${ISCSI_NAME_MAX} bytes` };
  if (!ALLOWED.test(s)) return { ok: false, reason: 'only a-z, 0-9, "-", "." and ":" are allowed' };
  if (s.startsWith('eui.') || s.startsWith('naa.')) {
    const hex = s.slice(4);
    const kind = s.startsWith('eui.') ? 'eui' : 'naa';
    // eui.: 16 hex digits (EUI-64); naa.: 16 or 32 hex digits (64- or 128-bit NAA).
    const okLen = kind === 'eui' ? hex.length === 16 : hex.length === 16 || hex.length === 32;
    if (!okLen || !/^[0-9a-f]+$/.test(hex)) return { ok: false, reason: `${kind}. needs ${kind === 'eui' ? '16' : '16 or 32'} hex digits` };
    return { ok: true, value: { kind, name: s, hex } };
  }
  if (!s.startsWith('iqn.')) return { ok: false, reason: 'must start with iqn., eui. or naa.' };
  const m = IQN_RE.exec(s);
  if (!m) return { ok: false, reason: 'iqn. form is iqn.YYYY-MM.reversed.domain[:unique]' };
  const month = Number(m[2]);
  if (month < 1 || month > 12) return { ok: false, reason: `month ${m[2]} out of range` };
  const unique = m[4] ?? null;
  if (unique !== null && unique.length === 0) return { ok: false, reason: 'empty name after ":"' };
  return { ok: true, value: { kind: 'iqn', name: s, date: `${m[1]}-${m[2]}`, authority: m[3]!, unique } };
}

export function isValidIscsiName(input: string): boolean {
  return checkIscsiName(input).ok;
}

/** The normalised (trimmed, lower-case) name; throws IqnError. */
export function normalizeIscsiName(input: string): string {
  const r = checkIscsiName(input);
  if (!r.ok) throw new IqnError(input, r.reason);
  return r.value.name;
}

/**
 * Checks a prefix such as "iqn.2026-11.lab.metalboot": a valid iqn. name
 * without a ":unique" part (we add that). Returns its normalised form.
 */
export function checkIqnPrefix(prefix: string): string {
  const r = checkIscsiName(prefix);
  if (!r.ok) throw new IqnError(prefix, r.reason);
  if (r.value.kind !== 'iqn') throw new IqnError(prefix, 'a prefix must be an iqn. name');
  if (r.value.unique !== null) throw new IqnError(prefix, 'a prefix must not contain ":" (the unique part is added)');
  return r.value.name;
}

const SAFE_NAME = /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/;

/**
 * `<prefix>:<name>` for a machine name. A name that is already safe
 * (lower-case a-z 0-9 . -, alphanumeric at both ends) is used as is. Anything
 * else is folded to that alphabet AND gets "-" + 8 hex of its sha256 appended,
 * so two different names can never fold onto the same target ("Web_01" and
 * "web-01" stay apart), and the result is stable across restarts. Too-long
 * names are cut and hashed the same way, to stay within 223 bytes.
 */
export function iqnForName(prefix: string, name: string): string {
  const p = checkIqnPrefix(prefix);
  if (name.length === 0) throw new IqnError(`${p}:`, 'empty machine name');
  const room = ISCSI_NAME_MAX - p.length - 1;
  if (room < 16) throw new IqnError(prefix, 'prefix leaves no room for a name');
  if (SAFE_NAME.test(name) && name.length <= room) return `${p}:${name}`;
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 8);
  let folded = name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/[-.]{2,}/g, '-').replace(/^[-.]+|[-.]+$/g, '');
  folded = folded.slice(0, room - 9).replace(/[-.]+$/, '');
  return folded ? `${p}:${folded}-${hash}` : `${p}:${hash}`;
}

/** `<prefix>:mac-525400990001` for a MAC in any form parseMac takes. */
export function iqnForMac(prefix: string, mac: string): string {
  const p = checkIqnPrefix(prefix);
  return `${p}:mac-${parseMac(mac).replaceAll(':', '')}`;
}
