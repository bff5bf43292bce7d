/**
 * Every machine and operation route through fastify's inject: status codes, the token rules,
 * validation errors naming the field, and no BMC password in any response. The service runs
 * on a real store; no disks are configured (those routes answer 409), and a BMC address with
 * nothing listening exercises the IPMI error mapping.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildHttpApp } from '../../src/http/server.js';
import { staticAuth } from '../../src/http/auth.js';
import { createLogger } from '../../src/log.js';
import { openStore } from '../../src/store/db.js';
import { EventBus } from '../../src/events/bus.js';
import { MachineService } from '../../src/machines/service.js';
import { Operations } from '../../src/machines/operations.js';
import { PowerPool } from '../../src/power/pool.js';
import { createPowerDriver } from '../../src/power/drivers.js';
import { DEFAULT_IPMI, DEFAULT_REDFISH } from '../../src/config/defaults.js';

const RW = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';
const MAC = '52:54:00:00:aa:01';
const PW = 'bmc-secret-pw';

t.test('machine routes: auth, validation, status codes, no secrets', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-hm-'));
  const store = await openStore(dir);
  const bus = new EventBus();
  const log = createLogger({ level: 'fatal' });
  const operations = new Operations(store, bus, Date.now);
  const pool = new PowerPool((s, keep) => createPowerDriver(s, { defaults: { ipmi: { ...DEFAULT_IPMI, timeoutMs: 100, retries: 0 }, redfish: { ...DEFAULT_REDFISH, timeoutMs: 500, retries: 0 } }, log: { debug() {}, warn() {} }, keep }), bus);
  const service = new MachineService({ store, bus, power: pool, operations, clock: Date.now, log, discover: false });
  await service.load();
  const app = buildHttpApp({ log, clock: Date.now, auth: staticAuth(RW, RO), bootAssetsDir: dir, bus, machines: { service, operations } });
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.1', r));
  const closedPort = closed.address().port;
  closed.close(); // nothing listens there now: ICMP port unreachable
  t.teardown(async () => { await app.close(); await pool.closeAll(); await store.close(); await rm(dir, { recursive: true, force: true }); });
  const bodies: string[] = [];
  const call = async (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: object, token: string | null = RW) => {
    const r = await app.inject({ method, url, ...(payload !== undefined ? { payload } : {}), headers: token ? { authorization: `Bearer ${token}` } : {} });
    bodies.push(r.body);
    return r;
  };

  const routes: [('GET' | 'PUT' | 'POST' | 'DELETE'), string, object?][] = [
    ['GET', '/api/v1/machines'], ['GET', `/api/v1/machines/${MAC}`], ['PUT', `/api/v1/machines/${MAC}`, { name: 'x' }], ['DELETE', `/api/v1/machines/${MAC}`],
    ['GET', `/api/v1/machines/${MAC}/power`], ['POST', `/api/v1/machines/${MAC}/power`, { action: 'on' }], ['POST', `/api/v1/machines/${MAC}/bootdev`, { device: 'pxe' }],
    ['POST', `/api/v1/machines/${MAC}/provision`, { image: 'img' }], ['POST', `/api/v1/machines/${MAC}/reset`], ['POST', `/api/v1/machines/${MAC}/deprovision`],
    ['POST', `/api/v1/machines/${MAC}/checkpoint`, { name: 'c' }], ['POST', `/api/v1/machines/${MAC}/restore`, { checkpoint: 'c' }],
    ['POST', `/api/v1/machines/${MAC}/maintenance`, { on: true }], ['GET', `/api/v1/machines/${MAC}/events`], ['GET', '/api/v1/operations'], ['GET', '/api/v1/operations/x'],
  ];
  for (const [m, u, p] of routes) {
    t.equal((await call(m, u, p, null)).statusCode, 401, `${m} ${u}: 401 without a token`);
    t.equal((await call(m, u, p, 'wrong-token-0123456789')).statusCode, 401, `${m} ${u}: 401 with a wrong token`);
    if (m !== 'GET') t.equal((await call(m, u, p, RO)).statusCode, 403, `${m} ${u}: 403 for a read-only token`);
  }

  t.equal((await call('GET', `/api/v1/machines/${MAC}`, undefined, RO)).statusCode, 404, 'unknown machine: 404');
  const bad = await call('PUT', '/api/v1/machines/not-a-mac', { name: 'x' });
  t.equal(bad.statusCode, 400);
  t.match(bad.json().error, /mac: "not-a-mac" is not a MAC address/);
  // Issue 13: broadcast, multicast and all-zero MACs are no one machine's; refused at enrolment.
  for (const [m, what] of [['ff:ff:ff:ff:ff:ff', 'broadcast'], ['01:00:5e:00:00:fb', 'multicast'], ['33-33-00-00-00-01', 'multicast'], ['000000000000', 'all-zero']] as const) {
    const r = await call('PUT', `/api/v1/machines/${m}`, { name: 'x' });
    t.equal(r.statusCode, 400, `${m}: 400`);
    t.match(r.json().error, new RegExp(`^params\\.mac: .* is the ${what} address|^params\\.mac: .* is a ${what} address`), `${m}: the error names the field and why`);
  }
  for (const [body, field] of [[{ name: 'x', nope: 1 }, 'nope'], [{ bootMode: 'floppy' }, 'bootMode'], [{ name: 'bad name' }, 'name'], [{ ip: '300.1.1.1' }, 'ip'], [{ bmc: { host: 'h', user: 'u' } }, 'password']] as const) {
    const r = await call('PUT', `/api/v1/machines/${MAC}`, body);
    t.equal(r.statusCode, 400, `invalid ${field}: 400`);
    t.match(r.json().error, new RegExp(field), `the error names ${field}`);
  }
  const created = await call('PUT', `/api/v1/machines/${MAC}`, { name: 'node1', firmware: 'uefi', bmc: { host: '127.0.0.1', port: closedPort, user: 'admin', password: PW } });
  t.equal(created.statusCode, 201, created.body);
  t.match(created.json(), { mac: MAC, name: 'node1', state: 'enrolled', firmware: 'uefi', bmc: { passwordSet: true } });
  // Enrolled through the deprecated `bmc` alias: stored and shown as `power`, and under `bmc` too while the alias lasts.
  t.match(created.json(), { power: { driver: 'ipmi', host: '127.0.0.1', port: closedPort, user: 'admin', passwordSet: true } });
  t.same(created.json().bmc, { host: '127.0.0.1', port: closedPort, user: 'admin', passwordSet: true }, 'the alias view: no driver, no password');
  t.same(service.get(MAC as never)?.power, { driver: 'ipmi', host: '127.0.0.1', port: closedPort, user: 'admin', password: PW }, 'stored as power');
  const updated = await call('PUT', `/api/v1/machines/${MAC}`, { name: 'node1b' });
  t.equal(updated.statusCode, 200);
  t.equal(updated.json().name, 'node1b');
  t.equal((await call('GET', `/api/v1/machines/${MAC}`, undefined, RO)).json().name, 'node1b', 'read-only token reads');
  t.same((await call('GET', '/api/v1/machines?state=enrolled')).json().machines.map((m: { mac: string }) => m.mac), [MAC]);
  t.same((await call('GET', '/api/v1/machines?state=ready')).json().machines, []);
  t.equal((await call('GET', '/api/v1/machines?state=bogus')).statusCode, 400, 'bad state filter');

  const power = await call('POST', `/api/v1/machines/${MAC}/power`, { action: 'on' });
  t.equal(power.statusCode, 504, 'BMC port closed: 504');
  t.match(power.json().error, /connection refused/);
  t.equal((await call('POST', `/api/v1/machines/${MAC}/power`, { action: 'explode' })).statusCode, 400, 'bad action');
  const http = await call('POST', `/api/v1/machines/${MAC}/bootdev`, { device: 'http', efi: true });
  t.equal(http.statusCode, 501, 'a boot target the driver cannot set: 501');
  t.match(http.json().error, /^ipmi BMC 127\.0\.0\.1:\d+: IPMI has no boot device for http boot$/);
  const viaPower = await call('PUT', `/api/v1/machines/${MAC}`, { power: { driver: 'ipmi', host: '127.0.0.1', port: closedPort, user: 'root', password: PW, cipherSuite: 3 } });
  t.equal(viaPower.statusCode, 200, viaPower.body);
  t.match(viaPower.json(), { power: { driver: 'ipmi', user: 'root', cipherSuite: 3, passwordSet: true }, bmc: { user: 'root', cipherSuite: 3 } });
  const unreachable = await call('GET', `/api/v1/machines/${MAC}/power`);
  t.equal(unreachable.statusCode, 504, 'the new settings are used: still nothing listens');
  t.equal((await call('POST', `/api/v1/machines/${MAC}/bootdev`, { device: 'floppy' })).statusCode, 400, 'bad device');
  const prov = await call('POST', `/api/v1/machines/${MAC}/provision`, { image: 'img' });
  t.equal(prov.statusCode, 409);
  t.match(prov.json().error, /disks are disabled/);
  t.equal((await call('POST', `/api/v1/machines/${MAC}/provision`, { image: { x: 1 } })).statusCode, 400, 'image must be a string');
  t.equal((await call('POST', `/api/v1/machines/${MAC}/deprovision`)).statusCode, 409, 'deprovision while enrolled: 409');
  t.match((await call('POST', `/api/v1/machines/${MAC}/deprovision`)).json().error, /cannot deprovision while enrolled/, 'names the current state');
  t.equal((await call('POST', `/api/v1/machines/${MAC}/maintenance`, { on: true })).json().state, 'maintenance');
  t.equal((await call('POST', `/api/v1/machines/${MAC}/maintenance`, { on: true })).statusCode, 409, 'maintenance twice: 409');
  t.equal((await call('POST', `/api/v1/machines/${MAC}/maintenance`, { on: false })).json().state, 'enrolled');
  const ev = (await call('GET', `/api/v1/machines/${MAC}/events`)).json().events;
  t.same(ev.map((e: { to: string }) => e.to), ['enrolled', 'maintenance', 'enrolled']);
  t.same((await call('GET', '/api/v1/operations')).json(), { operations: [] });
  t.equal((await call('GET', '/api/v1/operations/nope')).statusCode, 404);
  t.equal((await call('DELETE', `/api/v1/machines/${MAC}`)).statusCode, 204);
  t.equal((await call('DELETE', `/api/v1/machines/${MAC}`)).statusCode, 404);

  const docs = await call('GET', '/docs', undefined, null);
  t.equal(docs.statusCode, 200, '/docs needs no token');
  const spec = (await call('GET', '/docs/openapi.json', undefined, null)).json();
  t.ok(spec.paths['/api/v1/machines/{mac}'], 'OpenAPI lists the machine routes');
  t.ok(spec.paths['/api/v1/machines/{mac}/provision'].post);
  t.notMatch(bodies.join('\n'), PW, 'no response carries the BMC password');
});
