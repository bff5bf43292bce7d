/**
 * A real BIOS machine network-boots from metalboot: QEMU (TCG) with SeaBIOS
 * and QEMU's iPXE NIC ROM on a tap in a bridge, metalbootd on that bridge.
 *
 *  - server mode: metalboot leases the address and hands iPXE its script URL;
 *    iPXE fetches /boot/<mac>.ipxe and runs it (its echo shows on the serial
 *    console).
 *  - proxy mode: a separate dnsmasq hands out the address only; metalboot's
 *    ProxyDHCP supplies the script URL, and iPXE fetches and runs it.
 *
 * The iPXE ROM already is iPXE (user class "iPXE"), so it must get the script
 * URL straight away, never an iPXE binary (no chainload loop).
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TestNet } from '../helpers/netns.js';
import { startDaemon, type DaemonUnderTest, type LogLine } from '../helpers/daemon.js';
import { addTap, startVm, vmUnavailable, type Vm } from '../helpers/qemu.js';
import { startDhcpOnly, startRaOnly, toolsUnavailable } from '../helpers/pxe.js';

const skip = vmUnavailable('bios') || toolsUnavailable();

/** iPXE gave up on the network (e.g. it found no usable boot file name): no point waiting further. */
const IPXE_GAVE_UP = /Nothing to boot|No more network devices/;

/** The daemon's first log line with this event that matches pred; fails early if the VM dies or iPXE gives up. */
function bootEvent(d: DaemonUnderTest, vm: Vm, name: string, timeoutMs: number, pred: (l: LogLine) => boolean): Promise<LogLine> {
  return vm.until(`daemon event ${name}`, timeoutMs, () => d.events(name).find(pred), IPXE_GAVE_UP);
}

const scriptMessage = (mac: string) => `metalboot: no boot configuration for ${mac}`;
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('BIOS iPXE ROM, server mode: lease, script URL in the reply, script fetched and run', { skip, timeout: 150_000 }, async (t) => {
  const net = new TestNet('pxb');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mbt-pxe-bios-'));
  let d: DaemonUnderTest | undefined;
  let vm: Vm | undefined;
  t.teardown(async () => {
    await vm?.stop();
    await d?.stop();
    await net.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const mac = '52:54:00:93:00:01';
  const url = `http://10.93.0.1:8080/boot/${mac}.ipxe`;
  const srv = await net.addNamespace('srv');
  const br = `${net.tag}b`, tap = `${net.tag}t`;
  await net.bridge(srv, br, '10.93.0.1/24');
  await addTap(net, srv, tap, br);
  await startRaOnly(net, srv, br, 'fd93::');

  d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.93.0.1:8080", publicUrl: "http://10.93.0.1:8080" }
dhcp:
  mode: server
  interface: ${br}
  # Explicit: the bridge has no carrier until QEMU opens the tap, and the
  # daemon cannot see the address of an interface that is not running.
  serverAddress: 10.93.0.1
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.93.0.0/24
      pool: [10.93.0.100, 10.93.0.150]
      router: 10.93.0.1
      leaseTime: 600
`);

  vm = startVm(net, srv, { name: 'bios-server', mac, firmware: 'bios', tap, dir, ttlSec: 120 });
  const served = await bootEvent(d, vm, 'http.boot-script', 90_000, (l) => l.mac === mac);
  const fetchedMs = Date.now() - vm.startedAt;
  await vm.waitForSerial(new RegExp(escapeRe(scriptMessage(mac))), 20_000);
  const ranMs = Date.now() - vm.startedAt;
  t.comment(`VM start -> script fetched ${fetchedMs} ms, -> script output on serial ${ranMs} ms`);

  const acks = d.events('dhcp.ack').filter((l) => l.mac === mac);
  t.ok(acks.length >= 1, 'the VM got a lease (dhcp.ack for its MAC)');
  const ack = acks.at(-1)!;
  t.match(ack.ip, /^10\.93\.0\.(1[0-4][0-9]|150)$/, 'address from the pool');
  t.equal(ack.boot, url, 'the ACK carried the iPXE script URL');
  const offers = d.events('dhcp.offer').filter((l) => l.mac === mac);
  t.ok(offers.length >= 1 && offers.every((l) => l.boot === url), 'every OFFER carried the script URL');
  t.ok(acks.every((l) => l.boot === url), 'no reply offered an iPXE binary (no chainload loop)');
  t.equal(served.from, ack.ip, 'iPXE fetched the script from its leased address');
  // iPXE percent-encodes the colons of the MAC in the path (/boot/52%3A54%3A...).
  const req = d.events('http.request').find((l) => typeof l.url === 'string' && decodeURIComponent(l.url) === `/boot/${mac}.ipxe`);
  t.comment(`iPXE requested ${String(req?.url)}`);
  t.equal(req?.status, 200, 'script request answered 200');
  t.ok((await vm.serial()).includes(scriptMessage(mac)), 'the script ran: its echo is on the serial console');
});

t.test('BIOS iPXE ROM, proxy mode beside an address-only DHCP server: script URL from ProxyDHCP', { skip, timeout: 150_000 }, async (t) => {
  const net = new TestNet('pxp');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mbt-pxe-bios-'));
  let d: DaemonUnderTest | undefined;
  let vm: Vm | undefined;
  t.teardown(async () => {
    await vm?.stop();
    await d?.stop();
    await net.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const mac = '52:54:00:95:00:01';
  const url = `http://10.95.0.1:8080/boot/${mac}.ipxe`;
  const srv = await net.addNamespace('srv');
  const dhcpNs = await net.addNamespace('dhcp');
  const br = `${net.tag}b`, tap = `${net.tag}t`, dDev = `${net.tag}d`, pDev = `${net.tag}p`;
  await net.bridge(srv, br, '10.95.0.1/24');
  await addTap(net, srv, tap, br);
  // The other DHCP server sits on the same L2, in its own namespace.
  await net.veth(dhcpNs, dDev, srv, pDev, '10.95.0.2/24');
  await net.ip(srv, ['link', 'set', pDev, 'master', br]);
  await startRaOnly(net, srv, br, 'fd95::');
  const other = await startDhcpOnly(net, dhcpNs, dDev, '10.95.0.100,10.95.0.150,255.255.255.0,10m', path.join(dir, 'dnsmasq.leases'));

  d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.95.0.1:8080", publicUrl: "http://10.95.0.1:8080" }
dhcp:
  mode: proxy
  interface: ${br}
`);

  vm = startVm(net, srv, { name: 'bios-proxy', mac, firmware: 'bios', tap, dir, ttlSec: 120 });

  // 1. DHCP: the address from the other server, the script URL from metalboot's ProxyDHCP.
  const ackRe = new RegExp(`DHCPACK\\(${dDev}\\) (\\S+) ${escapeRe(mac)}`);
  const ackLine = await vm.until('a DHCPACK from the address-only server', 60_000, () => other.log.lines.find((l) => ackRe.test(l)), IPXE_GAVE_UP);
  const leased = ackRe.exec(ackLine)![1]!;
  t.match(leased, /^10\.95\.0\.(1[0-4][0-9]|150)$/, `the address-only server leased the VM ${leased} from its pool`);
  const proxyOffers = d.events('dhcp.proxy-offer').filter((l) => l.mac === mac);
  t.ok(proxyOffers.length >= 1, 'metalboot sent a ProxyDHCP offer');
  t.ok(proxyOffers.every((l) => l.boot === url), 'ProxyDHCP offers carried the script URL');

  // 2. iPXE uses a ProxyDHCP offer that has next-server (siaddr) and a file
  // name as it is, else it asks on port 4011 and requires the same of the
  // ACK (dhcp_has_pxeopts); without them it says "Nothing to boot".
  const served = await bootEvent(d, vm, 'http.boot-script', 60_000, (l) => l.mac === mac);
  const fetchedMs = Date.now() - vm.startedAt;
  await vm.waitForSerial(new RegExp(escapeRe(scriptMessage(mac))), 20_000);
  t.comment(`VM start -> script fetched ${fetchedMs} ms`);
  const proxyAcks = d.events('dhcp.proxy-ack').filter((l) => l.mac === mac);
  t.ok(proxyAcks.every((l) => l.boot === url), `ProxyDHCP ACKs on port 4011 (${proxyAcks.length}) carried the script URL`);
  t.equal(d.events('dhcp.ack').length + d.events('dhcp.offer').length, 0, 'metalboot handed out no address');
  t.equal(served.from, leased, 'iPXE fetched the script from the address the other server gave it');
  t.ok((await vm.serial()).includes(scriptMessage(mac)), 'the script ran: its echo is on the serial console');
});
