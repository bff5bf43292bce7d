/**
 * The lab Redfish BMC (test/lab/redfish-bmc.ts) as a child process on 127.0.0.1 of the test's own
 * namespace, its machine a flag in memory (no VM): for the driver's and the Redfish clients' tests
 * and benchmarks. The lab VM variant is scripts/lab/lab-redfish (tests drive it through Lab).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './lab.js';
import { toolMissing } from './tools.js';

export const SIM_MAIN = path.join(REPO, 'dist', 'test', 'lab', 'redfish-bmc-main.js');

export function redfishSimUnavailable(): string | false {
  return toolMissing('openssl');
}

export interface RedfishSimOptions {
  readonly profile?: string;
  readonly user?: string;
  readonly password?: string;
  readonly sessionLimit?: number;
  readonly sessionTimeoutS?: number;
  readonly taskDelayMs?: number;
  /** false: no SessionService (clients must use Basic auth). */
  readonly sessionService?: boolean;
}

export interface RedfishSim {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly certFile: string;
  /** node's fingerprint256 form of the certificate now presented. */
  fingerprint(): string;
  stop(): Promise<void>;
  /** Starts again on the same port; `newCert` makes it present a different certificate. */
  restart(o?: { newCert?: boolean }): Promise<void>;
  destroy(): Promise<void>;
}

export async function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export async function startRedfishSim(o: RedfishSimOptions = {}): Promise<RedfishSim> {
  const port = await freeTcpPort();
  const base = await mkdtemp(path.join(os.tmpdir(), 'mb-redfish-sim-'));
  let certDir = path.join(base, 'cert0');
  let certs = 0;
  let proc: ChildProcess | undefined;
  const user = o.user ?? 'admin';
  const password = o.password ?? 'sim-Pw-1';
  const start = async (): Promise<void> => {
    const args = [SIM_MAIN, '--port', String(port), '--cert-dir', certDir, '--user', user, '--profile', o.profile ?? 'generic',
      '--session-limit', String(o.sessionLimit ?? 4), '--session-timeout-s', String(o.sessionTimeoutS ?? 600), '--task-delay-ms', String(o.taskDelayMs ?? 50),
      ...(o.sessionService === false ? ['--no-session-service'] : [])];
    const p = spawn(process.execPath, args, { env: { ...process.env, REDFISH_BMC_PASSWORD: password }, stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    let err = '';
    p.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`redfish sim did not start in 20 s: ${err}`)), 20_000);
      p.stdout!.once('data', () => { clearTimeout(t); resolve(); });
      p.once('exit', (c) => { clearTimeout(t); reject(new Error(`redfish sim exited ${c}: ${err}`)); });
    });
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const k = setTimeout(() => p.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(k);
  };
  await start();
  return {
    host: '127.0.0.1', port, user, password,
    get certFile() { return path.join(certDir, 'cert.pem'); },
    fingerprint: () => new X509Certificate(readFileSync(path.join(certDir, 'cert.pem'))).fingerprint256,
    stop,
    restart: async (r = {}) => {
      await stop();
      if (r.newCert) certDir = path.join(base, `cert${++certs}`);
      await start();
    },
    destroy: async () => {
      await stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}
