/** Runs the real metalbootd (from dist/) inside a test namespace. */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCollector, type TestNet } from './netns.js';

/** <root> from dist/test/helpers/daemon.js */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const METALBOOTD = path.join(REPO_ROOT, 'dist/src/cli/metalbootd.js');

export interface LogLine {
  event?: string;
  [k: string]: unknown;
}

export class DaemonUnderTest {
  readonly out: LineCollector;
  readonly err: LineCollector;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly proc: ChildProcess, readonly configPath: string, readonly dataDir: string) {
    this.out = new LineCollector(proc.stdout);
    this.err = new LineCollector(proc.stderr);
    this.exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  }

  /** Parsed JSON log lines so far. */
  logs(): LogLine[] {
    return this.out.lines.flatMap((l) => { try { return [JSON.parse(l) as LogLine]; } catch { return []; } });
  }

  events(name: string): LogLine[] {
    return this.logs().filter((l) => l.event === name);
  }

  async waitForEvent(name: string, timeoutMs: number, pred: (l: LogLine) => boolean = () => true): Promise<LogLine> {
    const line = await this.out.waitFor((l) => {
      try { const j = JSON.parse(l) as LogLine; return j.event === name && pred(j); } catch { return false; }
    }, timeoutMs, `event ${name}`);
    return JSON.parse(line) as LogLine;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    // ip netns exec + timeout sit between us and node: signal node itself.
    const pid = await this.nodePid();
    if (pid !== undefined) { try { process.kill(pid, signal); } catch { /* gone */ } }
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  /** The daemon's own pid, from its log lines. */
  async nodePid(): Promise<number | undefined> {
    const l = this.logs().find((x) => typeof x.pid === 'number');
    return l?.pid as number | undefined;
  }
}

export async function writeConfig(yaml: string, dir?: string): Promise<{ configPath: string; dir: string }> {
  const d = dir ?? (await mkdtemp(path.join(os.tmpdir(), 'mbt-')));
  const configPath = path.join(d, 'metalboot.yaml');
  await writeFile(configPath, yaml);
  return { configPath, dir: d };
}

/**
 * Starts metalbootd in ns with the given YAML (use `{{dataDir}}` for the
 * data directory) and waits for daemon.ready.
 */
export async function startDaemon(net: TestNet, ns: string, yaml: string, opts: { dataDir?: string; logLevel?: string; readyTimeoutMs?: number; ttlSec?: number } = {}): Promise<DaemonUnderTest> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mbt-'));
  // A caller-provided dataDir outlives this daemon (restart tests); it removes it itself.
  net.removeOnDestroy(dir);
  const dataDir = opts.dataDir ?? path.join(dir, 'data');
  const { configPath } = await writeConfig(yaml.replaceAll('{{dataDir}}', dataDir), dir);
  const proc = net.spawn(ns, ['node', METALBOOTD, '--config', configPath, '--log-level', opts.logLevel ?? 'debug'], opts.ttlSec ?? 600, REPO_ROOT);
  const d = new DaemonUnderTest(proc, configPath, dataDir);
  await Promise.race([
    d.waitForEvent('daemon.ready', opts.readyTimeoutMs ?? 15_000),
    d.exited.then((r) => { throw new Error(`metalbootd exited (${r.code ?? r.signal}) before ready: ${d.err.lines.join(' | ')} ${d.out.lines.slice(-5).join(' | ')}`); }),
  ]);
  return d;
}
