/**
 * Diskless QEMU VMs that network-boot on a tap in a test namespace.
 *
 * Measured facts this relies on (this host, QEMU 7.2, Debian iPXE 2019):
 *  - TCG only: the host's /dev/kvm cannot run iPXE or OVMF.
 *  - BIOS: SeaBIOS + QEMU's iPXE ROM pxe-virtio.rom. Its PCI id is 1af4:1041
 *    (virtio 1.0); QEMU patches the id only of its default ROM, so an explicit
 *    romfile= on a transitional NIC is skipped by SeaBIOS. disable-legacy=on
 *    makes the NIC 1af4:1041 and the ROM runs.
 *  - UEFI: OVMF.fd with -bios and romfile= (empty) on the NIC, so OVMF's own
 *    virtio-net driver and PXE client boot, not an iPXE ROM.
 *  - QEMU's default SMBIOS UUID is all zeros; every VM gets its own (-uuid),
 *    which is also what the firmware sends in DHCP option 97.
 * Every VM runs under `timeout`, inside the namespace (TestNet.spawn), and is
 * stopped by stop() or, at the latest, by TestNet.destroy().
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestNet } from './netns.js';
import { toolMissing } from './tools.js';

export type Firmware = 'bios' | 'uefi';

export const QEMU = '/usr/bin/qemu-system-x86_64';
export const OVMF_FD = '/usr/share/ovmf/OVMF.fd';
export const BIOS_NIC_ROM = '/usr/lib/ipxe/qemu/pxe-virtio.rom';

/** Skip reason when this host cannot run a VM with the given firmware. */
export function vmUnavailable(fw: Firmware): string | false {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces and taps';
  const missing = toolMissing('qemu-system');
  if (missing) return missing;
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  return toolMissing(fw === 'bios' ? 'ipxe-qemu' : 'ovmf');
}

/** A tap device in ns, enslaved to bridge, up. */
export async function addTap(net: TestNet, ns: string, tap: string, bridge: string): Promise<void> {
  await net.ip(ns, ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  await net.ip(ns, ['link', 'set', tap, 'master', bridge, 'up']);
}

/** SMBIOS UUID derived from the MAC: unique per VM, and recognisable in option 97. */
export function uuidForMac(mac: string): string {
  return `1ab00000-0000-4000-8000-${mac.replace(/:/g, '').toLowerCase()}`;
}

/** Serial output without ANSI escape sequences and carriage returns. */
export function plainText(raw: string): string {
  // eslint-disable-next-line no-control-regex
  return raw.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, '').replace(/\x1b[()][0-9A-Za-z]/g, '').replace(/\x1b[=>78cDEHM]/g, '').replace(/\r/g, '');
}

export interface VmOptions {
  readonly name: string;
  readonly mac: string;
  readonly firmware: Firmware;
  /** Tap in ns (see addTap). */
  readonly tap: string;
  /** Directory for the serial log. */
  readonly dir: string;
  /** Hard upper bound on the VM's life (timeout(1)). */
  readonly ttlSec?: number;
  readonly memoryMb?: number;
}

export class Vm {
  readonly startedAt = Date.now();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';

  constructor(readonly proc: ChildProcess, readonly serialPath: string, readonly opts: VmOptions) {
    this.exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (d: string) => { this.stderr = (this.stderr + d).slice(-4000); });
    proc.stdout?.resume();
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The serial console so far, escape sequences removed. */
  async serial(): Promise<string> {
    try {
      return plainText(await readFile(this.serialPath, 'utf8'));
    } catch {
      return '';
    }
  }

  /** Last lines of the serial console and QEMU's stderr, for failure messages. */
  async tail(lines = 25): Promise<string> {
    const s = (await this.serial()).split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
    return `--- ${this.opts.name} serial (last ${lines} lines) ---\n${s}${this.stderr ? `\n--- qemu stderr ---\n${this.stderr}` : ''}`;
  }

  /**
   * Polls check() (and the serial console) every 200 ms until check returns
   * a value. Fails early, with the console attached, when QEMU exits or the
   * console matches gaveUp (the firmware stopped trying). One loop, no timers
   * left behind when it returns.
   */
  async until<T>(what: string, timeoutMs: number, check: (serial: string) => T | undefined | Promise<T | undefined>, gaveUp?: RegExp): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const serial = await this.serial();
      const v = await check(serial);
      if (v !== undefined) return v;
      const m = gaveUp?.exec(serial);
      if (m) throw new Error(`${this.opts.name}: boot gave up ("${m[0]}") before ${what}\n${await this.tail(40)}`);
      if (!this.running) throw new Error(`${this.opts.name}: QEMU exited (${this.proc.exitCode ?? this.proc.signalCode}) before ${what}\n${await this.tail(40)}`);
      if (Date.now() > deadline) throw new Error(`${this.opts.name}: no ${what} within ${timeoutMs} ms\n${await this.tail(40)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Waits until the serial console matches re. */
  async waitForSerial(re: RegExp, timeoutMs: number, gaveUp?: RegExp): Promise<RegExpExecArray> {
    return this.until(`serial output ${re}`, timeoutMs, (s) => re.exec(s) ?? undefined, gaveUp);
  }

  /** SIGTERM to timeout(1), which passes it on to QEMU; SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

export function qemuArgs(o: VmOptions, serialPath: string): string[] {
  const fw = o.firmware === 'bios'
    ? { machine: ['-M', 'pc'], nic: `virtio-net-pci,disable-legacy=on,romfile=${BIOS_NIC_ROM}` }
    : { machine: ['-M', 'q35', '-bios', OVMF_FD], nic: 'virtio-net-pci,romfile=' };
  return [
    QEMU, '-name', o.name,
    '-accel', 'tcg', '-m', String(o.memoryMb ?? 256), '-nodefaults', '-display', 'none',
    ...fw.machine, '-machine', 'graphics=off', '-no-reboot',
    '-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
    '-device', `${fw.nic},netdev=n0,mac=${o.mac},bootindex=1`,
    '-uuid', uuidForMac(o.mac), '-smbios', `type=1,serial=${o.name}`,
    '-chardev', `file,id=ser0,path=${serialPath}`, '-serial', 'chardev:ser0',
  ];
}

/** Starts a diskless VM in ns whose first boot device is its NIC. */
export function startVm(net: TestNet, ns: string, o: VmOptions): Vm {
  const serialPath = path.join(o.dir, `${o.name}.serial.log`);
  const proc = net.spawn(ns, qemuArgs(o, serialPath), o.ttlSec ?? 240);
  return new Vm(proc, serialPath, o);
}
