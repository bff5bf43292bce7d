/**
 * Which boot program a network-boot client gets (pure). The rule that keeps
 * iPXE out of a chainload loop: a client that already runs iPXE never gets an
 * iPXE binary again, only the HTTP URL of its script.
 */
import type { BootFilesConfig } from '../config/types.js';
import type { ClientInfo } from './classify.js';

export type BootTarget =
  /** PXE ROM: fetch this file over TFTP from next-server. */
  | { readonly kind: 'tftp'; readonly file: string }
  /** UEFI HTTP boot: fetch this URL; the reply must echo vendor class "HTTPClient". */
  | { readonly kind: 'http'; readonly url: string }
  /** iPXE: fetch and run this script. */
  | { readonly kind: 'ipxe-script'; readonly url: string }
  | { readonly kind: 'none'; readonly reason: string };

export function ipxeScriptUrl(publicUrl: string, mac: string): string {
  return `${publicUrl}/boot/${mac}.ipxe`;
}

export function selectBoot(c: ClientInfo, files: BootFilesConfig, publicUrl: string): BootTarget {
  if (c.isIpxe) {
    if (!c.mac) return { kind: 'none', reason: 'iPXE client without an Ethernet address' };
    return { kind: 'ipxe-script', url: ipxeScriptUrl(publicUrl, c.mac) };
  }
  if (c.isHttpClient) {
    switch (c.arch) {
      case 'http-x64': return { kind: 'http', url: publicUrl + files.httpX64 };
      case 'http-arm64': return { kind: 'http', url: publicUrl + files.httpArm64 };
      case 'http-riscv64': return { kind: 'http', url: publicUrl + files.httpRiscv64 };
      case 'http-loong64': return { kind: 'http', url: publicUrl + files.httpLoong64 };
      default: return { kind: 'none', reason: `no HTTP boot program for arch ${c.archCode ?? 'none'}` };
    }
  }
  if (c.isPxe) {
    switch (c.arch) {
      // PXE 2.1 ROMs that predate option 93 are BIOS ROMs.
      case 'unknown': return c.archCode === undefined ? { kind: 'tftp', file: files.bios } : { kind: 'none', reason: `unknown arch ${c.archCode}` };
      case 'bios': return { kind: 'tftp', file: files.bios };
      case 'efi-x64': return { kind: 'tftp', file: files.efiX64 };
      case 'efi-ia32': return { kind: 'tftp', file: files.efiIa32 };
      case 'efi-arm64': return { kind: 'tftp', file: files.efiArm64 };
      case 'efi-riscv64': return { kind: 'tftp', file: files.efiRiscv64 };
      case 'efi-loong64': return { kind: 'tftp', file: files.efiLoong64 };
      default: return { kind: 'none', reason: `no PXE boot program for arch ${c.archCode}` };
    }
  }
  return { kind: 'none', reason: 'not a network-boot client' };
}
