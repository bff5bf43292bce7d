/**
 * The other things on a network-boot test LAN: an IPv6 router-advertisement
 * responder, a TFTP-only server and a DHCP-only server (all dnsmasq, each with
 * a single role), and a tcpdump capture. Everything runs inside a test
 * namespace through TestNet.spawn, so it is bounded by timeout(1) and killed
 * at teardown.
 *
 * Why an RA responder: the Debian iPXE build (1.0.0+git-20190125) waits about
 * 16 s in "Configuring" for IPv6 router advertisements on every boot when no
 * router answers. A dnsmasq that only sends RAs (no DHCP, no DNS) ends that
 * wait in well under a second.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LineCollector, type TestNet } from './netns.js';
import { toolMissing } from './tools.js';

export const DNSMASQ = '/usr/sbin/dnsmasq';
export const TCPDUMP = '/usr/bin/tcpdump';
export const IPXE_DIR = '/usr/lib/ipxe';

export function toolsUnavailable(): string | false {
  return toolMissing('dnsmasq', 'tcpdump');
}

export interface Dnsmasq {
  /** dnsmasq's log (it logs to stderr with --log-facility=-). */
  readonly log: LineCollector;
  stop(): Promise<void>;
}

async function stopProc(p: import('node:child_process').ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** dnsmasq in the foreground with no config file, no DNS (port 0), logging to stderr; waits until it has started. */
export async function startDnsmasq(net: TestNet, ns: string, args: readonly string[], ttlSec = 300): Promise<Dnsmasq> {
  const p = net.spawn(ns, [
    DNSMASQ, '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root',
    '--pid-file=', '--log-facility=-', '--bind-interfaces', ...args,
  ], ttlSec);
  const log = new LineCollector(p.stderr);
  p.stdout?.resume();
  const exited = new Promise<never>((_, rej) => p.once('exit', (c, s) => rej(new Error(`dnsmasq exited (${c ?? s}): ${log.lines.join(' | ')}`))));
  exited.catch(() => undefined);
  await Promise.race([log.waitFor((l) => /started, version/.test(l), 10_000, 'dnsmasq start'), exited]);
  return { log, stop: () => stopProc(p) };
}

/**
 * Router advertisements for prefix (e.g. "fd93::") on iface, nothing else.
 * iface needs an address in the prefix (added here, without DAD).
 */
export async function startRaOnly(net: TestNet, ns: string, iface: string, prefix: string): Promise<Dnsmasq> {
  await net.ip(ns, ['-6', 'addr', 'add', `${prefix}1/64`, 'dev', iface, 'nodad']);
  return startDnsmasq(net, ns, [`--interface=${iface}`, '--enable-ra', `--dhcp-range=${prefix},ra-only,64`]);
}

/** TFTP only (no DHCP range, so no DHCP socket), serving root on iface's address. */
export async function startTftpOnly(net: TestNet, ns: string, iface: string, root: string): Promise<Dnsmasq> {
  return startDnsmasq(net, ns, [`--interface=${iface}`, '--enable-tftp', `--tftp-root=${root}`]);
}

/**
 * Addresses only: a pool on iface and the defaults dnsmasq always sends
 * (mask, router, broadcast), but no boot file, no next-server, no PXE or
 * iPXE options. `range` is "first,last,mask,leasetime".
 */
export async function startDhcpOnly(net: TestNet, ns: string, iface: string, range: string, leaseFile: string): Promise<Dnsmasq> {
  return startDnsmasq(net, ns, [
    `--interface=${iface}`, `--dhcp-range=${range}`, '--no-ping', '--log-dhcp', `--dhcp-leasefile=${leaseFile}`,
  ]);
}

/** Copies iPXE binaries from the ipxe package into a TFTP root. */
export async function tftpRootWith(dir: string, files: readonly string[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const f of files) await copyFile(path.join(IPXE_DIR, f), path.join(dir, f));
  return dir;
}

export interface Capture {
  /** One line per packet (tcpdump -l -n). */
  readonly packets: LineCollector;
  stop(): Promise<void>;
}

/** tcpdump on iface with a BPF filter; resolves once tcpdump is listening. */
export async function startCapture(net: TestNet, ns: string, iface: string, filter: string, ttlSec = 300): Promise<Capture> {
  const p = net.spawn(ns, [TCPDUMP, '-i', iface, '-n', '-l', '-s', '512', ...filter.split(/\s+/)], ttlSec);
  const packets = new LineCollector(p.stdout);
  const err = new LineCollector(p.stderr);
  const exited = new Promise<never>((_, rej) => p.once('exit', (c, s) => rej(new Error(`tcpdump exited (${c ?? s}): ${err.lines.join(' | ')}`))));
  exited.catch(() => undefined);
  await Promise.race([err.waitFor((l) => /listening on/.test(l), 10_000, 'tcpdump listening'), exited]);
  return { packets, stop: () => stopProc(p) };
}

/** A TFTP read request as tcpdump prints it: `<client>.<port> > <server>.69: ... RRQ "<file>" ...`. */
export interface TftpRrq {
  readonly client: string;
  readonly server: string;
  readonly file: string;
}

export function parseRrq(line: string): TftpRrq | undefined {
  const m = /(\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.69: .*RRQ "([^"]*)"/.exec(line);
  return m ? { client: m[1]!, server: m[2]!, file: m[3]! } : undefined;
}
