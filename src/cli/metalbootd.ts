#!/usr/bin/env node
/**
 * metalbootd: the daemon. Exit codes: 0 clean stop, 1 runtime failure,
 * 2 bad command line or configuration (one line on stderr says why).
 *
 * Under systemd (Type=notify) it sends READY=1 once startDaemon has resolved
 * (every listener up, tgtd reconciled once), STOPPING=1 when a stop signal
 * arrives, and WATCHDOG=1 at half of WatchdogSec= when the unit sets one.
 */
import { errorMessage } from '../errors/message.js';
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_PATH, loadConfigFile, ConfigError } from '../config/load.js';
import { LOG_LEVELS } from '../config/defaults.js';
import type { LogLevel } from '../config/types.js';
import { createLogger } from '../log.js';
import { startDaemon } from '../daemon.js';
import { packageVersion } from '../version.js';
import { SystemdNotifier, readNotifyEnv } from '../systemd/notify.js';

function usage(): string {
  return `usage: metalbootd [--config PATH] [--log-level ${LOG_LEVELS.join('|')}] [--version]\n  default config: ${DEFAULT_CONFIG_PATH}\n`;
}

async function main(): Promise<number> {
  // Whatever the shell's umask: files that libraries (LevelDB) and children (tgtd, qemu-img, cp)
  // create get no group or other bits; metalboot's own files also carry explicit modes.
  const shellUmask = process.umask(0o077);
  // Read (and remove from the environment) before any child process is started.
  const notifyEnv = readNotifyEnv();
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: 'string', short: 'c', default: DEFAULT_CONFIG_PATH },
        'log-level': { type: 'string' },
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`metalbootd: ${errorMessage(e)}\n${usage()}`);
    return 2;
  }
  if (args.help) { process.stdout.write(usage()); return 0; }
  if (args.version) { process.stdout.write(`metalbootd ${packageVersion()}\n`); return 0; }
  const level = args['log-level'];
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) {
    process.stderr.write(`metalbootd: --log-level: must be one of ${LOG_LEVELS.join(', ')}\n`);
    return 2;
  }

  let config;
  try {
    config = await loadConfigFile(args.config!);
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message : `config: ${args.config}: ${errorMessage(e)}`;
    process.stderr.write(`metalbootd: ${msg}\n`);
    return 2;
  }
  const log = createLogger({ level: (level as LogLevel | undefined) ?? config.logLevel });
  log.info({ event: 'daemon.starting', version: packageVersion(), config: args.config, umask: `${shellUmask.toString(8).padStart(4, '0')} -> 0077` }, 'metalboot starting');
  const systemd = new SystemdNotifier({ env: notifyEnv, log });
  if (systemd.enabled) {
    log.info({ event: 'systemd.notify-socket', socket: systemd.socket, watchdogIntervalMs: systemd.watchdogIntervalMs ?? null }, 'running under systemd');
  }
  // Pings during a slow start (first reconcile) too: they prove the event loop is alive.
  systemd.startWatchdog();

  process.on('uncaughtException', (e) => {
    log.fatal({ event: 'daemon.crash', err: e.message, stack: e.stack }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    log.fatal({ event: 'daemon.crash', err: errorMessage(e) }, 'unhandled rejection');
    process.exit(1);
  });

  let daemon;
  try {
    daemon = await startDaemon(config, log);
  } catch (e) {
    const err = errorMessage(e);
    log.fatal({ event: 'daemon.start-failed', err }, 'start failed');
    systemd.stopWatchdog();
    systemd.status(`start failed: ${err}`);
    return 1;
  }
  // startDaemon resolves after every listener is up and tgtd was reconciled once.
  systemd.ready('serving');

  // Graceful stop: stop receiving, finish in-flight requests (lease writes
  // and their replies), close the database, exit 0. A second signal forces.
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) { log.warn({ event: 'daemon.forced-exit', signal: sig }, 'second signal, exiting now'); process.exit(1); }
      stopping = true;
      log.info({ event: 'daemon.stopping', signal: sig }, 'stopping');
      systemd.stopping();
      daemon.stop().then(resolve, (e: unknown) => {
        log.error({ event: 'daemon.stop-error', err: errorMessage(e) }, 'error while stopping');
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  systemd.stopWatchdog();
  log.info({ event: 'daemon.stopped' }, 'metalboot stopped');
  return 0;
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`metalbootd: ${errorMessage(e)}\n`);
  process.exitCode = 1;
});
