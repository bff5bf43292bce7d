/**
 * The lab's Redfish BMC (as ipmi_sim is the lab's IPMI BMC): one ComputerSystem behind HTTPS with
 * the habits of real BMCs that clients must cope with: a session limit, ETag + If-Match required on
 * PATCH (428 without it, 412 when stale), Reset answered 202 with a task monitor, AllowableValues
 * per vendor profile (one of them only through @Redfish.ActionInfo), errors with
 * @Message.ExtendedInfo from the Base registry. Power and boot device go to a `Machine` (the lab VM
 * through scripts/lab/lab-bmc's hook, or an in-memory one for benchmarks).
 *
 * It lives under test/ (built to dist/test/lab/), not src/: it is lab equipment, not part of the
 * product the .deb ships; scripts/lab/lab-redfish runs it for the demo and by hand.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { RedfishProfile } from './redfish-profiles.js';

export interface Machine {
  power(): Promise<'On' | 'Off'>;
  setPower(on: boolean): Promise<void>;
  /** reset: warm reboot; shutdown: ACPI power button. */
  signal(what: 'reset' | 'shutdown'): Promise<void>;
  setBootDevice(target: string): Promise<void>;
}

export interface RedfishBmcOptions {
  readonly user: string;
  readonly password: string;
  readonly profile: RedfishProfile;
  readonly sessionLimit: number;
  readonly sessionTimeoutS: number;
  /** How long a Reset task stays Running before it does its work (a task monitor to follow). */
  readonly taskDelayMs: number;
  readonly uuid: string;
  /** false: an old BMC with no SessionService (Basic auth only). */
  readonly sessionService: boolean;
}

interface Session { id: string; token: string; user: string; lastUsed: number }
interface Task { id: string; state: 'Running' | 'Completed' | 'Exception'; message: string; done?: Promise<void> }

type Json = Record<string, unknown>;

const SYS = '/redfish/v1/Systems/1';
const SESSIONS = '/redfish/v1/SessionService/Sessions';

/** Base.1.x messages (DMTF Base message registry) the way BMCs put them in error bodies. */
function errorBody(id: string, message: string): Json {
  return {
    error: {
      code: `Base.1.8.${id}`, message,
      '@Message.ExtendedInfo': [{ '@odata.type': '#Message.v1_1_1.Message', MessageId: `Base.1.8.${id}`, Message: message, Severity: 'Critical', Resolution: 'See the message.' }],
    },
  };
}

export class RedfishBmc {
  private readonly sessions = new Map<string, Session>();
  private readonly tasks = new Map<string, Task>();
  private seq = 0;
  private etagSeq = 1;
  private boot = { target: 'None', enabled: 'Disabled', mode: 'UEFI' };
  /** Requests still to answer 503 (a BMC busy after a firmware reset). */
  private unavailable = 0;
  readonly counters = { requests: 0, sessionsCreated: 0, sessionsDeleted: 0, sessionsExpired: 0, patches412: 0, patches428: 0 };

  constructor(private readonly o: RedfishBmcOptions, private readonly machine: Machine) {}

  /** An https server answering for this BMC. */
  server(cert: { key: Buffer; cert: Buffer }): https.Server {
    return https.createServer({ key: cert.key, cert: cert.cert, keepAliveTimeout: 30_000 }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) this.send(res, 500, errorBody('InternalError', `simulator: ${e instanceof Error ? e.message : String(e)}`));
        else res.destroy();
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counters.requests++;
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'https://bmc');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    // The lab's own control (not Redfish): make the next N requests answer 503.
    if (path === '/lab/unavailable' && method === 'POST' && this.basicOk(req)) {
      this.unavailable = Math.min(Number(url.searchParams.get('count') ?? 3) || 0, 1000);
      return this.send(res, 204);
    }
    if (this.unavailable > 0) {
      this.unavailable--;
      return this.send(res, 503, errorBody('ServiceTemporarilyUnavailable', 'The service is temporarily unavailable.  Retry in 1 seconds.'), { 'retry-after': '1' });
    }
    if (method === 'GET' && (path === '/redfish')) return this.send(res, 200, { v1: '/redfish/v1/' });
    if (method === 'GET' && path === '/redfish/v1') return this.send(res, 200, this.serviceRoot());
    if (method === 'GET' && path === '/redfish/v1/odata') return this.send(res, 200, { value: [] });
    const noSessions = !this.o.sessionService && path.startsWith('/redfish/v1/SessionService');
    if (noSessions) return this.send(res, 404, errorBody('ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
    if (method === 'POST' && path === SESSIONS) return this.createSession(res, body);

    const who = this.authenticate(req);
    if (!who) return this.send(res, 401, errorBody('NoValidSession', 'There is no valid session established with the implementation.'), { 'www-authenticate': 'Basic realm="RedfishService"' });

    if (method === 'GET' && path === '/redfish/v1/SessionService') {
      return this.send(res, 200, { '@odata.id': '/redfish/v1/SessionService', '@odata.type': '#SessionService.v1_1_8.SessionService', Id: 'SessionService', Name: 'Session Service', ServiceEnabled: true, SessionTimeout: this.o.sessionTimeoutS, Sessions: { '@odata.id': SESSIONS } });
    }
    if (method === 'GET' && path === SESSIONS) {
      const m = [...this.sessions.values()].map((s) => ({ '@odata.id': `${SESSIONS}/${s.id}` }));
      return this.send(res, 200, { '@odata.id': SESSIONS, '@odata.type': '#SessionCollection.SessionCollection', Name: 'Session Collection', Members: m, 'Members@odata.count': m.length });
    }
    const sm = /^\/redfish\/v1\/SessionService\/Sessions\/([\w-]+)$/.exec(path);
    if (sm) {
      const s = this.sessions.get(sm[1]!);
      if (!s) return this.send(res, 404, errorBody('ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
      if (method === 'DELETE') { this.sessions.delete(s.id); this.counters.sessionsDeleted++; return this.send(res, 204); }
      if (method === 'GET') return this.send(res, 200, { '@odata.id': path, '@odata.type': '#Session.v1_3_0.Session', Id: s.id, Name: 'User Session', UserName: s.user });
    }
    if (method === 'GET' && path === '/redfish/v1/Systems') {
      return this.send(res, 200, { '@odata.id': '/redfish/v1/Systems', '@odata.type': '#ComputerSystemCollection.ComputerSystemCollection', Name: 'Computer System Collection', Members: [{ '@odata.id': SYS }], 'Members@odata.count': 1 });
    }
    if (path === SYS && method === 'GET') {
      const sys = await this.system();
      return this.send(res, 200, sys, { etag: this.etag() });
    }
    if (path === SYS && method === 'PATCH') return this.patchSystem(req, res, body);
    if (path === `${SYS}/ResetActionInfo` && method === 'GET') {
      return this.send(res, 200, { '@odata.id': path, '@odata.type': '#ActionInfo.v1_1_2.ActionInfo', Id: 'ResetActionInfo', Name: 'Reset Action Info', Parameters: [{ Name: 'ResetType', Required: true, DataType: 'String', AllowableValues: this.o.profile.resetTypes }] });
    }
    if (path === `${SYS}/Actions/ComputerSystem.Reset` && method === 'POST') return this.reset(res, body);
    const tm = /^\/redfish\/v1\/TaskService\/(TaskMonitors|Tasks)\/(\d+)$/.exec(path);
    if (tm && method === 'GET') {
      const t = this.tasks.get(tm[2]!);
      if (!t) return this.send(res, 404, errorBody('ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
      const task = { '@odata.id': `/redfish/v1/TaskService/Tasks/${t.id}`, '@odata.type': '#Task.v1_4_3.Task', Id: t.id, Name: 'Reset task', TaskState: t.state, TaskStatus: t.state === 'Exception' ? 'Critical' : 'OK', Messages: [{ MessageId: 'Base.1.8.Success', Message: t.message }] };
      // DSP0266 §13.2: the monitor answers 202 while the task runs.
      if (tm[1] === 'TaskMonitors' && t.state === 'Running') return this.send(res, 202, task, { location: `/redfish/v1/TaskService/TaskMonitors/${t.id}`, 'retry-after': '1' });
      return this.send(res, 200, task);
    }
    if (['GET', 'PATCH', 'POST', 'DELETE', 'PUT'].includes(method)) return this.send(res, 404, errorBody('ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
    return this.send(res, 405, errorBody('OperationNotAllowed', `${method} is not allowed.`));
  }

  private serviceRoot(): Json {
    return {
      '@odata.id': '/redfish/v1/', '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot', Id: 'RootService', Name: 'Root Service',
      RedfishVersion: '1.11.0', UUID: this.o.uuid, Vendor: this.o.profile.vendor, Product: `metalboot lab Redfish BMC (${this.o.profile.name})`,
      Systems: { '@odata.id': '/redfish/v1/Systems' },
      ...(this.o.sessionService ? { SessionService: { '@odata.id': '/redfish/v1/SessionService' }, Links: { Sessions: { '@odata.id': SESSIONS } } } : { Links: {} }),
    };
  }

  private async system(): Promise<Json> {
    const p = this.o.profile;
    const reset: Json = { target: `${SYS}/Actions/ComputerSystem.Reset` };
    if (p.resetInActionInfo) reset['@Redfish.ActionInfo'] = `${SYS}/ResetActionInfo`;
    else reset['ResetType@Redfish.AllowableValues'] = p.resetTypes;
    const boot: Json = {
      BootSourceOverrideTarget: this.boot.target, BootSourceOverrideEnabled: this.boot.enabled,
      'BootSourceOverrideTarget@Redfish.AllowableValues': p.bootTargets,
    };
    if (p.bootMode) boot['BootSourceOverrideMode'] = this.boot.mode;
    return {
      '@odata.id': SYS, '@odata.type': '#ComputerSystem.v1_13_0.ComputerSystem', '@odata.etag': this.etag(),
      Id: '1', Name: 'System', SystemType: 'Physical', Manufacturer: p.vendor, Model: 'lab VM', UUID: this.o.uuid,
      PowerState: await this.machine.power(), Boot: boot, Actions: { '#ComputerSystem.Reset': reset },
    };
  }

  private etag(): string {
    return `W/"${this.etagSeq}"`;
  }

  private async patchSystem(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const ifMatch = req.headers['if-match'];
    if (ifMatch === undefined) {
      this.counters.patches428++;
      return this.send(res, 428, errorBody('PreconditionRequired', 'A precondition header or annotation is required to change the resource at the URI /redfish/v1/Systems/1.'));
    }
    if (ifMatch !== '*' && ifMatch !== this.etag()) {
      this.counters.patches412++;
      return this.send(res, 412, errorBody('PreconditionFailed', 'The ETag supplied did not match the ETag required to change this resource.'));
    }
    const b = isObject(body) && isObject(body['Boot']) ? body['Boot'] : undefined;
    if (!b) return this.send(res, 400, errorBody('PropertyMissing', 'The property Boot is a required property and must be included in the request.'));
    const target = b['BootSourceOverrideTarget'];
    if (target !== undefined && !this.o.profile.bootTargets.includes(String(target))) {
      return this.send(res, 400, errorBody('PropertyValueNotInList', `The value ${JSON.stringify(target)} for the property BootSourceOverrideTarget is not in the list of acceptable values.`));
    }
    const enabled = b['BootSourceOverrideEnabled'];
    if (enabled !== undefined && !['Once', 'Continuous', 'Disabled'].includes(String(enabled))) {
      return this.send(res, 400, errorBody('PropertyValueNotInList', `The value ${JSON.stringify(enabled)} for the property BootSourceOverrideEnabled is not in the list of acceptable values.`));
    }
    const mode = b['BootSourceOverrideMode'];
    if (mode !== undefined && (!this.o.profile.bootMode || !['UEFI', 'Legacy'].includes(String(mode)))) {
      return this.send(res, 400, errorBody('PropertyNotWritable', 'The property BootSourceOverrideMode is a read only property and cannot be assigned a value.'));
    }
    if (target !== undefined) this.boot.target = String(target);
    if (enabled !== undefined) this.boot.enabled = String(enabled);
    else if (target !== undefined && this.boot.enabled === 'Disabled') this.boot.enabled = 'Once';
    if (mode !== undefined) this.boot.mode = String(mode);
    this.etagSeq++;
    await this.machine.setBootDevice(this.boot.enabled === 'Disabled' ? 'none' : this.boot.target.toLowerCase());
    return this.send(res, 204, undefined, { etag: this.etag() });
  }

  private reset(res: ServerResponse, body: unknown): void {
    const t = isObject(body) ? body['ResetType'] : undefined;
    if (typeof t !== 'string') return this.send(res, 400, errorBody('ActionParameterMissing', 'The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.'));
    if (!this.o.profile.resetTypes.includes(t)) {
      return this.send(res, 400, errorBody('ActionParameterNotSupported', `The parameter ResetType for the action ComputerSystem.Reset is not supported on the target resource (value ${JSON.stringify(t)}).`));
    }
    const id = String(++this.seq);
    const task: Task = { id, state: 'Running', message: `ResetType ${t}` };
    this.tasks.set(id, task);
    if (this.tasks.size > 64) this.tasks.delete(this.tasks.keys().next().value!);
    task.done = sleep(this.o.taskDelayMs).then(() => this.doReset(t)).then(
      () => { task.state = 'Completed'; task.message = `ResetType ${t} completed`; },
      (e: unknown) => { task.state = 'Exception'; task.message = `ResetType ${t} failed: ${e instanceof Error ? e.message : String(e)}`; });
    this.send(res, 202, { '@odata.id': `/redfish/v1/TaskService/Tasks/${id}`, '@odata.type': '#Task.v1_4_3.Task', Id: id, TaskState: 'Running' },
      { location: `/redfish/v1/TaskService/TaskMonitors/${id}` });
  }

  private async doReset(t: string): Promise<void> {
    const m = this.machine;
    const on = (await m.power()) === 'On';
    switch (t) {
      case 'On': case 'ForceOn': if (!on) await m.setPower(true); break;
      case 'ForceOff': if (on) await m.setPower(false); break;
      case 'GracefulShutdown': case 'PushPowerButton': if (on) await m.signal('shutdown'); else if (t === 'PushPowerButton') await m.setPower(true); break;
      case 'ForceRestart': case 'GracefulRestart': if (on) await m.signal('reset'); break;
      case 'PowerCycle': if (on) { await m.setPower(false); await m.setPower(true); } else await m.setPower(true); break;
      case 'Nmi': break;
      default: throw new Error(`unknown ResetType ${t}`);
    }
  }

  private createSession(res: ServerResponse, body: unknown): void {
    const user = isObject(body) ? body['UserName'] : undefined;
    const pass = isObject(body) ? body['Password'] : undefined;
    if (typeof user !== 'string' || typeof pass !== 'string') return this.send(res, 400, errorBody('PropertyMissing', 'The properties UserName and Password are required.'));
    if (!this.credentialsOk(user, pass)) return this.send(res, 401, errorBody('ResourceAtUriUnauthorized', 'While accessing the resource at /redfish/v1/SessionService/Sessions, the service received an authorization error: invalid user name or password.'));
    this.expireSessions();
    if (this.sessions.size >= this.o.sessionLimit) {
      return this.send(res, 400, errorBody('SessionLimitExceeded', `The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation (${this.o.sessionLimit}).`));
    }
    const s: Session = { id: String(++this.seq), token: randomBytes(24).toString('hex'), user, lastUsed: Date.now() };
    this.sessions.set(s.id, s);
    this.counters.sessionsCreated++;
    this.send(res, 201, { '@odata.id': `${SESSIONS}/${s.id}`, '@odata.type': '#Session.v1_3_0.Session', Id: s.id, Name: 'User Session', UserName: user },
      { 'x-auth-token': s.token, location: `${SESSIONS}/${s.id}` });
  }

  private expireSessions(): void {
    const cutoff = Date.now() - this.o.sessionTimeoutS * 1000;
    for (const [id, s] of this.sessions) if (s.lastUsed < cutoff) { this.sessions.delete(id); this.counters.sessionsExpired++; }
  }

  private authenticate(req: IncomingMessage): string | undefined {
    this.expireSessions();
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string') {
      for (const s of this.sessions.values()) {
        if (s.token === token) { s.lastUsed = Date.now(); return s.user; }
      }
      return undefined;
    }
    return this.basicOk(req) ? this.o.user : undefined;
  }

  private basicOk(req: IncomingMessage): boolean {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const text = Buffer.from(m[1]!, 'base64').toString('utf8');
    const i = text.indexOf(':');
    return i > 0 && this.credentialsOk(text.slice(0, i), text.slice(i + 1));
  }

  private credentialsOk(user: string, pass: string): boolean {
    const a = Buffer.from(pass);
    const b = Buffer.from(this.o.password);
    return user === this.o.user && a.length === b.length && timingSafeEqual(a, b);
  }

  private send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    const payload = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      ...(payload ? { 'content-type': 'application/json; charset=utf-8' } : {}),
      'content-length': Buffer.byteLength(payload), 'odata-version': '4.0', ...headers,
    });
    res.end(payload);
  }
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) { req.destroy(); reject(new Error('request body too large')); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      try { resolve(JSON.parse(text)); } catch { resolve(undefined); }
    });
    req.on('error', reject);
  });
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
