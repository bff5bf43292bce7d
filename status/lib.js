// metalboot status page: pure helpers (no DOM), shared by the page and the unit tests.
// Everything that reaches innerHTML goes through html`` which escapes every interpolated value;
// only values wrapped by raw() (built by html`` itself) are inserted as markup.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Text → HTML text or attribute value (quoted attributes only). */
export function esc(v) {
  return String(v ?? '').replace(/[&<>"'`]/g, (c) => ESC[c]);
}

class Raw {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}

/** Markup that is already safe (the result of html``). Never call on outside text. */
export function raw(s) {
  return s instanceof Raw ? s : new Raw(String(s));
}

/** Tagged template: interpolations are escaped; arrays are joined; Raw values pass through. */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) {
    out += part(values[i]) + strings[i + 1];
  }
  return new Raw(out);
}

function part(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(part).join('');
  if (v === null || v === undefined || v === false) return '';
  return esc(v);
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

export function fmtAgo(at, now) {
  if (!at) return '';
  const d = now - at;
  return d < 1500 ? 'just now' : `${fmtDuration(d)} ago`;
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${u[i]}`;
}

/** MAC in lower-case colon form, or null. */
export function normMac(s) {
  const m = /^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$/i.exec(String(s ?? '').trim());
  return m ? m.slice(1, 7).join(':').toLowerCase() : null;
}

/** Which boot step an event is evidence of (for the live row update), or null. */
export function stepOfEvent(e) {
  if (e.type === 'dhcp.offer' || e.type === 'dhcp.ack' || e.type === 'dhcp.proxy-offer' || e.type === 'dhcp.proxy-ack') return 'dhcp';
  if (e.type === 'tftp.start' || e.type === 'tftp.end') return 'tftp';
  if (e.type === 'boot.script') return 'script';
  if (e.type === 'iscsi.login') return 'iscsi';
  if (e.type === 'machine.state' && e.to === 'active') return 'active';
  return null;
}

/** A syslog severity (RFC 5424 §6.2.1: 0 emergency … 7 debug) as a CSS class suffix. */
export function severityClass(sev) {
  return sev <= 3 ? 'err' : sev === 4 ? 'warn' : 'info';
}

/**
 * A boot attempt's syslog lines ({at, text, severity}[], oldest first) as the list drawn under
 * its bar; '' when there are none. The text comes from the network: escaped like everything else.
 */
export function syslogList(messages, fmtTime = (at) => new Date(at).toLocaleTimeString()) {
  if (!Array.isArray(messages) || messages.length === 0) return '';
  return html`<ol class="syslog" aria-label="syslog">${messages.map((x) => html`<li class="sev-${severityClass(x.severity)}"><time>${fmtTime(x.at)}</time><span class="mono">${x.text}</span></li>`)}</ol>`;
}

/** One line about an event, as plain text (the caller escapes it like any other text). */
export function describeEvent(e) {
  switch (e.type) {
    case 'tftp.start': return `${e.client} ← ${e.file} (${fmtBytes(e.size)})`;
    case 'tftp.end': return `${e.client} ${e.file}: ${e.ok ? 'done' : e.declined ? 'size query (options declined)' : `failed: ${e.error ?? ''}`} ${fmtBytes(e.bytes)} in ${fmtDuration(e.durationMs)}${e.retransmits ? `, ${e.retransmits} resent` : ''}`;
    case 'boot.script': return `${e.ip}: ${e.served ? e.action : `refused: ${e.reason ?? ''}`}`;
    case 'iscsi.login': case 'iscsi.logout': return `${e.initiator} → ${e.iqn}${e.address ? ` from ${e.address}` : ''}`;
    case 'power.command': return `${e.driver} ${e.target} ${e.command}: ${e.ok ? 'ok' : `error: ${e.error ?? ''}`} (${e.ms} ms)`;
    case 'machine.state': return `${e.from} → ${e.to}: ${e.reason} (${e.actor})`;
    case 'machine.changed': return `${e.what} (${e.actor})`;
    case 'operation': return `${e.kind} ${e.status}: ${e.step}${e.error ? ` – ${e.error}` : ''}`;
    case 'syslog': return `${e.ip}: ${e.text}`;
    default:
      if (e.type.startsWith('dhcp.')) return [e.ip, e.hostname, e.arch, e.ipxe ? 'iPXE' : '', e.bootFile, e.reason].filter(Boolean).join(' ');
      return '';
  }
}

/**
 * text/event-stream parser (the WHATWG rules that matter here): feed it decoded text chunks;
 * it calls onEvent({event, data, id}) at each blank line. Comments (":…") are ignored.
 */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = '';
    this.data = [];
    this.event = '';
    this.id = null;
  }

  push(chunk) {
    this.buf += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      this.data = [];
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}
