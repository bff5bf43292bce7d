/**
 * Helpers for integration tests that drive real DHCP peers (perfdhcp, busybox
 * udhcpc) against the daemon and read its API. Everything runs inside test
 * namespaces through TestNet.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestNet } from './netns.js';
import type { LeaseView } from '../../src/http/routes/leases.js';

/** The read-write API token a daemon created at first start. */
export function apiToken(dataDir: string): string {
  return readFileSync(`${dataDir}/api-token`, 'utf8').trim();
}

/** A lease as GET /api/v1/leases returns it. */
export type ApiLease = LeaseView;

/** GET /api/v1/leases from inside ns, with the token the daemon created in its data directory. */
export async function apiLeases(net: TestNet, ns: string, baseUrl: string, dataDir: string): Promise<ApiLease[]> {
  const res = await net.exec(ns, ['curl', '-sf', '--max-time', '10', '-H', `Authorization: Bearer ${apiToken(dataDir)}`, `${baseUrl}/api/v1/leases`], 15_000);
  return (JSON.parse(res.stdout) as { leases: ApiLease[] }).leases;
}

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function inRange(ip: string, first: string, last: string): boolean {
  const v = ipToInt(ip);
  return v >= ipToInt(first) && v <= ipToInt(last);
}

export interface ExchangeStats {
  sent: number;
  received: number;
  drops: number;
}

export interface PerfdhcpResult {
  /** DISCOVER-OFFER statistics. */
  do: ExchangeStats;
  /** REQUEST-ACK statistics (absent with -i). */
  ra?: ExchangeStats;
  /** Achieved 4-way exchanges per second, when reported. */
  rate?: number;
  /** Addresses perfdhcp saw in ACKs (only with `-x l`). */
  ackedAddresses: string[];
  code: number;
  output: string;
}

function section(out: string, name: string): ExchangeStats | undefined {
  const i = out.indexOf(`***Statistics for: ${name}***`);
  if (i < 0) return undefined;
  const body = out.slice(i, i + 2000);
  const num = (label: string): number => {
    const m = new RegExp(`^${label}: (\\d+)`, 'm').exec(body);
    if (!m) throw new Error(`perfdhcp output has no "${label}" in ${name}:\n${body}`);
    return Number(m[1]);
  };
  return { sent: num('sent packets'), received: num('received packets'), drops: num('drops') };
}

/** Parses perfdhcp's final report. */
export function parsePerfdhcp(output: string, code: number): PerfdhcpResult {
  const d = section(output, 'DISCOVER-OFFER');
  if (!d) throw new Error(`perfdhcp printed no DISCOVER-OFFER statistics (exit ${code}):\n${output.slice(-3000)}`);
  const ra = section(output, 'REQUEST-ACK');
  const rate = /^Rate: ([\d.]+)/m.exec(output);
  // `-x l`: "***Leases for REQUEST-ACK***", a CSV header, then "client_id,address,prefix" rows up to a blank line.
  const ackedAddresses: string[] = [];
  const li = output.indexOf('***Leases for REQUEST-ACK***');
  if (li >= 0) {
    for (const line of output.slice(li).split('\n').slice(2)) {
      if (line.trim() === '') break;
      const addr = line.split(',')[1];
      if (addr) ackedAddresses.push(addr);
    }
  }
  return { do: d, ...(ra ? { ra } : {}), ...(rate ? { rate: Number(rate[1]) } : {}), ackedAddresses, code, output };
}

/**
 * Runs perfdhcp in ns (it acts as a relay: giaddr is its own address) and
 * parses its report. perfdhcp exits 3 when packets were dropped, so any exit
 * code with a report is returned, not thrown.
 */
export async function runPerfdhcp(net: TestNet, ns: string, args: readonly string[], timeoutMs: number): Promise<PerfdhcpResult> {
  const r = await net.exec(ns, ['timeout', '-k', '2', String(Math.ceil(timeoutMs / 1000)), 'perfdhcp', ...args], timeoutMs + 5000, [0, 1, 2, 3, 124]);
  return parsePerfdhcp(r.stdout + r.stderr, r.code);
}

export interface UdhcpcResult {
  ip?: string;
  serverId?: string;
  code: number;
  output: string;
}

/**
 * One busybox udhcpc run in the foreground that quits after the lease (-q) or
 * gives up (-n) after `tries` DISCOVERs one second apart. `extra` is added to
 * the argv (e.g. ['-a', '-r', ip]).
 */
export async function udhcpc(net: TestNet, ns: string, dev: string, opts: { tries?: number; extra?: readonly string[]; timeoutMs?: number } = {}): Promise<UdhcpcResult> {
  const tries = opts.tries ?? 5;
  const r = await net.exec(ns, ['udhcpc', '-i', dev, '-n', '-q', '-f', '-t', String(tries), '-T', '1', '-A', '1', '-s', '/bin/true', ...(opts.extra ?? [])],
    opts.timeoutMs ?? (tries * 2 + 15) * 1000, [0, 1]);
  const output = r.stdout + r.stderr;
  // The last lease line wins (udhcpc -a may decline one address and try again).
  const all = [...output.matchAll(/lease of (\S+) obtained from (\S+),/g)];
  const m = all.at(-1);
  return { ...(m ? { ip: m[1]!, serverId: m[2]! } : {}), code: r.code, output };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Removes the temporary directory startDaemon made for a daemon (its config
 * and, unless a dataDir was passed in, its data). Register it with
 * t.teardown after the daemon's stop.
 */
export async function removeDaemonDir(d: { configPath: string }): Promise<void> {
  const dir = path.dirname(d.configPath);
  // Only ever a directory made by startDaemon under the temp dir.
  if (path.dirname(dir) === os.tmpdir() && path.basename(dir).startsWith('mbt-')) await rm(dir, { recursive: true, force: true });
}
