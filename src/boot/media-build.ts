/**
 * Builds the boot medium (see media.ts) from Debian's iPXE programs in
 * boot-assets/ with Debian's tools, through the one command runner:
 *   - an EFI system image (mkfs.vfat + mtools): \EFI\BOOT\BOOTX64.EFI (ipxe.efi:
 *     iPXE's own NIC drivers, for a NIC the firmware has no driver for),
 *     \EFI\BOOT\BOOTAA64.EFI (ipxe-arm64.efi) and \autoexec.ipxe;
 *   - an ISO 9660 image (xorriso) with ISOLINUX → ipxe.lkrn + the script as
 *     initrd for BIOS, that EFI image as the El Torito UEFI entry, and an
 *     isohybrid MBR + GPT so the same bytes boot from a USB stick (dd) in BIOS
 *     and UEFI mode. `usb` and `iso` are therefore the same image.
 * Each build works in its own temporary directory, removed afterwards.
 */
import { mkdtemp, mkdir, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Runner } from '../exec/run.js';
import { errorMessage } from '../errors/message.js';
import { isolinuxConfig } from './media.js';

/** Files of Debian's isolinux and syslinux-common packages. */
export interface IsolinuxFiles { readonly bin: string; readonly ldlinux: string; readonly hybridMbr: string }
export const ISOLINUX_FILES: IsolinuxFiles = {
  bin: '/usr/lib/ISOLINUX/isolinux.bin',
  ldlinux: '/usr/lib/syslinux/modules/bios/ldlinux.c32',
  hybridMbr: '/usr/lib/ISOLINUX/isohdpfx.bin',
};

/** The iPXE programs the medium carries, by their boot-assets/ names. */
export const MEDIA_ASSETS = { lkrn: 'ipxe.lkrn', x64: 'ipxe.efi', arm64: 'ipxe-arm64.efi' } as const;

export class MediaBuildError extends Error {
  constructor(readonly step: string, cause: unknown) {
    super(`boot medium: ${step}: ${errorMessage(cause)}`);
    this.name = 'MediaBuildError';
  }
}

export interface MediaBuildDeps {
  readonly run: Runner;
  readonly assetsDir: string;
  readonly isolinux?: IsolinuxFiles;
  readonly tmpDir?: string;
}

/** The hybrid ISO/USB image with this script; resolves to its bytes (a few MiB). */
export async function buildBootMedium(deps: MediaBuildDeps, script: string): Promise<Buffer> {
  const iso = deps.isolinux ?? ISOLINUX_FILES;
  const w = await mkdtemp(path.join(deps.tmpDir ?? os.tmpdir(), 'metalboot-media-'));
  const step = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    try { return await f(); } catch (e) { throw new MediaBuildError(name, e); }
  };
  const run = (argv: string[]) => deps.run(argv, { timeoutMs: 60_000 });
  try {
    const root = path.join(w, 'root');
    await mkdir(path.join(root, 'isolinux'), { recursive: true });
    await step('copy the iPXE programs and ISOLINUX', async () => {
      await copyFile(path.join(deps.assetsDir, MEDIA_ASSETS.lkrn), path.join(root, 'ipxe.lkrn'));
      await copyFile(iso.bin, path.join(root, 'isolinux', 'isolinux.bin'));
      await copyFile(iso.ldlinux, path.join(root, 'isolinux', 'ldlinux.c32'));
      await writeFile(path.join(root, 'isolinux', 'isolinux.cfg'), isolinuxConfig());
      await writeFile(path.join(root, 'metalboot.ipxe'), script);
    });
    const efi = path.join(root, 'efiboot.img');
    const scriptFile = path.join(root, 'metalboot.ipxe');
    await step('EFI system image', async () => {
      // 4 MiB FAT: both EFI programs (~1 MiB each) and the script.
      await run(['mkfs.vfat', '-C', '-n', 'METALBOOT', efi, '4096']);
      await run(['mmd', '-i', efi, '::/EFI', '::/EFI/BOOT']);
      await run(['mcopy', '-i', efi, path.join(deps.assetsDir, MEDIA_ASSETS.x64), '::/EFI/BOOT/BOOTX64.EFI']);
      await run(['mcopy', '-i', efi, path.join(deps.assetsDir, MEDIA_ASSETS.arm64), '::/EFI/BOOT/BOOTAA64.EFI']);
      await run(['mcopy', '-i', efi, scriptFile, '::/autoexec.ipxe']);
    });
    const out = path.join(w, 'metalboot.iso');
    await step('xorriso', () => run([
      'xorriso', '-as', 'mkisofs', '-quiet', '-o', out, '-V', 'METALBOOT',
      '-isohybrid-mbr', iso.hybridMbr, '-c', 'isolinux/boot.cat',
      '-b', 'isolinux/isolinux.bin', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
      '-eltorito-alt-boot', '-e', 'efiboot.img', '-no-emul-boot', '-isohybrid-gpt-basdat', root,
    ]));
    return await readFile(out);
  } finally {
    await rm(w, { recursive: true, force: true });
  }
}
