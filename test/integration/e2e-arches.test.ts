/**
 * End to end, the boot paths beyond x86 PXE, each to the golden disk's marker on the serial
 * console, against the real metalbootd (DHCP server, TFTP, scripts, its tgtd) in a lab namespace:
 *  - arm64: qemu-system-aarch64 -M virt (TCG) with Debian's AAVMF, its own PXE (arch 11):
 *    TFTP ipxe-arm64.efi (Debian 13's iPXE) → iPXE → /boot/<mac>.ipxe → sanboot over iSCSI →
 *    the arm64 golden disk's GRUB (make-bootdisk-arm64) prints the machine's own id;
 *  - UEFI HTTP boot: OVMF with its PXE switched off (lab-vm uefi-http), so the NIC boots by HTTP
 *    only (arch 16, vendor class HTTPClient): metalboot answers with the URL of snponly.efi, OVMF
 *    loads it over HTTP (no TFTP at all), iPXE → script → sanboot → marker;
 *  - boot medium: a BIOS machine whose NIC has no ROM boots the ISO from
 *    GET /api/v1/boot-media/metalboot.iso as its CD-ROM: ISOLINUX → ipxe.lkrn + script →
 *    DHCP → its per-MAC script → sanboot → marker; and an OVMF machine from the same ISO:
 *    \EFI\BOOT\BOOTX64.EFI (ipxe.efi) runs autoexec.ipxe beside it → the same flow.
 *  - HTTPS: can Debian's iPXE trust a server's own (self-signed) certificate? A medium whose
 *    script fetches from `openssl s_server` over HTTPS, once as it is and once after
 *    `set trust <the certificate's SHA-256>`: refused both times (see the subtest).
 * Machines are powered by lab-vm directly (no BMC): the power path is e2e-boot's.
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from '../../src/exec/run.js';
import { apiToken } from '../helpers/dhcp-tools.js';
import { LAB_SCRIPTS, REPO } from '../helpers/lab.js';
import { toolMissing } from '../helpers/tools.js';
import { BOOT_ASSETS, E2e, GAVE_UP, HTTP, MARKER, e2eUnavailable, type E2eMachine } from '../helpers/e2e.js';
import { buildBootMedium } from '../../src/boot/media-build.js';

const skip = e2eUnavailable(['bios', 'uefi']) || toolMissing('qemu-aarch64', 'aavmf', 'grub-mkstandalone', 'mtools', 'mkfs.vfat', 'xorriso', 'isolinux', 'ldlinux');
const ARM: E2eMachine = { name: 'e2e-arm64', mac: '52:54:00:77:20:01', fw: 'uefi', bmcPort: 0 };
const HTTPM: E2eMachine = { name: 'e2e-http', mac: '52:54:00:77:20:02', fw: 'uefi', bmcPort: 0 };
const MEDIA: E2eMachine = { name: 'e2e-media', mac: '52:54:00:77:20:03', fw: 'bios', bmcPort: 0 };
const MEDIA_EFI: E2eMachine = { name: 'e2e-media-efi', mac: '52:54:00:77:20:04', fw: 'uefi', bmcPort: 0 };
const TLS: E2eMachine = { name: 'e2e-tls', mac: '52:54:00:77:20:05', fw: 'bios', bmcPort: 0 };
const tag = process.pid.toString(36);

t.test('e2e: arm64 PXE, UEFI HTTP boot and the boot medium, each to its own iSCSI disk', { skip, timeout: 1_500_000 }, async (t) => {
  // syslog on: metalboot hands out option 7, and a booting iPXE that has syslog built in sends its console lines.
  const e = await E2e.up(t, { prefix: 'e2ea', conflictCheck: 'off', extraYaml: 'syslog: { enabled: true, listen: "10.77.0.1:514" }\n' });
  const d = await e.start();
  await e.uploadGolden();
  // The arm64 golden disk, as image golden-arm64.
  const armImg = path.join(e.dir, 'golden-arm64.img');
  await runCommand([path.join(LAB_SCRIPTS, 'make-bootdisk-arm64'), armImg, MARKER, 'golden'], { timeoutMs: 120_000 });
  const up = await e.lab.exec(['curl', '-sS', '-m', '120', '-X', 'PUT', '-H', `Authorization: Bearer ${apiToken(e.dataDir)}`,
    '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${armImg}`, '-o', '/dev/null', '-w', '%{http_code}', `${HTTP}/api/v1/images/golden-arm64`], 130_000);
  t.equal(up.stdout, '201', 'arm64 golden image uploaded');

  const vm = (m: E2eMachine, kind: string, extra: string[] = []) =>
    e.lab.script('lab-vm', [m.name, m.mac, kind, ...extra, '--detach'], 30_000);
  const ready = async (m: E2eMachine, image: string, id: string, stamp: 'x86' | 'arm64') => {
    await e.enrol(m);
    const op = await e.provision(m, image);
    t.equal(op.status, 'succeeded', `${m.name}: provisioned from ${image} ${op.error ?? ''}`);
    if (stamp === 'x86') await e.stamp(m, id);
    else await runCommand([path.join(LAB_SCRIPTS, 'stamp-disk-arm64'), e.diskFile(m), id], { timeoutMs: 20_000 });
  };
  const marker = async (m: E2eMachine, timeoutMs: number) => {
    const hit = await e.lab.waitSerial(m.name, new RegExp(`METALBOOT-DISK-OK ${MARKER} (\\S+) ${m.fw === 'bios' ? 'bios' : 'efi'}`), timeoutMs, GAVE_UP);
    return hit[1];
  };
  const leasedTo = (m: E2eMachine) => String(e.events('dhcp.ack', m.mac).at(-1)?.ip);
  /** iPXE's own console lines that reached metalboot's syslog receiver, for this machine. */
  const syslogOf = (m: E2eMachine) => d.events('syslog.message').filter((l) => l.mac === m.mac).map((l) => String(l.text));
  const stop = async (m: E2eMachine) => {
    const pid = await e.lab.qemuPid(m.name);
    if (pid !== undefined) process.kill(pid, 'SIGTERM');
  };

  await t.test('arm64: AAVMF PXE -> TFTP ipxe-arm64.efi -> script -> sanboot -> GRUB on its own disk', async (t) => {
    const id = `arm64-${tag}`;
    await ready(ARM, 'golden-arm64', id, 'arm64');
    const t0 = Date.now();
    await vm(ARM, 'arm64');
    t.equal(await marker(ARM, 600_000), id, `arm64 VM booted its own clone (${Date.now() - t0} ms from QEMU start)`);
    const ip = leasedTo(ARM);
    const tftp = d.events('tftp.transfer').filter((l) => String(l.client).startsWith(`${ip}:`));
    t.ok(tftp.some((l) => l.file === 'ipxe-arm64.efi'), `ipxe-arm64.efi over TFTP to ${ip} (${tftp.map((l) => `${l.file} ${l.bytes} B`).join(', ')})`);
    t.ok(e.events('http.boot-script', ARM.mac).some((l) => l.action === 'sanboot' && l.from === ip), 'sanboot script served to its leased address');
    t.ok(await e.waitState(ARM, 'active', 20_000), 'state active (iSCSI session seen)');
    const serial = await e.lab.serial(ARM.name);
    t.comment(`arm64 iPXE banner: ${(/iPXE [^\n]*\n[^\n]*Features:[^\n]*/.exec(serial) ?? ['(none)'])[0].replace(/\s+/g, ' ')}`);
    t.comment(`arm64 iPXE syslog lines: ${JSON.stringify(syslogOf(ARM).slice(0, 5))}`);
    await stop(ARM);
  });

  await t.test('UEFI HTTP boot: OVMF (PXE off) -> HTTP snponly.efi -> script -> sanboot -> marker', async (t) => {
    const id = `http-${tag}`;
    await ready(HTTPM, 'golden', id, 'x86');
    const t0 = Date.now();
    await vm(HTTPM, 'uefi-http');
    t.equal(await marker(HTTPM, 300_000), id, `HTTP-boot VM booted its own clone (${Date.now() - t0} ms from QEMU start)`);
    const ip = leasedTo(HTTPM);
    const assets = e.events('http.boot-asset').filter((l) => l.from === ip);
    t.ok(assets.some((l) => l.file === 'snponly.efi'), `the firmware fetched the default snponly.efi over HTTP (${assets.map((l) => `${l.file} ${l.bytes} B`).join(', ')})`);
    t.same(d.events('tftp.transfer').filter((l) => String(l.client).startsWith(`${ip}:`)), [], 'no TFTP at all');
    t.ok(e.events('http.boot-script', HTTPM.mac).some((l) => l.action === 'sanboot' && l.from === ip), 'sanboot script served to its leased address');
    const serial = await e.lab.serial(HTTPM.name);
    t.comment(`x86_64 iPXE banner: ${(/iPXE [^\n]*\n[^\n]*Features:[^\n]*/.exec(serial) ?? ['(none)'])[0].replace(/\s+/g, ' ')}`);
    t.comment(`x86_64 iPXE syslog lines: ${JSON.stringify(syslogOf(HTTPM).slice(0, 5))}`);
    // Debian's iPXE is built without CONSOLE_SYSLOG: option 7 is handed out (dhcp unit tests) but no
    // datagram arrives, not even one dropped by the receiver's filters. Fails the day one does.
    t.same(d.logs().filter((l) => /^syslog\.(message|not-served|rate-limited)/.test(String(l.event))).map((l) => l.event), [],
      'no syslog datagram from either iPXE (Debian\'s build has no syslog console)');
    await stop(HTTPM);
  });

  await t.test('boot medium: BIOS, NIC without ROM, the ISO as CD-ROM -> ipxe.lkrn + script -> sanboot -> marker', async (t) => {
    const id = `media-${tag}`;
    await ready(MEDIA, 'golden', id, 'x86');
    const iso = path.join(e.dir, 'metalboot.iso');
    const cli = await e.lab.exec([process.execPath, path.join(REPO, 'dist/src/cli/metalboot.js'), 'boot-media', '--out', iso,
      '--api', HTTP, '--token-file', path.join(e.dataDir, 'api-token')], 120_000, [0, 1, 2]);
    t.equal(cli.code, 0, `metalboot boot-media --out: ${cli.stdout.trim()} ${cli.stderr.trim()}`);
    const ls = await runCommand(['xorriso', '-indev', iso, '-find', '/', '-type', 'f'], { timeoutMs: 20_000 });
    t.match(ls.stdout, /ipxe\.lkrn[\s\S]*metalboot\.ipxe|metalboot\.ipxe[\s\S]*ipxe\.lkrn/, 'the ISO carries ipxe.lkrn and the script');
    const bad = await e.api('GET', '/api/v1/boot-media/metalboot.iso?ip=10.77.0.300/24');
    t.equal(bad.status, 400, `a bad static address is refused: ${bad.body}`);
    const t0 = Date.now();
    await vm(MEDIA, 'bios', ['--no-rom', '--cdrom', iso]);
    t.equal(await marker(MEDIA, 300_000), id, `the ROM-less BIOS VM booted its own clone from the medium (${Date.now() - t0} ms from QEMU start)`);
    const serial = await e.lab.serial(MEDIA.name);
    t.match(serial, /metalboot boot medium for http:\/\/10\.77\.0\.1:8080/, 'the medium\'s script ran');
    t.ok(e.events('http.boot-script', MEDIA.mac).some((l) => l.action === 'sanboot'), 'its per-MAC sanboot script was served');
    t.ok(e.events('http.boot-media').length >= 1, 'the build is logged (http.boot-media)');
    await stop(MEDIA);

    const idEfi = `media-efi-${tag}`;
    await ready(MEDIA_EFI, 'golden', idEfi, 'x86');
    const t1 = Date.now();
    await vm(MEDIA_EFI, 'uefi', ['--cdrom', iso]);
    t.equal(await marker(MEDIA_EFI, 300_000), idEfi, `an OVMF VM booted its own clone from the same medium (${Date.now() - t1} ms from QEMU start)`);
    t.match(await e.lab.serial(MEDIA_EFI.name), /metalboot boot medium for http:\/\/10\.77\.0\.1:8080/, 'UEFI: iPXE ran autoexec.ipxe from the medium');
    t.same(d.events('tftp.transfer').filter((l) => String(l.client).startsWith(`${leasedTo(MEDIA_EFI)}:`)), [], 'UEFI: no TFTP (iPXE came from the medium)');
    await stop(MEDIA_EFI);
  });

  // What Debian's iPXE does with a server certificate of metalboot's own (self-signed): refused,
  // and still refused after `set trust <its SHA-256>` at run time (iPXE reads its root of trust at
  // start, before any script or DHCP; its built-in root is iPXE's own CA). Both refusals are
  // EACCES (iPXE prints 0x2xxxxxx: the chain ends in no trusted root), i.e. TLS itself worked. The day this
  // fetches, scripts over HTTPS with metalboot's own certificate become possible: change this test.
  await t.test('HTTPS: Debian\'s iPXE refuses a self-signed server, with or without `set trust`', async (t) => {
    const dir = path.join(e.dir, 'tls');
    await runCommand(['mkdir', '-p', dir], { timeoutMs: 5000 });
    // RSA (iPXE's TLS), the address as CN and as a DNS name (iPXE matches the URI's host by name).
    await runCommand(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-days', '30', '-subj', '/CN=10.77.0.1', '-addext', 'subjectAltName=DNS:10.77.0.1,IP:10.77.0.1'], { timeoutMs: 30_000 });
    const fp = (await runCommand(['openssl', 'x509', '-in', path.join(dir, 'cert.pem'), '-noout', '-fingerprint', '-sha256'], { timeoutMs: 5000 }))
      .stdout.trim().replace(/^.*=/, '').toLowerCase();
    await writeFile(path.join(dir, 'probe.ipxe'), '#!ipxe\necho HTTPS-PROBE-CONTENT\n');
    e.lab.spawn(['sh', '-c', `cd ${dir} && exec openssl s_server -quiet -WWW -accept 10.77.0.1:8443 -cert cert.pem -key key.pem`], 600);
    const url = 'https://10.77.0.1:8443/probe.ipxe';
    const script = ['#!ipxe', 'dhcp || dhcp || goto out',
      `imgfetch --name p1 ${url} && echo HTTPS-NOTRUST-FETCHED || echo HTTPS-NOTRUST-REFUSED \${errno}`,
      `set trust ${fp}`,
      `imgfetch --name p2 ${url} && echo HTTPS-TRUST-FETCHED || echo HTTPS-TRUST-REFUSED \${errno}`,
      ':out', 'echo HTTPS-PROBE-DONE', 'sleep 600', ''].join('\n');
    const img = await buildBootMedium({ run: runCommand, assetsDir: BOOT_ASSETS }, script);
    const iso = path.join(dir, 'probe.iso');
    await writeFile(iso, img);
    await vm(TLS, 'bios', ['--no-rom', '--cdrom', iso]);
    await e.lab.waitSerial(TLS.name, /HTTPS-PROBE-DONE/, 180_000);
    const serial = await e.lab.serial(TLS.name);
    const without = /HTTPS-NOTRUST-(FETCHED|REFUSED)[^\n]*/.exec(serial)?.[0];
    const withTrust = /HTTPS-TRUST-(FETCHED|REFUSED)[^\n]*/.exec(serial)?.[0];
    t.match(without, /HTTPS-NOTRUST-REFUSED 0x2[0-9a-f]{6}\b/, `without trust: refused, EACCES (${without})`);
    t.match(withTrust, /HTTPS-TRUST-REFUSED 0x2[0-9a-f]{6}\b/, `with trust = the certificate's fingerprint set at run time: still refused, EACCES (${withTrust})`);
    await stop(TLS);
  });
});
