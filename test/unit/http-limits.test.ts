/**
 * The pure parts of the HTTP connection limits (http/limits.ts): RLIMIT_NOFILE from
 * /proc/self/limits text, the cap derived from it, the per-source key and count; and the guard on
 * a real node http.Server over loopback (a second source address is 127.0.0.2); the timeouts on
 * the app buildHttpApp makes (headers timeout; the idle timeout closing a stalled download while
 * an event stream, a slow handler and a slowly reading client stay).
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { addressKey, checkingIntervalMs, deriveConnectionCap, guardConnections, MIN_CONNECTIONS, parseNofileLimit, PerAddressCounter, readNofileLimit, sseHeartbeatMs } from '../../src/http/limits.js';
import { EventBus } from '../../src/events/bus.js';
import { MacHistory } from '../../src/status/history.js';
import { StatusModel } from '../../src/status/snapshot.js';
import { EventStreams } from '../../src/http/routes/events.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { buildHttpApp } from '../../src/http/server.js';
import { staticAuth } from '../../src/http/auth.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max processes             63711                63711                processes 
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
`;

t.test('parseNofileLimit reads the Max open files row of proc(5) limits', async (t) => {
  t.same(parseNofileLimit(LIMITS), { soft: 1024, hard: 524288 });
  t.same(parseNofileLimit(LIMITS.replace('1024                 524288', 'unlimited            unlimited')), { soft: Infinity, hard: Infinity });
  t.equal(parseNofileLimit(LIMITS.replace(/^Max open files.*$/m, '')), undefined, 'row missing');
  t.equal(parseNofileLimit(LIMITS.replace('1024 ', 'x024 ')), undefined, 'not a number');
  t.equal(parseNofileLimit(LIMITS.replace('1024                 524288', '9999999999999 1')), undefined, 'too long a number');
  t.equal(parseNofileLimit(LIMITS.replace('1024                 524288', '600000 524288')), undefined, 'soft above hard is not a real limit');
  t.equal(parseNofileLimit(''), undefined);
  const own = await readNofileLimit();
  t.ok(own && own.soft >= 1 && own.soft <= own.hard, `this process: ${JSON.stringify(own)}`);
  t.equal(await readNofileLimit('/nonexistent/limits'), undefined, 'unreadable: undefined, no throw');
});

t.test('deriveConnectionCap: min(configured, (soft - reserve) / 2), never below the minimum', async (t) => {
  t.same(deriveConnectionCap(4096, { soft: 524288, hard: 524288 }, 768), { maxConnections: 4096, limitedBy: 'config', headroom: 524288 - 2 * 4096 });
  // A connection serving a file holds two fds: 1664 of them use 3328, the reserve stays free.
  t.same(deriveConnectionCap(4096, { soft: 4096, hard: 4096 }, 768), { maxConnections: 1664, limitedBy: 'nofile', headroom: 768 });
  t.same(deriveConnectionCap(4096, { soft: 4097, hard: 4097 }, 768), { maxConnections: 1664, limitedBy: 'nofile', headroom: 769 }, 'rounded down');
  t.same(deriveConnectionCap(4096, { soft: 8192, hard: 8192 }, 0), { maxConnections: 4096, limitedBy: 'config', headroom: 0 }, 'exactly room for the configured cap');
  t.same(deriveConnectionCap(4096, { soft: 1024, hard: 4096 }, 1000), { maxConnections: MIN_CONNECTIONS, limitedBy: 'minimum', headroom: 1024 - 2 * MIN_CONNECTIONS });
  t.same(deriveConnectionCap(4096, undefined, 768), { maxConnections: 4096, limitedBy: 'config' }, 'limit unknown: the configured cap');
  t.same(deriveConnectionCap(4096, { soft: Infinity, hard: Infinity }, 768), { maxConnections: 4096, limitedBy: 'config' });
});

t.test('addressKey: IPv4 as is, IPv4-mapped unwrapped, IPv6 by /64', async (t) => {
  t.equal(addressKey('10.0.0.7'), '10.0.0.7');
  t.equal(addressKey('::ffff:10.0.0.7'), '10.0.0.7');
  t.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64', 'same /64, same key');
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(addressKey('::1'), '0:0:0:0::/64');
  t.equal(addressKey(undefined), undefined);
  t.equal(addressKey('not-an-address'), undefined);
});

t.test('PerAddressCounter admits up to the limit per key and frees on release', async (t) => {
  const c = new PerAddressCounter(2);
  t.ok(c.admit('a'));
  t.ok(c.admit('a'));
  t.notOk(c.admit('a'), 'third from a refused');
  t.equal(c.count('a'), 2, 'a refused connection is not counted');
  t.ok(c.admit('b'), 'another source is not affected');
  c.release('a');
  t.ok(c.admit('a'), 'room again after a close');
  c.release('a'); c.release('a'); c.release('b');
  t.equal(c.sources, 0, 'no entry left for sources with nothing open');
  c.release('zzz');
  t.equal(c.count('zzz'), 0, 'a stray release does not go negative');
});

t.test('sseHeartbeatMs: a third of the idle timeout, at most 15 s', async (t) => {
  t.equal(sseHeartbeatMs(60_000), 15_000);
  t.equal(sseHeartbeatMs(30_000), 10_000);
  t.equal(sseHeartbeatMs(1000), 333);
  t.equal(sseHeartbeatMs(undefined), 15_000, 'no idle timeout: the default');
});

t.test('checkingIntervalMs: a quarter of the headers timeout, 100 ms..1 s', async (t) => {
  t.equal(checkingIntervalMs(10_000), 1000);
  t.equal(checkingIntervalMs(2000), 500);
  t.equal(checkingIntervalMs(200), 100);
});

/** Opens n connections from `from`; resolves with how many are still open after `holdMs`. */
async function openHeld(port: number, from: string, n: number, holdMs: number): Promise<{ open: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  await Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from }, () => resolve());
    s.on('error', () => resolve());
    s.on('close', () => { closed++; resolve(); });
    sockets.push(s);
  })));
  await new Promise((r) => setTimeout(r, holdMs));
  return { open: n - closed, sockets };
}

t.test('guardConnections on a real server: per-address limit, total cap, counts, one log line', async (t) => {
  const server = http.createServer((_q, r) => r.end('ok'));
  const { log, lines } = memoryLogger();
  const guard = guardConnections(server, { maxConnections: 6, perAddress: 4, log, clock: () => 0 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const port = (server.address() as net.AddressInfo).port;

  const a = await openHeld(port, '127.0.0.1', 10, 300);
  t.equal(a.open, 4, 'one source keeps 4 of 10');
  t.equal(guard.counters.refusedPerAddress, 6);
  t.equal(guard.open(), 4);
  const b = await openHeld(port, '127.0.0.2', 4, 300);
  t.equal(b.open, 2, 'a second source gets what is left of the total of 6');
  t.equal(guard.counters.refusedTotal, 2);
  const warns = lines().filter((l) => l['event'] === 'http.connections-refused');
  t.equal(warns.length, 1, 'refusals within 10 s make one log line');
  for (const s of [...a.sockets, ...b.sockets]) s.destroy();
  await new Promise((r) => setTimeout(r, 200));
  t.equal(guard.open(), 0, 'closing frees the counts');
  const again = await openHeld(port, '127.0.0.1', 1, 100);
  t.equal(again.open, 1, 'the source may connect again');
  for (const s of again.sockets) s.destroy();
  guard.detach();
});

t.test('buildHttpApp applies the timeouts: an idle connection gets 408 and is closed after headersTimeoutMs', async (t) => {
  const { log } = memoryLogger();
  const app = buildHttpApp({ log, clock: Date.now, auth: staticAuth('rw-token-0123456789abcdef'), bootAssetsDir: '/nonexistent', limits: { headersTimeoutMs: 1000, requestTimeoutMs: 0, keepAliveTimeoutMs: 700 } });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.equal(app.server.headersTimeout, 1000);
  t.equal(app.server.keepAliveTimeout, 700);
  t.equal(app.server.requestTimeout, 0);
  const port = (app.server.address() as net.AddressInfo).port;
  const started = Date.now();
  const got = await new Promise<{ data: string; ms: number }>((resolve) => {
    let data = '';
    const s = net.connect(port, '127.0.0.1');
    s.setEncoding('utf8');
    s.on('data', (d: string) => { data += d; });
    s.on('close', () => resolve({ data, ms: Date.now() - started }));
    s.on('error', () => undefined);
    setTimeout(() => s.destroy(), 5000).unref();
  });
  t.match(got.data, /^HTTP\/1\.1 408 /, 'node answers 408 Request Timeout');
  t.ok(got.ms >= 1000 && got.ms < 1000 + 2 * checkingIntervalMs(1000) + 500, `closed after ${got.ms} ms`);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('idleTimeoutMs on a real app: a client that stops reading a download is closed; an event stream, a slow handler and a slow reader are not', async (t) => {
  const IDLE = 1000;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mbt-idle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Far more than the loopback socket buffers hold (sparse: no disk used).
  await writeFile(path.join(dir, 'big.efi'), '');
  await truncate(path.join(dir, 'big.efi'), 256 << 20);
  const { log } = memoryLogger();
  const bus = new EventBus(Date.now);
  const history = new MacHistory();
  const app = buildHttpApp({
    log, clock: Date.now, auth: staticAuth('rw-token-0123456789abcdef'), bootAssetsDir: dir, bus,
    // The event stream's heartbeat within the idle timeout, as the daemon sets it.
    status: { public: true, model: new StatusModel({ bus, history, probes: {}, clock: Date.now }), streams: new EventStreams({ bus, history, heartbeatMs: sseHeartbeatMs(IDLE) }) },
    limits: { headersTimeoutMs: 1000, requestTimeoutMs: 0, keepAliveTimeoutMs: 5000, idleTimeoutMs: IDLE },
  });
  // A handler silent for longer than the idle timeout (a disk provision, a power action).
  app.get('/slow', { config: { access: 'public' } }, async () => { await sleep(2.5 * IDLE); return { done: true }; });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.equal(app.server.timeout, IDLE, 'fastify connectionTimeout is the socket inactivity timeout');
  const port = (app.server.address() as net.AddressInfo).port;
  /** When the server side of the connection from client port `p` closed. */
  const serverClosed = new Map<number, Promise<number>>();
  app.server.on('connection', (s: net.Socket) => serverClosed.set(s.remotePort!, new Promise((r) => s.once('close', () => r(Date.now())))));
  const get = (p: string) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`;

  // The stalled download: asks for the file and never reads.
  const started = Date.now();
  const stalled = net.connect(port, '127.0.0.1');
  stalled.on('error', () => undefined);
  stalled.pause();
  await new Promise<void>((r) => stalled.once('connect', () => r()));
  stalled.write(get('/boot-assets/big.efi'));
  t.teardown(() => stalled.destroy());

  // A reader with pauses shorter than the idle timeout: reads for 20 ms every 0.5 × IDLE. (Not a
  // trickle: the kernel only reopens a big receive window once a good part of it was read.)
  const slow = net.connect(port, '127.0.0.1');
  slow.on('error', () => undefined);
  let slowBytes = 0;
  slow.on('data', (d: Buffer) => { slowBytes += d.length; });
  slow.pause();
  const reading = setInterval(() => { slow.resume(); setTimeout(() => slow.pause(), 20); }, 0.5 * IDLE);
  t.teardown(() => clearInterval(reading));
  await new Promise<void>((r) => slow.once('connect', () => r()));
  slow.write(get('/boot-assets/big.efi'));
  t.teardown(() => slow.destroy());

  // The event stream, read as it comes.
  let sse = '';
  let sseClosed = false;
  const sseReq = http.get({ host: '127.0.0.1', port, path: '/status/api/v1/events/stream' }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (d: string) => { sse += d; });
    res.on('close', () => { sseClosed = true; });
  });
  sseReq.on('error', () => undefined);
  t.teardown(() => sseReq.destroy());

  // The slow handler, on a connection of its own.
  const agent = new http.Agent({ keepAlive: false });
  const slowAnswer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/slow', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });

  const closedAt = await Promise.race([serverClosed.get(stalled.localPort!)!, sleep(IDLE + 6000).then(() => undefined)]);
  t.ok(closedAt !== undefined, 'the server closed the stalled download');
  if (closedAt !== undefined) t.ok(closedAt - started >= IDLE && closedAt - started < IDLE + 5000, `closed ${closedAt - started} ms after the request`);

  const answer = await slowAnswer;
  t.same({ status: answer.status, body: JSON.parse(answer.body) as unknown }, { status: 200, body: { done: true } }, `the handler silent for ${2.5 * IDLE} ms answered`);
  await sleep(Math.max(0, started + 3.5 * IDLE - Date.now()));
  t.notOk(sseClosed, `the event stream is open after ${Date.now() - started} ms`);
  t.ok((sse.match(/^: hb$/gm) ?? []).length >= 3, `heartbeats came every ${sseHeartbeatMs(IDLE)} ms (${JSON.stringify(sse.slice(0, 120))}…)`);
  t.ok(slowBytes > 0 && !slow.destroyed && slow.readyState === 'open', `the slow reader is still served (${slowBytes} bytes so far)`);
  let slowServerClosed = false;
  void serverClosed.get(slow.localPort!)!.then(() => { slowServerClosed = true; });
  await sleep(0);
  t.notOk(slowServerClosed, 'its server side is open');
});
