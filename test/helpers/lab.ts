/**
 * The virtual lab (scripts/lab/) driven from tests: a lab namespace of the
 * test's own (lab-net), VMs behind ipmi_sim BMCs (lab-bmc, lab-vm), golden
 * boot disks (make-bootdisk, stamp-disk), and long-running helpers (servers)
 * inside the lab namespace. Every script gets LAB_NS and LAB_RUN on its
 * command line (env), so tests never touch a lab someone else is using.
 *
 * destroy() stops what the test started (BMCs and their VMs, spawned
 * processes), then `lab-net down` ends anything left in the namespace and
 * deletes it, then the run directory goes. It is idempotent and never throws.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, type RunResult } from '../../src/exec/run.js';
import { toolMissing } from './tools.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const LAB_SCRIPTS = path.join(REPO, 'scripts', 'lab');

/** The lab's fixed addresses (see scripts/lab/lab-env). */
export const LAB_V4 = '10.77.0.1';
export const LAB_BRIDGE = 'labbr';
/** iPXE's default initiator IQN is built from the SMBIOS UUID, which lab-vm derives from the MAC. */
export const labUuid = (mac: string): string => `4d424c41-4200-4000-8000-${mac.replace(/:/g, '').toLowerCase()}`;
export const ipxeInitiatorIqn = (mac: string): string => `iqn.2010-04.org.ipxe:${labUuid(mac)}`;

export type Firmware = 'bios' | 'uefi';

/** Skip reason when the lab cannot run here with this firmware. */
export function labUnavailable(fw: Firmware = 'bios'): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, taps)';
  // /dev/net/tun is the kernel's (no package); every other tool comes from scripts/tools.tsv.
  if (!existsSync('/dev/net/tun')) return 'tun missing (/dev/net/tun)';
  return toolMissing('qemu-system', 'ipmi_sim', 'ipmitool', 'nasm', 'socat', fw === 'bios' ? 'ipxe-qemu' : 'ovmf');
}

/** Serial output without ANSI escape sequences and carriage returns. */
export function plainSerial(raw: string): string {
  // eslint-disable-next-line no-control-regex
  return raw.replace(/\x1b\[[0-9;?=]*[ -\/]*[@-~]/g, '').replace(/\x1b[()][0-9A-Za-z]/g, '').replace(/\x1b[=>78cDEHM]/g, '').replace(/\r/g, '');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let seq = 0;

export interface BmcHandle {
  readonly name: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

export class Lab {
  private readonly procs: ChildProcess[] = [];
  private readonly bmcs: string[] = [];
  private destroyed = false;

  private constructor(readonly ns: string, readonly run: string) {}

  /** A fresh lab namespace (lab-net up) and run directory. */
  static async up(prefix = 'mblab'): Promise<Lab> {
    const ns = `${prefix}-${process.pid.toString(36)}${(seq++).toString(36)}`;
    const run = await mkdtemp(path.join(os.tmpdir(), `${prefix}-run-`));
    const lab = new Lab(ns, run);
    try {
      await lab.script('lab-net', ['up'], 20_000);
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  private env(extra: Record<string, string> = {}): string[] {
    return ['env', `LAB_NS=${this.ns}`, `LAB_RUN=${this.run}`, 'LAB_TTL=600', ...Object.entries(extra).map(([k, v]) => `${k}=${v}`)];
  }

  /** Runs scripts/lab/NAME with this lab's LAB_NS/LAB_RUN (plus extra env). */
  script(name: string, args: readonly string[], timeoutMs = 30_000, extraEnv: Record<string, string> = {}): Promise<RunResult> {
    return runCommand([...this.env(extraEnv), path.join(LAB_SCRIPTS, name), ...args], { timeoutMs });
  }

  /** A command inside the lab namespace. */
  exec(argv: readonly string[], timeoutMs = 20_000, okCodes: readonly number[] = [0]): Promise<RunResult> {
    return runCommand(['ip', 'netns', 'exec', this.ns, ...argv], { timeoutMs, okCodes, maxBuffer: 16 << 20 });
  }

  /** A long-running process inside the namespace, bounded by timeout(1), stopped by destroy(). */
  spawn(argv: readonly string[], ttlSec = 300): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.ns, 'timeout', '-k', '2', String(ttlSec), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(p);
    return p;
  }

  path(file: string): string {
    return path.join(this.run, file);
  }

  async makeBootDisk(out: string, marker: string, id?: string): Promise<void> {
    await runCommand([path.join(LAB_SCRIPTS, 'make-bootdisk'), out, marker, ...(id ? [id] : [])], { timeoutMs: 30_000 });
  }

  async stampDisk(img: string, id: string): Promise<void> {
    await runCommand([path.join(LAB_SCRIPTS, 'stamp-disk'), img, id], { timeoutMs: 10_000 });
  }

  /** An ipmi_sim BMC for VM name in this lab (lab-bmc start); stopped by destroy(). */
  async startBmc(name: string, mac: string, fw: Firmware, port: number, user = 'admin', password = 'smoke-pw', vmEnv: Record<string, string> = {}): Promise<BmcHandle> {
    this.bmcs.push(name);
    // vmEnv (LAB_MEM, LAB_QEMU_EXTRA, …) reaches lab-vm through ipmi_sim's power hook.
    await this.script('lab-bmc', ['start', name, mac, fw, String(port)], 20_000, { ...vmEnv, LAB_BMC_USER: user, LAB_BMC_PASS: password });
    return { name, port, user, password };
  }

  /** ipmitool over RMCP+ with cipher suite 3 (without -C 3 every call waits ~10 s on ipmi_sim). */
  ipmitool(bmc: BmcHandle, args: readonly string[], timeoutMs = 20_000): Promise<RunResult> {
    return this.exec(['ipmitool', '-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(bmc.port),
      '-U', bmc.user, '-P', bmc.password, '-N', '2', '-R', '3', ...args], timeoutMs);
  }

  async serial(vm: string): Promise<string> {
    return plainSerial(await readFile(this.path(`${vm}.serial.log`), 'utf8').catch(() => ''));
  }

  async hookLog(vm: string): Promise<string> {
    return readFile(this.path(`${vm}.bmc-hook.log`), 'utf8').catch(() => '');
  }

  /** QEMU's pid from its pidfile, if that process is alive. */
  async qemuPid(vm: string): Promise<number | undefined> {
    const pid = Number((await readFile(this.path(`${vm}.pid`), 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return pidAlive(pid) ? pid : undefined;
  }

  /**
   * Polls vm's serial console every 200 ms until re matches; fails early when
   * gaveUp matches. The error carries the console's last lines.
   */
  async waitSerial(vm: string, re: RegExp, timeoutMs: number, gaveUp?: RegExp): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.serial(vm);
      const m = re.exec(s);
      if (m) return m;
      const g = gaveUp?.exec(s);
      if (g || Date.now() > deadline) {
        const tail = s.split('\n').filter((l) => l.trim() !== '').slice(-30).join('\n');
        throw new Error(`${vm}: ${g ? `boot gave up ("${g[0]}")` : `no ${re} within ${timeoutMs} ms`}\n--- serial ---\n${tail}`);
      }
      await sleep(200);
    }
  }

  /** Ends what the test started, then the namespace (and all in it), then the run directory. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.bmcs.splice(0)) await this.script('lab-bmc', ['stop', b], 20_000).catch(() => undefined);
    for (const p of this.procs.splice(0)) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 3000);
      await Promise.race([exited, sleep(6000)]);
      clearTimeout(t);
    }
    await this.script('lab-net', ['down'], 30_000).catch(() => undefined);
    await rm(this.run, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Is the lab namespace still there? */
  exists(): boolean {
    return existsSync(`/run/netns/${this.ns}`);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
