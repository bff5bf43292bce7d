/** The boot medium's request parsing and script (boot/media.ts), and a real build (xorriso, mtools). */
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MediaRequestError, isolinuxConfig, parseMediaRequest, renderMediaScript } from '../../src/boot/media.js';
import { ISOLINUX_FILES, MediaBuildError, buildBootMedium } from '../../src/boot/media-build.js';
import { runCommand } from '../../src/exec/run.js';
import { toolMissing } from '../helpers/tools.js';

const URL = 'http://10.77.0.1:8080';

t.test('parseMediaRequest: dhcp by default, a checked static address on request', async (t) => {
  t.same(parseMediaRequest({}), { format: 'iso', network: { kind: 'dhcp' } });
  t.same(parseMediaRequest({ format: 'usb' }).format, 'usb');
  const s = parseMediaRequest({ ip: '192.0.2.10/24', gateway: '192.0.2.1', dns: '192.0.2.53' });
  t.equal(s.network.kind, 'static');
  for (const [q, field] of [
    [{ format: 'floppy' }, 'format'], [{ ip: '192.0.2.10' }, 'ip'], [{ ip: '192.0.2.300/24' }, 'ip'], [{ ip: '192.0.2.10/31' }, 'ip'],
    [{ ip: '192.0.2.10/24', gateway: 'x' }, 'gateway'], [{ gateway: '192.0.2.1' }, 'gateway'], [{ dns: '192.0.2.1' }, 'dns'],
  ] as const) {
    let err: unknown;
    try { parseMediaRequest(q); } catch (e) { err = e; }
    t.ok(err instanceof MediaRequestError && err.field === field, `${JSON.stringify(q)} refused (${field}): ${String(err)}`);
  }
});

t.test('renderMediaScript: DHCP, or a static address; then the per-MAC script of this metalboot', async (t) => {
  const dhcp = renderMediaScript(URL, { kind: 'dhcp' });
  t.match(dhcp, /^#!ipxe\n/);
  t.match(dhcp, /^dhcp \|\| dhcp \|\| dhcp \|\| goto failed$/m);
  t.match(dhcp, /^chain --autofree http:\/\/10\.77\.0\.1:8080\/boot\/\$\{netX\/mac\}\.ipxe \|\| goto failed$/m);
  t.notMatch(dhcp, /set net0\/ip/);
  const st = renderMediaScript(URL, parseMediaRequest({ ip: '192.0.2.10/20', gateway: '192.0.2.1' }).network);
  t.match(st, /^set net0\/ip 192\.0\.2\.10$/m);
  t.match(st, /^set net0\/netmask 255\.255\.240\.0$/m);
  t.match(st, /^set net0\/gateway 192\.0\.2\.1$/m);
  t.notMatch(st, /^dhcp/m);
  t.match(isolinuxConfig(), /KERNEL \/ipxe\.lkrn\n {2}INITRD \/metalboot\.ipxe/);
});

const assets = path.resolve(import.meta.dirname, '../../../boot-assets');
const noBuild = toolMissing('xorriso', 'isolinux', 'ldlinux', 'mkfs.vfat', 'mtools') || (existsSync(path.join(assets, 'ipxe.lkrn')) ? false : 'boot-assets/ipxe.lkrn missing');

t.test('buildBootMedium: a hybrid ISO with BIOS and UEFI boot entries and the script in both', { skip: noBuild }, async (t) => {
  const script = renderMediaScript(URL, { kind: 'dhcp' });
  const img = await buildBootMedium({ run: runCommand, assetsDir: assets }, script);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mbt-media-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const iso = path.join(dir, 'm.iso');
  await writeFile(iso, img);
  t.equal(img.subarray(510, 512).toString('hex'), '55aa', 'isohybrid: an MBR, so it boots from USB too');
  const el = await runCommand(['xorriso', '-indev', iso, '-report_el_torito', 'plain'], { timeoutMs: 20_000 });
  t.match(el.stdout, /El Torito boot img : +1 +BIOS/, 'BIOS El Torito entry');
  t.match(el.stdout, /El Torito boot img : +2 +UEFI/, 'UEFI El Torito entry');
  const x = await runCommand(['xorriso', '-osirrox', 'on', '-indev', iso, '-extract', '/metalboot.ipxe', path.join(dir, 's'), '-extract', '/efiboot.img', path.join(dir, 'efi.img')], { timeoutMs: 20_000 });
  t.equal(x.code, 0);
  const { readFile } = await import('node:fs/promises');
  t.equal(await readFile(path.join(dir, 's'), 'utf8'), script, 'BIOS: the script beside ipxe.lkrn');
  const auto = await runCommand(['mtype', '-i', path.join(dir, 'efi.img'), '::/autoexec.ipxe'], { timeoutMs: 10_000 });
  t.equal(auto.stdout, script, 'UEFI: autoexec.ipxe in the EFI image');
  const dirl = await runCommand(['mdir', '-b', '-i', path.join(dir, 'efi.img'), '::/EFI/BOOT'], { timeoutMs: 10_000 });
  t.match(dirl.stdout, /BOOTX64\.EFI/);
  t.match(dirl.stdout, /BOOTAA64\.EFI/);
  const err = await buildBootMedium({ run: runCommand, assetsDir: assets, isolinux: { ...ISOLINUX_FILES, bin: '/nonexistent/isolinux.bin' } }, script).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof MediaBuildError && /copy/.test(err.step), `a missing ISOLINUX file: MediaBuildError naming the step (${String(err)})`);
});
