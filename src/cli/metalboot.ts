#!/usr/bin/env node
/** metalboot: the admin CLI. It talks to a running daemon over its HTTP API, or (ipmi) straight to a BMC. */
import { parseArgs } from 'node:util';
import { packageVersion } from '../version.js';
import { IPMI_USAGE, runIpmiCommand } from './ipmi-command.js';
import { EVENTS_USAGE, runEventsCommand } from './events-command.js';

const DEFAULT_API = process.env.METALBOOT_API ?? 'http://127.0.0.1:8080';

function usage(): string {
  return [
    'usage: metalboot [--version] <command> [options]',
    '  leases [--api URL] [--json]   list DHCP leases (default API: $METALBOOT_API or http://127.0.0.1:8080)',
    IPMI_USAGE,
    EVENTS_USAGE,
    '',
  ].join('\n');
}

interface LeaseRow { mac: string | null; ip: string; state: string; expiresAt: string; hostname: string | null; clientArch: number | null; vendorClass: string | null }

export function formatLeaseTable(rows: readonly LeaseRow[]): string {
  const header = ['IP', 'MAC', 'STATE', 'EXPIRES', 'HOSTNAME', 'ARCH', 'VENDOR CLASS'];
  const body = rows.map((r) => [r.ip, r.mac ?? '-', r.state, r.expiresAt, r.hostname ?? '-', r.clientArch === null ? '-' : String(r.clientArch), r.vendorClass ?? '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [header, ...body].map((cols) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

async function leases(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { api: { type: 'string', default: DEFAULT_API }, json: { type: 'boolean' } }, strict: true });
  const url = `${values.api!.replace(/\/$/, '')}/api/v1/leases`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (e) {
    process.stderr.write(`metalboot: cannot reach ${url}: ${e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e)}\n`);
    return 1;
  }
  if (!res.ok) {
    process.stderr.write(`metalboot: ${url}: HTTP ${res.status}\n`);
    return 1;
  }
  const body = (await res.json()) as { leases: LeaseRow[] };
  process.stdout.write(values.json ? JSON.stringify(body.leases, null, 2) + '\n' : formatLeaseTable(body.leases));
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case '--version': case 'version': process.stdout.write(`metalboot ${packageVersion()}\n`); return 0;
      case '--help': case '-h': case 'help': process.stdout.write(usage()); return 0;
      case 'leases': return await leases(rest);
      case 'ipmi': return await runIpmiCommand(rest, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env });
      case 'events': { const ac = new AbortController(); process.once('SIGINT', () => ac.abort()); return await runEventsCommand(rest, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env, signal: ac.signal }); }
      default:
        process.stderr.write(`metalboot: ${cmd === undefined ? 'no command' : `unknown command ${JSON.stringify(cmd)}`}\n${usage()}`);
        return 2;
    }
  } catch (e) {
    process.stderr.write(`metalboot: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
}

main(process.argv.slice(2)).then((c) => { process.exitCode = c; });
