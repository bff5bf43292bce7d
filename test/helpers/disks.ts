/**
 * The real daemon with file storage and a tgtd it manages, in a test namespace: the portal is
 * 127.0.0.1:3260 inside the namespace, the control socket a private port. HTTP calls and iSCSI
 * initiators run inside the namespace too. Teardown stops tgtd (the daemon leaves it running on
 * purpose) and removes its control socket.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { runCommand } from '../../src/exec/run.js';
import { Tgtd } from '../../src/iscsi/tgtd.js';
import { openStore } from '../../src/store/db.js';
import { decodeDiskRecord, type DiskRecord } from '../../src/disks/record.js';
import { TestNet } from './netns.js';
import { apiToken } from './dhcp-tools.js';
import { startDaemon, type DaemonUnderTest } from './daemon.js';
import { freeControlPort, removeControlSocket } from './tgtd.js';

export const PORTAL = '127.0.0.1:3260';
export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface DiskLab {
  readonly net: TestNet;
  readonly ns: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly controlPort: number;
  readonly tgtd: Tgtd;
  daemon: DaemonUnderTest;
  /** Starts (or restarts) the daemon on the same data directory; `env` and `tgtadm` (the iscsi.tgtadm program) for one start only. */
  start(env?: Record<string, string>, opts?: { tgtadm?: string }): Promise<DaemonUnderTest>;
  /** curl inside the namespace; returns status and body. */
  api(method: string, url: string, body?: unknown): Promise<{ status: number; body: string; json: () => any }>;
  upload(url: string, file: string): Promise<{ status: number; body: string }>;
  /** Disk records with secrets, read from the store while the daemon is stopped. */
  records(): Promise<DiskRecord[]>;
  /** A libiscsi/QEMU initiator command in the namespace. */
  exec(argv: readonly string[], timeoutMs?: number, ok?: readonly number[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

export function config(dataDir: string, controlPort: number, extra = '', tgtadm?: string, storage = '{ backend: file }'): string {
  return `dataDir: ${dataDir}
http: { listen: "127.0.0.1:8080", publicUrl: "http://127.0.0.1:8080" }
dhcp: { mode: off }
tftp: { enabled: false }
storage: ${storage}
iscsi: { portal: "${PORTAL}", manageTgtd: true, controlPort: ${controlPort}, checkIntervalMs: 500${tgtadm ? `, tgtadm: ${tgtadm}` : ''} }
${extra}`;
}

/** `storage`: the daemon's `storage:` value, read at each start (e.g. an rbd section naming a cluster started after the lab). */
export async function buildDiskLab(t: Test, prefix: string, extraYaml = '', { storage }: { storage?: () => string } = {}): Promise<DiskLab> {
  const net = new TestNet(prefix);
  const dir = await mkdtemp(path.join(tmpdir(), `mbt-${prefix}-`));
  net.removeOnDestroy(dir);
  const dataDir = path.join(dir, 'data');
  const controlPort = freeControlPort();
  const tgtd = new Tgtd({ runner: runCommand, controlPort, manageTgtd: true, pidFile: path.join(dataDir, 'tgtd.pid'), timeoutMs: 5000 });
  let daemon: DaemonUnderTest | undefined;
  t.teardown(async () => {
    await daemon?.stop().catch(() => undefined);
    await tgtd.stop().catch(() => undefined);
    await removeControlSocket(controlPort);
    await net.destroy();
  });
  const ns = await net.addNamespace('s');
  await net.ip(ns, ['link', 'set', 'lo', 'up']);
  const lab: DiskLab = {
    net, ns, dir, dataDir, controlPort, tgtd,
    get daemon() { return daemon!; },
    set daemon(d) { daemon = d; },
    async start(env = {}, opts = {}) {
      const saved = { ...process.env };
      Object.assign(process.env, env);
      try {
        daemon = await startDaemon(net, ns, config(dataDir, controlPort, extraYaml, opts.tgtadm, storage?.()), { dataDir, readyTimeoutMs: 30_000 });
      } finally {
        for (const k of Object.keys(env)) { if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k]; }
      }
      return daemon;
    },
    async api(method, url, body) {
      const argv = ['curl', '-sS', '-m', '120', '-X', method, '-H', `Authorization: Bearer ${apiToken(dataDir)}`, '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:8080${url}`];
      if (body !== undefined) argv.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
      const r = await net.exec(ns, argv, 130_000);
      const i = r.stdout.lastIndexOf('\n');
      const text = r.stdout.slice(0, i);
      return { status: Number(r.stdout.slice(i + 1)), body: text, json: () => JSON.parse(text) };
    },
    async upload(url, file) {
      const r = await net.exec(ns, ['curl', '-sS', '-m', '300', '-X', 'PUT', '-H', `Authorization: Bearer ${apiToken(dataDir)}`, '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`,
        '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:8080${url}`], 310_000);
      const i = r.stdout.lastIndexOf('\n');
      return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
    },
    async records() {
      const store = await openStore(dataDir);
      try {
        return (await store.loadRecords('disks')).map(({ key, value }) => decodeDiskRecord(key, value)).filter((r): r is DiskRecord => typeof r !== 'string');
      } finally {
        await store.close();
      }
    },
    async exec(argv, timeoutMs = 60_000, ok = [0]) {
      const r = await net.exec(ns, argv, timeoutMs, ok);
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },
  };
  return lab;
}

/** QEMU's iSCSI driver options for a disk, the CHAP secret in a file (never argv). */
export async function qemuIscsiOpts(dir: string, r: { targetIqn: string; initiatorIqn: string; chap: { user: string; secret: string } }, override: { initiator?: string; user?: string; secret?: string } = {}): Promise<string[]> {
  const secretFile = path.join(dir, `secret-${Math.random().toString(36).slice(2)}`);
  await writeFile(secretFile, override.secret ?? r.chap.secret, { mode: 0o600 });
  return ['--object', `secret,id=s0,file=${secretFile}`, '--image-opts',
    `driver=iscsi,transport=tcp,portal=${PORTAL},target=${r.targetIqn},lun=1,initiator-name=${override.initiator ?? r.initiatorIqn},user=${override.user ?? r.chap.user},password-secret=s0`];
}
