/** A real pino logger (the daemon's createLogger) writing to memory, for tests that read its lines. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';
import type { LogLevel } from '../../src/config/types.js';

export function memoryLogger(level: LogLevel = 'info'): { log: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
  return {
    log: createLogger({ level, destination: stream }),
    lines: () => chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
