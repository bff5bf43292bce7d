/**
 * A BMC password for the one-shot BMC commands (ipmi, redfish, bmc probe): from an environment
 * variable or a file, never from argv (argv is visible to every user in /proc).
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
