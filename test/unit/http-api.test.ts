import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { buildHttpApp } from '../../src/http/server.js';
import { staticAuth } from '../../src/http/auth.js';
import type { InjectOptions } from 'fastify';
import { LeaseTable } from '../../src/leases/table.js';
import { LeaseService } from '../../src/leases/service.js';
import { noConflictCheck } from '../../src/net/ping.js';
import { openStore } from '../../src/store/db.js';
import { parseCidr, parseIpv4 } from '../../src/net/ipv4.js';
import { parseMac } from '../../src/net/mac.js';
import { createLogger } from '../../src/log.js';
import type { SubnetConfig } from '../../src/config/types.js';

const subnet: SubnetConfig = {
  cidr: parseCidr('10.60.0.0/24'),
  pool: { first: parseIpv4('10.60.0.100'), last: parseIpv4('10.60.0.110') },
  dns: [],
  leaseTime: 600,
};

const TOKEN = 'test-token-0123456789abcdef';
const RO_TOKEN = 'read-only-token-0123456789';

async function setup(t: { teardown(fn: () => unknown): void }, token?: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-http-'));
  const store = await openStore(dir);
  let now = 1_000_000;
  const table = new LeaseTable({
    subnets: [subnet],
    reservations: [{ mac: parseMac('52:54:00:00:00:0c'), ip: parseIpv4('10.60.0.12') }],
    offerHoldMs: 30_000,
    quarantineMs: 600_000,
  });
  const leases = new LeaseService(table, store, noConflictCheck, () => now);
  let logged = '';
  const log = createLogger({ level: 'debug', destination: new Writable({ write(c, _e, cb) { logged += c.toString(); cb(); } }) });
  const app = buildHttpApp({ log, leases, clock: () => now, auth: staticAuth(token ?? TOKEN, RO_TOKEN), bootAssetsDir: dir });
  t.teardown(async () => { await app.close(); await store.close(); await rm(dir, { recursive: true, force: true }); });
  const inject = app.inject.bind(app) as (o: InjectOptions) => ReturnType<typeof app.inject>;
  // Every API call below carries the token unless a test sets its own headers.
  (app as { inject: unknown }).inject = (o: InjectOptions) =>
    inject({ ...o, headers: { authorization: `Bearer ${token ?? TOKEN}`, ...((o.headers as Record<string, string> | undefined) ?? {}) } });
  return { app, leases, store, dir, advance: (ms: number) => { now += ms; }, logs: () => logged };
}

t.test('leases are listed with state and expiry', async (t) => {
  const { app, leases, advance } = await setup(t);
  await leases.bind(parseMac('52:54:00:00:00:01'), parseIpv4('10.60.0.100'), subnet, { hostname: 'vm1', clientArch: 7, vendorClass: 'PXEClient:Arch:00007' });
  let res = await app.inject({ method: 'GET', url: '/api/v1/leases' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { leases: [{ mac: '52:54:00:00:00:01', ip: '10.60.0.100', state: 'bound', expiresAt: new Date(1_000_000 + 600_000).toISOString(), hostname: 'vm1', clientArch: 7, vendorClass: 'PXEClient:Arch:00007' }] });
  advance(600_001);
  res = await app.inject({ method: 'GET', url: '/api/v1/leases' });
  t.equal(res.json().leases[0].state, 'expired');
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
});

t.test('reservations through the API, persisted, with conflicts refused', async (t) => {
  const { app, leases, store } = await setup(t);
  let res = await app.inject({ method: 'PUT', url: '/api/v1/reservations/52-54-00-00-00-02', payload: { ip: '10.60.0.50', hostname: 'db1' } });
  t.equal(res.statusCode, 200, res.body);
  t.same(res.json(), { mac: '52:54:00:00:00:02', ip: '10.60.0.50', hostname: 'db1', source: 'api' });
  t.same((await store.loadReservations()).map((r) => r.mac), ['52:54:00:00:00:02'], 'stored');
  // The reserved MAC is offered its address, outside the pool.
  const offer = await leases.offer(parseMac('52:54:00:00:00:02'), subnet, undefined);
  t.same(offer, { ok: true, ip: parseIpv4('10.60.0.50'), needsProbe: false });
  // Another MAC can neither reserve nor be offered it.
  res = await app.inject({ method: 'PUT', url: '/api/v1/reservations/52:54:00:00:00:03', payload: { ip: '10.60.0.50' } });
  t.equal(res.statusCode, 409);
  t.match(res.json().error, /reserved for another MAC/);
  // An address bound to someone else cannot be reserved.
  await leases.bind(parseMac('52:54:00:00:00:04'), parseIpv4('10.60.0.101'), subnet, {});
  res = await app.inject({ method: 'PUT', url: '/api/v1/reservations/52:54:00:00:00:05', payload: { ip: '10.60.0.101' } });
  t.equal(res.statusCode, 409);
  t.match(res.json().error, /leased to another client/);
  res = await app.inject({ method: 'PUT', url: '/api/v1/reservations/52:54:00:00:00:05', payload: { ip: '10.61.0.1' } });
  t.equal(res.statusCode, 400);
  res = await app.inject({ method: 'PUT', url: '/api/v1/reservations/nonsense', payload: { ip: '10.60.0.60' } });
  t.equal(res.statusCode, 400);
  for (const m of ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '00:00:00:00:00:00']) {
    res = await app.inject({ method: 'PUT', url: `/api/v1/reservations/${m}`, payload: { ip: '10.60.0.61' } });
    t.equal(res.statusCode, 400, `${m}: no reservation for a non-unicast MAC`);
    t.match(res.json().error, /^params\.mac: .* is (the broadcast|a multicast|the all-zero) address/, 'the error names the field');
  }
  res = await app.inject({ method: 'PUT', url: '/api/v1/reservations/52:54:00:00:00:05', payload: { ip: '10.60.0.60', extra: 1 } });
  t.equal(res.statusCode, 400, 'unknown body keys refused');
  // Config reservations are listed but not changeable here.
  res = await app.inject({ method: 'GET', url: '/api/v1/reservations' });
  t.same(res.json().reservations.map((r: { mac: string; source: string }) => [r.mac, r.source]).sort(), [['52:54:00:00:00:02', 'api'], ['52:54:00:00:00:0c', 'config']]);
  t.equal((await app.inject({ method: 'DELETE', url: '/api/v1/reservations/52:54:00:00:00:0c' })).statusCode, 409);
  t.equal((await app.inject({ method: 'DELETE', url: '/api/v1/reservations/52:54:00:00:00:02' })).statusCode, 204);
  t.equal((await app.inject({ method: 'DELETE', url: '/api/v1/reservations/52:54:00:00:00:02' })).statusCode, 404);
  t.same(await store.loadReservations(), [], 'deleted from the store');
});

t.test('every /api route needs the token; a read-only token cannot change; the token never reaches the log', async (t) => {
  const { app, logs } = await setup(t);
  const put = (authorization: string, remoteAddress = '127.0.0.1') =>
    app.inject({ method: 'PUT', url: '/api/v1/reservations/52:54:00:00:00:07', payload: { ip: '10.60.0.70' }, headers: { authorization }, remoteAddress });
  t.equal((await put('')).statusCode, 401, 'loopback alone is not enough');
  t.equal((await put('Bearer wrong-token-0123456789')).statusCode, 401);
  t.equal((await put(`Bearer ${RO_TOKEN}`)).statusCode, 403, 'read-only token may not change');
  t.equal((await put(`Bearer ${TOKEN}`, '10.60.0.9')).statusCode, 200, 'the token works from anywhere');
  const get = (authorization: string) => app.inject({ method: 'GET', url: '/api/v1/leases', headers: { authorization } });
  t.equal((await get('')).statusCode, 401, 'reads need a token too');
  t.equal((await get(`Bearer ${RO_TOKEN}`)).statusCode, 200, 'a read-only token reads');
  t.equal((await app.inject({ method: 'GET', url: '/healthz', headers: { authorization: '' } })).statusCode, 200, 'healthz is open');
  t.notMatch(logs(), TOKEN);
  t.notMatch(logs(), RO_TOKEN);
});

t.test('boot script endpoint', async (t) => {
  const { app, logs } = await setup(t);
  const res = await app.inject({ method: 'GET', url: '/boot/52:54:00:AA:bb:01.ipxe' });
  t.equal(res.statusCode, 200);
  t.match(res.body, /^#!ipxe\n/);
  t.match(res.body, /52:54:00:aa:bb:01/);
  t.match(logs(), /"event":"http.boot-script","mac":"52:54:00:aa:bb:01"/);
  t.equal((await app.inject({ method: 'GET', url: '/boot/..%2f..%2fetc%2fpasswd' })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: '/boot/zz.ipxe' })).statusCode, 404);
});

t.test('boot assets over HTTP: plain names only', async (t) => {
  const { app, dir } = await setup(t);
  const { writeFile, mkdir } = await import('node:fs/promises');
  await writeFile(path.join(dir, 'ipxe.efi'), Buffer.alloc(5000, 7));
  await mkdir(path.join(dir, 'sub'));
  const res = await app.inject({ method: 'GET', url: '/boot-assets/ipxe.efi' });
  t.equal(res.statusCode, 200);
  t.equal(res.rawPayload.length, 5000);
  t.equal(res.headers['content-length'], '5000');
  for (const bad of ['..%2fpackage.json', '%2e%2e', '.hidden', 'sub', 'nope.efi', 'a%00b']) {
    t.equal((await app.inject({ method: 'GET', url: `/boot-assets/${bad}` })).statusCode, 404, bad);
  }
});
