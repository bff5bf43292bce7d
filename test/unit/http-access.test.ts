/**
 * access.ts: what a route may declare, what an undeclared route gets, and what an unmatched path
 * looks like; and the fail-closed rule on a real app (a route registered without a declaration
 * answers 500 and its handler never runs).
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { accessFor, looksLikeApi, RouteAccessError } from '../../src/http/access.js';
import { buildHttpApp, registeredRoutes } from '../../src/http/server.js';
import { staticAuth } from '../../src/http/auth.js';
import { createLogger } from '../../src/log.js';

const RW = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';

t.test('accessFor: /api routes default by method, declarations are checked, others have none unless declared', async (t) => {
  t.equal(accessFor('GET', '/api/v1/disks', undefined), 'api-read');
  t.equal(accessFor('HEAD', '/api/v1/disks', undefined), 'api-read');
  for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) t.equal(accessFor(m, '/api/v1/disks/:mac', undefined), 'api-write', `${m} under /api: api-write`);
  t.equal(accessFor('GET', '/api/v1/x', 'api-write'), 'api-write', 'a read may ask for the read-write token');
  t.equal(accessFor('GET', '/healthz', 'public'), 'public');
  t.equal(accessFor('GET', '/status/api/v1/status', 'status'), 'status');
  t.equal(accessFor('GET', '/new-route', undefined), undefined, 'outside /api, no declaration: no access (refused)');
  t.equal(accessFor('GET', '/apix', undefined), undefined, '/apix is not under /api');
  t.throws(() => accessFor('GET', '/api/v1/disks', 'public'), RouteAccessError, 'an /api route cannot be public');
  t.throws(() => accessFor('GET', '/api/v1/disks', 'status'), RouteAccessError);
  t.throws(() => accessFor('POST', '/api/v1/disks', 'api-read'), RouteAccessError, 'a write cannot be api-read');
  t.throws(() => accessFor('POST', '/hook', 'public'), RouteAccessError, 'a write cannot be public');
  t.throws(() => accessFor('DELETE', '/x', 'status'), RouteAccessError);
  t.throws(() => accessFor('GET', '/x', 'everyone'), /config\.access "everyone" is not one of public, status, api-read, api-write/);
  t.throws(() => accessFor('GET', '/x', 1), RouteAccessError);
});

t.test('looksLikeApi: decoded, dot segments, slashes and case as a router or proxy might', async (t) => {
  for (const u of ['/api/v1/nope', '/api', '/%61pi/v1/x', '/%2561pi/v1/x', '/%252561pi/x', '//api/v1', '/./api/v1', '/x/../api/v1', '/API/v1', '/Api;x=1/v1', '/%2e/api', '/api?x=1', '\\api\\v1']) {
    t.ok(looksLikeApi(u), `${u}: looks like /api`);
  }
  for (const u of ['/', '/apix', '/boot/x.ipxe', '/status/api/v1/status', '/%zz', '/api/../x', `/${'a/'.repeat(3000)}api`]) t.notOk(looksLikeApi(u), `${u.slice(0, 40)}: does not`);
});

t.test('fail closed: a route registered without an access declaration answers 500 and never runs; a bad declaration stops the app', async (t) => {
  let logged = '';
  const log = createLogger({ level: 'info', destination: new Writable({ write(c, _e, cb) { logged += c.toString(); cb(); } }) });
  const app = buildHttpApp({ log, clock: Date.now, auth: staticAuth(RW, RO), bootAssetsDir: '/nonexistent' });
  let ran = 0;
  app.get('/undeclared', async () => { ran++; return { data: 'secret-data' }; });
  app.get('/declared', { config: { access: 'public' } }, async () => ({ ok: true }));
  await app.ready();
  t.teardown(() => app.close());
  const r = registeredRoutes(app).find((x) => x.url === '/undeclared' && x.method === 'GET');
  t.same(r, { method: 'GET', url: '/undeclared', access: undefined }, 'recorded with no access');
  for (const token of [null, RO, RW]) {
    const res = await app.inject({ method: 'GET', url: '/undeclared', headers: token ? { authorization: `Bearer ${token}` } : {} });
    t.equal(res.statusCode, 500, `${token ?? 'no token'}: 500`);
    t.notMatch(res.body, /secret-data/);
  }
  t.equal((await app.inject({ method: 'HEAD', url: '/undeclared' })).statusCode, 500, 'its HEAD twin too');
  t.equal(ran, 0, 'the handler never ran');
  t.match(logged, /"event":"http\.route-undeclared".*"url":"\/undeclared"/, 'logged as an error naming the route');
  t.equal((await app.inject({ method: 'GET', url: '/declared' })).statusCode, 200, 'a declared public route answers');
  t.equal((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode, 404, 'an unmatched path that is not /api: plain 404');
  t.equal((await app.inject({ method: 'GET', url: '/%61pi/v1/nowhere' })).statusCode, 401, 'an unmatched /api-looking path without a token: 401');
  t.equal((await app.inject({ method: 'GET', url: '/%61pi/v1/nowhere', headers: { authorization: `Bearer ${RO}` } })).statusCode, 404, 'with a token: 404');

  const bad = buildHttpApp({ log, clock: Date.now, auth: staticAuth(RW), bootAssetsDir: '/nonexistent' });
  t.throws(() => bad.post('/open-write', { config: { access: 'public' } }, async () => ({})), RouteAccessError, 'a public write is refused at registration');
  await bad.close().catch(() => undefined);
});
