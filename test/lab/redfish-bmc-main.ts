/**
 * Runs the lab Redfish BMC (redfish-bmc.ts):
 *   node dist/test/lab/redfish-bmc-main.js --port P [--addr A] --cert-dir D [--user U] [--profile generic|dell|hpe|supermicro]
 *     [--session-limit 4] [--session-timeout-s 600] [--task-delay-ms 300] [--no-session-service] [--vm NAME,MAC,bios|uefi]
 * The password comes from $REDFISH_BMC_PASSWORD. With --vm, power and boot device go to that lab VM
 * through `scripts/lab/lab-bmc hook` (LAB_NS/LAB_RUN from the environment, as for ipmi_sim);
 * without it the machine is a flag in memory (benchmarks). The certificate (self-signed, EC P-256,
 * SAN = the address) is made with openssl in D on first start and reused after that.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { RedfishBmc, type Machine } from './redfish-bmc.js';
import { REDFISH_PROFILES } from './redfish-profiles.js';

const run = promisify(execFile);
const LAB_BMC = path.join(fileURLToPath(new URL('../../../', import.meta.url)), 'scripts', 'lab', 'lab-bmc');

function memoryMachine(): Machine {
  let on = false;
  return {
    power: async () => (on ? 'On' : 'Off'),
    setPower: async (v) => { on = v; },
    signal: async (w) => { if (w === 'shutdown') on = false; },
    setBootDevice: async () => {},
  };
}

/** The lab VM behind lab-bmc's hook (the same one ipmi_sim's chassis_control runs). */
function labMachine(name: string, mac: string, fw: string): Machine {
  const labRun = process.env['LAB_RUN'];
  if (!labRun) throw new Error('--vm needs LAB_RUN (and LAB_NS) in the environment');
  const hook = (...args: string[]) => run(LAB_BMC, ['hook', name, mac, fw, '', ...args], { timeout: 30_000 });
  return {
    // Read the pidfile here rather than forking the hook for every GET of the system.
    power: async () => {
      const pid = Number((await readFile(path.join(labRun, `${name}.pid`), 'utf8').catch(() => '')).trim());
      if (!Number.isInteger(pid) || pid <= 0) return 'Off';
      const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
      return comm.trim() === 'qemu-system-x86' ? 'On' : 'Off';
    },
    setPower: async (v) => { await hook('set', 'power', v ? '1' : '0'); },
    signal: async (w) => { await hook('set', w); },
    setBootDevice: async (t) => { await hook('set', 'boot', t); },
  };
}

async function certificate(dir: string, addr: string): Promise<{ key: Buffer; cert: Buffer }> {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  if (!existsSync(key) || !existsSync(cert)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30',
      '-subj', `/CN=metalboot-lab-redfish-${addr}`, '-addext', `subjectAltName=IP:${addr}`, '-addext', 'basicConstraints=critical,CA:TRUE',
      '-keyout', key, '-out', cert], { timeout: 30_000 });
  }
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' }, addr: { type: 'string', default: '127.0.0.1' }, 'cert-dir': { type: 'string' },
      user: { type: 'string', default: 'admin' }, profile: { type: 'string', default: 'generic' },
      'session-limit': { type: 'string', default: '4' }, 'session-timeout-s': { type: 'string', default: '600' },
      'task-delay-ms': { type: 'string', default: '300' }, vm: { type: 'string' },
      'no-session-service': { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error('--port 1..65535 is required');
  if (!values['cert-dir']) throw new Error('--cert-dir is required');
  const profile = REDFISH_PROFILES[values.profile];
  if (!profile) throw new Error(`--profile must be one of ${Object.keys(REDFISH_PROFILES).join(', ')}`);
  const password = process.env['REDFISH_BMC_PASSWORD'];
  if (!password) throw new Error('REDFISH_BMC_PASSWORD is not set');
  let machine = memoryMachine();
  let uuid = '4d424c41-5246-4000-8000-000000000000';
  if (values.vm) {
    const [name, mac, fw] = values.vm.split(',');
    if (!name || !mac || (fw !== 'bios' && fw !== 'uefi')) throw new Error('--vm NAME,MAC,bios|uefi');
    machine = labMachine(name, mac, fw);
    uuid = `4d424c41-4200-4000-8000-${mac.replace(/:/g, '').toLowerCase()}`;
  }
  const bmc = new RedfishBmc({
    user: values.user, password, profile, uuid,
    sessionLimit: Number(values['session-limit']), sessionTimeoutS: Number(values['session-timeout-s']), taskDelayMs: Number(values['task-delay-ms']),
    sessionService: !values['no-session-service'],
  }, machine);
  const server = bmc.server(await certificate(values['cert-dir'], values.addr));
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, values.addr, () => resolve()); });
  process.stdout.write(`redfish-bmc: https://${values.addr}:${port} profile ${profile.name}${values.vm ? ` vm ${values.vm}` : ''}\n`);
  const stop = () => { server.close(); server.closeAllConnections(); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`redfish-bmc: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
