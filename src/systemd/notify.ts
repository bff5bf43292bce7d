/**
 * systemd's service notification protocol (sd_notify(3)) without libsystemd:
 * READY=1 once the daemon serves, STOPPING=1 when it begins to stop, STATUS=
 * lines for `systemctl status`, and WATCHDOG=1 keep-alives at half of
 * $WATCHDOG_USEC when the unit sets WatchdogSec=.
 *
 * The datagram is sent by the native addon (native/netsock.c `notify`): node
 * has no AF_UNIX datagram sockets. Outside systemd ($NOTIFY_SOCKET unset)
 * every call is a no-op. A failed send is logged (once per kind of failure),
 * never thrown: a lost notification must not take the daemon down.
 *
 * Like sd_notify(…, unset_environment=1), the variables are removed from
 * process.env once read, so commands the daemon runs (tgtd, lvm, qemu-img)
 * never inherit them and cannot speak for the daemon.
 */
import { errorMessage } from '../errors/message.js';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Sends one notification datagram; throws on failure. */
export type NotifySend = (socketPath: string, state: string) => void;

export interface NotifyLog {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

interface NotifyAddon {
  notify(socketPath: string, state: string): void;
}

let addon: NotifyAddon | undefined;
/** The addon's notify, from <root>/build/Release/netsock.node (dist/src/systemd/notify.js -> <root>). */
export const nativeNotify: NotifySend = (socketPath, state) => {
  if (!addon) {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    addon = createRequire(import.meta.url)(path.join(root, 'build/Release/netsock.node')) as NotifyAddon;
    if (typeof addon.notify !== 'function') throw new Error('native addon has no notify(); rebuild it (npm ci / node-gyp rebuild)');
  }
  addon.notify(socketPath, state);
};

export interface NotifyEnv {
  /** $NOTIFY_SOCKET: an absolute path, or @name for an abstract socket. */
  readonly socket: string | undefined;
  /** Keep-alive interval in ms (half of $WATCHDOG_USEC), when the watchdog is on for this process. */
  readonly watchdogIntervalMs: number | undefined;
}

/**
 * Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID (sd_watchdog_enabled(3)
 * rules: WATCHDOG_PID, when set, must be our pid) and, with unset, deletes them.
 */
export function readNotifyEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid, unset = true): NotifyEnv {
  const sock = env['NOTIFY_SOCKET'];
  const usecText = env['WATCHDOG_USEC'];
  const pidText = env['WATCHDOG_PID'];
  if (unset) {
    delete env['NOTIFY_SOCKET'];
    delete env['WATCHDOG_USEC'];
    delete env['WATCHDOG_PID'];
  }
  let watchdogIntervalMs: number | undefined;
  const usec = usecText !== undefined && /^\d+$/.test(usecText) ? Number(usecText) : NaN;
  const forUs = pidText === undefined || pidText === '' || Number(pidText) === pid;
  if (Number.isSafeInteger(usec) && usec > 0 && forUs) {
    // Half the timeout, as sd_watchdog_enabled(3) recommends; at least 1 ms.
    watchdogIntervalMs = Math.max(1, Math.floor(usec / 2000));
  }
  return { socket: sock !== undefined && sock !== '' ? sock : undefined, watchdogIntervalMs };
}

export interface SystemdNotifierOptions {
  readonly env?: NotifyEnv;
  readonly log?: NotifyLog;
  readonly send?: NotifySend;
}

export class SystemdNotifier {
  readonly socket: string | undefined;
  readonly watchdogIntervalMs: number | undefined;
  private readonly send: NotifySend;
  private readonly log: NotifyLog | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly reported = new Set<string>();

  constructor(opts: SystemdNotifierOptions = {}) {
    const env = opts.env ?? readNotifyEnv();
    this.socket = env.socket;
    // A watchdog needs somewhere to send its pings.
    this.watchdogIntervalMs = env.socket !== undefined ? env.watchdogIntervalMs : undefined;
    this.send = opts.send ?? nativeNotify;
    this.log = opts.log;
  }

  /** True when running under a service manager that listens. */
  get enabled(): boolean {
    return this.socket !== undefined;
  }

  /**
   * Sends "KEY=value" lines as one datagram. Returns whether it was sent
   * (false outside systemd or on failure, which is logged).
   */
  notify(fields: Readonly<Record<string, string | number>>): boolean {
    if (this.socket === undefined) return false;
    const state = Object.entries(fields)
      // A newline inside a value would start a new (forged) field.
      .map(([k, v]) => `${k}=${String(v).replace(/[\r\n]+/g, ' ')}`)
      .join('\n');
    try {
      this.send(this.socket, state);
      this.log?.debug({ event: 'systemd.notify', state: state.split('\n')[0] }, 'notified systemd');
      return true;
    } catch (e) {
      const err = errorMessage(e);
      const code = (e as { code?: unknown }).code;
      // One warning per distinct failure: a missing socket must not flood the log every watchdog tick.
      const k = `${String(code)}:${err}`;
      if (!this.reported.has(k)) {
        this.reported.add(k);
        this.log?.warn({ event: 'systemd.notify-failed', socket: this.socket, err }, 'cannot notify systemd');
      }
      return false;
    }
  }

  ready(status = 'ready'): boolean {
    return this.notify({ READY: 1, STATUS: status });
  }

  stopping(status = 'stopping'): boolean {
    return this.notify({ STOPPING: 1, STATUS: status });
  }

  status(status: string): boolean {
    return this.notify({ STATUS: status });
  }

  /** Starts WATCHDOG=1 pings at half of $WATCHDOG_USEC (no-op without a watchdog). They prove the event loop runs. */
  startWatchdog(): void {
    const ms = this.watchdogIntervalMs;
    if (ms === undefined || this.watchdog) return;
    this.notify({ WATCHDOG: 1 });
    this.watchdog = setInterval(() => { this.notify({ WATCHDOG: 1 }); }, ms);
    // The daemon's sockets keep it alive, not the watchdog.
    this.watchdog.unref();
  }

  stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}
