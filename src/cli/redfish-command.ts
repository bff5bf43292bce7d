/**
 * `metalboot redfish …`: power and next boot of one Redfish BMC, straight from the admin's shell,
 * without the daemon (as `metalboot ipmi`). Trust is explicit: a CA file, or the BMC certificate's
 * SHA-256 fingerprint (shown by `metalboot bmc probe`); a BMC presenting anything else is refused.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { BOOT_TARGETS, POWER_ACTIONS, PowerError, type BootTarget, type PowerAction } from '../power/driver.js';
import { RedfishDriver, REDFISH_DEFAULTS } from '../power/redfish.js';
import { normaliseFingerprint, type RedfishTrust } from '../power/redfish-http.js';
import { BmcUsageError, PASSWORD_OPTIONS, bmcCliFailure, readBmcPassword, tcpPort, wholeNumber } from './bmc-cli.js';
import type { CliIo } from './ipmi-command.js';

export const REDFISH_USAGE = [
  '  redfish --host H [--port 443] --user U (--password-env VAR | --password-file F)',
  '       (--ca-file PEM | --cert-sha256 FP) [--system ID] [--timeout-ms N] [--retries N]',
  '       power status|on|off|cycle|reset|soft',
  '       bootdev pxe|disk|bios|cdrom|http [--persistent] [--efi]',
].join('\n');

export const TRUST_OPTIONS = { 'ca-file': { type: 'string' }, 'cert-sha256': { type: 'string' } } as const;

/** The certificate trust from --ca-file or --cert-sha256; neither means every certificate is refused (and named). */
export async function readTrust(values: { 'ca-file'?: string | undefined; 'cert-sha256'?: string | undefined }): Promise<RedfishTrust> {
  if (values['ca-file'] !== undefined && values['cert-sha256'] !== undefined) throw new BmcUsageError('give --ca-file or --cert-sha256, not both');
  if (values['ca-file'] !== undefined) {
    try {
      return { ca: await readFile(values['ca-file']) };
    } catch (e) {
      throw new BmcUsageError(`cannot read CA file ${values['ca-file']}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (values['cert-sha256'] !== undefined) {
    const fp = normaliseFingerprint(values['cert-sha256']);
    if (!fp) throw new BmcUsageError('--cert-sha256 must be 64 hex digits (colons allowed)');
    return { certSha256: fp };
  }
  return {};
}

export async function runRedfishCommand(argv: string[], io: CliIo): Promise<number> {
  let driver: RedfishDriver | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        host: { type: 'string' }, port: { type: 'string' }, user: { type: 'string' }, system: { type: 'string' },
        ...PASSWORD_OPTIONS, ...TRUST_OPTIONS,
        'timeout-ms': { type: 'string' }, retries: { type: 'string' },
        persistent: { type: 'boolean' }, efi: { type: 'boolean' },
      },
    });
    if (!values.host) throw new BmcUsageError('--host is required');
    if (values.user === undefined) throw new BmcUsageError('--user is required');
    const [verb, arg, ...extra] = positionals;
    if (extra.length) throw new BmcUsageError(`unexpected ${JSON.stringify(extra[0])}`);
    if (verb === 'power') {
      if (arg !== 'status' && !(POWER_ACTIONS as readonly string[]).includes(arg ?? '')) throw new BmcUsageError(`power needs one of status, ${POWER_ACTIONS.join(', ')}`);
    } else if (verb === 'bootdev') {
      if (!(BOOT_TARGETS as readonly string[]).includes(arg ?? '')) throw new BmcUsageError(`bootdev needs one of ${BOOT_TARGETS.join(', ')}`);
    } else {
      throw new BmcUsageError(verb === undefined ? 'redfish needs power or bootdev' : `unknown redfish command ${JSON.stringify(verb)}`);
    }
    if ((values.persistent || values.efi) && verb !== 'bootdev') throw new BmcUsageError('--persistent and --efi go with bootdev');
    const trust = await readTrust(values);
    driver = new RedfishDriver({
      host: values.host, port: tcpPort(values.port, REDFISH_DEFAULTS.port), user: values.user,
      password: await readBmcPassword(values, io.env), system: values.system, trust,
      timeoutMs: wholeNumber(values['timeout-ms'], 'timeout-ms', REDFISH_DEFAULTS.timeoutMs),
      retries: wholeNumber(values.retries, 'retries', REDFISH_DEFAULTS.retries),
      // One command, then close: nothing to pace.
      maxRequestsPerSecond: 0,
    });
    if (verb === 'power') {
      if (arg === 'status') io.out(`Chassis Power is ${await driver.powerState()}\n`);
      else {
        await driver.power(arg as PowerAction);
        io.out(`Chassis Power Control: ${arg}\n`);
      }
    } else {
      const back = await driver.setNextBoot({ device: arg as BootTarget, persistent: values.persistent ?? false, efi: values.efi ?? false });
      io.out(`Set Boot Device to ${arg}${values.persistent ? ' (persistent)' : ''}${values.efi ? ' (EFI)' : ''}; the BMC reports ${back.device}${back.persistent ? ' (persistent)' : ''}${back.efi ? ' (EFI)' : ''}\n`);
    }
    return 0;
  } catch (e) {
    return bmcCliFailure(e, 'redfish', REDFISH_USAGE, (s) => io.err(s), (x): x is PowerError => x instanceof PowerError, (x) => ` (${(x as PowerError).kind})`);
  } finally {
    await driver?.close();
  }
}
