/**
 * src/cli/api-client.ts and src/cli/tables.ts on their own: settings resolution, bounded
 * timeouts (a request, an upload that stalls), answers that are not the API's, and the table
 * helpers. The servers here are bare node:http stand-ins, not the daemon.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApiClient, ApiError, ApiTimeoutError, DEFAULT_API, DEFAULT_TOKEN_FILE, resolveApiSettings, UsageError } from '../../src/cli/api-client.js';
import { formatBytes, formatFields, formatTable, formatTime, printable } from '../../src/cli/tables.js';

const TOKEN = 'unit-token-0123456789abcdef';

/** The rejection of `p` (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

async function server(t: { teardown(fn: () => unknown): void }, handler: http.RequestListener): Promise<string> {
  const srv = http.createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => { srv.closeAllConnections(); return new Promise((r) => srv.close(r)); });
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

t.test('settings: defaults, env, flags; trailing slashes; the token source', async (t) => {
  t.same(await resolveApiSettings({}, { env: {}, configFiles: [] }), { api: DEFAULT_API, apiFrom: 'default', token: { kind: 'file', file: DEFAULT_TOKEN_FILE, from: 'default' } });
  t.same(await resolveApiSettings({}, { env: { METALBOOT_API: 'https://mb.example:8443/', METALBOOT_TOKEN: TOKEN }, configFiles: [] }),
    { api: 'https://mb.example:8443', apiFrom: 'env', token: { kind: 'env', name: 'METALBOOT_TOKEN' } }, 'the env token is a source, not a value');
  const s = await resolveApiSettings({ api: 'http://10.0.0.1:8080/prefix/', tokenFile: 'rel/token' }, { env: { METALBOOT_TOKEN: TOKEN }, configFiles: [] });
  t.equal(s.api, 'http://10.0.0.1:8080/prefix');
  t.same(s.token, { kind: 'file', file: path.resolve('rel/token'), from: 'flag' });
  t.type(await rejection(resolveApiSettings({ api: 'http://h:1/?x=1' }, { env: {}, configFiles: [] })), UsageError);
  await t.rejects(resolveApiSettings({}, { env: { METALBOOT_API: 'nope' }, configFiles: [] }), /\$METALBOOT_API: "nope" is not a URL/);
});

t.test('a request that gets no answer ends at its timeout; a non-API answer is named', async (t) => {
  const api = await server(t, (req, res) => {
    if (req.url === '/api/v1/html') { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>'); return; }
    if (req.url === '/api/v1/teapot') { res.writeHead(418); res.end('short and stout'); return; }
    // /api/v1/slow: never answers
  });
  const c = new ApiClient({ api, apiFrom: 'flag', token: { kind: 'env', name: 'METALBOOT_TOKEN' } }, TOKEN, 300);
  const t0 = Date.now();
  let e = await rejection(c.get('/api/v1/slow'));
  t.type(e, ApiTimeoutError);
  t.match(e.message, /\/api\/v1\/slow: no answer within 0 s/);
  t.ok(Date.now() - t0 < 3000, 'bounded');
  e = await rejection(c.get('/api/v1/html'));
  t.type(e, ApiError);
  t.match(e.message, /the answer is not JSON \(HTTP 200\); is http:\/\/127\.0\.0\.1:\d+ metalbootd's API\?/);
  await t.rejects(c.get('/api/v1/teapot'), /HTTP 418 I'm a Teapot \(HTTP 418 from GET/);
});

t.test('an upload that stalls is aborted after the idle time; Content-Length is the file size', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mb-cli-up-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'img');
  await writeFile(file, Buffer.alloc(32 << 20, 1));
  let seenLength: string | undefined;
  const api = await server(t, (req) => {
    seenLength = req.headers['content-length'];
    req.pause(); // reads nothing: the client's writes stall once the socket buffers fill
  });
  const c = new ApiClient({ api, apiFrom: 'flag', token: { kind: 'env', name: 'METALBOOT_TOKEN' } }, TOKEN);
  const t0 = Date.now();
  const e = await rejection(c.upload('/api/v1/images/x', file, { idleMs: 300 }));
  t.type(e, ApiTimeoutError);
  t.match(e.message, /no progress for 0 s/);
  t.ok(Date.now() - t0 < 5000, 'bounded');
  t.equal(seenLength, String(32 << 20));

  const quiet = await server(t, (req) => { req.resume(); }); // takes every byte, never answers
  await t.rejects(new ApiClient({ api: quiet, apiFrom: 'flag', token: { kind: 'env', name: 'METALBOOT_TOKEN' } }, TOKEN).upload('/api/v1/images/x', file, { idleMs: 5000, finishMs: 300 }),
    /did not finish the import within 0 s of the last byte/);
});

t.test('tables: printable cells, alignment, sizes, times', async (t) => {
  t.equal(printable('a\u001b[2Jb\r\n\u009bc'), 'a?[2Jb???c');
  t.equal(formatTable(['A', 'LONGER'], [['x', null], ['yyyy', 'z\u0007']]), 'A     LONGER\nx     -\nyyyy  z?\n');
  t.equal(formatFields([['Name', 'n'], ['Skipped', undefined], ['Empty', '']]), 'Name:   n\nEmpty:  -\n');
  t.equal(formatBytes(512), '512 B');
  t.equal(formatBytes(8 * (1 << 20)), '8.0 MiB');
  t.equal(formatBytes(300 * (1 << 30)), '300 GiB');
  t.equal(formatTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '2026-01-02T03:04:05Z');
  t.equal(formatTime(undefined), undefined);
});
