/**
 * `metalboot ipmi …`: power and boot device of one BMC, straight from the admin's shell, without
 * the daemon. The password comes from an environment variable or a file, never from argv (argv is
 * visible to every user in /proc).
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/error.js';
import { readCipherSuite } from '../config/sections/ipmi.js';
import { DEFAULT_IPMI } from '../config/defaults.js';
import { IpmiClient } from '../ipmi/client.js';
import { BmcUsageError, PASSWORD_OPTIONS, bmcCliFailure, readBmcPassword, tcpPort, wholeNumber } from './bmc-cli.js';
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

class UsageError extends BmcUsageError {}


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
        ...PASSWORD_OPTIONS,
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
    const port = tcpPort(values.port, 623);
    const password = await readBmcPassword(values, io.env);
    client = new IpmiClient({
      host: values.host, port, username: values.user, password, privilege, cipherSuite,
      timeoutMs: wholeNumber(values['timeout-ms'], 'timeout-ms', DEFAULT_IPMI.timeoutMs),
      retries: wholeNumber(values.retries, 'retries', DEFAULT_IPMI.retries),
      keepAliveMs: 0,
      // One command, then close: nothing to pace (the daemon's per-BMC rate limit is for many callers).
      maxCommandsPerSecond: 0,
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
    return bmcCliFailure(e, 'ipmi', IPMI_USAGE, (s) => io.err(s), (x): x is IpmiError => x instanceof IpmiError);
  } finally {
    await client?.close();
  }
}
