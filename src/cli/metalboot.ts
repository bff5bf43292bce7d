#!/usr/bin/env node
/** metalboot: the admin CLI. It talks to a running daemon over its HTTP API, or (ipmi) straight to a BMC. */
import { errorMessage } from '../errors/message.js';
import { packageVersion } from '../version.js';
import { IPMI_USAGE, runIpmiCommand } from './ipmi-command.js';
import { EVENTS_USAGE, runEventsCommand } from './events-command.js';
import type { CliIo } from './api-client.js';
import { COMMON_USAGE } from './common.js';
import { LEASES_USAGE, runLeasesCommand } from './leases-command.js';
import { MACHINES_USAGE, runMachinesCommand } from './machines-command.js';
import { IMAGES_USAGE, runImagesCommand } from './images-command.js';
import { ACTIONS_USAGE, ACTION_COMMANDS, runActionCommand, type ActionCommand } from './actions-command.js';
import { OPERATIONS_USAGE, runOperationsCommand } from './operations-command.js';
import { TOKEN_USAGE, runTokenCommand } from './token-command.js';
import { BOOT_MEDIA_USAGE, runBootMediaCommand } from './boot-media-command.js';

function usage(): string {
  return [
    'usage: metalboot [--version] <command> [options]',
    MACHINES_USAGE,
    IMAGES_USAGE,
    ACTIONS_USAGE,
    OPERATIONS_USAGE,
    LEASES_USAGE,
    EVENTS_USAGE,
    TOKEN_USAGE,
    BOOT_MEDIA_USAGE,
    COMMON_USAGE,
    'exit codes: 0 done, 1 the API refused or could not be reached (the message says which), 2 bad command line or cli.yaml',
    '',
    IPMI_USAGE,
    '',
  ].join('\n');
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case '--version': case 'version': io.out(`metalboot ${packageVersion()}\n`); return 0;
      case '--help': case '-h': case 'help': io.out(usage()); return 0;
      case 'leases': return await runLeasesCommand(rest, io);
      case 'machines': return await runMachinesCommand(rest, io);
      case 'images': return await runImagesCommand(rest, io);
      case 'operations': return await runOperationsCommand(rest, io);
      case 'token': return await runTokenCommand(rest, io);
      case 'boot-media': return await runBootMediaCommand(rest, io);
      case 'ipmi': return await runIpmiCommand(rest, io);
      case 'events': { const ac = new AbortController(); process.once('SIGINT', () => ac.abort()); return await runEventsCommand(rest, { ...io, signal: ac.signal }); }
      default:
        if ((ACTION_COMMANDS as readonly string[]).includes(cmd ?? '')) return await runActionCommand(cmd as ActionCommand, rest, io);
        io.err(`metalboot: ${cmd === undefined ? 'no command' : `unknown command ${JSON.stringify(cmd.slice(0, 40))}`}\n${usage()}`);
        return 2;
    }
  } catch (e) {
    io.err(`metalboot: ${errorMessage(e)}\n`);
    return 1;
  }
}

main(process.argv.slice(2), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env }).then((c) => { process.exitCode = c; });
