/**
 * The whole HTTP app as the daemon builds it (leases, machines, images and disks on the file
 * backend, status page, metrics, boot scripts and netboot files), driven through fastify's inject:
 *  - the auth rules for every route the app registers (walked from the app, so a route added
 *    later is covered without touching this file);
 *  - validation errors naming the field, for every route with a MAC and for bodies, enums, query
 *    strings and content types;
 *  - image names and existence on enrol and provision;
 *  - no deprovision or delete under a running provision, and 409s that name the machine's state;
 *  - reserved IPs through machines; Range on /boot/files.
 * Stand-in: tgtd cannot run in a unit test, so the iSCSI reconciler is a stand-in (`StandinTgtd`
 * below) that exports nothing, can hold a provision at its first reconcile, and reports the
 * sessions a test gives it. Everything else is the real code on a real store and a real directory.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { buildHttpApp, registeredRoutes } from '../../src/http/server.js';
import { staticAuth } from '../../src/http/auth.js';
import { createLogger } from '../../src/log.js';
import { openStore } from '../../src/store/db.js';
import { EventBus } from '../../src/events/bus.js';
import { AddressBook } from '../../src/events/addresses.js';
import { MachineService } from '../../src/machines/service.js';
import { Operations } from '../../src/machines/operations.js';
import { PowerPool } from '../../src/power/pool.js';
import { createPowerDriver } from '../../src/power/drivers.js';
import { DEFAULT_IPMI, DEFAULT_REDFISH } from '../../src/config/defaults.js';
import { LeaseTable } from '../../src/leases/table.js';
import { LeaseService } from '../../src/leases/service.js';
import { noConflictCheck } from '../../src/net/ping.js';
import { parseCidr, parseIpv4 } from '../../src/net/ipv4.js';
import { parseMac, type Mac } from '../../src/net/mac.js';
import { FileBackend } from '../../src/storage/files.js';
import { guarded } from '../../src/storage/guarded.js';
import { DiskService } from '../../src/disks/service.js';
import { ImageService } from '../../src/images/service.js';
import { runCommand } from '../../src/exec/run.js';
import { fileURLToPath } from 'node:url';
import { buildBootMedium } from '../../src/boot/media-build.js';
import { renderMediaScript } from '../../src/boot/media.js';
import type { IscsiReconciler, ReconcileResult } from '../../src/reconcile.js';
import { AgentSessions } from '../../src/agent/sessions.js';
import type { TgtSession, TgtTarget } from '../../src/iscsi/tgtadm.js';
import { MacHistory } from '../../src/status/history.js';
import { Metrics } from '../../src/metrics/registry.js';
import { StatusModel, storageSources } from '../../src/status/snapshot.js';
import { EventStreams } from '../../src/http/routes/events.js';
import type { SubnetConfig } from '../../src/config/types.js';

const RW = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';
const WRONG = 'wrong-token-0123456789ab';
const MAC = '52:54:00:00:bb:01';
const BMC_PW = 'bmc-pw-never-shown';
const subnet: SubnetConfig = { cidr: parseCidr('10.60.0.0/24'), pool: { first: parseIpv4('10.60.0.100'), last: parseIpv4('10.60.0.110') }, dns: [], leaseTime: 600 };

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

/** Stand-in for tgtd behind the reconciler: no targets unless a test opens a session on one. */
class StandinTgtd {
  readonly sessions = new Map<string, TgtSession[]>();
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  /** The next reconciles wait until release(): a provision stays at its `disk` step. */
  hold(): void { this.gate = new Promise((r) => { this.open = r; }); }
  release(): void { this.open?.(); this.gate = undefined; }
  async reconcile(): Promise<ReconcileResult> { await this.gate; return { ran: 0, blocked: [], started: false }; }
  lastShow(): readonly TgtTarget[] { return []; }
  async target(iqn: string): Promise<TgtTarget | undefined> {
    const s = this.sessions.get(iqn);
    return s ? { tid: 1, iqn, driver: 'iscsi', state: 'ready', sessions: s, luns: [], accounts: [], initiatorAddresses: [], initiatorNames: [] } : undefined;
  }
  async closeConnection(): Promise<void> {}
  rotateAccount(): void {}
}

async function setup(t: Test, statusPublic = true) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-hr-'));
  const store = await openStore(path.join(dir, 'data'));
  const bus = new EventBus();
  let logged = '';
  const log = createLogger({ level: 'debug', destination: new Writable({ write(c, _e, cb) { logged += c.toString(); cb(); } }) });
  const leases = new LeaseService(new LeaseTable({ subnets: [subnet], reservations: [{ mac: parseMac('52:54:00:00:00:0c'), ip: parseIpv4('10.60.0.12') }], offerHoldMs: 30_000, quarantineMs: 600_000 }), store, noConflictCheck, Date.now);
  const operations = new Operations(store, bus, Date.now);
  const pool = new PowerPool((s, keep) => createPowerDriver(s, { defaults: { ipmi: { ...DEFAULT_IPMI, timeoutMs: 100, retries: 0 }, redfish: { ...DEFAULT_REDFISH, timeoutMs: 500, retries: 0 } }, log: { debug() {}, warn() {} }, keep }), bus);
  const backend = guarded(new FileBackend({ root: path.join(dir, 'volumes'), runner: runCommand }));
  await backend.init();
  const tgtd = new StandinTgtd();
  const reconciler = tgtd as unknown as IscsiReconciler;
  const disks = new DiskService({ backend, store, reconciler, iqnPrefix: 'iqn.2026-11.org.metalboot', mutualChap: false, log, clock: Date.now });
  await disks.recover();
  const images = new ImageService({ backend, imageUsers: (id) => disks.imageUsers(id), runner: runCommand, tmpDir: path.join(dir, 'tmp'), importDir: dir, log });
  const machines = new MachineService({ store, bus, power: pool, operations, clock: Date.now, log, discover: false, disks, leases });
  await machines.load();
  const history = new MacHistory();
  const detach = history.attach(bus);
  const addresses = new AddressBook();
  const metrics = new Metrics({ bus });
  // As the daemon wires them: the status model and streams over the same services.
  const streams = new EventStreams({ bus, history });
  metrics.observeSse(() => streams.stats);
  const model = new StatusModel({ bus, history, probes: {}, clock: Date.now, addresses, leases: () => leases.list(), ...storageSources({ reconciler, disks }, Date.now) });
  const netbootDir = path.join(dir, 'netboot');
  await mkdir(netbootDir);
  const media = new Map<string, Promise<Buffer>>();
  const app = buildHttpApp({
    log, clock: Date.now, auth: staticAuth(RW, RO), bootAssetsDir: dir, bus, leases,
    status: { public: statusPublic, model, streams, metrics },
    boot: { publicUrl: 'http://127.0.0.1:8080', unknown: 'ignore', sanboot: { tries: 3, retryDelaySec: 5, fallback: 'exit' }, netbootDir, machine: (m) => machines.get(m), disk: (m) => disks.get(m) },
    machines: { service: machines, operations, timeline: () => [] },
    storage: { images, disks, portal: { host: '127.0.0.1', port: 3260 } },
    agent: {
      sessions: new AgentSessions(Date.now), inventory: () => undefined,
      inspect: () => { throw new Error('no agent here'); }, deploy: async () => { throw new Error('no agent here'); }, erase: () => { throw new Error('no agent here'); }, capture: async () => { throw new Error('no agent here'); },
    },
    // The real boot medium from the checkout's boot-assets/ (scripts/boot-assets.sh), as the daemon
    // builds it; built once per request kind, since the walk below asks for it hundreds of times.
    bootMedia: (r) => {
      const key = JSON.stringify(r);
      let img = media.get(key);
      if (!img) media.set(key, img = buildBootMedium({ run: runCommand, assetsDir: fileURLToPath(new URL('../../../boot-assets', import.meta.url)) }, renderMediaScript('http://127.0.0.1:8080', r.network)));
      return img;
    },
  });
  await app.ready();
  t.teardown(async () => { tgtd.release(); await app.close(); detach(); metrics.close(); await pool.closeAll(); await store.close(); await rm(dir, { recursive: true, force: true }); });
  const bodies: string[] = [];
  const call = async (method: Method, url: string, payload?: unknown, token: string | null = RW, headers: Record<string, string> = {}) => {
    const r = await app.inject({
      method, url, ...(payload !== undefined ? { payload: payload as object } : {}),
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    });
    bodies.push(r.body);
    return r;
  };
  return { app, dir, netbootDir, call, bodies, logs: () => logged, tgtd, disks, images, machines, leases, bus };
}

/** A concrete URL for a route pattern. */
function concrete(url: string, mac = MAC): string {
  return url.replace(':mac', mac).replace(':id', 'img1').replace(':file', `${mac}.ipxe`).replace(':name', 'vmlinuz');
}

/** Bodies that pass each write route's schema, so what answers is the rule under test. */
const BODIES: Record<string, unknown> = {
  'PUT /api/v1/machines/:mac': { name: 'x' },
  'POST /api/v1/machines/:mac/power': { action: 'on' },
  'POST /api/v1/machines/:mac/bootdev': { device: 'pxe' },
  'POST /api/v1/machines/:mac/power/certificate': { sha256: 'AB'.repeat(32) },
  'POST /api/v1/machines/:mac/provision': { image: 'img1' },
  'POST /api/v1/machines/:mac/checkpoint': { name: 'c1' },
  'POST /api/v1/machines/:mac/restore': { checkpoint: 'c1' },
  'POST /api/v1/machines/:mac/maintenance': { on: true },
  'PUT /api/v1/disks/:mac': { image: 'img1' },
  'POST /api/v1/disks/:mac/checkpoints': { name: 'c1' },
  'POST /api/v1/disks/:mac/restore': { checkpoint: 'c1' },
  'PUT /api/v1/reservations/:mac': { ip: '10.60.0.50' },
  'POST /api/v1/images/:id/import': { path: '/nonexistent/x.raw' },
  'POST /api/v1/machines/:mac/deploy': { image: 'img' },
  'POST /api/v1/machines/:mac/erase': { method: 'zero' },
  'POST /api/v1/machines/:mac/capture': { image: 'img' },
};

/** Outside /api, documented as needing no token (README "HTTP"): anything else outside /api fails here. */
const PUBLIC = [/^\/healthz$/, /^\/metrics$/, /^\/docs(\/openapi\.json)?$/, /^\/$/, /^\/machines\/:mac$/, /^\/status\/(app\.js|lib\.js|style\.css)$/,
  /^\/status\/api\/v1\//, /^\/boot\/:file$/, /^\/boot\/files\/:name$/, /^\/boot-assets\/:name$/, /^\/boot\/agent\/:arch\/:name$/];

t.test('every registered route: /api needs a token (401 without, 401 wrong), writes refuse a read-only token (403); only the documented routes are public', async (t) => {
  const { app, call } = await setup(t);
  const routes = registeredRoutes(app);
  const seen = new Set(routes.map((r) => `${r.method} ${r.url}`));
  // The app really has the routes the audit found untested (a harness missing a dep would skip them).
  for (const must of ['GET /api/v1/machines/:mac/timeline', 'GET /api/v1/images', 'GET /api/v1/images/:id', 'PUT /api/v1/images/:id', 'DELETE /api/v1/images/:id',
    'GET /api/v1/reservations', 'DELETE /api/v1/reservations/:mac', 'GET /api/v1/disks', 'DELETE /api/v1/disks/:mac', 'GET /api/v1/storage',
    'GET /api/v1/status/machines/:mac', 'POST /api/v1/machines/:mac/power/certificate', 'GET /healthz', 'GET /metrics', 'GET /boot/files/:name']) t.ok(seen.has(must), `registered: ${must}`);
  // Fail closed: every route declares its access (a route added without one answers 500).
  for (const r of routes) t.ok(r.access, `${r.method} ${r.url} declares its access (${r.access})`);
  let api = 0, writes = 0, agent = 0;
  for (const r of routes) {
    const method = r.method as Method;
    const url = concrete(r.url);
    const body = BODIES[`${r.method} ${r.url}`];
    const stream = r.url.endsWith('/events/stream'); // SSE: a granted request never ends under inject
    if (r.url.startsWith('/api/')) {
      api++;
      const none = await call(method, url, body, null);
      t.equal(none.statusCode, 401, `${r.method} ${r.url}: 401 without a token`);
      if (method !== 'HEAD') t.match(none.json().error, /API token/, `${r.method} ${r.url}: says why`);
      t.equal((await call(method, url, body, WRONG)).statusCode, 401, `${r.method} ${r.url}: 401 with a wrong token`);
      t.equal((await call(method, url, body, `${RW}x`)).statusCode, 401, `${r.method} ${r.url}: 401 for the token plus a character`);
      if (method === 'GET' || method === 'HEAD') {
        if (!stream) t.not((await call(method, url, body, RO)).statusCode, 403, `${r.method} ${r.url}: a read-only token reads`);
      } else {
        writes++;
        const ro = await call(method, url, body, RO);
        t.equal(ro.statusCode, 403, `${r.method} ${r.url}: 403 for a read-only token`);
        t.match(ro.json().error, /read-only/);
        // Even a body the schema would refuse: the token is judged first.
        t.equal((await call(method, url, { bogus: 1 }, RO)).statusCode, 403, `${r.method} ${r.url}: 403 before validation`);
      }
    } else if (r.access === 'agent') {
      // The agent's endpoints open only to a running agent operation's token: neither no token nor the API tokens.
      agent++;
      for (const tok of [null, RW, RO]) t.equal((await call(method, url, body, tok)).statusCode, 401, `${r.method} ${r.url}: 401 with ${tok === null ? 'no token' : tok === RW ? 'the read-write API token' : 'the read-only API token'}`);
    } else {
      t.ok(PUBLIC.some((re) => re.test(r.url)), `${r.method} ${r.url} is outside /api: it must be a documented public route`);
      if (!stream) t.not((await call(method, url, body, null)).statusCode, 401, `${r.method} ${r.url}: answers without a token`);
    }
  }
  t.ok(api >= 50 && writes >= 20, `${api} /api routes (with HEAD twins), ${writes} writes walked`);
  t.ok(agent >= 6, `${agent} agent routes walked`);
  t.equal((await call('GET', '/healthz', undefined, null)).statusCode, 200, 'GET /healthz: 200 without a token');
  t.equal((await call('GET', '/api/v1/nope', undefined, null)).statusCode, 401, 'an unknown /api path: 401 first, not a 404 that maps the API');
});

/** `c` as %XX, hex in upper or lower case. */
const pct = (c: string, upper: boolean) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')[upper ? 'toUpperCase' : 'toLowerCase']()}`;

/**
 * Spellings of a concrete path that a router, a proxy or a careless check might read differently:
 * `decodes` = fastify's router percent-decodes it to the same route (RFC 3986 §2.1), so it must be
 * authorised exactly as the plain path; the others match nothing here (or a route by a :param).
 */
function variants(pattern: string, url: string): { url: string; decodes: boolean }[] {
  const out: { url: string; decodes: boolean }[] = [];
  // Each letter of the pattern's fixed part, one at a time (alternating hex case), then all of them.
  const fixed = pattern.indexOf(':') < 0 ? url.length : pattern.indexOf(':');
  let all = '';
  for (let i = 0; i < url.length; i++) {
    const c = url[i]!;
    const letter = i < fixed && /[A-Za-z]/.test(c);
    if (letter) out.push({ url: url.slice(0, i) + pct(c, i % 2 === 0) + url.slice(i + 1), decodes: true });
    all += letter ? pct(c, true) : c;
  }
  out.push({ url: all, decodes: true });
  const first = url.slice(1, 2);
  out.push(
    { url: `/%25${first.charCodeAt(0).toString(16)}${url.slice(2)}`, decodes: false }, // double-encoded: /%2561pi
    { url: `/%25${first.charCodeAt(0).toString(16).toUpperCase()}${url.slice(2)}`, decodes: false },
    { url: `/${url}`, decodes: false }, // //api
    { url: `/.${url}`, decodes: false }, // /./api
    { url: `/%2e${url}`, decodes: false },
    { url: `${url.replace(/^\/([^/]+)/, '/$1/../$1')}`, decodes: false }, // /api/../api
    { url: `${url}/`, decodes: false },
    { url: `${url};x=1`, decodes: false },
    { url: `${url.replace(/^\/([^/]+)/, (_m, a: string) => `/${a.toUpperCase()}`)}`, decodes: false }, // /API/
    { url: url.replace(/\//g, '%2F').replace(/^%2F/, '/'), decodes: false },
  );
  return out;
}

t.test('every registered route under every encoded spelling of its path: no data without a token, 403 for a read-only write, the token reads as on the plain path (issue 13.2)', async (t) => {
  const { app, call, bodies } = await setup(t);
  // Data a leak would show: a machine's name, its reserved address.
  t.equal((await call('PUT', `/api/v1/machines/${MAC}`, { name: 'walknode7', ip: '10.60.0.57' })).statusCode, 201);
  const leaked = /walknode7|10\.60\.0\.57/;
  let walked = 0, decoded = 0;
  for (const r of registeredRoutes(app)) {
    if (r.access === 'public' || r.access === 'status') continue; // no token needed on the plain path either
    const method = r.method as Method;
    const write = r.access === 'api-write';
    const body = BODIES[`${r.method} ${r.url}`];
    const stream = r.url.endsWith('/events/stream'); // SSE: a granted request never ends under inject
    const plain = concrete(r.url);
    const plainRw = write || stream ? undefined : (await call(method, plain, body, RW)).statusCode;
    for (const v of variants(r.url, plain)) {
      walked++;
      const tag = `${r.method} ${v.url}`;
      bodies.length = 0;
      const none = await call(method, v.url, body, null);
      if (v.decodes) {
        decoded++;
        t.equal(none.statusCode, 401, `${tag}: 401 without a token`);
      } else {
        t.ok(none.statusCode === 401 || none.statusCode === 404, `${tag}: 401 or 404 without a token (${none.statusCode})`);
      }
      if (write) {
        const ro = await call(method, v.url, body, RO);
        if (v.decodes) t.equal(ro.statusCode, 403, `${tag}: 403 for a read-only token`);
        else t.ok(ro.statusCode === 403 || ro.statusCode === 404, `${tag}: 403 or 404 for a read-only token (${ro.statusCode})`);
      } else if (!stream) {
        const rw = await call(method, v.url, body, RW);
        if (v.decodes) t.equal(rw.statusCode, plainRw, `${tag}: with the token, as the plain path (${plainRw})`);
        // Not the same route: it matches nothing (404), or a :param route took the extra text
        // (`/machines/` or `<mac>;x=1` as the MAC: 400 naming the param).
        else t.ok(rw.statusCode === plainRw || rw.statusCode === 404 || rw.statusCode === 400, `${tag}: with the token, as the plain path, 404 or 400 (${rw.statusCode})`);
        const ro = await call(method, v.url, body, RO);
        t.equal(ro.statusCode, rw.statusCode, `${tag}: a read-only token reads as the read-write one`);
      }
      t.notMatch(none.body, leaked, `${tag}: no data without a token`);
    }
  }
  t.ok(walked >= 1000 && decoded >= 700, `${walked} spellings walked, ${decoded} that the router decodes to the route`);
  // The issue's own probes, named.
  for (const url of ['/%61pi/v1/disks', '/%61pi/v1/machines', `/%61pi/v1/machines/${MAC}/power`, '/%61pi/v1/leases', '/%61pi/v1/operations', '/%61pi/v1/storage', '/%61pi/v1/events', `/%61pi/v1/machines/${MAC}/timeline`, '/%61pi/v1/status']) {
    t.equal((await call('GET', url, undefined, null)).statusCode, 401, `GET ${url}: 401`);
  }
  t.equal((await call('DELETE', `/%61pi/v1/machines/${MAC}`, undefined, RO)).statusCode, 403, 'a read-only token cannot delete through an encoded path');
  t.equal((await call('GET', `/api/v1/machines/${MAC}`)).json().name, 'walknode7', 'the machine is still there');
});

t.test('status data with status.public off: not public under any spelling', async (t) => {
  const { app, call } = await setup(t, false);
  t.notOk(registeredRoutes(app).some((r) => r.url.startsWith('/status/api/')), 'no public status routes');
  for (const url of ['/status/api/v1/status', '/%73tatus/api/v1/status', '/status/%61pi/v1/events', '/%61pi/v1/status', '/api/v1/st%61tus']) {
    const r = await call('GET', url, undefined, null);
    t.ok(r.statusCode === 401 || r.statusCode === 404, `GET ${url}: ${r.statusCode}`);
    t.notMatch(r.body, /lastSeq|machines/, `GET ${url}: no status data`);
  }
  t.equal((await call('GET', '/api/v1/st%61tus', undefined, RO)).statusCode, 200, 'the token reads it');
});

t.test('validation: every route with a MAC, bodies, enums, query strings and content types give 400 (415) naming the field', async (t) => {
  const { app, call } = await setup(t);
  t.equal((await call('PUT', `/api/v1/machines/${MAC}`, { name: 'node1' })).statusCode, 201);
  // Every route with :mac, walked from the app: a bad MAC is 400 naming params.mac.
  let n = 0;
  for (const r of registeredRoutes(app)) {
    if (!r.url.startsWith('/api/') || !r.url.includes(':mac') || r.method === 'HEAD') continue;
    n++;
    const res = await call(r.method as Method, concrete(r.url, 'zz:not-a-mac'), BODIES[`${r.method} ${r.url}`]);
    t.equal(res.statusCode, 400, `${r.method} ${r.url}: bad MAC is 400`);
    t.match(res.json().error, /^params\.mac: "zz:not-a-mac" is not a MAC address$/, `${r.method} ${r.url}: names params.mac`);
  }
  t.ok(n >= 20, `${n} routes with a MAC`);
  const m = `/api/v1/machines/${MAC}`;
  const bmc = { host: '127.0.0.1', user: 'admin', password: BMC_PW };
  const cases: [Method, string, unknown, number, RegExp, Record<string, string>?][] = [
    ['GET', '/api/v1/operations?mac=nope', undefined, 400, /^querystring\.mac: "nope" is not a MAC address/],
    ['GET', '/api/v1/operations?status=done', undefined, 400, /^querystring\.status: must be equal to one of the allowed values \(running, succeeded, failed\)/],
    ['GET', '/api/v1/machines?state=bogus', undefined, 400, /^querystring\.state: must be equal to one of the allowed values/],
    ['PUT', m, { firmware: 'efi' }, 400, /^body\.firmware: must be equal to one of the allowed values \(bios, uefi, unknown\)/],
    ['PUT', m, { bootMode: 'floppy' }, 400, /^body\.bootMode: must be equal to one of the allowed values/],
    ['PUT', m, { name: {} }, 400, /^body\.name: must be string/],
    ['PUT', m, { name: 'bad name' }, 400, /name: must be a host name label/],
    ['PUT', m, { nope: 1 }, 400, /^body\.nope: unknown field/],
    ['PUT', m, { ip: '300.1.1.1' }, 400, /ip: "300\.1\.1\.1" is not an IPv4 address/],
    ['PUT', m, { image: '../x' }, 400, /^body\.image: "\.\.\/x": only letters, digits/],
    ['PUT', m, { image: 'a..b' }, 400, /^body\.image: "a\.\.b": contains "\.\."/],
    ['PUT', m, { image: {} }, 400, /^body\.image: must be string,null/],
    ['PUT', m, { bmc: { ...bmc, port: 70000 } }, 400, /^body\.bmc\.port: must be <= 65535/],
    ['PUT', m, { bmc: { ...bmc, port: 0 } }, 400, /^body\.bmc\.port: must be >= 1/],
    ['PUT', m, { bmc: { ...bmc, cipherSuite: 5 } }, 400, /^body\.bmc\.cipherSuite: must be equal to one of the allowed values \(auto, 17, 3, 1\.5\)/],
    ['PUT', m, { bmc: { ...bmc, privilege: 'user' } }, 400, /^body\.bmc\.privilege: must be equal to one of the allowed values \(administrator, operator\)/],
    ['PUT', m, { bmc: { ...bmc, password: 'x'.repeat(21) } }, 400, /^body\.bmc\.password: must NOT have more than 20 characters/],
    ['PUT', m, { bmc: { host: 'h', user: 'u' } }, 400, /^body\.bmc\.password: must have required property/],
    ['PUT', m, { netboot: { kernel: '../vmlinuz' } }, 400, /netboot\.kernel: a file name/],
    // power: one schema per driver, picked by `driver`; the record's own rules name the field the same way.
    ['PUT', m, { power: { driver: 'ipmi', ...bmc, port: 0 } }, 400, /^body\.power\.port: must be >= 1/],
    ['PUT', m, { power: { driver: 'ipmi', ...bmc, secret: 1 } }, 400, /^body\.power\.secret: unknown field/],
    ['PUT', m, { power: { driver: 'ipmi', host: 'h', user: 'u' } }, 400, /^body\.power\.password: must have required property/],
    ['PUT', m, { power: { driver: 'telnet', ...bmc } }, 400, /^body\.power\.driver: must be equal to one of the allowed values \(ipmi, redfish\)/],
    ['PUT', m, { power: { ...bmc } }, 400, /^body\.power\.driver: must have required property/],
    ['PUT', m, { power: { driver: 'ipmi', ...bmc, host: 'bmc one' } }, 400, /^body\.power\.host: not a host name or address/],
    ['PUT', m, { power: { driver: 'ipmi', ...bmc, password: 'ü'.repeat(11) } }, 400, /^body\.power\.password: at most 20 bytes/],
    ['PUT', m, { bmc: { ...bmc, host: 'bmc one' } }, 400, /^body\.bmc\.host: not a host name or address/],
    ['PUT', m, { bmc, power: { driver: 'ipmi', ...bmc } }, 400, /^body\.bmc: give power or its deprecated alias bmc, not both/],
    ['POST', `${m}/power`, { action: 'explode' }, 400, /^body\.action: must be equal to one of the allowed values/],
    ['POST', `${m}/power`, {}, 400, /^body\.action: must have required property/],
    ['POST', `${m}/bootdev`, { device: 'floppy' }, 400, /^body\.device: must be equal to one of the allowed values \(pxe, disk, bios, cdrom, http\)/],
    ['POST', `${m}/bootdev`, { device: 'pxe', persistent: 'sometimes' }, 400, /^body\.persistent: must be boolean/],
    ['POST', `${m}/bootdev`, { device: 'pxe', efi: 'maybe' }, 400, /^body\.efi: must be boolean/],
    ['POST', `${m}/maintenance`, { on: 'x' }, 400, /^body\.on: must be boolean/],
    ['POST', `${m}/provision`, { image: '../x' }, 400, /^body\.image: "\.\.\/x"/],
    ['POST', `${m}/provision`, { image: '' }, 400, /^body\.image: must NOT have fewer than 1 characters/],
    ['POST', `${m}/checkpoint`, {}, 400, /^body\.name: must have required property/],
    ['PUT', '/api/v1/images/img1?format=vhd', 'x', 400, /^querystring\.format: must be equal to one of the allowed values \(raw, qcow2\)/, { 'content-type': 'application/octet-stream' }],
    ['PUT', '/api/v1/images/img1', 'x', 415, /^headers\.content-type: "text\/plain": send the image as application\/octet-stream/, { 'content-type': 'text/plain' }],
    ['PUT', '/api/v1/images/img1', 'x', 415, /^headers\.content-type: "application\/x-tar" is not accepted here/, { 'content-type': 'application/x-tar' }],
    ['PUT', '/api/v1/images/img1', { a: 1 }, 415, /^headers\.content-type: "application\/json/],
    ['POST', '/api/v1/images/img1/import', { path: '/x', format: 'vhd' }, 400, /^body\.format: must be equal to one of the allowed values \(raw, qcow2\)/],
    ['POST', '/api/v1/images/img1/import', {}, 400, /^body\.path: must have required property/],
    ['PUT', `/api/v1/disks/${MAC}`, { image: 'img1', extra: 1 }, 400, /^body\.extra: unknown field/],
    ['PUT', `/api/v1/reservations/${MAC}`, { ip: '10.60.0.500' }, 400, /^body\.ip: "10\.60\.0\.500" is not an IPv4 address/],
    ['PUT', `/api/v1/reservations/${MAC}`, { ip: '10.60.0.50', hostname: '-x' }, 400, /^body\.hostname: not a valid host name label/],
  ];
  for (const [method, url, body, status, re, headers] of cases) {
    const r = await call(method, url, body, RW, headers ?? {});
    t.equal(r.statusCode, status, `${method} ${url} ${JSON.stringify(body)}: ${status}`);
    t.match(r.json().error, re, `${method} ${url} ${JSON.stringify(body)}: names the field (${r.json().error})`);
  }
  t.match((await call('GET', m)).json(), { name: 'node1', state: 'enrolled' }, 'the machine is unchanged by the refused writes');
  t.notOk((await call('GET', m)).json().image, 'no image was set by a refused name');
});

t.test('Redfish power settings through the API: enrolled, shown without the password and with the pin; the certificate route needs the read-write token', async (t) => {
  const { call } = await setup(t);
  const m = `/api/v1/machines/${MAC}`;
  const power = { driver: 'redfish', host: '127.0.0.1', port: 8443, user: 'root', password: 'rf-pw-never-shown', system: '1' };
  const put = await call('PUT', m, { name: 'rf1', power });
  t.equal(put.statusCode, 201, put.body);
  t.same(put.json().power, { driver: 'redfish', host: '127.0.0.1', port: 8443, user: 'root', system: '1', passwordSet: true, certSha256: null }, 'no password; nothing pinned yet');
  t.equal(put.json().bmc, undefined, 'the bmc alias is for IPMI only');
  const fp = Array(32).fill('5A').join(':');
  const url = `${m}/power/certificate`;
  t.equal((await call('POST', url, { sha256: fp }, null)).statusCode, 401, 'without a token: 401');
  const ro = await call('POST', url, { sha256: fp }, RO);
  t.equal(ro.statusCode, 403, 'a read-only token: 403');
  t.match(ro.json().error, /read-only/);
  t.equal((await call('GET', m)).json().power.certSha256, null, 'nothing accepted by the refused calls');
  t.match((await call('POST', url, { sha256: 'xyz' })).json().error, /^body\.sha256: must match pattern/);
  const ok = await call('POST', url, { sha256: '5a'.repeat(32) });
  t.equal(ok.statusCode, 200, ok.body);
  t.equal(ok.json().power.certSha256, fp, 'accepted, normalised, shown');
  t.same((await call('GET', m)).json().power, { driver: 'redfish', host: '127.0.0.1', port: 8443, user: 'root', system: '1', passwordSet: true, certSha256: fp });
  await call('PUT', `/api/v1/machines/52:54:00:00:bb:02`, { name: 'ip2', power: { driver: 'ipmi', host: '127.0.0.1', user: 'u', password: 'p' } });
  const ipmi = await call('POST', '/api/v1/machines/52:54:00:00:bb:02/power/certificate', { sha256: fp });
  t.equal(ipmi.statusCode, 409);
  t.match(ipmi.json().error, /its ipmi BMC has no certificate to accept/);
  t.equal((await call('POST', '/api/v1/machines/52:54:00:00:bb:03/power/certificate', { sha256: fp })).statusCode, 404, 'an unknown machine: 404');
});

t.test('provision: an unknown image is 404 naming it before any operation starts; a running provision refuses delete, deprovision, reset and a second provision (409 naming provisioning)', async (t) => {
  const { call, dir, tgtd, bodies } = await setup(t);
  const m = `/api/v1/machines/${MAC}`;
  t.equal((await call('PUT', m, { name: 'node1', image: 'ghost' })).statusCode, 201, 'a valid name that is not (yet) imported may be set');
  let r = await call('POST', `${m}/provision`, { image: 'nope' });
  t.equal(r.statusCode, 404);
  t.match(r.json().error, /^image nope: does not exist/);
  r = await call('POST', `${m}/provision`);
  t.equal(r.statusCode, 404, 'the machine\'s own image is checked too');
  t.match(r.json().error, /^image ghost: does not exist/);
  t.same((await call('GET', `/api/v1/operations?mac=${MAC}`)).json().operations, [], 'no operation started');
  t.equal((await call('GET', m)).json().state, 'enrolled');

  await writeFile(path.join(dir, 'golden.raw'), randomBytes(64 << 10));
  t.equal((await call('POST', '/api/v1/images/golden/import', { path: path.join(dir, 'golden.raw') })).statusCode, 201, 'image imported');
  tgtd.hold();
  r = await call('POST', `${m}/provision`, { image: 'golden' });
  t.equal(r.statusCode, 202, r.body);
  const opId = r.json().operation.id as string;
  // At once, while the operation waits at its disk step: nothing else may take the disk.
  for (const [method, url, body, action] of [['DELETE', m, undefined, 'delete'], ['DELETE', `${m}?force=true`, undefined, 'delete'], ['POST', `${m}/deprovision`, undefined, 'deprovision'],
    ['POST', `${m}/reset`, undefined, 'reset'], ['POST', `${m}/provision`, { image: 'golden' }, 'provision'], ['POST', `${m}/restore`, { checkpoint: 'c1' }, 'restore']] as const) {
    const x = await call(method, url, body);
    t.equal(x.statusCode, 409, `${method} ${url} during provision: 409`);
    t.match(x.json().error, new RegExp(`cannot ${action} while provisioning \\(operation ${opId} is running\\)`), `${method} ${url}: names the state and the operation`);
  }
  t.equal((await call('POST', `${m}/maintenance`, { on: true })).statusCode, 409, 'no maintenance in the middle either');
  t.equal((await call('GET', m)).json().state, 'provisioning');
  tgtd.release();
  let op = { status: 'running', error: '' };
  for (let i = 0; i < 100 && op.status === 'running'; i++) {
    await new Promise((res) => setTimeout(res, 20));
    op = (await call('GET', `/api/v1/operations/${opId}`)).json();
  }
  t.equal(op.status, 'succeeded', `the provision was not disturbed: ${op.error ?? ''}`);
  t.equal((await call('GET', m)).json().state, 'ready');
  t.same((await call('GET', `${m}/events`)).json().events.map((e: { from: string | null; to: string }) => `${e.from}>${e.to}`), ['null>enrolled', 'enrolled>provisioning', 'provisioning>ready']);
  t.equal((await call('GET', `/api/v1/disks/${MAC}`)).json().imageId, 'golden', 'the disk is there');
  t.notMatch(bodies.join('\n'), /"secret"/, 'no CHAP secret in any response');
});

t.test('409s from an open iSCSI session name the machine\'s state and the initiator', async (t) => {
  const { call, dir, tgtd, disks, bus } = await setup(t);
  const m = `/api/v1/machines/${MAC}`;
  await writeFile(path.join(dir, 'golden.raw'), randomBytes(64 << 10));
  t.equal((await call('POST', '/api/v1/images/golden/import', { path: path.join(dir, 'golden.raw') })).statusCode, 201);
  t.equal((await call('PUT', m, { name: 'node1' })).statusCode, 201);
  const opId = (await call('POST', `${m}/provision`, { image: 'golden' })).json().operation.id as string;
  for (let i = 0; i < 100 && (await call('GET', `/api/v1/operations/${opId}`)).json().status === 'running'; i++) await new Promise((res) => setTimeout(res, 20));
  t.equal((await call('GET', m)).json().state, 'ready');
  t.equal((await call('POST', `${m}/checkpoint`, { name: 'c1' })).statusCode, 201, 'checkpoint c1');
  const iqn = disks.get(parseMac(MAC))!.targetIqn;
  const initiator = 'iqn.2026-11.test:node1';
  tgtd.sessions.set(iqn, [{ nexus: 7, initiator, alias: null, connections: [{ cid: 0, address: '10.60.0.77' }] }]);
  const mac = parseMac(MAC) as Mac;
  bus.publish({ type: 'iscsi.login', iqn, initiator, address: '10.60.0.77', mac });
  for (let i = 0; i < 50 && (await call('GET', m)).json().state !== 'active'; i++) await new Promise((res) => setTimeout(res, 10));
  t.equal((await call('GET', m)).json().state, 'active', 'the login made it active');
  const session = `iSCSI session open from ${initiator} \\(10\\.60\\.0\\.77\\)`;
  let r = await call('POST', `${m}/reset`);
  t.equal(r.statusCode, 409);
  t.match(r.json().error, new RegExp(`^machine ${MAC}: cannot reset while active: ${session}`));
  r = await call('POST', `${m}/restore`, { checkpoint: 'c1' });
  t.equal(r.statusCode, 409);
  t.match(r.json().error, new RegExp(`cannot restore while active: ${session}`));
  r = await call('DELETE', `${m}?force=true`);
  t.equal(r.statusCode, 409);
  t.match(r.json().error, new RegExp(`cannot delete while active: ${session}`));
  r = await call('POST', `${m}/deprovision`);
  t.equal(r.statusCode, 409);
  t.match(r.json().error, /cannot deprovision while active$/, 'active cannot be deprovisioned at all (the table)');
  // The logout seen, but tgtd still lists the session (a look in between): the state is ready now.
  bus.publish({ type: 'iscsi.logout', iqn, initiator, mac });
  for (let i = 0; i < 50 && (await call('GET', m)).json().state !== 'ready'; i++) await new Promise((res) => setTimeout(res, 10));
  r = await call('POST', `${m}/deprovision`);
  t.equal(r.statusCode, 409);
  t.match(r.json().error, new RegExp(`cannot deprovision while ready: ${session}`));
  tgtd.sessions.clear();
  r = await call('POST', `${m}/deprovision`);
  t.equal(r.statusCode, 200, r.body);
  t.equal(r.json().state, 'enrolled');
  t.equal(disks.get(mac), undefined, 'the disk is gone');
});

t.test('reserved IP through machines: enrol, change, rename, remove, clashes', async (t) => {
  const { call, leases } = await setup(t);
  const M2 = '52:54:00:00:bb:02';
  const resv = async () => (await call('GET', '/api/v1/reservations')).json().reservations as { mac: string; ip: string; hostname: string | null; source: string }[];
  const mine = async (mac = MAC) => (await resv()).filter((x) => x.mac === mac);
  t.equal((await call('PUT', `/api/v1/machines/${MAC}`, { name: 'node1', ip: '10.60.0.50' })).statusCode, 201);
  t.same(await mine(), [{ mac: MAC, ip: '10.60.0.50', hostname: 'node1', source: 'api' }], 'enrolling with ip makes the DHCP reservation');
  t.equal((await call('PUT', `/api/v1/machines/${MAC}`, { ip: '10.60.0.51' })).statusCode, 200);
  t.same(await mine(), [{ mac: MAC, ip: '10.60.0.51', hostname: 'node1', source: 'api' }], 'changed, not added');
  t.equal((await call('PUT', `/api/v1/machines/${MAC}`, { name: 'node1b' })).statusCode, 200);
  t.same((await mine())[0]!.hostname, 'node1b', 'a rename renames the reservation\'s host name');

  let r = await call('PUT', `/api/v1/machines/${M2}`, { name: 'node2', ip: '10.60.0.51' });
  t.equal(r.statusCode, 409, 'another machine with the same address: 409');
  t.match(r.json().error, /ip 10\.60\.0\.51: reserved for another MAC/);
  t.equal((await call('GET', `/api/v1/machines/${M2}`)).statusCode, 404, 'and it was not enrolled');
  r = await call('PUT', `/api/v1/machines/${MAC}`, { ip: '10.60.0.12' });
  t.equal(r.statusCode, 409, 'an address the config file reserves for another MAC: 409');
  await leases.bind(parseMac('52:54:00:00:00:99'), parseIpv4('10.60.0.101'), subnet, {});
  r = await call('PUT', `/api/v1/machines/${MAC}`, { ip: '10.60.0.101' });
  t.equal(r.statusCode, 409, 'an address leased to another client: 409');
  t.match(r.json().error, /leased to another client/);
  r = await call('PUT', `/api/v1/machines/${MAC}`, { ip: '10.61.0.1' });
  t.equal(r.statusCode, 400, 'outside every subnet: 400');
  t.match(r.json().error, /ip 10\.61\.0\.1: not a host address/);
  t.same(await mine(), [{ mac: MAC, ip: '10.60.0.51', hostname: 'node1b', source: 'api' }], 'refused changes keep the old reservation');
  t.equal((await call('GET', `/api/v1/machines/${MAC}`)).json().ip, '10.60.0.51', 'and the machine keeps its address');

  t.equal((await call('PUT', `/api/v1/machines/${MAC}`, { ip: null })).statusCode, 200);
  t.same(await mine(), [], 'ip: null removes the reservation');
  t.equal((await call('PUT', `/api/v1/machines/${M2}`, { name: 'node2', ip: '10.60.0.51' })).statusCode, 201, 'the address is free again');
  t.equal((await call('DELETE', `/api/v1/machines/${M2}`)).statusCode, 204);
  t.same(await mine(M2), [], 'deleting the machine removes its reservation');
});

t.test('/boot/files/:name: whole file, byte ranges (RFC 9110 §14), 416, no path traversal', async (t) => {
  const { call, netbootDir, dir } = await setup(t);
  const data = randomBytes(1000);
  await writeFile(path.join(netbootDir, 'vmlinuz'), data);
  await writeFile(path.join(netbootDir, '.hidden'), 'x');
  await writeFile(path.join(dir, 'outside'), 'secret-outside');
  const get = (url: string, range?: string) => call('GET', url, undefined, null, range ? { range } : {});
  let r = await get('/boot/files/vmlinuz');
  t.equal(r.statusCode, 200);
  t.equal(r.headers['accept-ranges'], 'bytes');
  t.equal(Number(r.headers['content-length']), 1000);
  t.ok(r.rawPayload.equals(data), 'whole file');
  for (const [range, start, end] of [['bytes=0-99', 0, 99], ['bytes=900-', 900, 999], ['bytes=-100', 900, 999], ['bytes=990-5000', 990, 999], ['bytes=-5000', 0, 999], ['bytes=999-999', 999, 999]] as const) {
    r = await get('/boot/files/vmlinuz', range);
    t.equal(r.statusCode, 206, `${range}: 206`);
    t.equal(r.headers['content-range'], `bytes ${start}-${end}/1000`, `${range}: Content-Range`);
    t.equal(Number(r.headers['content-length']), end - start + 1);
    t.ok(r.rawPayload.equals(data.subarray(start, end + 1)), `${range}: the right bytes`);
  }
  for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
    r = await get('/boot/files/vmlinuz', range);
    t.equal(r.statusCode, 416, `${range}: unsatisfiable`);
    t.equal(r.headers['content-range'], 'bytes */1000');
  }
  for (const range of ['bytes=5-1', 'bytes=0-1,5-6', 'items=0-1', 'bytes=-']) {
    r = await get('/boot/files/vmlinuz', range);
    t.equal(r.statusCode, 200, `${range}: invalid, ignored: the whole file`);
    t.equal(r.rawPayload.length, 1000);
  }
  for (const url of ['/boot/files/..%2Foutside', '/boot/files/%2e%2e', '/boot/files/..', '/boot/files/.hidden', '/boot/files/a%2F..%2F..%2Foutside', '/boot/files/..%5Coutside', '/boot/files/nope']) {
    r = await get(url);
    t.equal(r.statusCode, 404, `${url}: 404`);
    t.notMatch(r.body, 'secret-outside');
  }
  // Symlinks (issue 13.6): out of the root 404, inside it followed; the same for /boot-assets.
  const elsewhere = await mkdtemp(path.join(os.tmpdir(), 'mb-hr-out-'));
  t.teardown(() => rm(elsewhere, { recursive: true, force: true }));
  await writeFile(path.join(elsewhere, 'secret'), 'secret-elsewhere');
  await symlink(path.join(elsewhere, 'secret'), path.join(netbootDir, 'link-out'));
  await symlink('../outside', path.join(netbootDir, 'rel-out'));
  await symlink('vmlinuz', path.join(netbootDir, 'link-in'));
  await symlink(path.join(elsewhere, 'secret'), path.join(dir, 'asset-out')); // dir is the boot-assets root here
  await writeFile(path.join(dir, 'undionly.kpxe'), 'ipxe-bytes');
  for (const url of ['/boot/files/link-out', '/boot/files/rel-out', '/boot-assets/asset-out']) {
    for (const range of [undefined, 'bytes=0-3']) {
      r = await get(url, range);
      t.equal(r.statusCode, 404, `${url}${range ? ` ${range}` : ''}: 404`);
      t.notMatch(r.body, /secret-/, `${url}: nothing of the target`);
    }
  }
  r = await get('/boot/files/link-in', 'bytes=0-9');
  t.equal(r.statusCode, 206, 'a link inside the root is followed');
  t.ok(r.rawPayload.equals(data.subarray(0, 10)));
  r = await get('/boot-assets/undionly.kpxe');
  t.equal(r.statusCode, 200);
  t.equal(r.body, 'ipxe-bytes', 'a boot program is served');
});
