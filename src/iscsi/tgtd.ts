/**
 * The tgtd adapter: runs tgtadm (argv from tgtadm.ts) through the injected
 * Runner, turns failures into TgtadmError with a kind, and optionally starts
 * and stops tgtd itself.
 *
 * Secrets: tgtadm only takes a CHAP secret as `--password <secret>` on its
 * command line, where for the milliseconds tgtadm runs any local user reads
 * it in /proc/<pid>/cmdline (and process accounting/audit records it). There
 * is no stdin, file or environment option in tgt 1.0.85. So by default
 * (`chapSecretsVia: 'control-socket'`) the one request that carries a secret,
 * new-account, is sent by this process on tgtd's control socket in tgtadm's
 * own wire format (tgtd-ipc.ts); every other request, secret-free, still runs
 * tgtadm. `'argv'` keeps the old way for a tgt whose socket this process
 * cannot reach. Either way the secret never reaches a log or an error: every
 * error thrown from here carries a redacted argv and stderr with the secret
 * scrubbed.
 *
 * tgtd ignores SIGTERM. stop() takes it offline, deletes every target with
 * --force, then asks it to exit (`--mode sys --op delete`); SIGKILL through
 * the pid file is the last resort.
 */
import { errorMessage } from '../errors/message.js';
import { readFile } from 'node:fs/promises';
import { CommandError, type Runner } from '../exec/run.js';
import { encodeNewAccountRequest, TgtdIpcError, tgtdRequest, tgtSocketPath } from './tgtd-ipc.js';
import {
  checkControlPort, classifyTgtadmFailure, parseAccountShow, parsePortalShow, parseTargetShow, portalArg, redactArgv,
  redactSecret, tgtadmArgv, type TgtadmErrorKind, type TgtadmOp, type TgtPortal, type TgtTarget,
} from './tgtadm.js';

/** A failed tgtadm: the argv is already redacted, `kind` says what went wrong. */
export class TgtadmError extends CommandError {
  constructor(
    readonly op: TgtadmOp['op'],
    readonly kind: TgtadmErrorKind,
    argv: readonly string[],
    reason: 'timeout' | 'exit' | 'spawn',
    code: number | undefined,
    stderr: string,
  ) {
    super(argv, reason, code, stderr);
    this.name = 'TgtadmError';
    this.message = `tgtadm ${op} failed (${kind}): ${this.message}`;
  }
}

export class TgtdStartError extends Error {
  constructor(readonly controlPort: number, reason: string) {
    super(`tgtd on control port ${controlPort}: ${reason}`);
    this.name = 'TgtdStartError';
  }
}

export interface TgtdOptions {
  readonly runner: Runner;
  /** tgtd's control port (`-C`); 0 is tgtd's default. Tests use a private one. */
  readonly controlPort?: number;
  readonly tgtadmPath?: string;
  readonly tgtdPath?: string;
  /** Per tgtadm call. Default 10 s. */
  readonly timeoutMs?: number;
  /** When true, ensureRunning() may start tgtd and stop() may stop it. */
  readonly manageTgtd?: boolean;
  /** The iSCSI portal tgtd listens on when we start it, checked after start. */
  readonly portal?: { readonly address: string; readonly port: number };
  /** tgtd's pid file (`-p`), for the SIGKILL fallback of stop(). */
  readonly pidFile?: string;
  /** How long ensureRunning waits for a started tgtd to answer. Default 5 s. */
  readonly startTimeoutMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly kill?: (pid: number, signal: NodeJS.Signals) => void;
  /** How a CHAP secret reaches tgtd: on its control socket (default, never on an argv) or tgtadm's `--password`. */
  readonly chapSecretsVia?: 'control-socket' | 'argv';
  /** The control socket's path without `.<port>` (tgtadm's TGT_IPC_SOCKET); default /var/run/tgtd/socket. */
  readonly socketBase?: string;
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Tgtd {
  readonly controlPort: number;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: TgtdOptions) {
    this.controlPort = checkControlPort(opts.controlPort ?? 0);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.sleep = opts.sleep ?? realSleep;
  }

  /** Runs one tgtadm operation; every failure becomes a TgtadmError with a redacted argv. */
  async run(op: TgtadmOp): Promise<string> {
    if (op.op === 'new-account' && (this.opts.chapSecretsVia ?? 'control-socket') === 'control-socket') return this.newAccountOnSocket(op);
    const argv = tgtadmArgv(op, { controlPort: this.controlPort, ...(this.opts.tgtadmPath ? { tgtadm: this.opts.tgtadmPath } : {}) });
    const scrub = (s: string): string => redactSecret(op, s);
    try {
      return (await this.opts.runner(argv, { timeoutMs: this.timeoutMs })).stdout;
    } catch (e) {
      // Built fresh, never wrapping `e` as cause: the original carries the secret in its argv.
      if (e instanceof CommandError) {
        const kind = e.reason === 'timeout' ? 'timeout' : e.reason === 'spawn' ? 'spawn' : classifyTgtadmFailure(e.code, e.stderr);
        throw new TgtadmError(op.op, kind, redactArgv(argv), e.reason, e.code, scrub(e.stderr));
      }
      throw new TgtadmError(op.op, 'other', redactArgv(argv), 'spawn', undefined, scrub(errorMessage(e)));
    }
  }

  /**
   * new-account without an argv: the request tgtadm would send, sent by us (tgtd-ipc.ts). Failures
   * become the same TgtadmError kinds as tgtadm's (its exit codes: 22 for a tgtd refusal, 107 when
   * tgtd is not there); the argv in the error is the equivalent tgtadm command, secret redacted.
   */
  private async newAccountOnSocket(op: Extract<TgtadmOp, { op: 'new-account' }>): Promise<string> {
    const request = encodeNewAccountRequest(op.user, op.secret);
    try {
      return await tgtdRequest(tgtSocketPath(this.controlPort, this.opts.socketBase), this.controlPort, request, this.timeoutMs);
    } catch (e) {
      const argv = redactArgv(tgtadmArgv(op, { controlPort: this.controlPort }));
      const msg = redactSecret(op, errorMessage(e));
      if (e instanceof TgtdIpcError && e.reason === 'timeout') throw new TgtadmError('new-account', 'timeout', argv, 'timeout', undefined, msg);
      if (e instanceof TgtdIpcError && e.reason === 'connect') throw new TgtadmError('new-account', 'not-running', argv, 'exit', 107, `tgtadm: can't connect: ${msg}`);
      throw new TgtadmError('new-account', classifyTgtadmFailure(22, msg), argv, 'exit', 22, `tgtadm: ${msg}`);
    } finally {
      request.fill(0); // the only copy of the secret this function made
    }
  }

  async show(): Promise<TgtTarget[]> {
    return parseTargetShow(await this.run({ op: 'show-targets' }));
  }

  async accounts(): Promise<string[]> {
    return parseAccountShow(await this.run({ op: 'show-accounts' }));
  }

  async portals(): Promise<TgtPortal[]> {
    return parsePortalShow(await this.run({ op: 'show-portals' }));
  }

  /** True when a tgtd answers on our control port. */
  async isRunning(): Promise<boolean> {
    try {
      await this.run({ op: 'show-sys' });
      return true;
    } catch (e) {
      if (e instanceof TgtadmError && e.kind === 'not-running') return false;
      throw e;
    }
  }

  /**
   * Makes sure a tgtd answers on the control port. With manageTgtd, starts
   * one in daemon mode (tgtd forks; its parent exits once the control socket
   * is set up) and waits for it, bounded by startTimeoutMs. Then checks its
   * portal: tgtd that cannot bind the configured portal silently falls back
   * to 0.0.0.0:3260 — we stop it rather than serve disks on every interface.
   */
  async ensureRunning(): Promise<'running' | 'started'> {
    if (await this.isRunning()) return 'running';
    if (!this.opts.manageTgtd) throw new TgtdStartError(this.controlPort, 'not running and manageTgtd is off');
    const argv = [this.opts.tgtdPath ?? 'tgtd', '-C', String(this.controlPort),
      ...(this.opts.pidFile ? ['-p', this.opts.pidFile] : []),
      ...(this.opts.portal ? ['--iscsi', portalArg(this.opts.portal.address, this.opts.portal.port)] : [])];
    try {
      await this.opts.runner(argv, { timeoutMs: this.timeoutMs });
    } catch (e) {
      throw new TgtdStartError(this.controlPort, errorMessage(e));
    }
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 5000);
    while (!(await this.isRunning())) {
      if (Date.now() >= deadline) throw new TgtdStartError(this.controlPort, 'started but never answered on its control socket');
      await this.sleep(50);
    }
    if (this.opts.portal) {
      const want = this.opts.portal;
      const have = await this.portals();
      const ok = have.length > 0 && have.every((p) => p.address === want.address && p.port === want.port);
      if (!ok) {
        await this.stop().catch(() => undefined);
        throw new TgtdStartError(this.controlPort,
          `portal ${want.address}:${want.port} not bound (tgtd listens on ${have.map((p) => `${p.address}:${p.port}`).join(', ') || 'nothing'}); port in use?`);
      }
    }
    return 'started';
  }

  /**
   * Stops the tgtd on our control port (manageTgtd only): offline, delete
   * every target with --force (sys delete is refused while targets exist),
   * sys delete, then wait; SIGKILL via the pid file if it is still there.
   */
  async stop(waitMs = 3000): Promise<void> {
    if (!this.opts.manageTgtd) throw new TgtdStartError(this.controlPort, 'stop() needs manageTgtd');
    if (!(await this.isRunning())) return;
    const pid = await this.readPid();
    await this.run({ op: 'sys-state', state: 'offline' }).catch(() => undefined);
    for (const t of await this.show().catch(() => [])) await this.run({ op: 'delete-target', tid: t.tid, force: true }).catch(() => undefined);
    await this.run({ op: 'sys-delete' }).catch(() => undefined);
    const deadline = Date.now() + waitMs;
    while (await this.isRunning().catch(() => true)) {
      if (Date.now() >= deadline) {
        if (pid === undefined) throw new TgtdStartError(this.controlPort, 'did not exit and there is no pid file to SIGKILL');
        try { (this.opts.kill ?? process.kill)(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
        return;
      }
      await this.sleep(50);
    }
  }

  private async readPid(): Promise<number | undefined> {
    if (!this.opts.pidFile) return undefined;
    const n = Number((await readFile(this.opts.pidFile, 'utf8').catch(() => '')).trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  }
}
