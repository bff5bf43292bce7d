/**
 * The one way metalboot runs an external command: execFile with an argv
 * array (never a shell string), a timeout, captured output, and a typed error
 * that names the command.
 */
import { execFile } from 'node:child_process';
import type { Readable } from 'node:stream';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface RunOptions {
  readonly timeoutMs: number;
  /** Exit codes that are not an error (default [0]). */
  readonly okCodes?: readonly number[];
  readonly maxBuffer?: number;
  /**
   * Streamed to the command's stdin (e.g. `rbd import -`); without it stdin is a pipe nobody writes to. A
   * source that fails ends the command: it is killed and the call rejects with the source's error.
   */
  readonly stdin?: Readable;
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly reason: 'timeout' | 'exit' | 'spawn',
    readonly code: number | undefined,
    readonly stderr: string,
  ) {
    super(`${argv[0]} ${reason === 'timeout' ? 'timed out' : reason === 'spawn' ? 'could not start' : `exited with ${code}`}${stderr ? `: ${stderr.trim().split('\n').slice(-1)[0]?.slice(0, 300)}` : ''}`);
    this.name = 'CommandError';
  }
}

export type Runner = (argv: readonly string[], opts: RunOptions) => Promise<RunResult>;

export const runCommand: Runner = (argv, opts) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (!file) { reject(new CommandError(argv, 'spawn', undefined, 'empty argv')); return; }
    let sourceError: Error | undefined;
    const child = execFile(file, args, { timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: opts.maxBuffer ?? 1 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (sourceError) { reject(sourceError); return; }
        if (!err) { resolve({ stdout, stderr, code: 0 }); return; }
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string };
        if (typeof e.code === 'string') { reject(new CommandError(argv, 'spawn', undefined, e.message)); return; }
        if (e.killed || e.signal === 'SIGKILL') { reject(new CommandError(argv, 'timeout', undefined, stderr)); return; }
        const code = typeof e.code === 'number' ? e.code : -1;
        if ((opts.okCodes ?? [0]).includes(code)) { resolve({ stdout, stderr, code }); return; }
        reject(new CommandError(argv, 'exit', code, stderr));
      });
    if (opts.stdin && child.stdin) {
      // EPIPE when the command exits early is reported by the command's own exit status.
      child.stdin.on('error', () => undefined);
      opts.stdin.on('error', (e) => { sourceError = e; child.kill('SIGKILL'); });
      opts.stdin.pipe(child.stdin);
    }
  });
