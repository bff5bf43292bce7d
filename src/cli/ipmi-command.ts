/**
 * `metalboot ipmi …`: power and boot device of one BMC, straight from the admin's shell, without
 * the daemon. The password comes from an environment variable or a file, never from argv (argv is
 * visible to every user in /proc).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/error.js';
import { readCipherSuite } from '../config/sections/ipmi.js';
import { DEFAULT_IPMI } from '../config/defaults.js';
import { IpmiClient } from '../ipmi/client.js';
import { IpmiError } from '../ipmi/errors.js';
import type { BootDevice, CipherSuiteRecord, DeviceId } from '../ipmi/commands.js';

export const IPMI_USAGE = [
  '  ipmi --host H [--port 623] --user U (--password-env VAR | --password-file F)',
  '       [--cipher-suite auto|17|3|1.5] [--privilege administrator|operator] [--timeout-ms N] [--retries N]',
  '       power status|on|off|cycle|reset|soft',
  '       bootdev pxe|disk|bios|cdrom [--persistent] [--efi]',
  '       info                       device id, session kind and cipher suites',
].join('\n');

const POWER = ['status', 'on', 'off', 'cycle', 'reset', 'soft'] as const;
const BOOTDEV: readonly BootDevice[] = ['pxe', 'disk', 'bios', 'cdrom'];

export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
}

class UsageError extends Error {}

function posInt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

async function readPassword(values: { 'password-env'?: string; 'password-file'?: string }, env: NodeJS.ProcessEnv): Promise<Buffer> {
  const fromEnv = values['password-env'];
  const fromFile = values['password-file'];
  if ((fromEnv === undefined) === (fromFile === undefined)) throw new UsageError('give exactly one of --password-env VAR or --password-file FILE');
  if (fromEnv !== undefined) {
    const v = env[fromEnv];
    if (v === undefined) throw new UsageError(`environment variable ${fromEnv} is not set`);
    return Buffer.from(v, 'utf8');
  }
  let text: string;
  try {
    text = await readFile(fromFile!, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read password file ${fromFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  // One trailing newline is what `echo pw > file` leaves; it is not part of the password.
  return Buffer.from(text.replace(/\r?\n$/, ''), 'utf8');
}

function formatDeviceId(d: DeviceId): string {
  return [
    `Device ID            : ${d.deviceId}`,
    `Device Revision      : ${d.deviceRevision}`,
    `Firmware Revision    : ${d.firmwareMajor}.${String(d.firmwareMinor).padStart(2, '0')}`,
    `IPMI Version         : ${d.ipmiVersion}`,
    `Manufacturer ID      : ${d.manufacturerId}`,
    `Product ID           : ${d.productId}`,
  ].join('\n');
}

function formatCipherSuites(r: readonly CipherSuiteRecord[] | null): string {
  if (r === null) return 'Cipher Suites        : not reported (the BMC does not answer Get Channel Cipher Suites)';
  return `Cipher Suites        : ${r.map((s) => s.id).join(', ')}`;
}

export async function runIpmiCommand(argv: string[], io: CliIo): Promise<number> {
  let client: IpmiClient | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        host: { type: 'string' }, port: { type: 'string' }, user: { type: 'string' },
        'password-env': { type: 'string' }, 'password-file': { type: 'string' },
        'cipher-suite': { type: 'string' }, privilege: { type: 'string' },
        'timeout-ms': { type: 'string' }, retries: { type: 'string' },
        persistent: { type: 'boolean' }, efi: { type: 'boolean' },
      },
    });
    if (!values.host) throw new UsageError('--host is required');
    if (values.user === undefined) throw new UsageError('--user is required');
    const [verb, arg, ...extra] = positionals;
    if (extra.length) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
    if (verb === 'power') {
      if (!(POWER as readonly string[]).includes(arg ?? '')) throw new UsageError(`power needs one of ${POWER.join(', ')}`);
    } else if (verb === 'bootdev') {
      if (!(BOOTDEV as readonly string[]).includes(arg ?? '')) throw new UsageError(`bootdev needs one of ${BOOTDEV.join(', ')}`);
    } else if (verb === 'info') {
      if (arg !== undefined) throw new UsageError(`unexpected ${JSON.stringify(arg)}`);
    } else {
      throw new UsageError(verb === undefined ? 'ipmi needs power, bootdev or info' : `unknown ipmi command ${JSON.stringify(verb)}`);
    }
    if ((values.persistent || values.efi) && verb !== 'bootdev') throw new UsageError('--persistent and --efi go with bootdev');
    const privilege = values.privilege ?? DEFAULT_IPMI.privilege;
    if (privilege !== 'administrator' && privilege !== 'operator') throw new UsageError('--privilege must be administrator or operator');
    let cipherSuite = DEFAULT_IPMI.cipherSuite;
    if (values['cipher-suite'] !== undefined) {
      try {
        cipherSuite = readCipherSuite(values['cipher-suite'], '--cipher-suite');
      } catch (e) {
        throw new UsageError(e instanceof ConfigError ? e.message.replace(/^config: /, '') : String(e));
      }
    }
    const port = posInt(values.port, 'port', 623);
    if (port < 1 || port > 65535) throw new UsageError(`--port ${port} is out of range 1..65535`);
    const password = await readPassword(values, io.env);
    client = new IpmiClient({
      host: values.host, port, username: values.user, password, privilege, cipherSuite,
      timeoutMs: posInt(values['timeout-ms'], 'timeout-ms', DEFAULT_IPMI.timeoutMs),
      retries: posInt(values.retries, 'retries', DEFAULT_IPMI.retries),
      keepAliveMs: 0,
    }, { log: { debug: () => {}, warn: (_o, msg) => io.err(`metalboot: warning: ${msg}\n`) } });

    if (verb === 'power') {
      if (arg === 'status') io.out(`Chassis Power is ${await client.powerState()}\n`);
      else {
        await client.power(arg as Exclude<(typeof POWER)[number], 'status'>);
        io.out(`Chassis Power Control: ${arg}\n`);
      }
    } else if (verb === 'bootdev') {
      const back = await client.setBootDevice({ device: arg as BootDevice, persistent: values.persistent ?? false, efi: values.efi ?? false });
      io.out(`Set Boot Device to ${arg}${values.persistent ? ' (persistent)' : ''}${values.efi ? ' (EFI)' : ''}; the BMC reports ${back.device}\n`);
    } else {
      const id = await client.deviceId();
      const s = await client.sessionInfo();
      const suites = await client.cipherSuites();
      io.out(`${formatDeviceId(id)}\nSession              : ${s.version === '2.0' ? `RMCP+ cipher suite ${s.suite}` : `IPMI 1.5 (${s.suite === 2 ? 'MD5' : 'password'})`}\n${formatCipherSuites(suites)}\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      io.err(`metalboot ipmi: ${e.message}\nusage:\n${IPMI_USAGE}\n`);
      return 2;
    }
    if (e instanceof IpmiError) {
      io.err(`metalboot ipmi: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await client?.close();
  }
}
