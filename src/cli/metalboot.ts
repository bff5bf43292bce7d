#!/usr/bin/env node
/**
 * metalboot: the admin CLI. It talks to a running daemon over its HTTP API, or (ipmi, redfish, bmc)
 * straight to a BMC. Each command area is imported only when it runs: a one-shot BMC call must not
 * pay for loading the API client's or the daemon's modules (node start-up is most of its wall time).
 */
import { errorMessage } from '../errors/message.js';
import type { CliIo } from './api-client.js';

async function usage(): Promise<string> {
  const [m, i, a, o, l, e, t, b, c, ipmi, redfish, bmc] = await Promise.all([
    import('./machines-command.js'), import('./images-command.js'), import('./actions-command.js'), import('./operations-command.js'),
    import('./leases-command.js'), import('./events-command.js'), import('./token-command.js'), import('./boot-media-command.js'), import('./common.js'),
    import('./ipmi-command.js'), import('./redfish-command.js'), import('./bmc-command.js'),
  ]);
  return [
    'usage: metalboot [--version] <command> [options]',
    m.MACHINES_USAGE, i.IMAGES_USAGE, a.ACTIONS_USAGE, o.OPERATIONS_USAGE, l.LEASES_USAGE, e.EVENTS_USAGE, t.TOKEN_USAGE, b.BOOT_MEDIA_USAGE, c.COMMON_USAGE,
    'exit codes: 0 done, 1 the API refused or could not be reached (the message says which), 2 bad command line or cli.yaml',
    '',
    ipmi.IPMI_USAGE,
    redfish.REDFISH_USAGE,
    bmc.BMC_USAGE,
    '',
  ].join('\n');
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case '--version': case 'version': io.out(`metalboot ${(await import('../version.js')).packageVersion()}\n`); return 0;
      case '--help': case '-h': case 'help': io.out(await usage()); return 0;
      case 'leases': return await (await import('./leases-command.js')).runLeasesCommand(rest, io);
      case 'machines': return await (await import('./machines-command.js')).runMachinesCommand(rest, io);
      case 'images': return await (await import('./images-command.js')).runImagesCommand(rest, io);
      case 'operations': return await (await import('./operations-command.js')).runOperationsCommand(rest, io);
      case 'token': return await (await import('./token-command.js')).runTokenCommand(rest, io);
      case 'boot-media': return await (await import('./boot-media-command.js')).runBootMediaCommand(rest, io);
      case 'ipmi': return await (await import('./ipmi-command.js')).runIpmiCommand(rest, io);
      case 'redfish': return await (await import('./redfish-command.js')).runRedfishCommand(rest, io);
      case 'bmc': return await (await import('./bmc-command.js')).runBmcCommand(rest, io);
      case 'events': {
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        return await (await import('./events-command.js')).runEventsCommand(rest, { ...io, signal: ac.signal });
      }
      default: {
        const a = await import('./actions-command.js');
        if ((a.ACTION_COMMANDS as readonly string[]).includes(cmd ?? '')) return await a.runActionCommand(cmd as (typeof a.ACTION_COMMANDS)[number], rest, io);
        io.err(`metalboot: ${cmd === undefined ? 'no command' : `unknown command ${JSON.stringify(cmd.slice(0, 40))}`}\n${await usage()}`);
        return 2;
      }
    }
  } catch (e) {
    io.err(`metalboot: ${errorMessage(e)}\n`);
    return 1;
  }
}

main(process.argv.slice(2), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), env: process.env }).then((c) => { process.exitCode = c; });
