/**
 * The lab of the flood tests: a server namespace running the real metalbootd
 * (DHCP server, TFTP and syslog on a bridge), a client namespace whose
 * interface takes a lease with busybox udhcpc (the legitimate machine), and an
 * attacker namespace on the same bridge with its own MAC and address. Only
 * these namespaces are ever sent to; everything is removed at teardown.
 */
import path from 'node:path';
import type { Test } from 'tap';
import { TestNet } from './netns.js';
import { REPO_ROOT, startDaemon, type DaemonUnderTest } from './daemon.js';
import { apiToken } from './dhcp-tools.js';
import { servedFiles } from './tftp.js';
import { parsePromText, type Sample } from './prom-text.js';

export const UDP_FLOOD = path.join(REPO_ROOT, 'dist/test/helpers/udp-flood.js');

export interface FloodLab {
  readonly net: TestNet;
  readonly srv: string;
  readonly cli: string;
  readonly atk: string;
  readonly serverIp: string;
  readonly cliDev: string;
  readonly atkDev: string;
  readonly clientMac: string;
  /** The address the client leased (and configured on its interface). */
  readonly clientIp: string;
  /** The attacker's own address (no lease). */
  readonly atkIp: string;
  readonly root: string;
  readonly out: string;
  readonly sha: Map<string, string>;
  readonly daemon: DaemonUnderTest;
}

/** `octet`: the lab's 10.<octet>.0.0/24; `sections`: extra YAML lines per top-level section. */
export async function buildFloodLab(t: Test, prefix: string, octet: number, opts: { files?: Record<string, number>; tftp?: string; syslog?: string } = {}): Promise<FloodLab> {
  const net = new TestNet(prefix);
  let daemon: DaemonUnderTest | undefined;
  t.teardown(async () => {
    await daemon?.stop();
    await net.destroy();
  });
  const { root, out, sha } = await servedFiles(net, 'mbt-flood-', opts.files ?? {});

  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const atk = await net.addNamespace('atk');
  const br = `${net.tag}b`, cliDev = `${net.tag}c`, atkDev = `${net.tag}a`;
  const serverIp = `10.${octet}.0.1`, atkIp = `10.${octet}.0.66`;
  const clientMac = `52:54:00:${octet.toString(16).padStart(2, '0')}:00:01`;
  await net.bridge(srv, br, `${serverIp}/24`);
  await net.veth(cli, cliDev, srv, `${net.tag}p`);
  await net.veth(atk, atkDev, srv, `${net.tag}q`, `${atkIp}/24`);
  await net.ip(srv, ['link', 'set', `${net.tag}p`, 'master', br]);
  await net.ip(srv, ['link', 'set', `${net.tag}q`, 'master', br]);
  await net.ip(cli, ['link', 'set', cliDev, 'address', clientMac]);
  await net.ip(atk, ['link', 'set', atkDev, 'address', `52:54:00:${octet.toString(16).padStart(2, '0')}:66:66`]);

  daemon = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "${serverIp}:8080", publicUrl: "http://${serverIp}:8080" }
dhcp:
  mode: server
  interface: ${br}
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.${octet}.0.0/24
      pool: [10.${octet}.0.100, 10.${octet}.0.150]
      router: ${serverIp}
      dns: [${serverIp}]
      leaseTime: 600
tftp:
${opts.files ? `  root: ${root}` : '  # root: the installed boot-assets/'}
${(opts.tftp ?? '').split('\n').filter(Boolean).map((l) => `  ${l.trim()}`).join('\n')}
syslog:
  enabled: true
  listen: "${serverIp}:514"
${(opts.syslog ?? '').split('\n').filter(Boolean).map((l) => `  ${l.trim()}`).join('\n')}
iscsi: { enabled: false }
`, { logLevel: 'info' });

  // The legitimate machine: a real DHCP exchange, then the address on its interface.
  const got = await net.exec(cli, ['udhcpc', '-i', cliDev, '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', '/bin/true'], 30_000);
  const m = new RegExp(`lease of (\\S+) obtained from ${serverIp.replaceAll('.', '\\.')}`).exec(got.stdout + got.stderr);
  if (!m) throw new Error(`udhcpc got no lease: ${got.stdout} ${got.stderr}`);
  const clientIp = m[1]!;
  await net.ip(cli, ['addr', 'add', `${clientIp}/24`, 'dev', cliDev]);
  return { net, srv, cli, atk, serverIp, cliDev, atkDev, clientMac, clientIp, atkIp, root, out, sha, daemon };
}

/** Runs the bounded flood sender in the attacker's namespace; resolves with its JSON summary. */
export async function runFlood(lab: FloodLab, mode: 'rrq' | 'syslog', args: Record<string, unknown>): Promise<{ sent: number; elapsedMs: number; replies: Record<string, number>; errors: Record<string, number> }> {
  const r = await lab.net.exec(lab.atk, ['node', UDP_FLOOD, mode, JSON.stringify({ server: lab.serverIp, ...args })], 60_000);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { sent: number; elapsedMs: number; replies: Record<string, number>; errors: Record<string, number> };
}

/** Adds `count` addresses to the attacker's interface, from `first` (a dotted quad) upwards; returns them. */
export async function addAttackerAddresses(lab: FloodLab, first: string, count: number): Promise<string[]> {
  const p = first.split('.').map(Number);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const ip = `${p[0]}.${p[1]}.${p[2]}.${p[3]! + i}`;
    await lab.net.ip(lab.atk, ['addr', 'add', `${ip}/32`, 'dev', lab.atkDev]);
    out.push(ip);
  }
  return out;
}

/** GET with the read-write token from the server namespace; the parsed JSON or text. */
export async function api(lab: FloodLab, urlPath: string): Promise<string> {
  const r = await lab.net.exec(lab.srv, ['curl', '-sf', '--max-time', '10', '-H', `Authorization: Bearer ${apiToken(lab.daemon.dataDir)}`, `http://${lab.serverIp}:8080${urlPath}`], 15_000);
  return r.stdout;
}

/** /metrics, parsed; `value` finds one sample. */
export async function metrics(lab: FloodLab): Promise<{ samples: Sample[]; value: (name: string, labels?: Record<string, string>) => number | undefined }> {
  const { samples } = parsePromText(await api(lab, '/metrics'));
  return {
    samples,
    value: (name, labels = {}) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value,
  };
}
