/**
 * The boot medium for machines without a PXE ROM, or on networks where
 * metalboot does not answer DHCP for boot (pure): the iPXE script the medium
 * carries and the request that says how to build it.
 *
 * Debian's iPXE binaries cannot be rebuilt here with an embedded script, so
 * the script rides beside them: BIOS boots ISOLINUX → ipxe.lkrn with the
 * script as its initrd (iPXE runs an image it was handed at start); UEFI
 * boots \EFI\BOOT\BOOTX64.EFI / BOOTAA64.EFI from the medium's FAT image,
 * where iPXE finds and runs autoexec.ipxe beside itself.
 *
 * The script reaches this metalboot and then follows the machine's normal
 * per-MAC flow (/boot/<mac>.ipxe), so the medium carries no secret and is the
 * same for every machine.
 */
import { formatIpv4, tryParseIpv4, type Ipv4 } from '../net/ipv4.js';

export type MediaFormat = 'iso' | 'usb';

export type MediaNetwork =
  | { readonly kind: 'dhcp' }
  /** For networks without any DHCP server: a fixed address on the first NIC. */
  | { readonly kind: 'static'; readonly ip: Ipv4; readonly prefix: number; readonly gateway?: Ipv4; readonly dns?: Ipv4 };

export interface MediaRequest {
  readonly format: MediaFormat;
  readonly network: MediaNetwork;
}

export class MediaRequestError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'MediaRequestError';
  }
}

/** The query of GET /api/v1/boot-media/metalboot.iso, checked: format, ip (a.b.c.d/prefix), gateway, dns. */
export function parseMediaRequest(q: Readonly<Record<string, string | undefined>>): MediaRequest {
  const format = q.format ?? 'iso';
  if (format !== 'iso' && format !== 'usb') throw new MediaRequestError('format', 'iso or usb');
  if (q.ip === undefined) {
    for (const k of ['gateway', 'dns'] as const) if (q[k] !== undefined) throw new MediaRequestError(k, 'only with ip');
    return { format, network: { kind: 'dhcp' } };
  }
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(q.ip);
  const prefix = m ? Number(m[2]) : NaN;
  if (!m || prefix < 1 || prefix > 30) throw new MediaRequestError('ip', 'an IPv4 address with its prefix length, e.g. 192.0.2.10/24');
  const addr = (field: string, v: string): Ipv4 => {
    const a = tryParseIpv4(v);
    if (a === undefined) throw new MediaRequestError(field, `not an IPv4 address: ${JSON.stringify(v.slice(0, 40))}`);
    return a;
  };
  return {
    format,
    network: {
      kind: 'static', ip: addr('ip', m[1]!), prefix,
      ...(q.gateway !== undefined ? { gateway: addr('gateway', q.gateway) } : {}),
      ...(q.dns !== undefined ? { dns: addr('dns', q.dns) } : {}),
    },
  };
}

function netmask(prefix: number): string {
  const n = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

/** The medium's iPXE script: bring up the network, then chain this machine's own script. */
export function renderMediaScript(publicUrl: string, net: MediaNetwork): string {
  const lines = ['#!ipxe', `echo metalboot boot medium for ${publicUrl}`];
  if (net.kind === 'dhcp') {
    // A few tries: a switch port may take seconds to forward after link-up (spanning tree).
    lines.push('dhcp || dhcp || dhcp || goto failed');
  } else {
    lines.push(
      'ifopen net0 || goto failed',
      `set net0/ip ${formatIpv4(net.ip)}`,
      `set net0/netmask ${netmask(net.prefix)}`,
      ...(net.gateway !== undefined ? [`set net0/gateway ${formatIpv4(net.gateway)}`] : []),
      ...(net.dns !== undefined ? [`set net0/dns ${formatIpv4(net.dns)}`] : []),
    );
  }
  // ${netX/mac}: the interface the last ifopen/dhcp configured, in the form /boot/<mac>.ipxe takes.
  lines.push(
    `chain --autofree ${publicUrl}/boot/\${netX/mac}.ipxe || goto failed`,
    ':failed',
    `echo metalboot boot medium: could not boot through ${publicUrl}; retrying in 10 s`,
    'sleep 10',
    'reboot',
    '',
  );
  return lines.join('\n');
}

/** ISOLINUX: boot ipxe.lkrn at once, the script as its initrd. */
export function isolinuxConfig(): string {
  return ['DEFAULT metalboot', 'PROMPT 0', 'TIMEOUT 0', 'LABEL metalboot', '  KERNEL /ipxe.lkrn', '  INITRD /metalboot.ipxe', ''].join('\n');
}
