/**
 * A private tgtd for tests: its own network namespace (portal
 * 127.0.0.1:3260 inside it, so nothing clashes with a tgtd on the host or the
 * lab's), its own control port (a filesystem socket, so tgtadm in the root
 * namespace reaches it), bounded by `timeout`, and killed at teardown.
 *
 * tgtd ignores SIGTERM, so teardown asks it to exit through tgtadm, then
 * SIGKILLs whatever is left, then removes the control socket files tgtd
 * leaves behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import type { Test } from 'tap';
import { runCommand, type RunResult, type Runner } from '../../src/exec/run.js';
import { CONTROL_PORT_MAX } from '../../src/iscsi/tgtadm.js';
import { Tgtd } from '../../src/iscsi/tgtd.js';
import { TestNet, withoutInheritedFds } from './netns.js';
import { toolMissing } from './tools.js';

export const TGT_SOCKET_DIR = '/var/run/tgtd';

/** Skip reason when the tools or privileges are missing. */
export function tgtdUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, tgtd)';
  return toolMissing('tgtd', 'iscsi-inq');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A control port nobody holds: tgtd's lock file for it does not exist. */
export function freeControlPort(taken: ReadonlySet<number> = new Set()): number {
  for (let i = 0; i < 1000; i++) {
    // tgtd/tgtadm take -C 0..32767 only.
    const port = 20000 + Math.floor(Math.random() * (CONTROL_PORT_MAX - 20000 + 1));
    if (!taken.has(port) && !existsSync(`${TGT_SOCKET_DIR}/socket.${port}.lock`) && !existsSync(`${TGT_SOCKET_DIR}/socket.${port}`)) return port;
  }
  throw new Error('no free tgtd control port');
}

export async function removeControlSocket(port: number): Promise<void> {
  await rm(`${TGT_SOCKET_DIR}/socket.${port}`, { force: true });
  await rm(`${TGT_SOCKET_DIR}/socket.${port}.lock`, { force: true });
}

/**
 * A Runner that runs `tgtd` (only) inside a namespace, without the test's inherited fds (a
 * daemonised tgtd that outlives a killed test must not hold the shared test lock); everything
 * else as is.
 */
export function nsTgtdRunner(ns: string, base: Runner = runCommand): Runner {
  return (argv, opts) => {
    if (argv[0] !== 'tgtd') return base(argv, opts);
    const [cmd, args] = withoutInheritedFds(['ip', 'netns', 'exec', ns, ...argv]);
    return base([cmd, ...args], opts);
  };
}

export class PrivateTgtd {
  readonly portal = { address: '127.0.0.1', port: 3260 } as const;
  readonly tgtd: Tgtd;
  private proc: ChildProcess | undefined;
  private log = '';
  private readonly extraPorts = new Set<number>();

  private constructor(readonly net: TestNet, readonly ns: string, readonly controlPort: number, private readonly ttlSec: number) {
    this.tgtd = new Tgtd({ runner: runCommand, controlPort, timeoutMs: 5000 });
  }

  /** Starts in a fresh namespace; stopped and cleaned at t's teardown. */
  static async start(t: Test, prefix = 'tgt', ttlSec = 300): Promise<PrivateTgtd> {
    const net = new TestNet(prefix);
    let me: PrivateTgtd | undefined;
    t.teardown(async () => {
      await me?.destroy();
      await net.destroy();
    });
    const ns = await net.addNamespace('t');
    for (let attempt = 0; ; attempt++) {
      me = new PrivateTgtd(net, ns, freeControlPort(), ttlSec);
      try {
        await me.launch();
        return me;
      } catch (e) {
        await me.destroy();
        if (attempt >= 4) throw e;
      }
    }
  }

  /** Runs a command inside the namespace; never throws on exit codes in okCodes. */
  exec(argv: readonly string[], timeoutMs = 30_000, okCodes: readonly number[] = [0]): Promise<RunResult> {
    return runCommand(['ip', 'netns', 'exec', this.ns, ...argv], { timeoutMs, okCodes, maxBuffer: 16 << 20 });
  }

  /** A long-running process in the namespace (bounded by `timeout`), killed at teardown. */
  spawnInNs(argv: readonly string[], ttlSec = 120): ChildProcess {
    const p = spawn(...withoutInheritedFds(['ip', 'netns', 'exec', this.ns, 'timeout', '-k', '2', String(ttlSec), ...argv]), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.net.track(p);
    return p;
  }

  /** Reserves another control port in this test (for a tgtd the adapter starts itself); cleaned at teardown. */
  extraControlPort(): number {
    const p = freeControlPort(new Set([this.controlPort, ...this.extraPorts]));
    this.extraPorts.add(p);
    return p;
  }

  get output(): string {
    return this.log;
  }

  /** tgtd's own pid (the spawned process is `timeout`, its parent). */
  async pid(): Promise<number | undefined> {
    const parent = this.proc?.pid;
    if (parent === undefined) return undefined;
    const kids = await readFile(`/proc/${parent}/task/${parent}/children`, 'utf8').catch(() => '');
    const pid = Number(kids.trim().split(/\s+/)[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  /** SIGKILL to tgtd itself (not via tgtadm): the crash case. Resolves once it is gone. */
  async kill9(): Promise<void> {
    const pid = await this.pid();
    const p = this.proc;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    if (p) await this.waitExit(p, 5000);
    this.proc = undefined;
  }

  /** Starts tgtd again on the same control port and portal; resolves with ms until tgtadm answered. */
  async restart(): Promise<number> {
    const t0 = performance.now();
    await this.launch();
    return performance.now() - t0;
  }

  private async launch(): Promise<void> {
    const p = spawn(...withoutInheritedFds(['ip', 'netns', 'exec', this.ns, 'timeout', '-k', '2', String(this.ttlSec),
      'tgtd', '-f', '-C', String(this.controlPort), '--iscsi', `portal=${this.portal.address}:${this.portal.port}`]), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    const collect = (d: Buffer): void => { this.log = (this.log + d.toString('utf8')).slice(-20_000); };
    p.stdout?.on('data', collect);
    p.stderr?.on('data', collect);
    const deadline = Date.now() + 5000;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`tgtd exited at start (${p.exitCode ?? p.signalCode}): ${this.log.trim().slice(-500)}`);
      if (await this.tgtd.isRunning().catch(() => false)) break;
      if (Date.now() > deadline) throw new Error(`tgtd on control port ${this.controlPort} did not answer within 5 s: ${this.log.trim().slice(-500)}`);
      await sleep(20);
    }
    // Our portal, not tgtd's 0.0.0.0:3260 fallback (which it uses when the portal cannot be bound).
    const portals = await this.tgtd.portals();
    if (portals.length !== 1 || portals[0]!.address !== this.portal.address || portals[0]!.port !== this.portal.port) {
      throw new Error(`tgtd portal is ${JSON.stringify(portals)}`);
    }
  }

  private waitExit(p: ChildProcess, ms: number): Promise<boolean> {
    if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
    return new Promise((r) => {
      const timer = setTimeout(() => r(false), ms);
      p.once('exit', () => { clearTimeout(timer); r(true); });
    });
  }

  /** Stops tgtd (tgtadm first, SIGKILL if needed) and removes its socket files. Idempotent. */
  async destroy(): Promise<void> {
    const p = this.proc;
    for (const port of [this.controlPort, ...this.extraPorts]) {
      const tg = new Tgtd({ runner: runCommand, controlPort: port, timeoutMs: 3000, manageTgtd: true });
      await tg.stop(2000).catch(() => undefined);
    }
    if (p && !(await this.waitExit(p, 2000))) {
      const pid = await this.pid();
      if (pid !== undefined) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      p.kill('SIGKILL');
      await this.waitExit(p, 3000);
    }
    this.proc = undefined;
    for (const port of [this.controlPort, ...this.extraPorts]) await removeControlSocket(port);
  }
}
