/**
 * The one logger factory: pino JSON lines to stdout, which systemd-journald
 * collects (it adds host, unit and its own timestamp).
 *
 * Conventions, so logs can be filtered by field rather than by grepping prose:
 * - every line carries a stable, dotted `event` name; the message is for humans
 *   and may change, the event may not:
 *     log.info({ event: 'dhcp.ack', mac, ip }, 'lease granted');
 * - lines about a machine carry its `mac`;
 * - modules take a child logger (`log.child({ module: 'tftp' })`), never a global.
 * - secrets are redacted by key name (see SECRET_KEYS) in the object argument
 *   and in child bindings; they are NOT scrubbed from message strings, so never
 *   interpolate a secret into a message.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from './config/types.js';

export type Logger = PinoLogger;

/** Key names whose values never reach the log, at depths 0..3. */
export const SECRET_KEYS = [
  'password',
  'secret',
  'token',
  'chapSecret',
  'reverseChapSecret',
  'authorization',
  'cookie',
  'apiKey',
  'kg',
] as const;

export const REDACT_CENSOR = '[redacted]';

/** pino/fast-redact paths: `password`, `*.password`, `*.*.password`, `*.*.*.password`, ... */
export const REDACT_PATHS: readonly string[] = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

export interface LoggerOptions {
  level: LogLevel;
  /** A stream (tests) or a file descriptor; default fd 1 (stdout). */
  destination?: NodeJS.WritableStream | number;
}

export function createLogger(opts: LoggerOptions): Logger {
  // Synchronous writes to an fd: a fatal line written just before process.exit()
  // must not sit in a buffer. The daemon logs far too little for this to cost anything.
  const dest: DestinationStream | NodeJS.WritableStream =
    typeof opts.destination === 'object'
      ? opts.destination
      : pino.destination({ dest: opts.destination ?? 1, sync: true });
  return pino(
    {
      level: opts.level,
      // journald adds the hostname; the pid is kept to tell restarts apart.
      base: { pid: process.pid, service: 'metalboot' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"info" rather than 30, so `jq 'select(.level=="error")'` reads naturally.
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACT_PATHS], censor: REDACT_CENSOR },
    },
    dest as DestinationStream,
  );
}
