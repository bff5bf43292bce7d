/**
 * A real single-host Ceph cluster for a test (scripts/ceph-lab.sh: 1 mon, 1 mgr, 3 BlueStore OSDs
 * on sparse files, replica 2, cephx), optionally inside a test's network namespace so that the
 * daemon and tgtd in that namespace reach it at 127.0.0.1. Stopped and removed at teardown.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { runCommand, type Runner } from '../../src/exec/run.js';
import { toolMissing } from './tools.js';

export const CEPH_LAB = fileURLToPath(new URL('../../../scripts/ceph-lab.sh', import.meta.url));

/** Skip reason when the cluster cannot run here. */
export function cephUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (Ceph daemons, namespaces)';
  return toolMissing('rbd', 'ceph-mon', 'ceph-mgr', 'ceph-osd');
}

export interface CephLab {
  readonly dir: string;
  readonly conf: string;
  readonly keyring: string;
  readonly pool: 'metalboot';
  readonly user: 'metalboot';
  /** Runs rbd/ceph (only) in the cluster's namespace, like nsTgtdRunner does for tgtd. */
  readonly runner: Runner;
  /** Seconds `start` took. */
  readonly startSeconds: number;
  /** rbd/ceph as client.admin, output as text. */
  admin(argv: readonly string[], timeoutMs?: number): Promise<string>;
  stopOsd(id: number): Promise<void>;
  startOsd(id: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startCephLab(t: Test, opts: { netns?: string } = {}): Promise<CephLab> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mbt-ceph-'));
  // In a namespace the ports are private; on the host's loopback pick a range nobody else uses.
  const port = opts.netns ? 40789 : 41000 + 100 * Math.floor(Math.random() * 80);
  const where = ['--dir', dir, ...(opts.netns ? ['--netns', opts.netns] : [])];
  const lab = (args: readonly string[], timeoutMs = 60_000): Promise<string> =>
    runCommand(['bash', CEPH_LAB, ...args, ...where], { timeoutMs, maxBuffer: 16 << 20 }).then((r) => r.stdout);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await lab(['stop']);
  };
  t.teardown(stop);
  const t0 = performance.now();
  await lab(['start', '--port', String(port)], 180_000);
  const startSeconds = (performance.now() - t0) / 1000;
  const inNs = (argv: readonly string[]): readonly string[] => (opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv);
  const runner: Runner = (argv, o) => runCommand(argv[0] === 'rbd' || argv[0] === 'ceph' ? inNs(argv) : argv, o);
  const conf = path.join(dir, 'ceph.conf');
  return {
    dir, conf, keyring: path.join(dir, 'client.metalboot.keyring'), pool: 'metalboot', user: 'metalboot', runner, startSeconds,
    async admin(argv, timeoutMs = 60_000) {
      const [cmd, ...rest] = argv;
      return (await runCommand(inNs([cmd!, '-c', conf, '--id', 'admin', ...rest]), { timeoutMs, maxBuffer: 64 << 20 })).stdout;
    },
    async stopOsd(id) { await lab(['stop-osd', String(id)]); },
    async startOsd(id) { await lab(['start-osd', String(id)]); },
    stop,
  };
}
