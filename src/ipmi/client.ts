/**
 * A client per BMC: keeps one session open and reuses it (keep-alive before the BMC's idle timeout,
 * re-open when it has expired), runs one command at a time, rate-limits, retries timeouts with
 * backoff and retries "node busy"-style completion codes. Passwords and session keys stay inside
 * session.ts closures; nothing here logs or formats them.
 */
import {
  CC_OK, CHANNEL_THIS, chassisControl, closeSession, decodeResponse, encodeRequest, getBootFlags, getChassisStatus,
  getChannelCipherSuites, getDeviceId, isTransientCompletion, parseCipherSuiteRecords, responseMatches, setBootDevice, setBootInfoAcknowledge,
  setBootOptionsInProgress, setBootValidBitClearing, setSessionPrivilegeLevel,
  type BootDevice, type BootFlags, type ChassisAction, type ChassisStatus, type CipherSuiteRecord, type Command,
  type DeviceId, type IpmiRequest,
} from './commands.js';
import { PRIV_ADMINISTRATOR, PRIV_OPERATOR } from './rakp.js';
import { IpmiAuthError, IpmiClosedError, IpmiCompletionError, IpmiError, IpmiProtocolError, IpmiTimeoutError } from './errors.js';
import { openSession, plainCommand, type CipherSuiteChoice, type Session, type SessionLink } from './session.js';
import { CORRUPT, Transport, openUdpDatagrams, type Datagrams, type RetryPolicy } from './transport.js';

export type IpmiPrivilege = 'administrator' | 'operator';

export interface IpmiClientOptions {
  readonly host: string;
  readonly port?: number;
  readonly username: string;
  readonly password: Buffer;
  readonly privilege?: IpmiPrivilege;
  readonly cipherSuite?: CipherSuiteChoice;
  /** First wait for a reply; doubles per retry up to 4×. */
  readonly timeoutMs?: number;
  readonly retries?: number;
  /** Send a harmless command when the session has been idle this long (BMCs drop idle sessions after ~60 s). */
  readonly keepAliveMs?: number;
  /** 0 = unlimited. Commands to one BMC are also never concurrent. */
  readonly maxCommandsPerSecond?: number;
}

export interface IpmiLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export const IPMI_DEFAULTS = { port: 623, privilege: 'administrator', cipherSuite: 'auto', timeoutMs: 1000, retries: 3, keepAliveMs: 20_000, maxCommandsPerSecond: 20 } as const;

export interface IpmiClientStats {
  readonly commands: number;
  readonly sessionsOpened: number;
  readonly sent: number;
  readonly retransmits: number;
  readonly dropped: number;
}

export interface SessionInfo {
  readonly version: '2.0' | '1.5';
  readonly suite: number;
}

export class IpmiClient {
  readonly bmc: string;
  private readonly policy: RetryPolicy;
  private readonly minIntervalMs: number;
  private readonly privilege: number;
  private transport: Transport | undefined;
  private session: Session | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private rqSeq = 0;
  private lastSendAt = 0;
  private lastActivityAt = 0;
  private keepAlive: NodeJS.Timeout | undefined;
  private closed = false;
  private commands = 0;
  private sessionsOpened = 0;

  constructor(
    private readonly opts: IpmiClientOptions,
    private readonly deps: { open?: (host: string, port: number) => Promise<Datagrams>; log?: IpmiLog } = {},
  ) {
    this.bmc = `${opts.host}:${opts.port ?? IPMI_DEFAULTS.port}`;
    this.policy = { timeoutMs: opts.timeoutMs ?? IPMI_DEFAULTS.timeoutMs, retries: opts.retries ?? IPMI_DEFAULTS.retries };
    const rate = opts.maxCommandsPerSecond ?? IPMI_DEFAULTS.maxCommandsPerSecond;
    this.minIntervalMs = rate > 0 ? 1000 / rate : 0;
    this.privilege = (opts.privilege ?? IPMI_DEFAULTS.privilege) === 'operator' ? PRIV_OPERATOR : PRIV_ADMINISTRATOR;
  }

  // ---------------------------------------------------------------- commands

  deviceId(): Promise<DeviceId> {
    return this.run('Get Device ID', getDeviceId());
  }

  chassisStatus(): Promise<ChassisStatus> {
    return this.run('Get Chassis Status', getChassisStatus());
  }

  async powerState(): Promise<'on' | 'off'> {
    return (await this.chassisStatus()).powerOn ? 'on' : 'off';
  }

  power(action: Exclude<ChassisAction, 'diag'>): Promise<null> {
    return this.run(`Chassis Control ${action}`, chassisControl(action));
  }

  bootFlags(): Promise<BootFlags> {
    return this.run('Get System Boot Options (boot flags)', getBootFlags());
  }

  /**
   * Sets the next boot device (IPMI v2.0 §28.13): set-in-progress, parameter 3 "don't clear the valid
   * bit" (real BMCs otherwise forget the flags 60 s after they are set), parameter 5, the boot info
   * acknowledge, set-complete; then reads parameter 5 back. Parameters 0, 3 and 4 are optional in the
   * spec, so a BMC that refuses them is tolerated; parameter 5 is not.
   */
  setBootDevice(f: { device: BootDevice; persistent?: boolean; efi?: boolean }): Promise<BootFlags> {
    return this.serialised(async () => {
      await this.optional('Set System Boot Options (set in progress)', setBootOptionsInProgress('in-progress'));
      await this.optional('Set System Boot Options (valid bit clearing)', setBootValidBitClearing());
      try {
        await this.inSession('Set System Boot Options (boot flags)', setBootDevice(f));
      } catch (e) {
        // Release set-in-progress (§28.13 parameter 0) so the next writer is not locked out.
        if (e instanceof IpmiCompletionError) await this.optional('Set System Boot Options (set complete)', setBootOptionsInProgress('complete'));
        throw e;
      }
      await this.optional('Set System Boot Options (boot info acknowledge)', setBootInfoAcknowledge());
      await this.optional('Set System Boot Options (set complete)', setBootOptionsInProgress('complete'));
      return this.inSession('Get System Boot Options (boot flags)', getBootFlags());
    });
  }

  /**
   * Get Channel Cipher Suites (§22.15), one try per record block, listing by suite (ipmi_sim 2.0.33
   * answers this form). Some BMCs never answer it: then null, after one timeout rather than
   * ipmitool's ~10 s of retries.
   */
  cipherSuites(): Promise<CipherSuiteRecord[] | null> {
    return this.serialised(async () => {
      const link = await this.link();
      const once: RetryPolicy = { timeoutMs: this.policy.timeoutMs, retries: 0 };
      const parts: Buffer[] = [];
      for (let index = 0; index < 64; index++) {
        const c = getChannelCipherSuites(index, CHANNEL_THIS);
        let data: Buffer;
        try {
          const res = await plainCommand(link, 'Get Channel Cipher Suites', c, once);
          if (res.completionCode !== CC_OK) return null;
          const d = c.decode(res.data);
          if (!d.ok) throw new IpmiProtocolError(this.bmc, `Get Channel Cipher Suites: ${d.reason}`);
          data = d.value.records;
        } catch (e) {
          if (e instanceof IpmiTimeoutError) return null;
          throw e;
        }
        parts.push(data);
        if (data.length < 16) break;
      }
      const recs = parseCipherSuiteRecords(Buffer.concat(parts));
      if (!recs.ok) throw new IpmiProtocolError(this.bmc, `Get Channel Cipher Suites: ${recs.reason}`);
      return recs.value;
    });
  }

  /** Opens the session now (it is otherwise opened by the first command) and says which kind it is. */
  sessionInfo(): Promise<SessionInfo> {
    return this.serialised(async () => {
      const s = await this.ensureSession();
      return { version: s.version, suite: s.suite };
    });
  }

  stats(): IpmiClientStats {
    const t = this.transport?.stats;
    return { commands: this.commands, sessionsOpened: this.sessionsOpened, sent: t?.sent ?? 0, retransmits: t?.retransmits ?? 0, dropped: t?.dropped ?? 0 };
  }

  /** Closes the session (best effort, one short try) and the socket. Queued commands fail with IpmiClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    const last = this.queue.catch(() => undefined);
    this.closed = true;
    this.stopKeepAlive();
    await Promise.race([last, sleep(this.policy.timeoutMs)]);
    const s = this.session;
    this.session = undefined;
    if (s && this.transport) {
      const c = closeSession(s.bmcSessionId);
      const req: IpmiRequest = { netFn: c.netFn, cmd: c.cmd, rqSeq: this.nextRqSeq(), data: c.data };
      try {
        await this.transport.exchange('Close Session', () => s.wrap(encodeRequest(req)), (b) => (Buffer.isBuffer(s.unwrap(b)) ? true : undefined), { timeoutMs: Math.min(300, this.policy.timeoutMs), retries: 0 });
      } catch { /* the BMC will time the session out */ }
    }
    this.transport?.close();
    this.transport = undefined;
  }

  // ---------------------------------------------------------------- machinery

  /** Runs one command in the session, serialised with every other command to this BMC. */
  run<T>(name: string, c: Command<T>): Promise<T> {
    return this.serialised(() => this.inSession(name, c));
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new IpmiClosedError(this.bmc));
    const p = this.queue.then(() => {
      if (this.closed) throw new IpmiClosedError(this.bmc);
      return fn();
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async optional(name: string, c: Command<null>): Promise<void> {
    try {
      await this.inSession(name, c);
    } catch (e) {
      if (!(e instanceof IpmiCompletionError)) throw e;
      this.deps.log?.debug({ event: 'ipmi.optional-refused', bmc: this.bmc, command: name, completionCode: e.completionCode }, `${name} not supported by this BMC`);
    }
  }

  /** Runs `c` in the current session; a session that has gone silent is re-opened once. */
  private async inSession<T>(name: string, c: Command<T>): Promise<T> {
    const fresh = this.session === undefined;
    const s = await this.ensureSession();
    try {
      return await this.command(s, name, c);
    } catch (e) {
      if (fresh || !(e instanceof IpmiTimeoutError)) throw e;
      // The BMC may have dropped our session (idle timeout, BMC reset): such BMCs stay silent.
      this.deps.log?.debug({ event: 'ipmi.session.reopen', bmc: this.bmc }, 'session stopped answering; opening a new one');
      this.session = undefined;
      return await this.command(await this.ensureSession(), name, c);
    }
  }

  private async command<T>(s: Session, name: string, c: Command<T>): Promise<T> {
    const transport = this.transport!;
    const req: IpmiRequest = { netFn: c.netFn, cmd: c.cmd, rqSeq: this.nextRqSeq(), data: c.data };
    const msg = encodeRequest(req);
    for (let attempt = 0; ; attempt++) {
      await this.pace();
      this.commands++;
      const sentAt = Date.now();
      const res = await transport.exchange(name, () => s.wrap(msg), (b) => {
        const m = s.unwrap(b);
        if (m === undefined || m === CORRUPT) return m;
        const r = decodeResponse(m);
        if (!r.ok) return CORRUPT;
        // A reply to an earlier request (another rqSeq) is unmatched, not corrupt (transport.ts).
        return responseMatches(req, r.value) ? r.value : undefined;
      }, this.policy);
      // The BMC's idle clock restarted no earlier than our first send of this request.
      this.lastActivityAt = sentAt;
      if (res.completionCode === CC_OK) {
        const d = c.decode(res.data);
        if (!d.ok) throw new IpmiProtocolError(this.bmc, `${name}: ${d.reason}`);
        return d.value;
      }
      if (isTransientCompletion(res.completionCode) && attempt < this.policy.retries) {
        await sleep(this.policy.timeoutMs * Math.min(2 ** attempt, 4));
        continue;
      }
      throw new IpmiCompletionError(this.bmc, name, res.completionCode);
    }
  }

  private async pace(): Promise<void> {
    const wait = this.lastSendAt + this.minIntervalMs - Date.now();
    if (wait > 0) await sleep(wait);
    this.lastSendAt = Date.now();
  }

  private async link(): Promise<SessionLink> {
    if (!this.transport) {
      const io = await (this.deps.open ?? openUdpDatagrams)(this.opts.host, this.opts.port ?? IPMI_DEFAULTS.port);
      this.transport = new Transport(io, this.bmc);
    }
    return {
      bmc: this.bmc, transport: this.transport, policy: this.policy,
      nextRqSeq: () => this.nextRqSeq(),
      warn: (event, msg) => this.deps.log?.warn({ event, bmc: this.bmc }, msg),
    };
  }

  private async ensureSession(): Promise<Session> {
    if (this.session) return this.session;
    const link = await this.link();
    const s = await openSession(link, { username: this.opts.username, password: this.opts.password, privilege: this.privilege },
      this.opts.cipherSuite ?? IPMI_DEFAULTS.cipherSuite);
    this.sessionsOpened++;
    // Sessions start at USER privilege (§13.16); raise to what was asked for.
    try {
      await this.command(s, 'Set Session Privilege Level', setSessionPrivilegeLevel(this.privilege));
    } catch (e) {
      // §22.18: 80h level not available for this user, 81h exceeds the user's or channel's limit.
      if (e instanceof IpmiCompletionError && (e.completionCode === 0x80 || e.completionCode === 0x81)) {
        throw new IpmiAuthError(this.bmc, 'privilege', `Set Session Privilege Level: ${e.message.replace(/^BMC [^:]+: /, '')}`);
      }
      throw e;
    }
    this.session = s;
    this.deps.log?.debug({ event: 'ipmi.session.open', bmc: this.bmc, version: s.version, suite: s.suite }, 'IPMI session open');
    this.startKeepAlive();
    return s;
  }

  /**
   * Arms a one-shot timer for lastActivityAt + keepAliveMs, so the BMC never goes longer than
   * keepAliveMs without hearing from us (a polling interval would let it drift to 1.5× that, past
   * a BMC's ~60 s idle timeout). A timer that finds newer activity re-arms to the new deadline.
   */
  private startKeepAlive(): void {
    const every = this.opts.keepAliveMs ?? IPMI_DEFAULTS.keepAliveMs;
    if (this.keepAlive || every <= 0 || this.closed) return;
    this.keepAlive = setTimeout(() => {
      this.keepAlive = undefined;
      if (!this.session || this.closed) return;
      if (Date.now() - this.lastActivityAt < every) { this.startKeepAlive(); return; }
      this.serialised(async () => {
        const s = this.session;
        // A command that ran while this waited in the queue already kept the session alive.
        if (!s || Date.now() - this.lastActivityAt < every) return;
        try {
          await this.command(s, 'Get Device ID (keep-alive)', getDeviceId());
        } catch (e) {
          if (this.session === s) this.session = undefined;
          this.deps.log?.debug({ event: 'ipmi.keepalive.failed', bmc: this.bmc, err: e instanceof IpmiError ? e.kind : 'error' }, 'keep-alive failed; next command re-opens the session');
        }
      }).catch(() => undefined).finally(() => { if (this.session) this.startKeepAlive(); });
    }, Math.max(0, this.lastActivityAt + every - Date.now()));
    this.keepAlive.unref();
  }

  private stopKeepAlive(): void {
    if (this.keepAlive) clearTimeout(this.keepAlive);
    this.keepAlive = undefined;
  }

  private nextRqSeq(): number {
    this.rqSeq = (this.rqSeq + 1) & 0x3f;
    return this.rqSeq;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
