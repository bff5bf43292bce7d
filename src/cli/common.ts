/**
 * What every API command of the admin CLI shares: the common options (--api, --token-file,
 * --json), argv parsing with a clear refusal of a token on the command line, MAC arguments, and
 * the one place that turns errors into a message and an exit code (0 done, 1 the API or the
 * network said no, 2 bad command line or CLI config).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { tryParseMac } from '../net/mac.js';
import { ApiClient, ApiError, CliConfigError, UsageError, type CliIo } from './api-client.js';

const COMMON_OPTIONS = {
  api: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export const COMMON_USAGE = [
  'common options: --api URL ($METALBOOT_API, cli.yaml api:, default http://127.0.0.1:8080)',
  '                --token-file F ($METALBOOT_TOKEN_FILE, cli.yaml tokenFile:, default /var/lib/metalboot/api-token)',
  '                or the token itself in $METALBOOT_TOKEN (never on the command line)',
  '                --json   print the API\'s JSON instead of a table',
  'config file: ~/.config/metalboot/cli.yaml or /etc/metalboot/cli.yaml (first found) with api: and tokenFile:',
].join('\n');

/** parseArgs with the common options added; refuses `--token VALUE` without echoing the value. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: readonly string[], options: O) {
  for (const a of argv) {
    if (a === '--') break;
    if (a === '--token' || a.startsWith('--token=') || a === '--password' || a.startsWith('--password=')) {
      throw new UsageError(`${a.split('=')[0]} is not accepted: the command line is visible to every user (/proc); use $METALBOOT_TOKEN or --token-file for the API token`);
    }
  }
  return parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { ...COMMON_OPTIONS, ...options } });
}

export function openClient(values: { api?: string | undefined; 'token-file'?: string | undefined }, io: CliIo): Promise<ApiClient> {
  return ApiClient.open({ api: values.api, tokenFile: values['token-file'] }, io);
}

export function macArg(raw: string | undefined, what = 'MAC'): string {
  if (raw === undefined) throw new UsageError(`${what} is missing`);
  const m = tryParseMac(raw);
  if (!m) throw new UsageError(`${JSON.stringify(raw.slice(0, 40))} is not a MAC address`);
  return m;
}

export function noMore(rest: readonly string[]): void {
  if (rest.length) throw new UsageError(`unexpected ${JSON.stringify(rest[0]!.slice(0, 60))}`);
}

export function oneOf<T extends string>(v: string | undefined, allowed: readonly T[], what: string): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${what} must be one of ${allowed.join(', ')}`);
  return v as T;
}

function isParseArgsError(e: unknown): e is TypeError {
  return e instanceof TypeError && typeof (e as { code?: unknown }).code === 'string' && (e as unknown as { code: string }).code.startsWith('ERR_PARSE_ARGS');
}

/** Runs one command: usage and config errors → 2, API and network errors → 1, with one line on stderr. */
export async function runCli(io: CliIo, name: string, usage: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UsageError || isParseArgsError(e)) {
      io.err(`metalboot ${name}: ${e.message}\nusage:\n${usage}\n`);
      return 2;
    }
    if (e instanceof CliConfigError) {
      io.err(`metalboot: config: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ApiError) {
      io.err(`metalboot ${name}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
