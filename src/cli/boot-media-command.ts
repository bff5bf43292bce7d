/**
 * `metalboot boot-media --out FILE [--format iso|usb] [--ip A.B.C.D/P [--gateway G] [--dns D]]`:
 * downloads the boot medium for machines without PXE (GET /api/v1/boot-media/metalboot.iso) into
 * FILE. One hybrid image: burn it to a CD or write it to a USB stick as it is.
 */
import { writeFile } from 'node:fs/promises';
import { UsageError, type CliIo } from './api-client.js';
import { COMMON_USAGE, noMore, openClient, parse, runCli } from './common.js';
import { json } from './tables.js';

export const BOOT_MEDIA_USAGE = [
  '  boot-media --out FILE [--format iso|usb] [--ip A.B.C.D/P [--gateway G] [--dns D]]',
  '                                       boot medium (hybrid ISO/USB image) for machines without PXE;',
  '                                       --ip: a static address for networks without DHCP',
].join('\n');

export async function runBootMediaCommand(argv: string[], io: CliIo): Promise<number> {
  return runCli(io, 'boot-media', `${BOOT_MEDIA_USAGE}\n${COMMON_USAGE}`, async () => {
    const { values, positionals } = parse(argv, {
      out: { type: 'string' }, format: { type: 'string' }, ip: { type: 'string' }, gateway: { type: 'string' }, dns: { type: 'string' },
    });
    noMore(positionals);
    if (!values.out) throw new UsageError('--out FILE is required');
    if (values.format !== undefined && values.format !== 'iso' && values.format !== 'usb') throw new UsageError('--format iso|usb');
    const api = await openClient(values, io);
    const img = await api.download('/api/v1/boot-media/metalboot.iso', {
      query: { format: values.format, ip: values.ip, gateway: values.gateway, dns: values.dns }, timeoutMs: 120_000,
    });
    await writeFile(values.out, img, { mode: 0o644 }).catch((e: NodeJS.ErrnoException) => { throw new UsageError(`cannot write ${values.out}: ${e.code ?? e.message}`); });
    io.out(values.json ? json({ file: values.out, bytes: img.length }) : `wrote ${values.out} (${img.length} bytes)\n`);
    return 0;
  });
}
