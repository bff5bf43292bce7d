/**
 * The verbs that act on one machine through the daemon: `power`, `bootdev`, `provision`,
 * `inspect`, `deploy`, `erase` (202 → an operation; `--wait` follows its steps), `reset`,
 * `deprovision`, `checkpoint`, `restore`, `maintenance`.
 */
import { ApiError, UsageError, type CliIo } from './api-client.js';
import { BOOT_TARGETS, POWER_ACTIONS } from '../power/driver.js';
import { COMMON_USAGE, macArg, noMore, openClient, parse, runCli } from './common.js';
import { waitForOperation } from './operations-command.js';
import { formatTime, json, printable, type MachineRow, type OperationRow } from './tables.js';

const POWER = ['status', ...POWER_ACTIONS] as const;
/** What the API takes: every driver's boot targets (a driver without one answers 501). */
const BOOTDEV = BOOT_TARGETS;

export const ACTIONS_USAGE = [
  `  power MAC [${POWER.join('|')}]     through the machine's BMC (default status)`,
  '  power MAC accept-certificate SHA256  trust the BMC\'s certificate with this fingerprint (Redfish: after it changed)',
  `  bootdev MAC ${BOOTDEV.join('|')} [--persistent] [--efi]`,
  '  provision MAC [--image I] [--wait [--timeout SECONDS]]   disk, target, sanboot, PXE, power; default timeout 600',
  '  inspect MAC [--wait]                 boot the agent ramdisk, collect the inventory (machines show MAC prints it)',
  '  deploy MAC --image I [--disk NAME|SERIAL] [--wait]   the image onto a local disk (default: the smallest that fits)',
  '  erase MAC --method discard|zero [--disks all|NAME,…] [--wait]',
  '  capture MAC --image NEW [--disk NAME|SERIAL] [--wait]   a local disk into a new image',
  '  reset MAC                            fresh disk from its image (same target and secret)',
  '  deprovision MAC                      remove the disk; back to enrolled',
  '  checkpoint MAC NAME',
  '  restore MAC NAME',
  '  maintenance MAC on|off',
].join('\n');

export const ACTION_COMMANDS = ['power', 'bootdev', 'provision', 'inspect', 'deploy', 'erase', 'capture', 'reset', 'deprovision', 'checkpoint', 'restore', 'maintenance'] as const;
/** The verbs that start an operation (202), which --wait follows. */
const OPERATION_COMMANDS: readonly string[] = ['provision', 'inspect', 'deploy', 'erase', 'capture'];
export type ActionCommand = (typeof ACTION_COMMANDS)[number];

function seconds(v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(v.slice(0, 20))}`);
  return Number(v);
}

export async function runActionCommand(cmd: ActionCommand, argv: string[], io: CliIo): Promise<number> {
  const usage = `${ACTIONS_USAGE}\n${COMMON_USAGE}`;
  return runCli(io, cmd, usage, async () => {
    const { values, positionals } = parse(argv, {
      persistent: { type: 'boolean' }, efi: { type: 'boolean' }, image: { type: 'string' }, wait: { type: 'boolean' }, timeout: { type: 'string' },
      disk: { type: 'string' }, disks: { type: 'string' }, method: { type: 'string' },
    });
    if ((values.persistent || values.efi) && cmd !== 'bootdev') throw new UsageError('--persistent and --efi go with bootdev');
    if (values.image !== undefined && cmd !== 'provision' && cmd !== 'deploy' && cmd !== 'capture') throw new UsageError('--image goes with provision, deploy and capture');
    if (values.disk !== undefined && cmd !== 'deploy' && cmd !== 'capture') throw new UsageError('--disk goes with deploy and capture');
    if ((values.disks !== undefined || values.method !== undefined) && cmd !== 'erase') throw new UsageError('--disks and --method go with erase');
    if (values.wait && !OPERATION_COMMANDS.includes(cmd)) throw new UsageError(`--wait goes with ${OPERATION_COMMANDS.join(', ')}`);
    if (values.timeout !== undefined && !values.wait) throw new UsageError('--timeout goes with --wait');
    const mac = macArg(positionals[0]);
    const args = positionals.slice(1);
    const base = `/api/v1/machines/${mac}`;
    const out = io.out;

    switch (cmd) {
      case 'power': {
        const action = args[0] ?? 'status';
        if (action === 'accept-certificate') {
          const sha256 = args[1];
          if (sha256 === undefined) throw new UsageError('power MAC accept-certificate needs the SHA-256 fingerprint');
          noMore(args.slice(2));
          const api = await openClient(values, io);
          const m = await api.post<MachineRow & { power?: { certSha256?: string } }>(`${base}/power/certificate`, { body: { sha256 } });
          out(values.json ? json(m) : `${mac}: BMC certificate ${m.power?.certSha256 ?? sha256} accepted\n`);
          return 0;
        }
        noMore(args.slice(1));
        if (!(POWER as readonly string[]).includes(action)) throw new UsageError(`power needs one of ${POWER.join(', ')}`);
        const api = await openClient(values, io);
        if (action === 'status') {
          const r = await api.get<{ power: string }>(`${base}/power`);
          out(values.json ? json(r) : `${mac}: power ${r.power}\n`);
        } else {
          const r = await api.post<{ action: string }>(`${base}/power`, { body: { action } });
          out(values.json ? json(r) : `${mac}: power ${action} sent\n`);
        }
        return 0;
      }
      case 'bootdev': {
        const device = args[0];
        noMore(args.slice(1));
        if (!(BOOTDEV as readonly string[]).includes(device ?? '')) throw new UsageError(`bootdev needs one of ${BOOTDEV.join(', ')}`);
        const api = await openClient(values, io);
        const r = await api.post<{ device: string; persistent: boolean; efi: boolean }>(`${base}/bootdev`, { body: { device, persistent: values.persistent ?? false, efi: values.efi ?? false } });
        out(values.json ? json(r) : `${mac}: boot device ${printable(r.device)}${r.persistent ? ' (persistent)' : ''}${r.efi ? ' (EFI)' : ''}\n`);
        return 0;
      }
      case 'provision':
      case 'inspect':
      case 'deploy':
      case 'erase':
      case 'capture': {
        noMore(args);
        const timeoutS = seconds(values.timeout, 600);
        if (values.image === '') throw new UsageError('--image needs an image ID');
        let body: object = {};
        if (cmd === 'provision' && values.image !== undefined) body = { image: values.image };
        if (cmd === 'deploy' || cmd === 'capture') {
          if (!values.image) throw new UsageError(`${cmd} needs --image`);
          body = { image: values.image, ...(values.disk ? { disk: values.disk } : {}) };
        }
        if (cmd === 'erase') {
          if (values.method !== 'discard' && values.method !== 'zero') throw new UsageError('erase needs --method discard or --method zero');
          body = { method: values.method, ...(values.disks && values.disks !== 'all' ? { disks: values.disks.split(',') } : {}) };
        }
        const api = await openClient(values, io);
        const r = await api.post<{ operation: OperationRow }>(`${base}/${cmd}`, { body });
        const op = r.operation;
        const doing = { provision: 'provisioning', inspect: 'inspecting', deploy: 'deploying to', erase: 'erasing', capture: 'capturing' }[cmd];
        if (!values.wait) {
          out(values.json ? json(op) : `${doing} ${mac}: operation ${op.id}\n`);
          return 0;
        }
        // With --json, stdout is the final operation only; the steps go to stderr.
        const say = values.json ? io.err : out;
        say(`${doing} ${mac}: operation ${op.id}\n`);
        const done = await waitForOperation(api, op, {
          timeoutMs: timeoutS * 1000, intervalMs: io.pollIntervalMs ?? 500,
          onStep: (s) => say(`  ${formatTime(s.at)}  ${printable(s.step)}\n`),
        });
        if (values.json) out(json(done));
        if (done.status !== 'succeeded') throw new ApiError(`operation ${done.id} ${done.status}: ${printable(done.error ?? 'no reason given')}`);
        const did = { provision: 'provisioned', inspect: 'inspected', deploy: 'deployed', erase: 'erased', capture: 'captured' }[cmd];
        if (!values.json) out(`${mac}: ${did} (operation ${done.id} succeeded)\n`);
        return 0;
      }
      case 'reset':
      case 'deprovision': {
        noMore(args);
        const api = await openClient(values, io);
        const m = await api.post<MachineRow>(`${base}/${cmd}`);
        out(values.json ? json(m) : cmd === 'reset' ? `${mac}: disk reset to image ${printable(m.image ?? '-')} (state ${m.state})\n` : `${mac}: disk removed (state ${m.state})\n`);
        return 0;
      }
      case 'checkpoint':
      case 'restore': {
        const name = args[0];
        if (!name) throw new UsageError(`${cmd} needs a checkpoint NAME`);
        noMore(args.slice(1));
        const api = await openClient(values, io);
        if (cmd === 'checkpoint') {
          const r = await api.post<{ name: string }>(`${base}/checkpoint`, { body: { name } });
          out(values.json ? json(r) : `${mac}: checkpoint ${printable(r.name)} taken\n`);
        } else {
          const r = await api.post<{ method: string }>(`${base}/restore`, { body: { checkpoint: name } });
          out(values.json ? json(r) : `${mac}: restored checkpoint ${printable(name)} (${printable(String(r.method))})\n`);
        }
        return 0;
      }
      case 'maintenance': {
        const onOff = args[0];
        noMore(args.slice(1));
        if (onOff !== 'on' && onOff !== 'off') throw new UsageError('maintenance needs on or off');
        const api = await openClient(values, io);
        const m = await api.post<MachineRow>(`${base}/maintenance`, { body: { on: onOff === 'on' } });
        out(values.json ? json(m) : `${mac}: state ${m.state}\n`);
        return 0;
      }
    }
  });
}
