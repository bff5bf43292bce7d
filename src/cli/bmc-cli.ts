/**
 * What the one-shot BMC commands (ipmi, redfish, bmc probe) share: the password from an environment
 * variable or a file, never from argv (argv is visible to every user in /proc); number and port
 * options; errors to exit codes (2 usage, 1 the BMC said no or could not be reached).
 */
import { readFile } from 'node:fs/promises';

export class BmcUsageError extends Error {}

export const PASSWORD_OPTIONS = {
  'password-env': { type: 'string' },
  'password-file': { type: 'string' },
} as const;

export async function readBmcPassword(values: { 'password-env'?: string | undefined; 'password-file'?: string | undefined }, env: NodeJS.ProcessEnv): Promise<Buffer> {
  const fromEnv = values['password-env'];
  const fromFile = values['password-file'];
  if ((fromEnv === undefined) === (fromFile === undefined)) throw new BmcUsageError('give exactly one of --password-env VAR or --password-file FILE');
  if (fromEnv !== undefined) {
    const v = env[fromEnv];
    if (v === undefined) throw new BmcUsageError(`environment variable ${fromEnv} is not set`);
    return Buffer.from(v, 'utf8');
  }
  let text: string;
  try {
    text = await readFile(fromFile!, 'utf8');
  } catch (e) {
    throw new BmcUsageError(`cannot read password file ${fromFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  // One trailing newline is what `echo pw > file` leaves; it is not part of the password.
  return Buffer.from(text.replace(/\r?\n$/, ''), 'utf8');
}

export function wholeNumber(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new BmcUsageError(`--${name} must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function tcpPort(v: string | undefined, dflt: number): number {
  const port = wholeNumber(v, 'port', dflt);
  if (port < 1 || port > 65535) throw new BmcUsageError(`--port ${port} is out of range 1..65535`);
  return port;
}

/** A usage error → 2, a BMC error (`isBmcError`) → 1, each as one line on stderr; anything else is rethrown. */
export function bmcCliFailure(e: unknown, name: string, usage: string, err: (s: string) => void, isBmcError: (e: unknown) => e is Error, suffix: (e: Error) => string = () => ''): number {
  if (e instanceof BmcUsageError || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
    err(`metalboot ${name}: ${e.message}\nusage:\n${usage}\n`);
    return 2;
  }
  if (isBmcError(e)) {
    err(`metalboot ${name}: ${e.message}${suffix(e)}\n`);
    return 1;
  }
  throw e;
}
