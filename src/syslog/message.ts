/**
 * Syslog datagram codec (receive side only). Pure: one UDP payload in, a typed
 * SyslogMessage out; never throws, returns a ParseResult naming what was wrong.
 *
 * Two wire formats:
 * - RFC 5424 §6: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`,
 *   every header field checked against the §6 ABNF; structured data (§6.3) is
 *   walked element by element (quoted values, `\"` `\\` `\]` escapes) and skipped.
 * - RFC 3164 §4.1 (BSD): `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG`, and the
 *   degenerate forms seen in practice, read the way §4.3.3 tells a relay to:
 *   no timestamp, no hostname, anything after PRI is content. iPXE is the
 *   sender this exists for; its src/net/udp/syslog.c, syslog_send(), formats
 *       "<%d>%s%s%s%sipxe: %s"  →  `<6>host.domain ipxe: message`
 *   (PRI = facility 0 kern, severity 6 info by default; hostname and domain
 *   from DHCP options 12/15, dropped when unset: `<6>ipxe: message`), no
 *   timestamp, no trailing newline or NUL over UDP, one datagram per console
 *   line of at most 127 characters (SYSLOG_BUFSIZE 128, src/core/lineconsole.c).
 *
 * What comes out is safe to print: hostname and app are printable US-ASCII
 * without spaces (anything else is not taken as a hostname or tag); the text is
 * decoded as UTF-8 (invalid sequences become U+FFFD) and every control or
 * invisible formatting character (C0, DEL, C1, line/paragraph separators, bidi
 * overrides and isolates) is written as a visible escape, so a message cannot
 * start a new log line, move a terminal cursor or reorder a status page.
 */

/** RFC 5424 §6.1: receivers SHOULD accept 480 and 2048 octets, MAY accept more. */
export const MAX_DATAGRAM = 2048;

/** RFC 5424 §6.2.1: PRI = facility × 8 + severity, facility 0..23. */
const MAX_PRI = 191;

export type SyslogFormat = '3164' | '5424';

export interface SyslogMessage {
  /** 0..23 (0 kern, 1 user, ... 16..23 local0..local7). */
  readonly facility: number;
  /** 0 emerg .. 7 debug. */
  readonly severity: number;
  readonly format: SyslogFormat;
  /** As sent (RFC 3339 for 5424, `Mmm dd hh:mm:ss` for 3164); absent when not sent or NILVALUE. */
  readonly timestamp?: string;
  /** Printable US-ASCII, no spaces, at most 255 characters. */
  readonly hostname?: string;
  /** RFC 5424 APP-NAME or the RFC 3164 TAG without its `[pid]`; printable US-ASCII. */
  readonly app?: string;
  /** UTF-8 decoded, control and formatting characters escaped; may be empty. */
  readonly text: string;
}

export type ParseFailure = 'oversized' | 'malformed';
export type ParseResult =
  | { readonly ok: true; readonly value: SyslogMessage }
  | { readonly ok: false; readonly reason: ParseFailure; readonly detail: string };

export interface ParseOptions {
  /** Largest datagram accepted, in bytes; default MAX_DATAGRAM. */
  readonly maxBytes?: number;
}

const fail = (reason: ParseFailure, detail: string): ParseResult => ({ ok: false, reason, detail });

const SP = 0x20;
const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
/** RFC 5424 §6 PRINTUSASCII = %d33-126. */
const isPrintUsAscii = (b: number): boolean => b >= 33 && b <= 126;

export function parseSyslog(buf: Buffer, opts: ParseOptions = {}): ParseResult {
  const max = opts.maxBytes ?? MAX_DATAGRAM;
  if (buf.length > max) return fail('oversized', `${buf.length} bytes > ${max}`);
  if (buf.length === 0) return fail('malformed', 'empty datagram');

  // RFC 5424 §6.2.1 / RFC 3164 §4.1.1: "<" 1*3DIGIT ">", no leading zeros but "0" itself.
  if (buf[0] !== 0x3c) return fail('malformed', 'no <PRI>');
  let i = 1;
  while (i < buf.length && i <= 4 && isDigit(buf[i]!)) i++;
  const digits = i - 1;
  if (digits === 0 || digits > 3 || buf[i] !== 0x3e) return fail('malformed', 'bad <PRI>');
  if (digits > 1 && buf[1] === 0x30) return fail('malformed', 'PRI with a leading zero');
  const pri = Number(buf.toString('latin1', 1, i));
  if (pri > MAX_PRI) return fail('malformed', `PRI ${pri} > ${MAX_PRI}`);
  const facility = pri >> 3;
  const severity = pri & 7;
  const rest = i + 1;

  if (looks5424(buf, rest)) {
    const r = parse5424Header(buf, rest + 2);
    if (!r.ok) return fail('malformed', r.detail);
    return {
      ok: true,
      value: {
        facility, severity, format: '5424',
        ...(r.timestamp !== undefined ? { timestamp: r.timestamp } : {}),
        ...(r.hostname !== undefined ? { hostname: r.hostname } : {}),
        ...(r.app !== undefined ? { app: r.app } : {}),
        text: decodeText(buf, r.msgStart),
      },
    };
  }
  const h = parse3164Header(buf, rest);
  return {
    ok: true,
    value: {
      facility, severity, format: '3164',
      ...(h.timestamp !== undefined ? { timestamp: h.timestamp } : {}),
      ...(h.hostname !== undefined ? { hostname: h.hostname } : {}),
      ...(h.app !== undefined ? { app: h.app } : {}),
      text: decodeText(buf, h.msgStart),
    },
  };
}

// ------------------------------------------------------------------ RFC 5424

/**
 * VERSION "1" SP followed by a NILVALUE or a full-date: only then is it taken as
 * RFC 5424 and held to its grammar. A BSD message whose content happens to
 * start with "1 " (`<6>1 file copied`) stays RFC 3164 content.
 */
function looks5424(buf: Buffer, at: number): boolean {
  if (buf[at] !== 0x31 || buf[at + 1] !== SP) return false;
  const t = at + 2;
  if (buf[t] === 0x2d && (buf[t + 1] === SP || t + 1 === buf.length)) return true;
  return t + 4 < buf.length && isDigit(buf[t]!) && isDigit(buf[t + 1]!) && isDigit(buf[t + 2]!) && isDigit(buf[t + 3]!) && buf[t + 4] === 0x2d;
}

type Header5424 =
  | { ok: true; timestamp?: string; hostname?: string; app?: string; msgStart: number }
  | { ok: false; detail: string };

/** RFC 5424 §6.2.3 TIMESTAMP (RFC 3339 subset, §6.2.3.1: fractions of at most 6 digits). */
const TIMESTAMP_5424 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?(?:Z|[+-](\d{2}):(\d{2}))$/;

function valid5424Timestamp(s: string): boolean {
  const m = TIMESTAMP_5424.exec(s);
  if (!m) return false;
  const [, , mo, d, h, mi, sec, oh, om] = m.map(Number) as number[];
  return mo! >= 1 && mo! <= 12 && d! >= 1 && d! <= 31 && h! <= 23 && mi! <= 59 && sec! <= 60
    && (oh === undefined || Number.isNaN(oh) || (oh <= 23 && om! <= 59));
}

/** Reads one SP-terminated header field of PRINTUSASCII, 1..max long. */
function field(buf: Buffer, at: number, max: number): { value: string; next: number } | undefined {
  let i = at;
  while (i < buf.length && isPrintUsAscii(buf[i]!)) i++;
  if (i === at || i - at > max || buf[i] !== SP) return undefined;
  return { value: buf.toString('latin1', at, i), next: i + 1 };
}

function parse5424Header(buf: Buffer, at: number): Header5424 {
  // §6.2.3..§6.2.7: TIMESTAMP, HOSTNAME (255), APP-NAME (48), PROCID (128), MSGID (32).
  const ts = field(buf, at, 32);
  if (!ts) return { ok: false, detail: 'RFC 5424 TIMESTAMP' };
  if (ts.value !== '-' && !valid5424Timestamp(ts.value)) return { ok: false, detail: 'RFC 5424 TIMESTAMP' };
  const host = field(buf, ts.next, 255);
  if (!host) return { ok: false, detail: 'RFC 5424 HOSTNAME' };
  const app = field(buf, host.next, 48);
  if (!app) return { ok: false, detail: 'RFC 5424 APP-NAME' };
  const procid = field(buf, app.next, 128);
  if (!procid) return { ok: false, detail: 'RFC 5424 PROCID' };
  const msgid = field(buf, procid.next, 32);
  if (!msgid) return { ok: false, detail: 'RFC 5424 MSGID' };
  const sdEnd = skipStructuredData(buf, msgid.next);
  if (sdEnd < 0) return { ok: false, detail: 'RFC 5424 STRUCTURED-DATA' };
  // §6: [SP MSG] — nothing, or one space and the message.
  let msgStart = sdEnd;
  if (sdEnd < buf.length) {
    if (buf[sdEnd] !== SP) return { ok: false, detail: 'RFC 5424 no SP after STRUCTURED-DATA' };
    msgStart = sdEnd + 1;
  }
  return {
    ok: true,
    ...(ts.value !== '-' ? { timestamp: ts.value } : {}),
    ...(host.value !== '-' ? { hostname: host.value } : {}),
    ...(app.value !== '-' ? { app: app.value } : {}),
    msgStart,
  };
}

/** §6.3.3 SD-NAME = 1*32PRINTUSASCII except '=', SP, ']', '"'. */
const isSdNameChar = (b: number): boolean => isPrintUsAscii(b) && b !== 0x3d && b !== 0x5d && b !== 0x22;

function sdName(buf: Buffer, at: number): number {
  let i = at;
  while (i < buf.length && isSdNameChar(buf[i]!)) i++;
  return i === at || i - at > 32 ? -1 : i;
}

/**
 * RFC 5424 §6.3: STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT,
 * SD-ELEMENT = "[" SD-ID *(SP PARAM-NAME "=" %d34 PARAM-VALUE %d34) "]".
 * Returns the offset just after it, or -1. Inside a PARAM-VALUE a backslash
 * escapes the next octet (§6.3.3 names `"`, `\` and `]`); an unescaped `]`
 * there is tolerated since the quotes already delimit the value, an unescaped
 * `"` ends it.
 */
function skipStructuredData(buf: Buffer, at: number): number {
  if (buf[at] === 0x2d) return at + 1;
  let i = at;
  let elements = 0;
  while (buf[i] === 0x5b) {
    i = sdName(buf, i + 1);
    if (i < 0) return -1;
    while (buf[i] === SP) {
      i = sdName(buf, i + 1);
      if (i < 0 || buf[i] !== 0x3d || buf[i + 1] !== 0x22) return -1;
      i += 2;
      for (;;) {
        if (i >= buf.length) return -1;
        const b = buf[i]!;
        if (b === 0x5c) { i += 2; continue; }
        i++;
        if (b === 0x22) break;
      }
    }
    if (buf[i] !== 0x5d) return -1;
    i++;
    elements++;
  }
  return elements > 0 ? i : -1;
}

// ------------------------------------------------------------------ RFC 3164

interface Header3164 { timestamp?: string; hostname?: string; app?: string; msgStart: number }

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** §4.1.2 `Mmm dd hh:mm:ss`, day space-padded; an unpadded day is accepted too. */
const TIMESTAMP_3164 = /^([A-Z][a-z]{2}) ( \d|\d{1,2}) (\d{2}):(\d{2}):(\d{2}) /;
/** Some forwarders (rsyslog's ForwardFormat) put an RFC 3339 stamp in a BSD header. */
const TIMESTAMP_3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2}) /;
/**
 * §4.1.3 TAG: alphanumerics (at most 32 by the RFC; `-` `_` `.` `/` and up to 48
 * in practice), an optional `[pid]`, then ':'. What follows is the content.
 */
const TAG = /^([A-Za-z0-9_./-]{1,48})(?:\[[0-9A-Za-z_.-]{1,32}\])?:(?: |$)/;

/** Index of the next SP at or after `at` (or buf.length), if every octet before it is PRINTUSASCII. */
function token(buf: Buffer, at: number, max: number): number {
  let i = at;
  while (i < buf.length && buf[i] !== SP) {
    if (!isPrintUsAscii(buf[i]!) || i - at >= max) return -1;
    i++;
  }
  return i === at ? -1 : i;
}

function matchTag(buf: Buffer, at: number): { app: string; next: number } | undefined {
  // A tag with pid and ': ' is at most ~84 octets; look no further.
  const m = TAG.exec(buf.toString('latin1', at, Math.min(buf.length, at + 96)));
  if (!m) return undefined;
  return { app: m[1]!, next: Math.min(buf.length, at + m[0].length) };
}

function parse3164Header(buf: Buffer, at: number): Header3164 {
  const head = buf.toString('latin1', at, Math.min(buf.length, at + 40));
  let timestamp: string | undefined;
  let i = at;
  const bsd = TIMESTAMP_3164.exec(head);
  if (bsd && MONTHS.includes(bsd[1]!) && Number(bsd[2]) >= 1 && Number(bsd[2]) <= 31
      && Number(bsd[3]) <= 23 && Number(bsd[4]) <= 59 && Number(bsd[5]) <= 60) {
    timestamp = bsd[0].slice(0, -1);
  } else {
    const iso = TIMESTAMP_3339.exec(head);
    if (iso) timestamp = iso[0].slice(0, -1);
  }
  if (timestamp !== undefined) {
    i += timestamp.length + 1;
    // §4.1.2: after a timestamp comes the HOSTNAME, then the MSG (TAG + CONTENT);
    // a sender that left the hostname out goes straight to its TAG.
    const direct = matchTag(buf, i);
    if (direct) return { timestamp, app: direct.app, msgStart: direct.next };
    const end = token(buf, i, 255);
    if (end < 0) return { timestamp, msgStart: i };
    const hostname = buf.toString('latin1', i, end);
    const afterHost = Math.min(buf.length, end + 1);
    const tag = matchTag(buf, afterHost);
    return tag
      ? { timestamp, hostname, app: tag.app, msgStart: tag.next }
      : { timestamp, hostname, msgStart: afterHost };
  }
  // No timestamp (iPXE, many embedded senders): `TAG: msg`, `HOST TAG: msg` or bare content.
  const tag = matchTag(buf, i);
  if (tag) return { app: tag.app, msgStart: tag.next };
  const end = token(buf, i, 255);
  if (end >= 0 && end < buf.length) {
    const tag2 = matchTag(buf, end + 1);
    if (tag2) return { hostname: buf.toString('latin1', i, end), app: tag2.app, msgStart: tag2.next };
  }
  return { msgStart: i };
}

// ------------------------------------------------------------------ text

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** Non-fatal: invalid UTF-8 becomes U+FFFD, nothing throws. */
const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * C0 controls, DEL, C1 controls, U+2028/U+2029 (line/paragraph separators),
 * bidi embeddings/overrides U+202A..U+202E, isolates U+2066..U+2069, marks
 * U+200E/U+200F/U+061C, and U+FEFF (zero-width no-break space).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;
const SHORT: Readonly<Record<string, string>> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** Escapes what a log line, a terminal or a status page must not interpret. */
export function escapeUnsafe(s: string): string {
  return s.replace(UNSAFE, (c) => {
    const short = SHORT[c];
    if (short) return short;
    const cp = c.charCodeAt(0);
    return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  });
}

function decodeText(buf: Buffer, from: number): string {
  let start = from;
  let end = buf.length;
  // RFC 5424 §6.4: MSG-UTF8 starts with a BOM. Trailing LF, CR and NUL are
  // framing some senders add (TCP habits, C strings), not content.
  if (end - start >= 3 && buf.compare(BOM, 0, 3, start, start + 3) === 0) start += 3;
  while (end > start && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d || buf[end - 1] === 0x00)) end--;
  return escapeUnsafe(utf8.decode(buf.subarray(start, end)));
}
