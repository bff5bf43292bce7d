/**
 * Runs a command inside the test guest (test/guest/run-in-guest): a QEMU
 * TCG VM with Debian's kernel, so device-mapper (LVM thin pools) can be
 * tested although the host kernel has none. The guest sees the host's root
 * read-only with a tmpfs overlay, so it runs the host's node and this
 * project's dist/ unchanged; results come back through a --rw directory.
 *
 * guestUnavailable() gives the skip reason (not root, no QEMU, the kernel
 * could not be fetched); it builds the kernel + initramfs on first use
 * (apt-get download, ~7 s, cached under /var/cache/metalboot-guest/<hash>).
 * The checkout (REPO, the guest's working directory) stays visible in the
 * guest wherever it lives, also under /tmp (run-in-guest keeps it).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../../src/exec/run.js';
import { toolMissing } from './tools.js';

/** The repository root, from dist/test/helpers/. */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const GUEST_BIN = `${REPO}test/guest`;
export const QEMU_SYSTEM = '/usr/bin/qemu-system-x86_64';

let built: Promise<string | false> | undefined;

export function guestUnavailable(): Promise<string | false> {
  built ??= (async () => {
    if (process.getuid?.() !== 0) return 'needs root (QEMU 9p share of /, loop disks)';
    const missing = toolMissing('qemu-system', 'kmod', 'lvm', 'thin_check');
    if (missing) return missing;
    try {
      await runCommand([`${GUEST_BIN}/build-guest`], { timeoutMs: 600_000 });
    } catch (e) {
      return `cannot build the guest kernel/initramfs: ${(e as Error).message}`;
    }
    return false;
  })();
  return built;
}

export interface GuestOptions {
  readonly timeoutSec?: number;
  /** --disk specs, e.g. ['1G', '2G'] (vda, vdb). */
  readonly disks?: readonly string[];
  /** Host directories shared read-write at the same path. */
  readonly rw?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

export interface GuestResult {
  /** The command's exit status; 124 timeout, 125 the guest reported nothing. */
  readonly code: number;
  /** The serial console: the command's stdout and stderr, merged. */
  readonly output: string;
  readonly wallMs: number;
}

export async function runInGuest(argv: readonly string[], opts: GuestOptions = {}): Promise<GuestResult> {
  const timeoutSec = opts.timeoutSec ?? 300;
  const args = [`${GUEST_BIN}/run-in-guest`, '--timeout', String(timeoutSec), '--cwd', REPO];
  for (const d of opts.disks ?? []) args.push('--disk', d);
  for (const d of opts.rw ?? []) args.push('--rw', d);
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push('--env', `${k}=${v}`);
  const started = Date.now();
  // run-in-guest bounds QEMU itself; this limit is only the backstop.
  const r = await runCommand([...args, '--', ...argv], {
    timeoutMs: (timeoutSec + 30) * 1000,
    okCodes: Array.from({ length: 256 }, (_, i) => i),
    maxBuffer: 16 << 20,
  });
  return { code: r.code, output: r.stdout + r.stderr, wallMs: Date.now() - started };
}
