/**
 * Test networks: network namespaces, veth pairs and bridges that a test
 * creates and removes itself. Nothing here sends a packet anywhere but into
 * these namespaces. Every process started is bounded by a timeout and killed
 * at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { runCommand, type RunResult } from '../../src/exec/run.js';

export async function sh(argv: readonly string[], timeoutMs = 20_000, okCodes: readonly number[] = [0]): Promise<RunResult> {
  return runCommand(argv, { timeoutMs, okCodes, maxBuffer: 64 << 20 });
}

/** Skip reason when the test cannot create namespaces (not root). */
export function netnsUnavailable(): string | false {
  return process.getuid?.() === 0 ? false : 'needs root for network namespaces';
}

/**
 * `spawn(...withoutInheritedFds(argv))`: argv run with only stdin/out/err open. Node's children
 * inherit every fd the test process got without close-on-exec, among them the fd of
 * `flock /tmp/mb-heavy.lock` (the shared test lock): a tgtd or a daemon that outlives its test
 * (killed test process, `timeout` still counting) would keep everyone else's tests waiting.
 * The shell execs argv, so the pid stays the one spawn returns.
 */
export function withoutInheritedFds(argv: readonly string[]): [string, string[]] {
  const script = 'for fd in /proc/$$/fd/*; do fd=${fd##*/}; case $fd in 0|1|2) ;; *) eval "exec $fd>&-" 2>/dev/null ;; esac; done; exec "$@"';
  return ['bash', ['-c', script, 'bash', ...argv]];
}

let seq = 0;

export class TestNet {
  private readonly namespaces: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private readonly paths: string[] = [];
  /** Short unique tag for interface and namespace names (interface names are at most 15 bytes). */
  readonly tag: string;

  constructor(prefix: string) {
    this.tag = `${prefix}${(process.pid % 1000).toString(36)}${(seq++).toString(36)}`.slice(0, 8);
  }

  ns(name: string): string {
    return `mbt-${this.tag}-${name}`;
  }

  async addNamespace(name: string): Promise<string> {
    const ns = this.ns(name);
    await sh(['ip', 'netns', 'del', ns], 5000, [0, 1]);
    await sh(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.ip(ns, ['link', 'set', 'lo', 'up']);
    return ns;
  }

  async ip(ns: string, args: readonly string[]): Promise<RunResult> {
    return sh(['ip', '-n', ns, ...args]);
  }

  /** A veth pair between two namespaces, both ends up, optional addresses (CIDR form). */
  async veth(nsA: string, devA: string, nsB: string, devB: string, addrA?: string, addrB?: string): Promise<void> {
    await sh(['ip', 'link', 'add', devA, 'netns', nsA, 'type', 'veth', 'peer', 'name', devB, 'netns', nsB]);
    if (addrA) await this.ip(nsA, ['addr', 'add', addrA, 'dev', devA]);
    if (addrB) await this.ip(nsB, ['addr', 'add', addrB, 'dev', devB]);
    await this.ip(nsA, ['link', 'set', devA, 'up']);
    await this.ip(nsB, ['link', 'set', devB, 'up']);
  }

  async bridge(ns: string, dev: string, addr?: string): Promise<void> {
    await this.ip(ns, ['link', 'add', dev, 'type', 'bridge']);
    // No STP delay: ports forward at once.
    await this.ip(ns, ['link', 'set', dev, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    if (addr) await this.ip(ns, ['addr', 'add', addr, 'dev', dev]);
    await this.ip(ns, ['link', 'set', dev, 'up']);
  }

  async exec(ns: string, argv: readonly string[], timeoutMs = 20_000, okCodes: readonly number[] = [0]): Promise<RunResult> {
    return sh(['ip', 'netns', 'exec', ns, ...argv], timeoutMs, okCodes);
  }

  /** A long-running process in ns, killed at teardown at the latest (and by `timeout` after ttlSec). */
  spawn(ns: string, argv: readonly string[], ttlSec = 600, cwd?: string): ChildProcess {
    const p = spawn(...withoutInheritedFds(['ip', 'netns', 'exec', ns, 'timeout', '-k', '5', String(ttlSec), ...argv]), { stdio: ['ignore', 'pipe', 'pipe'], cwd });
    this.procs.push(p);
    return p;
  }

  track(p: ChildProcess): void {
    this.procs.push(p);
  }

  /** A temporary file or directory removed at teardown, after the processes. */
  removeOnDestroy(path: string): void {
    this.paths.push(path);
  }

  async destroy(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await new Promise<void>((r) => { const t = setTimeout(r, 3000); p.once('exit', () => { clearTimeout(t); r(); }); });
      }
    }
    for (const ns of this.namespaces.splice(0).reverse()) {
      // Kill anything left in the namespace (e.g. grandchildren), then delete it.
      const pids = await sh(['ip', 'netns', 'pids', ns], 5000, [0, 1]).catch(() => undefined);
      for (const pid of (pids?.stdout ?? '').split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
      }
      await sh(['ip', 'netns', 'del', ns], 5000, [0, 1]).catch(() => undefined);
    }
    for (const p of this.paths.splice(0)) await rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Collects a child's output lines, and waits for a line matching a predicate. */
export class LineCollector {
  readonly lines: string[] = [];
  private waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];

  constructor(stream: NodeJS.ReadableStream | null | undefined) {
    let buf = '';
    stream?.setEncoding?.('utf8');
    stream?.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => (w.pred(line) ? (w.resolve(line), false) : true));
      }
    });
  }

  waitFor(pred: (l: string) => boolean, timeoutMs: number, what = 'line'): Promise<string> {
    const found = this.lines.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (l: string) => { clearTimeout(t); resolve(l); } };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last lines:\n${this.lines.slice(-15).join('\n')}`));
      }, timeoutMs);
      // A waiter that lost a Promise.race must not keep the test process alive.
      t.unref();
      this.waiters.push(w);
    });
  }
}
