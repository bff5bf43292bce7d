/**
 * iPXE scripts (pure renderers). Every value placed in a script is checked against a strict
 * alphabet first, so nothing from a machine record can inject iPXE commands (a newline, `${`,
 * `||`, …). Scripts are also validated by booting them in QEMU (test/integration/e2e-*).
 */
import type { Mac } from '../net/mac.js';

/** Thrown when a value would not be safe inside an iPXE script line. */
export class ScriptValueError extends Error {
  constructor(readonly field: string) {
    super(`unsafe value for ${field} in an iPXE script`);
    this.name = 'ScriptValueError';
  }
}

const SAFE = /^[A-Za-z0-9._:\-/=+~@,]*$/;

function safe(field: string, v: string): string {
  if (!SAFE.test(v)) throw new ScriptValueError(field);
  return v;
}

/** What happens when sanboot keeps failing. */
export type SanbootFallback = 'retry' | 'menu' | 'exit';

export interface SanbootScript {
  readonly mac: Mac;
  readonly name: string;
  readonly portalHost: string;
  readonly portalPort: number;
  readonly targetIqn: string;
  readonly lun: number;
  readonly initiatorIqn: string;
  readonly chap: { readonly user: string; readonly secret: string };
  readonly mutualChap?: { readonly user: string; readonly secret: string };
  /** UEFI: EFI program on the disk to run (`sanboot --filename`). */
  readonly filename?: string;
  /** Attempts before the fallback (≥ 1). */
  readonly tries: number;
  readonly retryDelaySec: number;
  readonly fallback: SanbootFallback;
  /** URL of the menu script, for the `menu` fallback. */
  readonly menuUrl?: string;
}

/** iSCSI root path (iPXE): iscsi:<server>:<protocol>:<port>:<LUN, hex>:<target>. */
export function iscsiUri(host: string, port: number, lun: number, iqn: string): string {
  return `iscsi:${safe('portal', host)}::${port}:${lun.toString(16)}:${safe('target', iqn)}`;
}

export function renderSanbootScript(s: SanbootScript): string {
  const uri = iscsiUri(s.portalHost, s.portalPort, s.lun, s.targetIqn);
  const tries = Math.max(1, Math.floor(s.tries));
  const filename = s.filename ? ` --filename ${safe('filename', s.filename.replaceAll('\\', '/'))}` : '';
  const lines = [
    '#!ipxe',
    `echo metalboot: ${safe('name', s.name)} (${s.mac}) boots its iSCSI disk`,
    `set initiator-iqn ${safe('initiatorIqn', s.initiatorIqn)}`,
    `set username ${safe('chap user', s.chap.user)}`,
    `set password ${safe('chap secret', s.chap.secret)}`,
  ];
  if (s.mutualChap) {
    lines.push(`set reverse-username ${safe('reverse user', s.mutualChap.user)}`, `set reverse-password ${safe('reverse secret', s.mutualChap.secret)}`);
  }
  lines.push(
    'set mbtry:int32 0',
    ':mbsan',
    `sanboot${filename} ${uri} && goto mbdone ||`,
    'inc mbtry',
    `iseq \${mbtry} ${tries} && goto mbfallback ||`,
    `echo metalboot: sanboot failed (\${errno}), try \${mbtry} of ${tries}; again in ${s.retryDelaySec} s`,
    `sleep ${Math.max(1, Math.floor(s.retryDelaySec))}`,
    'goto mbsan',
    ':mbfallback',
  );
  if (s.fallback === 'retry') {
    lines.push(`echo metalboot: the disk did not boot after ${tries} tries; starting over`, 'set mbtry:int32 0', `sleep ${Math.max(1, Math.floor(s.retryDelaySec))}`, 'goto mbsan');
  } else if (s.fallback === 'menu' && s.menuUrl) {
    lines.push(`echo metalboot: the disk did not boot after ${tries} tries; menu`, `chain ${safe('menu url', s.menuUrl)} ||`, 'exit 1');
  } else {
    lines.push(`echo metalboot: the disk did not boot after ${tries} tries; next boot device`, 'sleep 3', 'exit 1');
  }
  lines.push(':mbdone', '');
  return lines.join('\n');
}

/** Boot from the machine's own local disk: BIOS drive 0x80, or back to UEFI's boot order. */
export function renderLocalScript(mac: Mac, firmware: 'bios' | 'uefi' | 'unknown'): string {
  const lines = ['#!ipxe', `echo metalboot: ${mac} boots from its local disk`];
  if (firmware !== 'uefi') lines.push('sanboot --no-describe --drive 0x80 ||');
  lines.push('exit 1', '');
  return lines.join('\n');
}

export interface NetbootScript {
  readonly mac: Mac;
  readonly kernelUrl: string;
  readonly initrdUrl?: string;
  readonly cmdline?: string;
}

export function renderNetbootScript(s: NetbootScript): string {
  const cmdline = s.cmdline ? ` ${safeCmdline(s.cmdline)}` : '';
  return [
    '#!ipxe',
    `echo metalboot: ${s.mac} boots a kernel over HTTP`,
    `kernel ${safe('kernel url', s.kernelUrl)}${cmdline} || goto mbfail`,
    ...(s.initrdUrl ? [`initrd ${safe('initrd url', s.initrdUrl)} || goto mbfail`] : []),
    'boot || goto mbfail',
    ':mbfail',
    'echo metalboot: netboot failed (${errno}); next boot device',
    'sleep 3',
    'exit 1',
    '',
  ].join('\n');
}

export interface AgentScript {
  readonly mac: Mac;
  /** metalboot's base URL: the agent's endpoints are under it, and the ramdisk is served from it. */
  readonly publicUrl: string;
  readonly kernelUrl: string;
  readonly initrdUrl: string;
  /** The agent operation's one-time token (agent/sessions.ts): this script is a secret. */
  readonly token: string;
  /** The serial console of this architecture (ttyS0, ttyAMA0). */
  readonly console: string;
  readonly lldpSec: number;
}

/**
 * Boots the agent ramdisk over HTTP (kernel + initrd, not TFTP). `quiet` keeps the kernel from
 * printing its command line, and with it the token, on the console.
 */
export function renderAgentScript(s: AgentScript): string {
  const cmdline = `quiet console=tty0 console=${s.console},115200n8 mb.url=${s.publicUrl} mb.mac=${s.mac} mb.token=${s.token} mb.lldp=${Math.max(0, Math.floor(s.lldpSec))}`;
  return renderNetbootScript({ mac: s.mac, kernelUrl: s.kernelUrl, initrdUrl: s.initrdUrl, cmdline })
    .replace('boots a kernel over HTTP', 'boots the metalboot agent');
}

/** Kernel command lines need spaces and a few more characters, never iPXE's own syntax. */
function safeCmdline(c: string): string {
  if (!/^[A-Za-z0-9._:\-/=+~@, "']*$/.test(c) || c.length > 2048) throw new ScriptValueError('cmdline');
  return c;
}

export interface MenuScript {
  readonly mac: Mac;
  readonly name?: string;
  /** URL of the machine's sanboot script when it has a disk. */
  readonly sanbootUrl?: string;
  readonly firmware: 'bios' | 'uefi' | 'unknown';
  readonly timeoutMs: number;
}

export function renderMenuScript(s: MenuScript): string {
  const title = `metalboot: ${s.name ? `${safe('name', s.name)} ` : ''}(${s.mac})`;
  const lines = ['#!ipxe', `menu ${title}`];
  if (s.sanbootUrl) lines.push('item mbsan Boot the iSCSI disk');
  lines.push('item mblocal Boot the local disk', 'item mbshell iPXE shell', 'item mbreboot Reboot');
  lines.push(`choose --timeout ${Math.max(0, Math.floor(s.timeoutMs))} --default ${s.sanbootUrl ? 'mbsan' : 'mblocal'} mbchoice || goto mblocal`, 'goto ${mbchoice}');
  if (s.sanbootUrl) lines.push(':mbsan', `chain ${safe('sanboot url', s.sanbootUrl)} || goto mblocal`);
  lines.push(':mblocal', ...(s.firmware !== 'uefi' ? ['sanboot --no-describe --drive 0x80 ||'] : []), 'exit 1');
  lines.push(':mbshell', 'shell', 'goto mblocal', ':mbreboot', 'reboot', '');
  return lines.join('\n');
}

/** A machine still being provisioned: wait and ask again (bounded by iPXE's own patience: none). */
export function renderWaitScript(mac: Mac, selfUrl: string, delaySec: number): string {
  return ['#!ipxe', `echo metalboot: the disk of ${mac} is being prepared; asking again in ${delaySec} s`, `sleep ${delaySec}`, `chain ${safe('url', selfUrl)}`, ''].join('\n');
}

/**
 * A machine with no boot configuration: say so on its console and let the
 * firmware go on to the next boot device, so a PXE-first machine that is not
 * metalboot's still boots its local disk.
 */
export function renderUnknownMachineScript(mac: Mac): string {
  return ['#!ipxe', `echo metalboot: no boot configuration for ${mac}, trying the next boot device`, 'sleep 3', 'exit 1', ''].join('\n');
}
