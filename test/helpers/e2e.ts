/**
 * End-to-end tests: the real metalbootd in a lab namespace (scripts/lab, driven by lab.ts) in
 * the place of the smoke test's dnsmasq stand-in. The daemon serves DHCP (server or proxy mode)
 * and TFTP on the lab bridge, iPXE scripts on 10.77.0.1:8080, iSCSI disks through the tgtd it
 * manages (portal 10.77.0.1:3260, a private control port), file storage in a temporary
 * directory, and powers the lab's VMs through their ipmi_sim BMCs. The API is used like an
 * operator would: curl with the token from `<dataDir>/api-token`, from inside the namespace.
 *
 * destroy() (registered on t.teardown) stops the daemon, then its tgtd (left running by the
 * daemon on purpose), removes the control socket, ends the lab (BMCs, VMs, everything left in
 * the namespace) and removes the temporary files. Idempotent; never throws.
 */
import { readFile, rm, mkdtemp, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { runCommand } from '../../src/exec/run.js';
import { Tgtd } from '../../src/iscsi/tgtd.js';
import { openStore } from '../../src/store/db.js';
import { decodeDiskRecord, type DiskRecord } from '../../src/disks/record.js';
import { startDaemon, type DaemonUnderTest, type LogLine } from './daemon.js';
import { apiToken } from './dhcp-tools.js';
import { LAB_BRIDGE, LAB_V4, Lab, REPO, labUnavailable, pidAlive, type BmcHandle, type Firmware } from './lab.js';
import { TestNet } from './netns.js';
import { freeControlPort, removeControlSocket } from './tgtd.js';
import { toolMissing } from './tools.js';

export const MARKER = 'e2e';
export const GOLDEN_ID = 'golden';
export const HTTP = `http://${LAB_V4}:8080`;
export const BOOT_ASSETS = path.join(REPO, 'boot-assets');
export const BMC_USER = 'admin';
export const BMC_PASS = 'e2e-bmc-Pw1';
/** The firmware or iPXE stopped trying: no point waiting for the marker. */
export const GAVE_UP = /No more network devices|Nothing to boot|Could not open SAN device|Could not boot|METALBOOT-DISK-ERR|No bootable device|did not boot after/;

export interface E2eMachine {
  readonly name: string;
  readonly mac: string;
  readonly fw: Firmware;
  readonly bmcPort: number;
}

/** Skip reason when the end-to-end lab cannot run here. */
export function e2eUnavailable(fws: readonly Firmware[] = ['bios']): string | false {
  for (const fw of fws) {
    const r = labUnavailable(fw);
    if (r) return r;
  }
  const missing = toolMissing('tgtd', 'iscsi-inq', 'curl', 'qemu-iscsi');
  if (missing) return missing;
  for (const f of ['undionly.kpxe', 'snponly.efi', 'ipxe.efi']) if (!existsSync(path.join(BOOT_ASSETS, f))) return `boot-assets/${f} missing (scripts/boot-assets.sh)`;
  if (!existsSync(path.join(REPO, 'dist/src/cli/metalbootd.js'))) return 'dist/ not built (npm run build)';
  return false;
}

export const macHex = (mac: string): string => mac.replace(/:/g, '').toLowerCase();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface E2eOptions {
  /** Namespace prefix (the lab adds pid and a counter). */
  readonly prefix: string;
  /** `server`: metalboot hands out addresses; `proxy`: another DHCP server does (see the test). */
  readonly dhcpMode?: 'server' | 'proxy';
  readonly checkIntervalMs?: number;
  /** DHCP conflict check (ping before the first offer of an address). */
  readonly conflictCheck?: 'ping' | 'off';
  /** More top-level YAML. */
  readonly extraYaml?: string;
}

export interface ApiResult {
  readonly status: number;
  readonly body: string;
  json(): any;
}

export class E2e {
  daemon: DaemonUnderTest | undefined;
  readonly tgtd: Tgtd;
  private destroyed = false;
  private constructor(
    readonly lab: Lab, readonly net: TestNet, readonly dir: string, readonly dataDir: string, readonly storeDir: string,
    readonly controlPort: number, readonly opts: E2eOptions,
  ) {
    this.tgtd = new Tgtd({ runner: runCommand, controlPort, manageTgtd: true, pidFile: path.join(dataDir, 'tgtd.pid'), timeoutMs: 5000 });
  }

  /** A lab namespace, a scratch directory, a control port; torn down at t's teardown. */
  static async up(t: Test, opts: E2eOptions): Promise<E2e> {
    const net = new TestNet(opts.prefix.slice(0, 4));
    const dir = await mkdtemp(path.join(os.tmpdir(), `mbt-${opts.prefix}-`));
    net.removeOnDestroy(dir);
    let e: E2e | undefined;
    let lab: Lab | undefined;
    t.teardown(async () => {
      if (e) await e.destroy();
      else { await lab?.destroy(); await net.destroy(); }
    });
    lab = await Lab.up(`mblab-${opts.prefix}`);
    e = new E2e(lab, net, dir, path.join(dir, 'data'), path.join(dir, 'volumes'), freeControlPort(), opts);
    return e;
  }

  yaml(): string {
    const o = this.opts;
    const dhcp = (o.dhcpMode ?? 'server') === 'server'
      ? `dhcp:
  mode: server
  interface: ${LAB_BRIDGE}
  conflictCheck: { method: ${o.conflictCheck ?? 'ping'} }
  bootFiles: { efiX64: snponly.efi }
  subnets:
    - cidr: 10.77.0.0/24
      pool: [10.77.0.100, 10.77.0.199]
      leaseTime: 600`
      : `dhcp:
  mode: proxy
  interface: ${LAB_BRIDGE}
  serverAddress: ${LAB_V4}
  bootFiles: { efiX64: snponly.efi }`;
    return `dataDir: ${this.dataDir}
http: { listen: "${LAB_V4}:8080", publicUrl: "${HTTP}" }
${dhcp}
tftp: { enabled: true, root: ${BOOT_ASSETS} }
storage: { backend: file, file: { dir: ${this.storeDir} } }
iscsi: { portal: "${LAB_V4}:3260", manageTgtd: true, controlPort: ${this.controlPort}, checkIntervalMs: ${o.checkIntervalMs ?? 500} }
${o.extraYaml ?? ''}`;
  }

  /** metalbootd in the lab namespace; resolves at daemon.ready. */
  async start(): Promise<DaemonUnderTest> {
    this.daemon = await startDaemon(this.net, this.lab.ns, this.yaml(), { dataDir: this.dataDir, readyTimeoutMs: 30_000, ttlSec: 1500 });
    return this.daemon;
  }

  get d(): DaemonUnderTest {
    if (!this.daemon) throw new Error('daemon not started');
    return this.daemon;
  }

  /** curl inside the lab namespace, with the API token. */
  async api(method: string, url: string, body?: unknown): Promise<ApiResult> {
    const argv = ['curl', '-sS', '-m', '60', '-X', method, '-H', `Authorization: Bearer ${apiToken(this.dataDir)}`, '-o', '-', '-w', '\n%{http_code}', `${HTTP}${url}`];
    if (body !== undefined) argv.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
    const r = await this.lab.exec(argv, 70_000);
    const i = r.stdout.lastIndexOf('\n');
    const text = r.stdout.slice(0, i);
    return { status: Number(r.stdout.slice(i + 1)), body: text, json: () => JSON.parse(text) };
  }

  /** The lab's golden disk (make-bootdisk, id `golden`), uploaded as image `id`. */
  async uploadGolden(id = 'golden'): Promise<string> {
    const file = path.join(this.dir, 'golden.img');
    await this.lab.makeBootDisk(file, MARKER, GOLDEN_ID);
    const r = await this.lab.exec(['curl', '-sS', '-m', '120', '-X', 'PUT', '-H', `Authorization: Bearer ${apiToken(this.dataDir)}`,
      '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, '-o', '/dev/null', '-w', '%{http_code}', `${HTTP}/api/v1/images/${id}`], 130_000);
    if (r.stdout !== '201') throw new Error(`image upload: HTTP ${r.stdout} ${r.stderr}`);
    return file;
  }

  /** PUT /api/v1/machines/:mac (enrol), without a BMC. */
  async enrol(m: E2eMachine, extra: Record<string, unknown> = {}): Promise<ApiResult> {
    const r = await this.api('PUT', `/api/v1/machines/${m.mac}`, { name: m.name, firmware: m.fw, ...extra });
    if (r.status !== 201) throw new Error(`enrol ${m.name}: ${r.status} ${r.body}`);
    return r;
  }

  /** Polls GET /api/v1/operations/:id until it is no longer running (or the time is up); returns it. */
  async waitOperation(id: string, timeoutMs: number): Promise<{ status: string; steps: { step: string }[]; error?: string; result?: any }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const op = (await this.api('GET', `/api/v1/operations/${id}`)).json();
      if (op.status !== 'running' || Date.now() > deadline) return op;
      await sleep(500);
    }
  }

  /** POST .../provision and poll the operation until it ends; returns it. */
  async provision(m: E2eMachine, image = 'golden', timeoutMs = 60_000): Promise<{ status: string; steps: { step: string }[]; error?: string }> {
    const r = await this.api('POST', `/api/v1/machines/${m.mac}/provision`, { image });
    if (r.status !== 202) throw new Error(`provision ${m.name}: ${r.status} ${r.body}`);
    const id = r.json().operation.id as string;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const op = (await this.api('GET', `/api/v1/operations/${id}`)).json();
      if (op.status !== 'running' || Date.now() > deadline) return op;
      await sleep(200);
    }
  }

  /** The file backend's disk file of the machine (what tgtd exports). */
  diskFile(m: E2eMachine): string {
    return path.join(this.storeDir, 'disks', `m-${macHex(m.mac)}.raw`);
  }

  async stamp(m: E2eMachine, id: string): Promise<void> {
    await this.lab.stampDisk(this.diskFile(m), id);
  }

  /** The id field of a disk file (LBA 1 + 64, NUL padded). */
  async diskId(file: string): Promise<string> {
    const b = await readFile(file);
    return b.subarray(512 + 64, 512 + 128).toString('latin1').replace(/\0+$/, '');
  }

  /** Starts the machine's ipmi_sim BMC and tells metalboot about it (PUT machine {bmc}). */
  async attachBmc(m: E2eMachine, vmEnv: Record<string, string> = {}): Promise<BmcHandle> {
    const bmc = await this.lab.startBmc(m.name, m.mac, m.fw, m.bmcPort, BMC_USER, BMC_PASS, vmEnv);
    const r = await this.api('PUT', `/api/v1/machines/${m.mac}`, { bmc: { host: '127.0.0.1', port: m.bmcPort, user: BMC_USER, password: BMC_PASS } });
    if (r.status !== 200) throw new Error(`set BMC of ${m.name}: ${r.status} ${r.body}`);
    return bmc;
  }

  /**
   * POST .../power {action} through metalboot. For `on`, the previous serial log is removed
   * first (the VM is off), so a marker found afterwards is from this boot. Returns the time
   * just before the POST.
   */
  async power(m: E2eMachine, action: 'on' | 'off'): Promise<number> {
    if (action === 'on') {
      await rm(this.lab.path(`${m.name}.serial.log`), { force: true });
      await rm(this.lab.path(`${m.name}.serial.log.1`), { force: true });
    }
    const t0 = Date.now();
    const r = await this.api('POST', `/api/v1/machines/${m.mac}/power`, { action });
    if (r.status !== 200) throw new Error(`power ${action} ${m.name}: ${r.status} ${r.body}`);
    return t0;
  }

  /** Power off through metalboot and wait until QEMU is gone. */
  async powerOff(m: E2eMachine, timeoutMs = 15_000): Promise<number> {
    const qemu = await this.lab.qemuPid(m.name);
    const t0 = await this.power(m, 'off');
    while (qemu !== undefined && pidAlive(qemu)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`${m.name}: QEMU ${qemu} still running ${timeoutMs} ms after power off`);
      await sleep(50);
    }
    return Date.now() - t0;
  }

  /** Waits for the disk's marker line on the machine's serial console; returns the disk id it names. */
  async waitMarker(m: E2eMachine, timeoutMs: number, gaveUp: RegExp = GAVE_UP): Promise<{ id: string; line: string; at: number }> {
    const re = new RegExp(`METALBOOT-DISK-OK ${MARKER} (\\S+) ${m.fw === 'bios' ? 'bios' : 'efi'}`);
    const hit = await this.lab.waitSerial(m.name, re, timeoutMs, gaveUp);
    return { id: hit[1]!, line: hit[0], at: Date.now() };
  }

  async machine(m: E2eMachine): Promise<any> {
    return (await this.api('GET', `/api/v1/machines/${m.mac}`)).json();
  }

  /** Polls GET machine until its state is `state`. */
  async waitState(m: E2eMachine, state: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await this.machine(m)).state === state) return true;
      if (Date.now() > deadline) return false;
      await sleep(250);
    }
  }

  /** Daemon log lines of `event` for this MAC. */
  events(event: string, mac?: string): LogLine[] {
    return this.d.events(event).filter((l) => mac === undefined || l.mac === mac);
  }

  /** Disk records with their secrets, read from the store (the daemon must be stopped). */
  async records(): Promise<DiskRecord[]> {
    const store = await openStore(this.dataDir);
    try {
      return (await store.loadRecords('disks')).map(({ key, value }) => decodeDiskRecord(key, value)).filter((r): r is DiskRecord => typeof r !== 'string');
    } finally {
      await store.close();
    }
  }

  /** tgtd's pid from the daemon's pid file. */
  async tgtdPid(): Promise<number | undefined> {
    const n = Number((await readFile(path.join(this.dataDir, 'tgtd.pid'), 'utf8').catch(() => '')).trim());
    return Number.isInteger(n) && n > 1 && pidAlive(n) ? n : undefined;
  }

  /** Everything down: daemon, its tgtd, the lab, the files. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.daemon?.stop().catch(() => undefined);
    await this.tgtd.stop().catch(() => undefined);
    const pid = await this.tgtdPid();
    if (pid !== undefined) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await removeControlSocket(this.controlPort);
    await this.lab.destroy();
    await this.net.destroy();
  }
}

/** Lines `name: ms` and min/median/max of a set of boot times. */
export function summarize(times: Record<string, number>): string {
  const v = Object.values(times).sort((a, b) => a - b);
  const med = v.length ? (v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2) : NaN;
  return `${Object.entries(times).map(([k, ms]) => `${k} ${ms} ms`).join(', ')}; min ${v[0]} median ${med} max ${v[v.length - 1]} ms`;
}

export async function fileSize(f: string): Promise<number> {
  return (await stat(f)).size;
}
