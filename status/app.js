// metalboot status page. Loads /status JSON, then follows the event stream.
//
// Auth: with status.public on, the page reads /status/api/v1/* without a token. Otherwise (or to
// get the power/provision buttons) it asks for the API token, keeps it in sessionStorage for this
// tab only, and sends it as `Authorization: Bearer` to /api/v1/*. The event stream is read with
// fetch() and a small SSE parser rather than EventSource, so the token travels in that header
// too and never in a URL (URLs end up in logs, proxies and the browser history).
import { html, fmtAgo, fmtBytes, fmtDuration, normMac, stepOfEvent, describeEvent, syslogList, SseParser } from './lib.js';

const TOKEN_KEY = 'metalboot-token';
const MAX_EVENTS = 200;
const $ = (id) => document.getElementById(id);

const st = {
  token: sessionStorage.getItem(TOKEN_KEY),
  snap: null,
  events: [],
  lastSeq: 0,
  detail: null,
  view: parseView(location.pathname, location.hash),
  abort: null,
  live: false,
};

function base() { return st.token ? '/api/v1' : '/status/api/v1'; }
function headers(extra = {}) { return st.token ? { ...extra, authorization: `Bearer ${st.token}` } : extra; }

function parseView(path, hash) {
  const m = /^\/machines\/([^/]+)$/.exec(path) ?? /^#\/machines\/([^/]+)$/.exec(hash);
  const mac = m ? normMac(decodeURIComponent(m[1])) : null;
  return mac ? { kind: 'machine', mac } : { kind: 'list' };
}

class HttpError extends Error { constructor(status, msg) { super(msg); this.status = status; } }

async function getJson(path) {
  const res = await fetch(base() + path, { headers: headers(), cache: 'no-store' });
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try { msg = (await res.json()).error ?? msg; } catch { /* not JSON */ }
    throw new HttpError(res.status, msg);
  }
  return res.json();
}

// ------------------------------------------------------------------ token

function askToken(why, error = '') {
  $('tokenwhy').textContent = why;
  $('tokenerr').textContent = error;
  $('token').value = '';
  const dlg = $('tokendlg');
  if (!dlg.open) dlg.showModal();
}

$('tokenform').addEventListener('submit', (ev) => {
  if (ev.submitter?.value !== 'ok') return;
  const t = $('token').value.trim();
  if (!t) return;
  st.token = t;
  sessionStorage.setItem(TOKEN_KEY, t);
  restart();
});
$('signin').addEventListener('click', () => askToken('Sign in with an API token to use the power and provision buttons.'));
$('signout').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); st.token = null; restart(); });

// ------------------------------------------------------------------ loading

async function load() {
  try {
    st.snap = await getJson('/status');
    st.lastSeq = Math.max(st.lastSeq, st.snap.lastSeq);
    if (st.events.length === 0) st.events = (await getJson('/events?limit=50')).events.reverse();
    if (st.view.kind === 'machine') await loadDetail();
    render();
    // A transfer's progress comes only with the snapshot: while any run, fetch it once a second.
    if (st.snap.transfers?.length) refreshSoon(1000);
    return true;
  } catch (e) {
    if (e.status === 401 && st.token) { sessionStorage.removeItem(TOKEN_KEY); st.token = null; askToken('The API token was refused.', e.message); }
    else if ((e.status === 404 || e.status === 401) && !st.token) askToken('This status page is not public: it needs the API token.');
    else $('main').innerHTML = html`<p class="err">Cannot load the status: ${e.message}</p>`.toString();
    return false;
  }
}

async function loadDetail() {
  st.detail = await getJson(`/status/machines/${encodeURIComponent(st.view.mac)}`);
}

async function restart() {
  st.abort?.abort();
  st.events = [];
  st.lastSeq = 0;
  $('signin').hidden = !!st.token;
  $('signout').hidden = !st.token;
  if (await load()) follow();
}

// ------------------------------------------------------------------ live updates (SSE over fetch)

function setLive(on) {
  st.live = on;
  const el = $('live');
  el.className = `live ${on ? 'on' : 'off'}`;
  el.textContent = on ? 'live' : 'reconnecting…';
}

async function follow() {
  const ctl = new AbortController();
  st.abort = ctl;
  let backoff = 1000;
  while (!ctl.signal.aborted) {
    try {
      const res = await fetch(`${base()}/events/stream`, { headers: headers(st.lastSeq ? { 'last-event-id': String(st.lastSeq) } : {}), signal: ctl.signal, cache: 'no-store' });
      if (!res.ok || !res.body) throw new HttpError(res.status, `HTTP ${res.status}`);
      setLive(true);
      backoff = 1000;
      const parser = new SseParser(onSse);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e.status === 401) { restart(); return; }
    }
    setLive(false);
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 15_000);
  }
}

let refreshTimer = null;
function refreshSoon(ms) {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => { refreshTimer = null; await load(); }, ms);
}

function onSse(m) {
  if (m.event === 'gap') { refreshSoon(100); return; }
  if (m.event !== 'message') return;
  let e;
  try { e = JSON.parse(m.data); } catch { return; }
  if (typeof e.seq !== 'number' || e.seq <= st.lastSeq) return;
  st.lastSeq = e.seq;
  st.events.unshift(e);
  if (st.events.length > MAX_EVENTS) st.events.length = MAX_EVENTS;
  applyToRow(e);
  // Leases, transfers, sessions and states come with the snapshot: fetch it again, at most once a second.
  if (e.type === 'tftp.start' || e.type === 'tftp.end' || e.type.startsWith('iscsi.') || e.type === 'machine.state'
    || e.type === 'dhcp.ack' || e.type === 'dhcp.release' || e.type === 'dhcp.decline') refreshSoon(1000);
  if (st.view.kind === 'machine' && e.mac === st.view.mac) { loadDetail().then(renderSoon, () => undefined); return; }
  renderSoon();
}

/** The machine's row follows its events at once; a full reload later settles the details. */
function applyToRow(e) {
  if (!st.snap || !e.mac) return;
  let row = st.snap.machines.find((r) => r.mac === e.mac);
  if (!row) {
    if (!e.type.startsWith('dhcp.')) return;
    row = { mac: e.mac, name: e.mac, ip: null, state: 'seen', power: null, image: null, lastStep: null, lastStepAt: null, lastStepState: null, health: 'idle', source: 'events' };
    st.snap.machines.unshift(row);
  }
  if (e.type.startsWith('dhcp.') && e.ip && e.ip !== '0.0.0.0' && e.type !== 'dhcp.release') row.ip = e.ip;
  if (e.hostname && row.source === 'events' && row.name === row.mac) row.name = e.hostname;
  if (e.type === 'machine.state') row.state = e.to;
  const step = stepOfEvent(e);
  if (step) {
    const failed = (e.type === 'tftp.end' && !e.ok) || (e.type === 'boot.script' && !e.served);
    row.lastStep = step;
    row.lastStepAt = e.at;
    row.lastStepState = failed ? 'failed' : step === 'active' || e.type === 'dhcp.ack' || e.type === 'tftp.end' ? 'done' : 'running';
    row.health = failed ? 'bad' : step === 'active' ? 'ok' : 'busy';
    if (row.source === 'events' && row.state !== 'booted') row.state = step === 'active' ? 'booted' : 'booting';
  }
}

let renderTimer = null;
function renderSoon() {
  if (renderTimer) return;
  renderTimer = requestAnimationFrame(() => { renderTimer = null; render(); });
}

// ------------------------------------------------------------------ rendering

const dot = (h) => html`<span class="dot h-${['ok', 'busy', 'warn', 'bad', 'idle'].includes(h) ? h : 'idle'}" title="${h}"></span>`;
const macLink = (mac) => html`<a class="mono" href="/machines/${encodeURIComponent(mac)}" data-nav>${mac}</a>`;

function bar(pct, threshold) {
  const p = Math.max(0, Math.min(100, Number(pct) || 0));
  return html`<div class="bar" role="progressbar" aria-valuenow="${p.toFixed(1)}"><span data-w="${p.toFixed(2)}" class="${threshold !== undefined && p >= threshold ? 'hot' : ''}"></span>${threshold !== undefined ? html`<i data-l="${threshold}"></i>` : ''}<em>${p.toFixed(1)} %</em></div>`;
}

function machinesTable(rows, now) {
  if (rows.length === 0) return html`<p class="muted">No machines yet.</p>`;
  return html`<table class="rows"><thead><tr><th></th><th>Name</th><th>MAC</th><th>IP</th><th>State</th><th>Power</th><th>Image</th><th>Last step</th></tr></thead><tbody>
    ${rows.map((m) => html`<tr data-mac="${m.mac}">
      <td>${dot(m.health)}</td><td data-label="Name">${m.name}</td><td data-label="MAC">${macLink(m.mac)}</td>
      <td data-label="IP" class="mono">${m.ip ?? ''}</td><td data-label="State">${m.state}</td><td data-label="Power">${m.power ?? ''}</td>
      <td data-label="Image">${m.image ?? ''}</td>
      <td data-label="Last step">${m.lastStep ? html`${m.lastStep}${m.lastStepState === 'failed' ? html` <span class="err">failed</span>` : ''} <span class="muted">${fmtAgo(m.lastStepAt, now)}</span>` : ''}</td>
    </tr>`)}
  </tbody></table>`;
}

function eventsTable(events, withMac) {
  if (events.length === 0) return html`<p class="muted">No events yet.</p>`;
  return html`<table class="events rows"><tbody>${events.slice(0, 100).map((e) => html`<tr>
    <td class="muted">${new Date(e.at).toLocaleTimeString()}</td><td>${e.type}</td>${withMac ? html`<td>${e.mac ? macLink(e.mac) : ''}</td>` : ''}<td class="mono">${describeEvent(e)}</td>
  </tr>`)}</tbody></table>`;
}

function renderList() {
  const s = st.snap;
  const now = Date.now();
  const pool = s.pool;
  return html`
    <h2>Machines <span class="count">${s.machines.length}</span></h2>
    ${machinesTable(s.machines, now)}
    <div class="grid">
      <section><h2>Leases <span class="count">${s.leases.length}</span></h2>
        ${s.leases.length ? html`<table class="rows"><thead><tr><th>IP</th><th>MAC</th><th>State</th><th>Host</th><th>Expires</th></tr></thead><tbody>
          ${s.leases.map((l) => html`<tr><td class="mono">${l.ip}</td><td>${l.mac ? macLink(l.mac) : ''}</td><td>${l.state}</td><td>${l.hostname ?? ''}</td><td class="muted">${l.expiresAt > now ? `in ${fmtDuration(l.expiresAt - now)}` : fmtAgo(l.expiresAt, now)}</td></tr>`)}
        </tbody></table>` : html`<p class="muted">None.</p>`}
      </section>
      <section><h2>TFTP transfers <span class="count">${s.transfers.length}</span></h2>
        ${s.transfers.length ? html`<table class="rows"><tbody>${s.transfers.map((t) => html`<tr><td class="mono">${t.client}</td><td class="mono">${t.file}</td>
          <td>${bar(t.size ? (100 * t.bytes) / t.size : 0)}</td><td class="muted">${fmtBytes(t.bytes)} / ${fmtBytes(t.size)}</td></tr>`)}</tbody></table>` : html`<p class="muted">None running.</p>`}
      </section>
      <section><h2>iSCSI sessions <span class="count">${s.sessions.length}</span></h2>
        ${s.sessions.length ? html`<table class="rows"><tbody>${s.sessions.map((x) => html`<tr><td>${x.mac ? macLink(x.mac) : ''}</td><td class="mono">${x.target}</td><td class="mono">${x.addresses.join(', ')}</td></tr>`)}</tbody></table>` : html`<p class="muted">None.</p>`}
      </section>
      <section><h2>Storage pool</h2>
        ${pool ? html`<p>Data ${bar(pool.dataPercent, pool.thresholdPercent)}</p>${pool.metadataPercent !== null ? html`<p>Metadata ${bar(pool.metadataPercent, pool.thresholdPercent)}</p>` : ''}
          <p class="muted">${pool.backend}, ${fmtBytes(pool.totalBytes)}, new disks refused above ${pool.thresholdPercent} %</p>${pool.health ? html`<p class="pool-health">Cluster: <span class="mono">${pool.health}</span></p>` : ''}` : html`<p class="muted">No storage (iSCSI disabled).</p>`}
      </section>
    </div>
    <h2>Recent events</h2>
    ${eventsTable(st.events, true)}`;
}

function timelineBar(a, now) {
  const total = a.steps.reduce((n, x) => n + Math.max(x.durationMs, 1), 0) || 1;
  return html`<div class="attempt">
    <div class="meta">${new Date(a.startedAt).toLocaleString()} · ${a.state}${a.endedAt ? ` · ${fmtDuration(a.endedAt - a.startedAt)}` : ` · ${fmtDuration(now - a.startedAt)} so far`}</div>
    <div class="timeline">${a.steps.map((x) => html`<div class="s-${x.state}" data-g="${Math.max(x.durationMs, 1) / total}" title="${x.name}: ${x.state}${x.detail ? ` (${x.detail})` : ''}"><b>${x.name}</b><span>${fmtDuration(x.durationMs)}</span></div>`)}</div>
    ${syslogList(a.messages)}
  </div>`;
}

function renderMachine() {
  const d = st.detail;
  const mac = st.view.mac;
  const now = Date.now();
  const m = d?.machine;
  const canChange = st.snap?.access === 'rw';
  return html`
    <p><a href="/" data-nav>← all machines</a></p>
    <h2>${m ? m.name : mac} <span class="count mono">${mac}</span></h2>
    ${m ? html`<p>${dot(m.health)} ${m.state}${m.power ? ` · power ${m.power}` : ''}${m.ip ? ` · ${m.ip}` : ''}${m.image ? ` · image ${m.image}` : ''}</p>` : html`<p class="muted">Nothing seen from this machine yet.</p>`}
    ${canChange ? html`<div class="actions" id="actions">
      <button data-power="on">Power on</button><button data-power="off">Power off</button><button data-power="cycle">Power cycle</button><button data-power="reset">Reset</button>
      <button data-provision>Provision…</button></div><p id="actionmsg" class="muted"></p>` : ''}
    <h2>Boot timeline</h2>
    ${d && d.timeline.length ? [...d.timeline].reverse().map((a) => timelineBar(a, now)) : html`<p class="muted">No boot seen.</p>`}
    <h2>Events</h2>
    ${eventsTable(d ? [...d.events].reverse() : [], false)}`;
}

function render() {
  if (!st.snap) return;
  const out = st.view.kind === 'machine' ? renderMachine() : renderList();
  $('main').innerHTML = out.toString();
  // Sizes go through the CSSOM (the page's CSP allows no inline style attributes).
  for (const el of document.querySelectorAll('[data-w]')) el.style.width = `${el.dataset.w}%`;
  for (const el of document.querySelectorAll('[data-l]')) el.style.left = `${el.dataset.l}%`;
  for (const el of document.querySelectorAll('[data-g]')) el.style.flexGrow = el.dataset.g;
  document.title = st.view.kind === 'machine' ? `${st.view.mac} – metalboot` : 'metalboot';
}

// ------------------------------------------------------------------ navigation and actions

function navigate(href) {
  history.pushState(null, '', href);
  st.view = parseView(location.pathname, location.hash);
  st.detail = null;
  (st.view.kind === 'machine' ? loadDetail() : Promise.resolve()).then(render, (e) => { $('main').innerHTML = html`<p class="err">${e.message}</p>`.toString(); });
}

document.addEventListener('click', async (ev) => {
  const a = ev.target.closest('a[data-nav]');
  if (a && !ev.metaKey && !ev.ctrlKey && ev.button === 0) { ev.preventDefault(); navigate(a.getAttribute('href')); return; }
  const b = ev.target.closest('#actions button');
  if (!b || st.view.kind !== 'machine') return;
  const mac = st.view.mac;
  let path, body;
  if (b.dataset.power) {
    if (!confirm(`Power ${b.dataset.power} ${mac}?`)) return;
    path = 'power'; body = { action: b.dataset.power };
  } else {
    const image = prompt(`Provision ${mac} with which image?`, st.detail?.machine?.image ?? '');
    if (!image || !confirm(`Provision ${mac} with image ${image}? Its disk is replaced.`)) return;
    path = 'provision'; body = { image };
  }
  const msg = $('actionmsg');
  msg.textContent = 'Sending…';
  try {
    const res = await fetch(`/api/v1/machines/${encodeURIComponent(mac)}/${path}`, { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) });
    let text = `HTTP ${res.status}`;
    try { const j = await res.json(); text = j.error ?? (res.ok ? 'Accepted.' : text); } catch { /* empty body */ }
    msg.textContent = text;
    msg.className = res.ok ? 'muted' : 'err';
  } catch (e) {
    msg.textContent = e.message;
    msg.className = 'err';
  }
});

window.addEventListener('popstate', () => { st.view = parseView(location.pathname, location.hash); st.detail = null; load(); });
window.addEventListener('hashchange', () => { st.view = parseView(location.pathname, location.hash); load(); });
// Ages ("3 s ago") move on without events; a full reload every 30 s settles anything missed.
setInterval(() => { if (st.snap) renderSoon(); }, 5000);
setInterval(() => { if (st.snap) load(); }, 30_000);

restart();
