import t from 'tap';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { EventBus } from '../../src/events/bus.js';
import { staticAuth } from '../../src/http/auth.js';
import { EventStreams } from '../../src/http/routes/events.js';
import { statusRoutes } from '../../src/http/routes/status.js';
import { MacHistory } from '../../src/status/history.js';
import { StatusModel } from '../../src/status/snapshot.js';
import { formatEvent, runEventsCommand } from '../../src/cli/events-command.js';
import { parseMac } from '../../src/net/mac.js';

const TOKEN = 'cli-token-0123456789abcdef';
const A = parseMac('52:54:00:00:00:0a');

async function setup(t: { teardown(fn: () => unknown): void }) {
  const bus = new EventBus(() => Date.UTC(2026, 10, 22, 8, 0, 0));
  const history = new MacHistory();
  history.attach(bus);
  const streams = new EventStreams({ bus, history });
  const app = Fastify();
  statusRoutes(app, { model: new StatusModel({ bus, history, probes: {}, clock: Date.now }), streams, auth: staticAuth(TOKEN), public: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const dir = await mkdtemp(join(tmpdir(), 'mb-cli-ev-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  const api = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;
  return { bus, api, tokenFile, streams };
}

function io(signal?: AbortSignal) {
  let out = '', err = '';
  return { io: { out: (s: string) => { out += s; }, err: (s: string) => { err += s; }, env: {}, ...(signal ? { signal } : {}) }, out: () => out, err: () => err };
}

t.test('recent events, filtered, as lines or JSON; token from a file', async (t) => {
  const { bus, api, tokenFile } = await setup(t);
  bus.publish({ type: 'dhcp.ack', mac: A, ip: '10.0.0.5', hostname: 'evil\u001b[2J host' });
  bus.publish({ type: 'tftp.start', client: '10.0.0.5', file: 'undionly.kpxe', size: 100, mac: A });
  let r = io();
  t.equal(await runEventsCommand(['--api', api, '--token-file', tokenFile, '--type', 'dhcp'], r.io), 0, r.err());
  t.equal(r.out(), '2026-11-22T08:00:00.000Z dhcp.ack 52:54:00:00:00:0a ip=10.0.0.5 hostname="evil\\u001b[2J host"\n', 'control characters quoted, not printed');
  r = io();
  t.equal(await runEventsCommand(['--api', api, '--token-file', tokenFile, '--json', '--mac', '52-54-00-00-00-0A'], r.io), 0);
  t.same(r.out().trim().split('\n').map((l) => JSON.parse(l).type), ['dhcp.ack', 'tftp.start']);
  r = io();
  t.equal(await runEventsCommand(['--api', api], r.io), 1, 'no token: refused');
  t.match(r.err(), /HTTP 401.*--token-file/);
  r = io();
  t.equal(await runEventsCommand(['--api', api, '--token-file', '/nonexistent/token'], r.io), 2);
  t.match(r.err(), /cannot read token file/);
  r = io();
  t.equal(await runEventsCommand(['--bogus'], r.io), 2);
  r = io();
  t.equal(await runEventsCommand(['--api', 'http://127.0.0.1:1', '--token-file', tokenFile], r.io), 1);
  t.match(r.err(), /cannot reach/);
});

t.test('--follow prints recent events, then live ones as they happen', async (t) => {
  const { bus, api, tokenFile, streams } = await setup(t);
  bus.publish({ type: 'syslog', mac: A, ip: '10.0.0.5', severity: 6, text: 'before' });
  const ac = new AbortController();
  const r = io(ac.signal);
  const done = runEventsCommand(['--api', api, '--token-file', tokenFile, '--follow', '--type', 'syslog'], r.io);
  while (streams.stats.clients === 0) await new Promise((res) => setTimeout(res, 10));
  bus.publish({ type: 'tftp.start', client: 'x', file: 'f', size: 1 });
  bus.publish({ type: 'syslog', mac: A, ip: '10.0.0.5', severity: 6, text: 'live one' });
  for (let i = 0; i < 300 && !r.out().includes('live one'); i++) await new Promise((res) => setTimeout(res, 10));
  ac.abort();
  t.equal(await done, 0);
  t.same(r.out().trim().split('\n').map((l) => l.split(' ').slice(1, 2)[0]), ['syslog', 'syslog']);
  t.match(r.out(), /text=before\n.*text="live one"\n$/s);
});

t.test('formatEvent', async (t) => {
  t.equal(formatEvent({ type: 'power.command', at: 0, seq: 1, mac: A, driver: 'ipmi', target: '10.0.1.5', ok: false, ms: 3 }), '1970-01-01T00:00:00.000Z power.command 52:54:00:00:00:0a driver=ipmi target=10.0.1.5 ok=false ms=3');
});
