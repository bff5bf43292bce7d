/**
 * `metalboot token rotate [--file F]`: writes a new random API token atomically (0600, same owner
 * as the old file) where the daemon reads it; the daemon notices within a second. The new token
 * goes only into the file. `metalboot token show-path`: which token file the CLI would use.
 */
import { chown, stat } from 'node:fs/promises';
import { writeTokenFile } from '../http/auth.js';
import { describeToken, resolveApiSettings, UsageError, type CliIo } from './api-client.js';
import { COMMON_USAGE, noMore, parse, runCli } from './common.js';
import { json } from './tables.js';

export const TOKEN_USAGE = [
  '  token rotate [--file F]              new token into the token file (default: the one the CLI uses)',
  '  token show-path                      the token file the CLI uses',
].join('\n');

export async function runTokenCommand(argv: string[], io: CliIo): Promise<number> {
  return runCli(io, 'token', `${TOKEN_USAGE}\n${COMMON_USAGE}`, async () => {
    const { values, positionals } = parse(argv, { file: { type: 'string' } });
    const [verb, ...args] = positionals;
    noMore(args);
    if (values.file !== undefined && values['token-file'] !== undefined) throw new UsageError('give --file or --token-file, not both');
    if (values.file === '') throw new UsageError('--file needs a file name');
    // The token file: --file / --token-file, then $METALBOOT_TOKEN_FILE, tokenFile in cli.yaml, the default.
    // $METALBOOT_TOKEN says which token to send, not where the daemon's file is, so it is left out here.
    const env = { ...io.env };
    delete env.METALBOOT_TOKEN;
    const s = await resolveApiSettings({ api: values.api, tokenFile: values.file ?? values['token-file'] }, { env, ...(io.configFiles ? { configFiles: io.configFiles } : {}) });
    if (s.token.kind !== 'file') throw new Error('unreachable: token source without a file');
    const file = s.token.file;
    switch (verb) {
      case 'show-path':
        io.out(values.json ? json({ file, source: describeToken(s.token), overriddenBy: io.env.METALBOOT_TOKEN ? 'METALBOOT_TOKEN' : null }) : `${file}\n`);
        if (io.env.METALBOOT_TOKEN && !values.json) io.err('metalboot token: note: $METALBOOT_TOKEN is set, so the CLI sends that token instead of reading this file\n');
        return 0;
      case 'rotate': {
        const before = await stat(file).catch(() => undefined);
        try {
          await writeTokenFile(file);
          // Keep the owner the daemon gave it, so the daemon can still read it (0600).
          if (before && process.getuid?.() === 0 && (before.uid !== 0 || before.gid !== 0)) await chown(file, before.uid, before.gid);
        } catch (e) {
          io.err(`metalboot token: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
          return 1;
        }
        if (values.json) io.out(json({ file, rotated: true }));
        else io.out(`wrote a new API token to ${file} (mode 0600); metalbootd picks it up within a second, and the old token is refused from then on\n`);
        if (!before) io.err(`metalboot token: note: ${file} did not exist before; make sure it is the daemon's http.apiTokenFile\n`);
        if (io.env.METALBOOT_TOKEN) io.err('metalboot token: note: $METALBOOT_TOKEN is set and now holds the old token\n');
        return 0;
      }
      default:
        throw new UsageError(verb === undefined ? 'token needs rotate or show-path' : `unknown token command ${JSON.stringify(verb.slice(0, 40))}`);
    }
  });
}
