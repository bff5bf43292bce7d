/**
 * The Redfish power driver (DMTF DSP0266 protocol, DSP0268 schema): one BMC, one ComputerSystem.
 * A session (DSP0266 §13.3.4: POST to SessionService/Sessions, X-Auth-Token) is opened on first use,
 * reused, re-created once when the BMC answers 401, and DELETEd on close; a BMC without a session
 * service gets HTTP Basic. Reset picks the value the BMC allows for each action, with fallbacks;
 * the next boot is a PATCH of Boot with If-Match; 202 task monitors (§13.2) are followed to the end.
 */
import { PowerError, type BootTarget, type NextBoot, type PowerAction, type PowerDriver, type PowerState } from './driver.js';
import { RedfishHttp, type RedfishResponse, type RedfishTrust } from './redfish-http.js';

export interface RedfishSettings {
  readonly host: string;
  readonly port?: number | undefined;
  readonly user: string;
  readonly password: Buffer;
  /** Id or @odata.id of the ComputerSystem when the BMC has more than one. */
  readonly system?: string | undefined;
  readonly trust: RedfishTrust;
  readonly timeoutMs?: number | undefined;
  readonly retries?: number | undefined;
  readonly maxConcurrent?: number | undefined;
  /** 0 = unlimited (a one-shot CLI); the daemon spaces requests to one BMC. */
  readonly maxRequestsPerSecond?: number | undefined;
  /** Upper bound on following one task monitor. */
  readonly taskTimeoutMs?: number | undefined;
  /**
   * Pin on first use: with neither a CA nor a pin, the certificate the BMC presents first is
   * handed here (to be stored, shown in the machine record) before it is trusted. Without this
   * callback an unpinned BMC is refused (the one-shot CLI).
   */
  readonly onFirstCertificate?: ((fingerprint256: string) => Promise<void>) | undefined;
}

export const REDFISH_DEFAULTS = { port: 443, timeoutMs: 10_000, retries: 3, maxConcurrent: 2, maxRequestsPerSecond: 20, taskTimeoutMs: 120_000 } as const;

type Json = Record<string, unknown>;

/** Reset values to try for each action, best first (DSP0268 ResetType). */
const RESET_PREFERENCES: Record<PowerAction, ReadonlyArray<string | readonly [string, string]>> = {
  on: ['On', 'ForceOn'],
  off: ['ForceOff'],
  soft: ['GracefulShutdown'],
  cycle: ['PowerCycle', ['ForceOff', 'On'], 'ForceRestart'],
  reset: ['ForceRestart', 'PowerCycle', ['ForceOff', 'On']],
};

const BOOT_TARGET: Record<BootTarget, string> = { pxe: 'Pxe', disk: 'Hdd', bios: 'BiosSetup', cdrom: 'Cd', http: 'UefiHttp' };

export interface RedfishStats { requests: number; sessionsCreated: number; sessionsDeleted: number }

export class RedfishDriver implements PowerDriver {
  readonly driver = 'redfish';
  readonly target: string;
  readonly stats: RedfishStats = { requests: 0, sessionsCreated: 0, sessionsDeleted: 0 };
  private readonly http: RedfishHttp;
  private readonly taskTimeoutMs: number;
  private root: Json | undefined;
  private token: string | undefined;
  private sessionUri: string | undefined;
  /** undefined until we know; false when the BMC has no usable session service (Basic then). */
  private sessionsSupported: boolean | undefined;
  private systemUri: string | undefined;
  private opening: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly s: RedfishSettings) {
    const port = s.port ?? REDFISH_DEFAULTS.port;
    this.http = new RedfishHttp({
      host: s.host, port, trust: s.trust,
      timeoutMs: s.timeoutMs ?? REDFISH_DEFAULTS.timeoutMs,
      retries: s.retries ?? REDFISH_DEFAULTS.retries,
      maxConcurrent: s.maxConcurrent ?? REDFISH_DEFAULTS.maxConcurrent,
      maxRequestsPerSecond: s.maxRequestsPerSecond ?? REDFISH_DEFAULTS.maxRequestsPerSecond,
    });
    this.target = this.http.target;
    this.taskTimeoutMs = s.taskTimeoutMs ?? REDFISH_DEFAULTS.taskTimeoutMs;
  }

  async powerState(): Promise<PowerState> {
    const sys = await this.system();
    const st = sys['PowerState'];
    if (st === 'On' || st === 'PoweringOn') return 'on';
    if (st === 'Off' || st === 'PoweringOff') return 'off';
    throw this.error('unsupported', `ComputerSystem reports PowerState ${JSON.stringify(st)}`);
  }

  async power(action: PowerAction): Promise<void> {
    const sys = await this.system();
    const reset = (sys['Actions'] as Json | undefined)?.['#ComputerSystem.Reset'] as Json | undefined;
    const target = typeof reset?.['target'] === 'string' ? pathOf(reset['target']) : undefined;
    if (!target) throw this.error('unsupported', 'the ComputerSystem has no #ComputerSystem.Reset action');
    const allowed = await this.allowedResetTypes(reset!);
    const plan = resetPlan(action, allowed);
    if (plan === undefined) {
      throw this.error('unsupported', `no ResetType for ${action}: the BMC allows ${allowed!.join(', ') || 'none'}`);
    }
    for (const [i, resetType] of plan.entries()) {
      if (i > 0) await this.waitPower('Off');
      const res = await this.authed('POST', target, { ResetType: resetType });
      await this.settle(res, `Reset ${resetType}`);
    }
  }

  async setNextBoot(next: NextBoot): Promise<NextBoot> {
    const want = BOOT_TARGET[next.device];
    for (let attempt = 0; ; attempt++) {
      const { body, etag } = await this.systemWithEtag();
      const boot = (body['Boot'] ?? {}) as Json;
      const allowed = boot['BootSourceOverrideTarget@Redfish.AllowableValues'];
      if (Array.isArray(allowed) && !allowed.includes(want)) {
        throw this.error('unsupported', `boot target ${want} not offered (the BMC allows ${allowed.join(', ')})`);
      }
      const patch: Json = { BootSourceOverrideTarget: want, BootSourceOverrideEnabled: next.persistent ? 'Continuous' : 'Once' };
      // Mode is absent on BMCs that cannot switch it; sending it anyway would be refused.
      if ('BootSourceOverrideMode' in boot) patch['BootSourceOverrideMode'] = next.efi ? 'UEFI' : 'Legacy';
      // DSP0266 (ETags): a service may require If-Match (428 without it); `*` when it gave no ETag.
      const res = await this.authed('PATCH', this.systemUri!, { Boot: patch }, { 'if-match': etag ?? '*' });
      // 412: someone changed the resource between our GET and PATCH; read it again once.
      if (res.status === 412 && attempt === 0) continue;
      await this.settle(res, 'PATCH Boot');
      break;
    }
    const back = ((await this.system())['Boot'] ?? {}) as Json;
    const device = (Object.keys(BOOT_TARGET) as BootTarget[]).find((k) => BOOT_TARGET[k] === back['BootSourceOverrideTarget']);
    if (device === undefined) throw this.error('refused', `after the PATCH the BMC reports boot target ${JSON.stringify(back['BootSourceOverrideTarget'])}`);
    return {
      device,
      persistent: back['BootSourceOverrideEnabled'] === 'Continuous',
      efi: back['BootSourceOverrideMode'] === undefined ? next.efi : back['BootSourceOverrideMode'] === 'UEFI',
    };
  }

  /** The service root (GET /redfish/v1, no authentication needed by DSP0266 §13.3.1). */
  async serviceRoot(): Promise<Json> {
    if (this.root) return this.root;
    if (!this.http.pinned && this.s.onFirstCertificate) {
      const { host, port } = this.s;
      const cert = await RedfishHttp.fetchCertificate(host, port ?? REDFISH_DEFAULTS.port, this.s.timeoutMs ?? REDFISH_DEFAULTS.timeoutMs);
      await this.s.onFirstCertificate(cert.fingerprint256);
      this.http.pin(cert.fingerprint256);
    }
    const res = await this.http.request('GET', '/redfish/v1/');
    this.stats.requests++;
    if (res.status !== 200 || !isObject(res.body)) throw this.error('unsupported', `GET /redfish/v1/ answered ${res.status}; not a Redfish service`);
    this.root = res.body;
    return this.root;
  }

  /** Deletes our session (BMCs allow only a few; a leaked one can lock admins out) and the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.opening?.catch(() => undefined);
    await this.deleteSession();
    this.http.close();
  }

  // ---------------------------------------------------------------- machinery

  private async system(): Promise<Json> {
    return (await this.systemWithEtag()).body;
  }

  private async systemWithEtag(): Promise<{ body: Json; etag: string | undefined }> {
    const uri = await this.findSystem();
    const res = await this.authed('GET', uri);
    const body = this.expectJson(res, `GET ${uri}`);
    const h = res.headers['etag'];
    const etag = typeof h === 'string' ? h : typeof body['@odata.etag'] === 'string' ? body['@odata.etag'] : undefined;
    return { body, etag };
  }

  /** The only ComputerSystem, or the one named in the settings (by Id or @odata.id). */
  private async findSystem(): Promise<string> {
    if (this.systemUri) return this.systemUri;
    const root = await this.serviceRoot();
    const collection = odataId(root['Systems']);
    if (!collection) throw this.error('unsupported', 'the service root has no Systems collection');
    const res = await this.authed('GET', collection);
    const members = (this.expectJson(res, `GET ${collection}`)['Members'] ?? []) as unknown[];
    const uris = members.map(odataId).filter((u): u is string => u !== undefined);
    const want = this.s.system;
    let uri: string | undefined;
    if (want !== undefined) uri = uris.find((u) => u === want || u.replace(/\/$/, '').split('/').pop() === want);
    else if (uris.length === 1) uri = uris[0];
    if (!uri) {
      throw this.error('unsupported', want !== undefined ? `no ComputerSystem ${JSON.stringify(want)} (the BMC has ${uris.join(', ') || 'none'})`
        : `the BMC has ${uris.length} ComputerSystems (${uris.join(', ')}); name one in the settings`);
    }
    this.systemUri = uri;
    return uri;
  }

  /** AllowableValues from the action itself or its @Redfish.ActionInfo; undefined when the BMC does not say. */
  private async allowedResetTypes(reset: Json): Promise<string[] | undefined> {
    const inline = reset['ResetType@Redfish.AllowableValues'];
    if (Array.isArray(inline)) return inline.filter((v): v is string => typeof v === 'string');
    const info = reset['@Redfish.ActionInfo'];
    if (typeof info !== 'string') return undefined;
    const res = await this.authed('GET', info);
    if (res.status !== 200 || !isObject(res.body)) return undefined;
    const p = ((res.body['Parameters'] ?? []) as Json[]).find((x) => isObject(x) && x['Name'] === 'ResetType');
    const v = p?.['AllowableValues'];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
  }

  /** After ForceOff, PowerCycle done as two steps waits for Off before On (BMCs refuse On while powering off). */
  private async waitPower(state: 'Off'): Promise<void> {
    const deadline = Date.now() + this.taskTimeoutMs;
    while ((await this.system())['PowerState'] !== state) {
      if (Date.now() > deadline) throw this.error('refused', `the system did not reach PowerState ${state} in ${this.taskTimeoutMs} ms`);
      await sleep(200);
    }
  }

  /** 200/204 done; 202 a task monitor to follow (DSP0266 §13.2.1); anything else is the BMC's refusal. */
  private async settle(res: RedfishResponse, what: string): Promise<void> {
    if (res.status === 200 || res.status === 204) return;
    if (res.status !== 202) throw this.refusal(res, what);
    const loc = header(res, 'location') ?? odataId(res.body);
    const monitor = loc === undefined ? undefined : pathOf(loc);
    if (!monitor) return; // accepted, nothing to follow
    const deadline = Date.now() + this.taskTimeoutMs;
    for (let polls = 0; ; polls++) {
      const wait = Math.min(Number(header(res, 'retry-after') ?? 0) * 1000 || 100 * 2 ** Math.min(polls, 4), 2000);
      await sleep(wait);
      if (Date.now() > deadline) throw this.error('unreachable', `${what}: task ${monitor} not finished after ${this.taskTimeoutMs} ms`);
      res = await this.authed('GET', monitor);
      if (res.status === 202) continue;
      if (res.status === 204) return;
      if (res.status !== 200) throw this.refusal(res, `${what} (task ${monitor})`);
      const b = isObject(res.body) ? res.body : {};
      const state = b['TaskState'];
      if (state === undefined || state === 'Completed') {
        if (b['TaskStatus'] !== undefined && b['TaskStatus'] !== 'OK' && b['TaskStatus'] !== 'Warning') throw this.refusal(res, `${what} (task ${monitor})`);
        return;
      }
      if (['Exception', 'Killed', 'Cancelled', 'Interrupted'].includes(String(state))) throw this.refusal(res, `${what} (task ${monitor} ${state})`);
    }
  }

  /** One authenticated request; a 401 on an existing session re-creates it once (the BMC expired it). */
  private async authed(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RedfishResponse> {
    if (this.closed) throw this.error('unreachable', 'the driver is closed');
    await this.ensureAuth();
    const sent = this.token;
    let res = await this.send(method, path, body, headers);
    if (res.status === 401 && sent !== undefined) {
      if (this.token === sent) { this.token = undefined; this.sessionUri = undefined; }
      await this.ensureAuth();
      res = await this.send(method, path, body, headers);
    }
    if (res.status === 401 || (res.status === 403 && this.token === undefined)) {
      throw this.error('auth', `${method} ${path}: authentication refused (${res.status})${extendedMessage(res.body, ': ')}`);
    }
    return res;
  }

  private send(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<RedfishResponse> {
    this.stats.requests++;
    const auth: Record<string, string> = this.token !== undefined ? { 'x-auth-token': this.token }
      : { authorization: `Basic ${Buffer.concat([Buffer.from(`${this.s.user}:`), this.s.password]).toString('base64')}` };
    return this.http.request(method, path, { body, headers: { ...auth, ...headers } });
  }

  private ensureAuth(): Promise<void> {
    if (this.token !== undefined || this.sessionsSupported === false) return Promise.resolve();
    this.opening ??= this.createSession().finally(() => { this.opening = undefined; });
    return this.opening;
  }

  private async createSession(): Promise<void> {
    const root = await this.serviceRoot();
    const sessions = odataId((root['Links'] as Json | undefined)?.['Sessions'])
      ?? (odataId(root['SessionService']) ? `${odataId(root['SessionService'])!.replace(/\/$/, '')}/Sessions` : undefined);
    if (!sessions) { this.sessionsSupported = false; return; }
    this.stats.requests++;
    const res = await this.http.request('POST', sessions, { body: { UserName: this.s.user, Password: this.s.password.toString('utf8') } });
    if (res.status === 404 || res.status === 405 || res.status === 501) { this.sessionsSupported = false; return; }
    if (res.status === 401 || res.status === 403) throw this.error('auth', `authentication refused for user ${JSON.stringify(this.s.user)} (${res.status})${extendedMessage(res.body, ': ')}`);
    const token = header(res, 'x-auth-token');
    if ((res.status !== 201 && res.status !== 200) || token === undefined) throw this.refusal(res, 'create session');
    this.sessionsSupported = true;
    this.token = token;
    this.sessionUri = header(res, 'location') ?? odataId(res.body);
    this.stats.sessionsCreated++;
    if (this.closed) await this.deleteSession();
  }

  private async deleteSession(): Promise<void> {
    const uri = this.sessionUri;
    const token = this.token;
    this.token = undefined;
    this.sessionUri = undefined;
    if (!uri || token === undefined) return;
    try {
      const res = await this.http.request('DELETE', pathOf(uri), { headers: { 'x-auth-token': token } });
      this.stats.requests++;
      if (res.status < 300 || res.status === 404 || res.status === 401) this.stats.sessionsDeleted++;
    } catch { /* the BMC will expire it */ }
  }

  private expectJson(res: RedfishResponse, what: string): Json {
    if (res.status !== 200) throw this.refusal(res, what);
    if (!isObject(res.body)) throw this.error('unreachable', `${what}: answered 200 without a JSON object`);
    return res.body;
  }

  private refusal(res: RedfishResponse, what: string): PowerError {
    const kind = res.status === 404 || res.status === 405 || res.status === 501 ? 'unsupported' : res.status >= 500 && res.status !== 501 ? 'unreachable' : 'refused';
    return this.error(kind, `${what}: HTTP ${res.status}${extendedMessage(res.body, ': ')}`);
  }

  private error(kind: PowerError['kind'], message: string): PowerError {
    return new PowerError('redfish', this.target, kind, message);
  }
}

/**
 * The ResetType values that do `action` on a BMC allowing `allowed` (undefined: it does not say, so
 * the standard's first choice), in order; undefined when none fits.
 */
export function resetPlan(action: PowerAction, allowed: readonly string[] | undefined): string[] | undefined {
  const choice = RESET_PREFERENCES[action].find((p) => (typeof p === 'string' ? [p] : p).every((v) => allowed === undefined || allowed.includes(v)));
  return choice === undefined ? undefined : typeof choice === 'string' ? [choice] : [...choice];
}

/** The messages of a Redfish error body (DSP0266 §9.6.4: error.@Message.ExtendedInfo, or a task's Messages). */
export function extendedMessage(body: unknown, prefix = ''): string {
  if (!isObject(body)) return '';
  const err = isObject(body['error']) ? body['error'] : body;
  const infos = (err['@Message.ExtendedInfo'] ?? err['Messages']) as unknown;
  const msgs = Array.isArray(infos) ? infos.filter(isObject).map((i) => String(i['Message'] ?? i['MessageId'] ?? '')).filter((m) => m !== '') : [];
  if (msgs.length === 0 && typeof err['message'] === 'string') msgs.push(err['message']);
  return msgs.length ? prefix + msgs.join('; ').slice(0, 500) : '';
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function odataId(v: unknown): string | undefined {
  return isObject(v) && typeof v['@odata.id'] === 'string' ? v['@odata.id'] : undefined;
}

function header(res: RedfishResponse, name: string): string | undefined {
  const v = res.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** A Location may be absolute (DSP0266 allows either); requests go to our own host only. */
function pathOf(uri: string): string {
  return /^https?:\/\//i.test(uri) ? new URL(uri).pathname : uri;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
