import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { EventBus } from '../../src/events/bus.js';
import { AddressBook } from '../../src/events/addresses.js';
import { staticAuth } from '../../src/http/auth.js';
import { EventStreams } from '../../src/http/routes/events.js';
import { statusRoutes, STATUS_DIR } from '../../src/http/routes/status.js';
import { MacHistory } from '../../src/status/history.js';
import { StatusModel, storageSources } from '../../src/status/snapshot.js';
import type { DaemonProbes } from '../../src/status/types.js';
import { parseMac } from '../../src/net/mac.js';
import { parseIpv4 } from '../../src/net/ipv4.js';

const TOKEN = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';
const MAC = parseMac('52:54:00:00:00:01');
const HOSTILE = '<img src=x onerror=alert(1)>"\'&';

async function setup(t: { teardown(fn: () => unknown): void }, opts: { public?: boolean; maxBufferedBytes?: number; heartbeatMs?: number } = {}) {
  let now = 1_000_000;
  const bus = new EventBus(() => now);
  const history = new MacHistory();
  history.attach(bus);
  const addresses = new AddressBook();
  bus.subscribe((e) => addresses.learn(e));
  const probes: DaemonProbes = {};
  const model = new StatusModel({
    bus, history, probes, clock: () => now, addresses,
    leases: () => [{ ip: parseIpv4('10.0.0.100'), mac: MAC, state: 'bound', expiresAt: now + 60_000, updatedAt: now, hostname: HOSTILE }],
    targets: () => [{ iqn: 'iqn.2026-11.org.metalboot:m1', sessions: [{ initiator: 'iqn.x:i', connections: [{ address: '10.0.0.100' }] }] }],
    disks: () => [{ mac: MAC, targetIqn: 'iqn.2026-11.org.metalboot:m1', imageId: 'debian', chap: { user: 'u', secret: 'SECRET-CHAP' } } as never],
    poolUsage: async () => ({ backend: 'file', dataPercent: 12.5, totalBytes: 1000, thresholdPercent: 90 }),
  });
  const streams = new EventStreams({ bus, history, heartbeatMs: opts.heartbeatMs ?? 15_000, maxBufferedBytes: opts.maxBufferedBytes ?? 256 * 1024 });
  const app = Fastify();
  statusRoutes(app, { model, streams, auth: staticAuth(TOKEN, RO), public: opts.public ?? true });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const port = (app.server.address() as net.AddressInfo).port;
  return { bus, app, port, streams, probes, advance: (ms: number) => { now += ms; } };
}

/** Opens an SSE stream and collects raw text; resolves `until` when pred(text) holds. */
function openStream(port: number, urlPath: string, headers: Record<string, string> = {}) {
  let text = '';
  let status = 0;
  let res: http.IncomingMessage | undefined;
  const waiters: { pred: (s: string) => boolean; resolve: () => void }[] = [];
  const check = () => { for (const w of [...waiters]) if (w.pred(text)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); } };
  const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers }, (r) => {
    res = r;
    status = r.statusCode ?? 0;
    r.setEncoding('utf8');
    r.on('data', (c: string) => { text += c; check(); });
    check();
  });
  req.on('error', () => undefined);
  return {
    get text() { return text; },
    get status() { return status; },
    get headers() { return res?.headers; },
    until(pred: (s: string) => boolean, ms = 3000): Promise<void> {
      if (pred(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timeout; got ${JSON.stringify(text.slice(-300))}`)), ms);
        waiters.push({ pred, resolve: () => { clearTimeout(timer); resolve(); } });
      });
    },
    close() { req.destroy(); },
  };
}

const dataLines = (s: string) => s.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as { seq: number; type: string });

t.test('SSE: live events with ids, filters by MAC and type prefix, heartbeat', async (t) => {
  const { bus, port } = await setup(t, { heartbeatMs: 50 });
  const all = openStream(port, '/status/api/v1/events/stream');
  const onlyTftp = openStream(port, `/status/api/v1/events/stream?mac=${MAC}&type=tftp`);
  t.teardown(() => { all.close(); onlyTftp.close(); });
  await all.until((s) => s.includes(': metalboot events'));
  await onlyTftp.until((s) => s.includes(': metalboot events'));
  t.equal(all.status, 200);
  t.match(all.headers?.['content-type'], /^text\/event-stream/);
  bus.publish({ type: 'dhcp.ack', mac: MAC, ip: '10.0.0.100', hostname: HOSTILE });
  bus.publish({ type: 'tftp.start', client: '10.0.0.100', file: 'undionly.kpxe', size: 1, mac: MAC });
  bus.publish({ type: 'tftp.start', client: '10.0.0.101', file: 'undionly.kpxe', size: 1, mac: parseMac('52:54:00:00:00:02') });
  await all.until((s) => dataLines(s).length === 3);
  await onlyTftp.until((s) => dataLines(s).length === 1);
  t.same(dataLines(all.text).map((e) => e.seq), [1, 2, 3]);
  t.match(all.text, /id: 1\ndata: \{/);
  t.same(dataLines(onlyTftp.text).map((e) => [e.seq, e.type]), [[2, 'tftp.start']]);
  t.equal((dataLines(all.text)[0] as unknown as { hostname: string }).hostname, HOSTILE, 'event text travels as JSON data, one line');
  await all.until((s) => s.includes(': hb'), 2000);
  t.pass('heartbeat comment seen');
});

t.test('SSE: Last-Event-ID resumes from the ring; a gap is announced', async (t) => {
  const { bus, port } = await setup(t);
  for (let i = 0; i < 5; i++) bus.publish({ type: 'syslog', mac: MAC, ip: '10.0.0.1', severity: 6, text: `m${i}` });
  const s = openStream(port, '/status/api/v1/events/stream?type=syslog', { 'last-event-id': '3' });
  t.teardown(() => s.close());
  await s.until((x) => dataLines(x).length === 2);
  t.same(dataLines(s.text).map((e) => e.seq), [4, 5]);
  t.notMatch(s.text, /event: gap/);
  // A resume point older than the ring: syslog lines keep 500 of their own (2000 for the rest), so publish past it.
  for (let i = 0; i < 2100; i++) bus.publish({ type: 'syslog', mac: MAC, ip: '10.0.0.1', severity: 6, text: 'x' });
  const g = openStream(port, '/status/api/v1/events/stream?type=nothing', { 'last-event-id': '10' });
  t.teardown(() => g.close());
  await g.until((x) => x.includes('event: gap'));
  t.match(g.text, /event: gap\ndata: \{"after":10,"oldest":1606\}/);
});

t.test('SSE: a client that does not read is dropped and counted; others keep getting events', async (t) => {
  const { bus, port, streams } = await setup(t, { maxBufferedBytes: 64 * 1024 });
  const good = openStream(port, '/status/api/v1/events/stream?type=syslog');
  t.teardown(() => good.close());
  // A raw socket that sends the request and then never reads.
  const sock = net.connect(port, '127.0.0.1');
  t.teardown(() => sock.destroy());
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.write('GET /status/api/v1/events/stream HTTP/1.1\r\nHost: x\r\n\r\n');
  sock.pause();
  await good.until((s) => s.includes(': metalboot events'));
  while (streams.stats.clients < 2) await new Promise((r) => setTimeout(r, 10));
  const text = 'y'.repeat(1000);
  for (let i = 0; i < 40_000 && streams.stats.dropped === 0; i++) {
    bus.publish({ type: 'syslog', mac: MAC, ip: '10.0.0.1', severity: 6, text });
    // A reader keeps up between bursts: yield to the event loop every few events.
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  t.equal(streams.stats.dropped, 1, `the stalled client was dropped: ${JSON.stringify(streams.stats)}`);
  t.equal(streams.stats.clients, 1);
  const last = bus.publish({ type: 'syslog', mac: MAC, ip: '10.0.0.1', severity: 6, text: 'after' });
  await good.until((s) => s.includes(`id: ${last.seq}\n`), 10_000);
  t.pass('the reading client got everything up to the last event');
});

t.test('status JSON: public prefix only when public; /api needs a token; no secrets; access reported', async (t) => {
  const { bus, app } = await setup(t);
  bus.publish({ type: 'dhcp.offer', mac: MAC, ip: '10.0.0.100', hostname: HOSTILE, vendorClass: 'PXEClient:Arch:00000', ipxe: false });
  bus.publish({ type: 'dhcp.ack', mac: MAC, ip: '10.0.0.100', hostname: HOSTILE, vendorClass: 'PXEClient:Arch:00000', ipxe: false });
  let res = await app.inject({ url: '/status/api/v1/status' });
  t.equal(res.statusCode, 200);
  const s = res.json();
  t.equal(s.public, true);
  t.equal(s.access, null);
  t.same(s.machines, [{
    mac: MAC, name: HOSTILE, ip: '10.0.0.100', state: 'booting', power: null, image: 'debian', lastStep: 'dhcp', lastStepAt: 1_000_000,
    lastStepState: 'done', health: 'busy', source: 'events',
  }]);
  t.same(s.leases, [{ mac: MAC, ip: '10.0.0.100', state: 'bound', expiresAt: 1_060_000, hostname: HOSTILE }]);
  t.same(s.sessions, [{ target: 'iqn.2026-11.org.metalboot:m1', initiator: 'iqn.x:i', addresses: ['10.0.0.100'], mac: MAC }]);
  t.same(s.pool, { backend: 'file', dataPercent: 12.5, metadataPercent: null, thresholdPercent: 90, totalBytes: 1000, health: null });
  t.same(s.transfers, []);
  t.equal(s.lastSeq, 2);
  t.ok(s.counters.events.published >= 2);
  t.notMatch(res.body, /SECRET-CHAP|chap/i, 'disk records are not spread into the output');

  res = await app.inject({ url: '/api/v1/status' });
  t.equal(res.statusCode, 401, '/api needs a token');
  res = await app.inject({ url: '/api/v1/status', headers: { authorization: `Bearer ${RO}` } });
  t.equal(res.json().access, 'ro');
  res = await app.inject({ url: '/api/v1/status', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(res.json().access, 'rw');
  t.notMatch(res.body, new RegExp(TOKEN), 'the token is not echoed');
  t.equal((await app.inject({ url: '/api/v1/events', headers: { authorization: 'Bearer wrong-token-000000000' } })).statusCode, 401);
  t.equal((await app.inject({ url: '/api/v1/events/stream' })).statusCode, 401);

  res = await app.inject({ url: `/status/api/v1/status/machines/${MAC.replace(/:/g, '-')}` });
  t.equal(res.statusCode, 200);
  const m = res.json();
  t.equal(m.machine.name, HOSTILE);
  t.same(m.timeline.map((a: { steps: { name: string }[] }) => a.steps.map((x) => x.name)), [['dhcp']]);
  t.same(m.events.map((e: { type: string }) => e.type), ['dhcp.offer', 'dhcp.ack']);
  res = await app.inject({ url: '/status/api/v1/status/machines/52:54:00:00:00:99' });
  t.same(res.json(), { machine: null, timeline: [], events: [] });
  t.equal((await app.inject({ url: '/status/api/v1/status/machines/nope' })).statusCode, 400);
});

t.test('events JSON: filters, limit, strict query', async (t) => {
  const { bus, app } = await setup(t);
  for (let i = 0; i < 5; i++) bus.publish({ type: 'syslog', mac: MAC, ip: '10.0.0.1', severity: 6, text: `m${i}` });
  bus.publish({ type: 'tftp.start', client: 'c', file: 'f', size: 1 });
  let res = await app.inject({ url: '/status/api/v1/events?type=syslog&limit=2' });
  t.same(res.json().events.map((e: { seq: number }) => e.seq), [4, 5]);
  t.equal(res.json().lastSeq, 6);
  res = await app.inject({ url: `/status/api/v1/events?mac=${MAC}` });
  t.equal(res.json().events.length, 5, 'full MAC: from the per-MAC history');
  for (const q of ['limit=0', 'limit=x', 'mac=zz', 'type=A']) t.equal((await app.inject({ url: `/status/api/v1/events?${q}` })).statusCode, 400, q);
});

t.test('not public: no token-less prefix; the page is still served, with a strict CSP', async (t) => {
  const { app } = await setup(t, { public: false });
  t.equal((await app.inject({ url: '/status/api/v1/status' })).statusCode, 404);
  t.equal((await app.inject({ url: '/status/api/v1/events/stream' })).statusCode, 404);
  for (const url of ['/', '/machines/52:54:00:00:00:01', '/status/app.js', '/status/lib.js', '/status/style.css']) {
    const res = await app.inject({ url });
    t.equal(res.statusCode, 200, url);
    t.match(res.headers['content-security-policy'], /script-src 'self'/);
    t.equal(res.headers['x-content-type-options'], 'nosniff');
  }
  const page = await app.inject({ url: '/' });
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.body, /<script type="module" src="\/status\/app.js">/);
  t.notMatch(page.body, /<script>|style="/, 'no inline script or style (the CSP forbids them)');
  t.equal((await app.inject({ url: '/status/../package.json' })).statusCode, 404);
});

t.test('page helpers: html`` escapes every interpolation; SSE parser; formatting', async (t) => {
  const lib = await import(pathToFileURL(path.join(STATUS_DIR, 'lib.js')).href) as {
    html: (s: TemplateStringsArray, ...v: unknown[]) => { toString(): string };
    esc: (s: unknown) => string;
    raw: (s: string) => unknown;
    describeEvent: (e: unknown) => string;
    fmtDuration: (ms: number) => string;
    normMac: (s: string) => string | null;
    SseParser: new (cb: (m: { event: string; data: string; id: string | null }) => void) => { push(s: string): void };
  };
  const { html } = lib;
  t.equal(lib.esc(HOSTILE), '&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;');
  t.equal(String(html`<td title="${HOSTILE}">${HOSTILE}</td>`), `<td title="${lib.esc(HOSTILE)}">${lib.esc(HOSTILE)}</td>`);
  t.equal(String(html`<ul>${['<a>', html`<li>${'<b>'}</li>`]}</ul>`), '<ul>&lt;a&gt;<li>&lt;b&gt;</li></ul>', 'arrays; nested html`` is not escaped twice');
  t.equal(String(html`${null}${undefined}${false}${0}`), '0');
  const line = lib.describeEvent({ type: 'syslog', ip: '10.0.0.1', text: '<script>alert(1)</script>' });
  t.equal(String(html`<td>${line}</td>`), '<td>10.0.0.1: &lt;script&gt;alert(1)&lt;/script&gt;</td>', 'syslog text is escaped');
  t.equal(lib.fmtDuration(1500), '1.5 s');
  t.equal(lib.fmtDuration(125_000), '2 min 5 s');
  t.equal(lib.normMac('52-54-00-AA-bb-01'), '52:54:00:aa:bb:01');
  t.equal(lib.normMac('x'), null);
  const got: { event: string; data: string; id: string | null }[] = [];
  const p = new lib.SseParser((m) => got.push(m));
  p.push('retry: 2000\n: comment\n\nid: 7\nda');
  p.push('ta: {"a":1}\r\n\r');
  p.push('\nevent: gap\ndata: x\ndata: y\n\n');
  t.same(got, [{ event: 'message', data: '{"a":1}', id: '7' }, { event: 'gap', data: 'x\ny', id: '7' }]);
});

t.test('storageSources: targets as tgtd has them, disk owners without secrets, the pool read at most every 5 s', async (t) => {
  let now = 0, reads = 0;
  const disk = { mac: parseMac('52:54:00:00:00:05'), targetIqn: 'iqn.x:m5', imageId: 'golden', chap: { user: 'mb-u', secret: 'chap-secret-never-shown' } };
  const target = { iqn: 'iqn.x:m5', sessions: [{ initiator: 'iqn.i', connections: [{ address: '10.0.0.5' }] }] };
  const src = storageSources({
    reconciler: { lastShow: () => [target] },
    disks: { list: () => [disk], usage: async () => { reads++; if (reads === 2) throw new Error('lvs failed'); return { backend: 'file', dataPercent: 10, thresholdPercent: 90, totalBytes: 1 << 30 }; } },
  }, () => now);
  t.same(src.targets!(), [target]);
  t.same(src.disks!(), [{ mac: disk.mac, targetIqn: 'iqn.x:m5', imageId: 'golden' }], 'no CHAP secret leaves');
  t.match(await src.poolUsage!(), { dataPercent: 10 });
  now = 4000;
  await src.poolUsage!();
  t.equal(reads, 1, 'one reading serves for 5 s');
  now = 5001;
  t.equal(await src.poolUsage!(), undefined, 'an unreadable pool is unknown, not an error');
  t.equal(reads, 2);
});
