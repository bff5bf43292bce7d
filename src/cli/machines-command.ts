/**
 * `metalboot machines …`: list, show, enrol (add), change (set), delete (rm) and the state
 * history (events) of machines, through the daemon's API. The BMC password comes from an
 * environment variable or a file, never from argv, and is never printed (the API returns only
 * `passwordSet`). The --bmc-* options are the IPMI driver's settings (`power: {driver: 'ipmi', …}`).
 */
import { readFile } from 'node:fs/promises';
import { BOOT_MODES, MACHINE_STATES } from '../machines/model.js';
import { UsageError, ApiStatusError, type CliIo, type ApiClient } from './api-client.js';
import { COMMON_USAGE, macArg, noMore, oneOf, openClient, parse, runCli } from './common.js';
import { formatEventTable, formatInventory, formatMachine, formatMachineTable, json, type InventoryRow, type MachineRow, type StateEventRow } from './tables.js';

const FIRMWARE = ['bios', 'uefi'] as const;
const CIPHER_SUITES = ['auto', '17', '3', '1.5'] as const;
const PRIVILEGES = ['administrator', 'operator'] as const;

export const MACHINES_USAGE = [
  '  machines [list] [--state S]',
  '  machines show MAC',
  '  machines add MAC --name N [--ip IP] [--firmware bios|uefi] [--boot-mode sanboot|local|netboot|menu] [--image I]',
  '           [--uefi-filename F] [--bmc-host H [--bmc-port 623] --bmc-user U (--bmc-password-env VAR | --bmc-password-file F)',
  '           [--bmc-cipher-suite auto|17|3|1.5] [--bmc-privilege administrator|operator]]',
  '  machines set MAC [same options as add] [--ip none] [--image none] [--remove-bmc]',
  '  machines rm MAC [--force]            --force: even with a provisioned disk',
  '  machines events MAC                  state history',
].join('\n');

const SPEC_OPTIONS = {
  name: { type: 'string' }, ip: { type: 'string' }, firmware: { type: 'string' }, 'boot-mode': { type: 'string' }, image: { type: 'string' },
  'uefi-filename': { type: 'string' },
  'bmc-host': { type: 'string' }, 'bmc-port': { type: 'string' }, 'bmc-user': { type: 'string' },
  'bmc-password-env': { type: 'string' }, 'bmc-password-file': { type: 'string' },
  'bmc-cipher-suite': { type: 'string' }, 'bmc-privilege': { type: 'string' },
  'remove-bmc': { type: 'boolean' },
} as const;

type SpecValues = { [K in keyof typeof SPEC_OPTIONS]?: (typeof SPEC_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

async function bmcPassword(v: SpecValues, env: NodeJS.ProcessEnv): Promise<string> {
  const fromEnv = v['bmc-password-env'];
  const fromFile = v['bmc-password-file'];
  if ((fromEnv === undefined) === (fromFile === undefined)) throw new UsageError('give exactly one of --bmc-password-env VAR or --bmc-password-file FILE with the BMC');
  if (fromEnv !== undefined) {
    const pw = env[fromEnv];
    if (pw === undefined) throw new UsageError(`environment variable ${fromEnv} is not set`);
    return pw;
  }
  try {
    // One trailing newline is what `echo pw > file` leaves; it is not part of the password.
    return (await readFile(fromFile!, 'utf8')).replace(/\r?\n$/, '');
  } catch (e) {
    throw new UsageError(`cannot read BMC password file ${fromFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** The request body of PUT /api/v1/machines/:mac from the options; `clearable` allows `none` and --remove-bmc (set). */
export async function machineSpec(v: SpecValues, env: NodeJS.ProcessEnv, clearable: boolean): Promise<Record<string, unknown>> {
  const spec: Record<string, unknown> = {};
  const none = (x: string) => clearable && x === 'none';
  if (v.name !== undefined) spec['name'] = v.name;
  if (v.ip !== undefined) {
    if (none(v.ip)) spec['ip'] = null;
    else if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(v.ip) || v.ip.split('.').some((o) => Number(o) > 255)) throw new UsageError(`--ip ${JSON.stringify(v.ip.slice(0, 40))} is not an IPv4 address`);
    else spec['ip'] = v.ip;
  }
  if (v.image !== undefined) spec['image'] = none(v.image) ? null : v.image;
  const fw = oneOf(v.firmware, FIRMWARE, '--firmware');
  if (fw) spec['firmware'] = fw;
  const bm = oneOf(v['boot-mode'], BOOT_MODES, '--boot-mode');
  if (bm) spec['bootMode'] = bm;
  if (v['uefi-filename'] !== undefined) spec['uefiFilename'] = none(v['uefi-filename']) ? null : v['uefi-filename'];

  const bmcKeys = ['bmc-host', 'bmc-port', 'bmc-user', 'bmc-password-env', 'bmc-password-file', 'bmc-cipher-suite', 'bmc-privilege'] as const;
  const anyBmc = bmcKeys.some((k) => v[k] !== undefined);
  if (v['remove-bmc']) {
    if (!clearable) throw new UsageError('--remove-bmc goes with machines set');
    if (anyBmc) throw new UsageError('--remove-bmc and --bmc-* do not go together');
    spec['power'] = null;
  } else if (anyBmc) {
    // The API replaces the BMC settings as a whole: host, user and password together.
    if (!v['bmc-host']) throw new UsageError('--bmc-host is required with the other --bmc-* options');
    if (!v['bmc-user']) throw new UsageError('--bmc-user is required with --bmc-host');
    let port = 623;
    if (v['bmc-port'] !== undefined) {
      if (!/^\d{1,5}$/.test(v['bmc-port']) || Number(v['bmc-port']) < 1 || Number(v['bmc-port']) > 65535) throw new UsageError('--bmc-port must be a port number 1..65535');
      port = Number(v['bmc-port']);
    }
    const cs = oneOf(v['bmc-cipher-suite'], CIPHER_SUITES, '--bmc-cipher-suite');
    const priv = oneOf(v['bmc-privilege'], PRIVILEGES, '--bmc-privilege');
    spec['power'] = {
      driver: 'ipmi', host: v['bmc-host'], port, user: v['bmc-user'], password: await bmcPassword(v, env),
      ...(cs !== undefined ? { cipherSuite: cs === '17' || cs === '3' ? Number(cs) : cs } : {}),
      ...(priv ? { privilege: priv } : {}),
    };
  }
  return spec;
}

async function existing(api: ApiClient, mac: string): Promise<MachineRow | undefined> {
  try {
    return await api.get<MachineRow>(`/api/v1/machines/${mac}`);
  } catch (e) {
    if (e instanceof ApiStatusError && e.status === 404) return undefined;
    throw e;
  }
}

export async function runMachinesCommand(argv: string[], io: CliIo): Promise<number> {
  const usage = `${MACHINES_USAGE}\n${COMMON_USAGE}`;
  return runCli(io, 'machines', usage, async () => {
    const { values, positionals } = parse(argv, { state: { type: 'string' }, force: { type: 'boolean' }, ...SPEC_OPTIONS });
    const [verb = 'list', ...args] = positionals;
    const specGiven = Object.keys(SPEC_OPTIONS).some((k) => (values as Record<string, unknown>)[k] !== undefined);
    if (values.state !== undefined && verb !== 'list') throw new UsageError('--state goes with machines list');
    if (values.force && verb !== 'rm') throw new UsageError('--force goes with machines rm');
    if (specGiven && verb !== 'add' && verb !== 'set') throw new UsageError(`machine options go with machines add or set, not ${verb}`);
    const out = io.out;

    switch (verb) {
      case 'list': {
        noMore(args);
        const state = oneOf(values.state, MACHINE_STATES, '--state');
        const api = await openClient(values, io);
        const r = await api.get<{ machines: MachineRow[] }>('/api/v1/machines', { query: { state } });
        out(values.json ? json(r.machines) : formatMachineTable(r.machines));
        return 0;
      }
      case 'show': {
        const mac = macArg(args[0]);
        noMore(args.slice(1));
        const api = await openClient(values, io);
        const m = await api.get<MachineRow>(`/api/v1/machines/${mac}`);
        // The inventory of its last inspection, when there is one (404 before the first).
        const inv = await api.get<InventoryRow>(`/api/v1/machines/${mac}/inventory`).catch((e: unknown) => {
          if (e instanceof ApiStatusError && e.status === 404) return undefined;
          throw e;
        });
        out(values.json ? json(inv ? { ...m, inventory: inv } : m) : formatMachine(m) + (inv ? formatInventory(inv) : ''));
        return 0;
      }
      case 'add':
      case 'set': {
        const mac = macArg(args[0]);
        noMore(args.slice(1));
        if (verb === 'add' && !values.name) throw new UsageError('machines add needs --name');
        const spec = await machineSpec(values, io.env, verb === 'set');
        if (verb === 'set' && Object.keys(spec).length === 0) throw new UsageError('machines set needs at least one option to change');
        const api = await openClient(values, io);
        const before = await existing(api, mac);
        if (verb === 'add' && before && before.state !== 'discovered') {
          io.err(`metalboot machines: ${mac} is already enrolled as ${before.name} (state ${before.state}); change it with machines set\n`);
          return 1;
        }
        if (verb === 'set' && !before) {
          io.err(`metalboot machines: ${mac} is not known; enrol it with machines add\n`);
          return 1;
        }
        const m = await api.put<MachineRow>(`/api/v1/machines/${mac}`, { body: spec });
        out(values.json ? json(m) : `${verb === 'add' ? 'enrolled' : 'updated'} ${m.mac} as ${m.name} (state ${m.state})\n`);
        return 0;
      }
      case 'rm': {
        const mac = macArg(args[0]);
        noMore(args.slice(1));
        const api = await openClient(values, io);
        await api.delete(`/api/v1/machines/${mac}`, { query: { force: values.force ? true : undefined } });
        out(values.json ? json({ mac, deleted: true }) : `deleted ${mac}\n`);
        return 0;
      }
      case 'events': {
        const mac = macArg(args[0]);
        noMore(args.slice(1));
        const api = await openClient(values, io);
        const r = await api.get<{ events: StateEventRow[] }>(`/api/v1/machines/${mac}/events`);
        out(values.json ? json(r.events) : formatEventTable(r.events));
        return 0;
      }
      default:
        throw new UsageError(`unknown machines command ${JSON.stringify(verb.slice(0, 40))}`);
    }
  });
}
