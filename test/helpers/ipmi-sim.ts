/**
 * OpenIPMI's ipmi_sim as a real BMC for tests: a lan.conf of our own on 127.0.0.1 and a free UDP
 * port, and a chassis_control hook that keeps power and boot device in files (the hook's calling
 * convention is in scripts/lab/README.md: `get power` prints `power:0|1`, `get boot` prints
 * `boot:<dev>`, `set power 1`, `set boot pxe`). Stopped and removed by tap's teardown.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import type { Test } from 'tap';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeAsfPing, decodeRmcp } from '../../src/ipmi/rmcp.js';
import { toolMissing } from './tools.js';

export const IPMI_SIM = '/usr/bin/ipmi_sim';
export const IPMITOOL = '/usr/bin/ipmitool';

export function ipmiSimUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  return toolMissing('ipmi_sim', 'ipmitool');
}

export interface SimOptions {
  /** Default: a free port. */
  readonly port?: number;
  /** Run the BMC (and ipmitool) inside this network namespace, on its loopback. */
  readonly netns?: string;
  readonly user?: string;
  readonly password?: string;
  /** `user 2 <enabled> ...`: a disabled user cannot log in (ipmi_sim answers as for an unknown user). */
  readonly userEnabled?: boolean;
  /** The user's maximum privilege (user, operator, admin). */
  readonly userPrivilege?: 'user' | 'operator' | 'admin';
  /** The LAN channel's privilege limit (`priv_limit`; ipmi_sim 2.0.33 does not enforce it). */
  readonly channelPrivLimit?: 'user' | 'operator' | 'admin';
  /** Auth types the user may use for IPMI 1.5 sessions. */
  readonly auths?: string;
}

export interface Sim {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly dir: string;
  /** Current power state as the hook's files say. */
  power(): 0 | 1;
  bootDevice(): string;
  hookLog(): string;
  /** Runs ipmitool against this BMC (cipher suite 3, or `-I lan` for IPMI 1.5) and returns stdout. */
  ipmitool(args: readonly string[], opts?: { lan15?: boolean }): string;
  stop(): Promise<void>;
}

export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function hookScript(dir: string): string {
  return `#!/bin/sh
# ipmi_sim chassis_control hook: state in files, every call logged.
D='${dir}'
echo "$*" >> "$D/hook.log"
case "$1 $2" in
  "get power") echo "power:$(cat "$D/power" 2>/dev/null || echo 0)" ;;
  "set power") echo "$3" > "$D/power" ;;
  "get boot") echo "boot:$(cat "$D/boot" 2>/dev/null || echo none)" ;;
  "set boot") echo "$3" > "$D/boot" ;;
  "set reset"|"set shutdown") echo "$2" >> "$D/events" ;;
esac
exit 0
`;
}

/** Starts ipmi_sim and waits (≤5 s) until it answers an RMCP presence ping. */
export async function startIpmiSim(t: Test, o: SimOptions = {}): Promise<Sim> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mb-ipmisim-'));
  const port = o.port ?? (await freeUdpPort());
  const user = o.user ?? 'admin';
  const password = o.password ?? 'simpass';
  const auths = o.auths ?? 'md5 straight';
  writeFileSync(path.join(dir, 'hook'), hookScript(dir));
  chmodSync(path.join(dir, 'hook'), 0o755);
  writeFileSync(path.join(dir, 'power'), '0\n');
  writeFileSync(path.join(dir, 'lan.conf'), `name "mbtest"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${port}
    priv_limit ${o.channelPrivLimit ?? 'admin'}
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "${path.join(dir, 'hook')}"
  user 2 ${o.userEnabled === false ? 'false' : 'true'} "${user}" "${password}" ${o.userPrivilege ?? 'admin'} 10 ${auths}
`);
  writeFileSync(path.join(dir, 'bmc.emu'), `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
`);
  const nsPrefix = o.netns ? ['ip', 'netns', 'exec', o.netns] : [];
  const child: ChildProcess = spawn(nsPrefix[0] ?? 'timeout', [...nsPrefix.slice(1), ...(o.netns ? ['timeout'] : []), '-k', '5', '900', IPMI_SIM, '-n', '-c', path.join(dir, 'lan.conf'), '-f', path.join(dir, 'bmc.emu'), '-s', path.join(dir, 'state')],
    { stdio: ['ignore', 'ignore', 'ignore'], detached: true });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      await new Promise<void>((r) => { const tm = setTimeout(r, 2000); child.once('exit', () => { clearTimeout(tm); r(); }); });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  t.teardown(stop);
  if (o.netns) await new Promise((r) => setTimeout(r, 700)); // the ping below cannot reach into the namespace
  else await waitForPong(port, 5000);
  const sim: Sim = {
    host: '127.0.0.1', port, user, password, dir,
    power: () => (readFileSync(path.join(dir, 'power'), 'utf8').trim() === '1' ? 1 : 0),
    bootDevice: () => (existsSync(path.join(dir, 'boot')) ? readFileSync(path.join(dir, 'boot'), 'utf8').trim() : 'none'),
    hookLog: () => (existsSync(path.join(dir, 'hook.log')) ? readFileSync(path.join(dir, 'hook.log'), 'utf8') : ''),
    ipmitool: (args, opts = {}) => execFileSync(nsPrefix[0] ?? IPMITOOL, [...nsPrefix.slice(1), ...(o.netns ? [IPMITOOL] : []),
      ...(opts.lan15 ? ['-I', 'lan'] : ['-I', 'lanplus', '-C', '3']), '-H', '127.0.0.1', '-p', String(port), '-U', user, '-P', password, '-N', '1', '-R', '2', ...args,
    ], { encoding: 'utf8', timeout: 20_000 }),
    stop,
  };
  return sim;
}

async function waitForPong(port: number, withinMs: number): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  try {
    const deadline = Date.now() + withinMs;
    while (Date.now() < deadline) {
      const got = await new Promise<boolean>((resolve) => {
        const tm = setTimeout(() => { s.removeAllListeners('message'); resolve(false); }, 200);
        s.once('message', (b) => { clearTimeout(tm); resolve(decodeRmcp(b).ok); });
        s.send(encodeAsfPing(1), port, '127.0.0.1');
      });
      if (got) return;
    }
    throw new Error(`ipmi_sim on 127.0.0.1:${port} did not answer a presence ping within ${withinMs} ms`);
  } finally {
    s.close();
  }
}
