/**
 * A real UEFI machine network-boots from metalboot: QEMU (TCG) with OVMF and
 * no iPXE ROM, so OVMF's own PXE client asks (vendor class
 * "PXEClient:Arch:00007:...", option 93 = 7).
 *
 * metalboot's own TFTP server serves the iPXE binaries from its default
 * root (the installed boot-assets/), on the DHCP interface; tcpdump on the
 * bridge records the firmware's TFTP read requests. The whole chain is checked:
 *   OVMF PXE --DHCP--> boot file name from metalboot --TFTP--> iPXE (EFI)
 *   --DHCP as iPXE--> script URL --HTTP--> /boot/<mac>.ipxe, run once
 * with no chainload loop (iPXE never gets an iPXE binary again).
 *
 *  - server mode: metalboot leases the address and names the boot file
 *    (the default snponly.efi, and dhcp.bootFiles.efiX64 = ipxe.efi).
 *  - proxy mode: a separate dnsmasq on the same L2 hands out addresses only;
 *    metalboot's ProxyDHCP names the boot file.
 *
 * Timing under TCG: OVMF needs ~3 s to reach PXE, then collects DHCP offers
 * for a fixed ~4 s window; iPXE adds ~2 s of banner.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TestNet } from '../helpers/netns.js';
import { REPO_ROOT, startDaemon, type DaemonUnderTest, type LogLine } from '../helpers/daemon.js';
import { addTap, startVm, vmUnavailable, type Vm } from '../helpers/qemu.js';
import {
  parseRrq, startCapture, startDhcpOnly, startRaOnly, toolsUnavailable,
  type Capture, type TftpRrq,
} from '../helpers/pxe.js';

const skip = vmUnavailable('uefi') || toolsUnavailable();

/** The firmware or iPXE gave up on the network: no point waiting further. */
const BOOT_GAVE_UP = /Nothing to boot|PXE-E\d\d|Boot Failed\. EFI Network/;

/** The daemon's first log line with this event that matches pred; fails early if the VM dies or the boot gives up. */
function bootEvent(d: DaemonUnderTest, vm: Vm, name: string, timeoutMs: number, pred: (l: LogLine) => boolean): Promise<LogLine> {
  return vm.until(`daemon event ${name}`, timeoutMs, () => d.events(name).find(pred), BOOT_GAVE_UP);
}

/** The first captured TFTP read request that matches pred. */
function tftpRequest(lab: Lab, vm: Vm, what: string, timeoutMs: number, pred: (r: TftpRrq) => boolean): Promise<TftpRrq> {
  return vm.until(what, timeoutMs, () => rrqs(lab).find(pred), BOOT_GAVE_UP);
}

const scriptMessage = (mac: string) => `metalboot: no boot configuration for ${mac}`;
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Lab {
  net: TestNet;
  dir: string;
  srv: string;
  br: string;
  tap: string;
  tftpCapture: Capture;
  /** Set by the test, stopped first at teardown. */
  vm?: Vm;
  daemon?: DaemonUnderTest;
}

/**
 * Server namespace with a bridge (serverIp/24), a tap for the VM, an RA-only
 * responder and a capture of TFTP requests on the bridge. TFTP itself is
 * metalboot's.
 */
async function buildLab(t: Test, prefix: string, octet: number): Promise<Lab> {
  const net = new TestNet(prefix);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mbt-pxe-uefi-'));
  const lab: Partial<Lab> = { net, dir };
  t.teardown(async () => {
    await lab.vm?.stop();
    await lab.daemon?.stop();
    await lab.tftpCapture?.stop();
    await net.destroy();
    await rm(dir, { recursive: true, force: true });
  });
  lab.srv = await net.addNamespace('srv');
  lab.br = `${net.tag}b`;
  lab.tap = `${net.tag}t`;
  await net.bridge(lab.srv, lab.br, `10.${octet}.0.1/24`);
  await addTap(net, lab.srv, lab.tap, lab.br);
  await startRaOnly(net, lab.srv, lab.br, `fd${octet}::`);
  lab.tftpCapture = await startCapture(net, lab.srv, lab.br, 'udp dst port 69');
  return lab as Lab;
}

function rrqs(lab: Lab): TftpRrq[] {
  return lab.tftpCapture.packets.lines.flatMap((l) => { const r = parseRrq(l); return r ? [r] : []; });
}

/**
 * iPXE's EFI builds since 2021 (Debian 13's) look for autoexec.ipxe beside themselves on the TFTP
 * server they came from before their normal boot: a script request, not an iPXE binary. The
 * requests for iPXE programs, and those autoexec probes, which must come after the binary.
 */
function binaryRrqs(t: Test, lab: Lab, file: string): TftpRrq[] {
  const all = rrqs(lab);
  const auto = all.findIndex((r) => r.file === 'autoexec.ipxe');
  if (auto >= 0) t.ok(all.slice(0, auto).some((r) => r.file === file), `iPXE's autoexec.ipxe probe came after ${file} (${all.map((r) => r.file).join(', ')})`);
  return all.filter((r) => r.file !== 'autoexec.ipxe');
}

/** metalboot logged a complete transfer of the whole file (from boot-assets/) to ip. */
async function tftpSent(d: DaemonUnderTest, file: string, ip: string): Promise<LogLine | undefined> {
  const size = (await stat(path.join(REPO_ROOT, 'boot-assets', file))).size;
  return d.events('tftp.transfer').find((l) => l.file === file && String(l.client).startsWith(`${ip}:`) && l.bytes === size);
}

for (const variant of [
  { file: 'ipxe.efi', bootFiles: '\n  bootFiles: { efiX64: ipxe.efi }', octet: 94, mac: '52:54:00:94:00:01' },
  { file: 'snponly.efi', bootFiles: '', octet: 97, mac: '52:54:00:97:00:01' },
]) {
  const { file, octet, mac } = variant;
  const title = variant.bootFiles ? `dhcp.bootFiles.efiX64 = ${file}` : `default boot file ${file}`;
  t.test(`OVMF PXE, server mode, ${title}: boot file over DHCP and TFTP, then iPXE fetches its script`, { skip, timeout: 200_000 }, async (t) => {
    const lab = await buildLab(t, `pu${octet}`, octet);
    const server = `10.${octet}.0.1`;
    const url = `http://${server}:8080/boot/${mac}.ipxe`;
    const d = lab.daemon = await startDaemon(lab.net, lab.srv, `
dataDir: "{{dataDir}}"
http: { listen: "${server}:8080", publicUrl: "http://${server}:8080" }
dhcp:
  mode: server
  interface: ${lab.br}
  # The bridge has no carrier until QEMU opens the tap, and the daemon cannot
  # see the address of an interface that is not running: name it.
  serverAddress: ${server}
  conflictCheck: { method: off }${variant.bootFiles}
  subnets:
    - cidr: 10.${octet}.0.0/24
      pool: [10.${octet}.0.100, 10.${octet}.0.150]
      router: ${server}
      leaseTime: 600
`);
    const vm = lab.vm = startVm(lab.net, lab.srv, { name: `uefi-server-${octet}`, mac, firmware: 'uefi', tap: lab.tap, dir: lab.dir, ttlSec: 180 });

    // 1. OVMF's PXE client gets a lease whose reply names the boot file.
    const firstAck = await bootEvent(d, vm, 'dhcp.ack', 90_000, (l) => l.mac === mac);
    const ip = String(firstAck.ip);
    t.equal(firstAck.boot, file, `OVMF's lease came with boot file ${file}`);
    t.match(ip, new RegExp(`^10\\.${octet}\\.0\\.(1[0-4][0-9]|150)$`), 'address from the pool');
    const firstOffer = d.events('dhcp.offer').find((l) => l.mac === mac);
    t.equal(firstOffer?.boot, file, `the OFFER named ${file} too`);

    // 2. The firmware asks TFTP for exactly that file, from that address.
    const rrq = await tftpRequest(lab, vm, `TFTP RRQ for ${file}`, 30_000, (r) => r.file === file);
    t.same(rrq, { client: ip, server, file }, `OVMF sent a TFTP read request for ${file} to metalboot's address`);

    // 3. iPXE runs, comes back as iPXE, gets the script URL and fetches it.
    const served = await bootEvent(d, vm, 'http.boot-script', 90_000, (l) => l.mac === mac);
    const fetchedMs = Date.now() - vm.startedAt;
    const sent = await tftpSent(d, file, ip);
    t.ok(sent, `metalboot's TFTP server sent ${file} completely`);
    t.comment(`TFTP ${file}: ${JSON.stringify(sent && { blksize: sent.blksize, windowsize: sent.windowsize, options: sent.options, durationMs: sent.durationMs, retransmits: sent.retransmits })}`);
    await vm.waitForSerial(new RegExp(escapeRe(scriptMessage(mac))), 20_000);
    t.comment(`VM start -> script fetched ${fetchedMs} ms (RRQs: ${rrqs(lab).map((r) => r.file).join(', ')})`);

    const acks = d.events('dhcp.ack').filter((l) => l.mac === mac);
    const firstScriptAck = acks.findIndex((l) => l.boot === url);
    t.ok(firstScriptAck > 0, 'iPXE (user class iPXE) got a lease with the script URL after the firmware got the binary');
    t.ok(acks.slice(firstScriptAck).every((l) => l.boot === url), 'once iPXE runs it never gets an iPXE binary again (no chainload loop)');
    t.equal(served.from, ip, 'the script was fetched from the leased address');
    t.ok(binaryRrqs(t, lab, file).every((r) => r.file === file), `every TFTP request for a program was for ${file}`);
    t.equal(d.events('http.boot-script').length, 1, 'the script was fetched once');
  });
}

t.test('OVMF PXE, proxy mode beside an address-only DHCP server: address from it, boot file from metalboot', { skip, timeout: 200_000 }, async (t) => {
  const octet = 96;
  const lab = await buildLab(t, 'pup', octet);
  const server = `10.${octet}.0.1`;
  const mac = '52:54:00:96:00:01';
  const file = 'snponly.efi';
  const url = `http://${server}:8080/boot/${mac}.ipxe`;
  const { net, srv, br } = lab;
  const dhcpNs = await net.addNamespace('dhcp');
  const dDev = `${net.tag}d`, pDev = `${net.tag}p`;
  await net.veth(dhcpNs, dDev, srv, pDev, `10.${octet}.0.2/24`);
  await net.ip(srv, ['link', 'set', pDev, 'master', br]);
  const other = await startDhcpOnly(net, dhcpNs, dDev, `10.${octet}.0.100,10.${octet}.0.150,255.255.255.0,10m`, path.join(lab.dir, 'dnsmasq.leases'));

  const d = lab.daemon = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "${server}:8080", publicUrl: "http://${server}:8080" }
dhcp:
  mode: proxy
  interface: ${br}
  bootFiles: { efiX64: ${file} }
`);
  const vm = lab.vm = startVm(net, srv, { name: 'uefi-proxy', mac, firmware: 'uefi', tap: lab.tap, dir: lab.dir, ttlSec: 180 });

  // 1. The firmware's TFTP request is the proof that it combined the two servers' answers.
  const rrq = await tftpRequest(lab, vm, 'a TFTP RRQ', 90_000, () => true);
  const ackRe = new RegExp(`DHCPACK\\(${dDev}\\) (\\S+) ${escapeRe(mac)}`);
  const ackLine = other.log.lines.find((l) => ackRe.test(l));
  t.ok(ackLine, `the address-only server leased the VM an address: ${ackLine ?? other.log.lines.slice(-8).join(' | ')}`);
  const ip = ackLine ? ackRe.exec(ackLine)![1] : undefined;
  t.match(ip, new RegExp(`^10\\.${octet}\\.0\\.(1[0-4][0-9]|150)$`), 'from its pool');
  t.same(rrq, { client: ip, server, file }, `OVMF asked metalboot's address for ${file}, from the address the other server gave it`);
  t.equal(d.events('dhcp.offer').length + d.events('dhcp.ack').length, 0, 'metalboot handed out no address');
  const proxied = [...d.events('dhcp.proxy-offer'), ...d.events('dhcp.proxy-ack')].filter((l) => l.mac === mac);
  t.ok(proxied.length >= 1, `metalboot answered as ProxyDHCP (${proxied.map((l) => l.event).join(', ')})`);
  t.ok(proxied.every((l) => l.boot === file), `every ProxyDHCP answer to the firmware named ${file}`);
  t.comment(`ProxyDHCP answers to OVMF: ${proxied.map((l) => `${String(l.event)}/${String(l.type)}`).join(', ')}; VM start -> RRQ ${Date.now() - vm.startedAt} ms`);

  // 2. iPXE (EFI) runs, gets the script URL from the proxy and fetches it.
  // iPXE uses a ProxyDHCP offer that has next-server (siaddr) and a file name
  // as it is, else it asks on port 4011 and requires the same of the ACK
  // (dhcp_has_pxeopts); without them it says "Nothing to boot".
  const served = await bootEvent(d, vm, 'http.boot-script', 90_000, (l) => l.mac === mac);
  t.comment(`VM start -> script fetched ${Date.now() - vm.startedAt} ms`);
  await vm.waitForSerial(new RegExp(escapeRe(scriptMessage(mac))), 20_000);
  t.ok(await tftpSent(d, file, ip!), `metalboot's TFTP server sent ${file} completely`);
  t.equal(served.from, ip, 'the script was fetched from the address the other server gave');
  const toIpxe = [...d.events('dhcp.proxy-offer'), ...d.events('dhcp.proxy-ack')].filter((l) => l.mac === mac && l.boot === url);
  t.ok(toIpxe.length >= 1, 'iPXE got the script URL from ProxyDHCP');
  t.ok(binaryRrqs(t, lab, file).every((r) => r.file === file), 'no further TFTP request for a program once iPXE ran (no chainload loop)');
});
