/**
 * A TFTP test lab: a server namespace running the real metalbootd (DHCP off,
 * TFTP on a veth) and a client namespace, joined by a veth pair, with a
 * temporary TFTP root holding generated random files of known sha256.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { TestNet } from './netns.js';
import { REPO_ROOT, startDaemon, type DaemonUnderTest } from './daemon.js';

export const TFTP_CLIENT = path.join(REPO_ROOT, 'dist/test/helpers/tftp-client.js');

export interface TftpLab {
  readonly net: TestNet;
  readonly srv: string;
  readonly cli: string;
  readonly serverIp: string;
  readonly srvDev: string;
  readonly cliDev: string;
  readonly root: string;
  /** A scratch directory for downloads. */
  readonly out: string;
  readonly sha: Map<string, string>;
  daemon: DaemonUnderTest;
}

/** Writes `size` random bytes to file and returns their sha256. */
export async function randomFile(file: string, size: number): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    for (let done = 0; done < size;) {
      const chunk = randomBytes(Math.min(1 << 20, size - done));
      h.update(chunk);
      await fh.write(chunk);
      done += chunk.length;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * A temporary directory (removed with `net`) holding `root/` with random files of the given sizes
 * (their sha256 by name) and an empty `out/` for what clients download.
 */
export async function servedFiles(net: TestNet, prefix: string, files: Record<string, number>): Promise<{ root: string; out: string; sha: Map<string, string> }> {
  const base = await mkdtemp(path.join(os.tmpdir(), prefix));
  net.removeOnDestroy(base);
  const root = path.join(base, 'root');
  const out = path.join(base, 'out');
  await mkdir(root);
  await mkdir(out);
  const sha = new Map<string, string>();
  for (const [name, size] of Object.entries(files)) sha.set(name, await randomFile(path.join(root, name), size));
  return { root, out, sha };
}

/**
 * files: name -> size. tftpYaml: extra keys for the tftp section, e.g.
 * "maxTransfers: 3". The daemon runs with log level debug.
 */
export async function buildTftpLab(t: Test, prefix: string, octet: number, files: Record<string, number>, tftpYaml = ''): Promise<TftpLab> {
  const net = new TestNet(prefix);
  const lab: Partial<TftpLab> = { net };
  t.teardown(async () => {
    await lab.daemon?.stop();
    await net.destroy();
  });
  const { root, out, sha } = await servedFiles(net, 'mbt-tftp-', files);
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const srvDev = `${net.tag}s`, cliDev = `${net.tag}c`;
  const serverIp = `10.${octet}.0.1`;
  await net.veth(srv, srvDev, cli, cliDev, `${serverIp}/24`, `10.${octet}.0.2/24`);
  Object.assign(lab, { srv, cli, serverIp, srvDev, cliDev, root, out, sha });
  lab.daemon = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "${serverIp}:8080" }
dhcp: { mode: off }
tftp:
  interface: ${srvDev}
  root: ${root}
${tftpYaml.split('\n').filter(Boolean).map((l) => `  ${l.trim()}`).join('\n')}
`);
  return lab as TftpLab;
}

/** Runs the socket-level client in the client namespace; its JSON result. */
export async function tftpClient<T = Record<string, unknown>>(lab: TftpLab, cmd: string, args: unknown, timeoutMs = 60_000): Promise<T> {
  const r = await lab.net.exec(lab.cli, ['node', TFTP_CLIENT, cmd, lab.serverIp, JSON.stringify(args)], timeoutMs);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as T;
}

/** Drops `permille`/1000 of the packets arriving on the client's veth (nftables netdev ingress; no netem here). */
export async function dropOnClientIngress(lab: TftpLab, permille: number): Promise<void> {
  const rules = `table netdev mbtloss {
  chain in {
    type filter hook ingress device "${lab.cliDev}" priority 0; policy accept;
    numgen random mod 1000 < ${permille} counter drop
  }
}
`;
  const file = path.join(lab.out, 'loss.nft');
  await writeFile(file, rules);
  await lab.net.exec(lab.cli, ['nft', '-f', file]);
}

/** Packets dropped so far by dropOnClientIngress. */
export async function droppedPackets(lab: TftpLab): Promise<number> {
  const r = await lab.net.exec(lab.cli, ['nft', 'list', 'table', 'netdev', 'mbtloss']);
  return Number(/counter packets (\d+)/.exec(r.stdout)?.[1] ?? NaN);
}
