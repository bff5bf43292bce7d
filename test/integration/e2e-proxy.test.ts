/**
 * Proxy mode, end to end: a separate DHCP server (dnsmasq, addresses only: no boot file, no
 * next-server, no PXE or iPXE options, --no-ping) on the lab's L2, and metalboot beside it in
 * `dhcp.mode: proxy` (ProxyDHCP on 67 and 4011) giving boot information only. A BIOS machine
 * (iPXE ROM) and a UEFI machine (OVMF's PXE: snponly.efi over metalboot's TFTP, then iPXE) take
 * their addresses from dnsmasq and their boot from metalboot, get the sanboot script at the
 * address dnsmasq gave each, and boot their own clones over iSCSI.
 *
 * dnsmasq sits in a namespace of its own, its veth end a port of the lab bridge (as
 * dhcp-proxy-4011 and pxe-* set proxy mode up): both servers want UDP port 67, and metalboot's
 * socket (SO_REUSEADDR, bound to labbr) and dnsmasq's (0.0.0.0:67) would otherwise share the
 * broadcasts of one namespace in ways neither expects.
 */
import t from 'tap';
import path from 'node:path';
import { LAB_BRIDGE } from '../helpers/lab.js';
import { startDhcpOnly } from '../helpers/pxe.js';
import { E2e, e2eUnavailable, sleep, type E2eMachine } from '../helpers/e2e.js';

const skip = e2eUnavailable(['bios', 'uefi']) || (process.getuid?.() === 0 ? false : 'needs root');
const BIOS: E2eMachine = { name: 'proxy-bios', mac: '52:54:00:77:30:01', fw: 'bios', bmcPort: 7801 };
const UEFI: E2eMachine = { name: 'proxy-uefi', mac: '52:54:00:77:30:02', fw: 'uefi', bmcPort: 7802 };

t.test('e2e proxy mode: dnsmasq hands out the addresses, metalboot the boot; a BIOS and a UEFI machine boot their clones', { skip, timeout: 600_000 }, async (t) => {
  const e = await E2e.up(t, { prefix: 'e2ep', dhcpMode: 'proxy' });
  // The address-only DHCP server: its own namespace, a veth into labbr, 10.77.0.2.
  const dns = await e.net.addNamespace('dhcp');
  const dDev = `${e.net.tag}d`, pDev = `${e.net.tag}p`;
  await e.net.veth(dns, dDev, e.lab.ns, pDev, '10.77.0.2/24');
  await e.net.ip(e.lab.ns, ['link', 'set', pDev, 'master', LAB_BRIDGE]);
  const other = await startDhcpOnly(e.net, dns, dDev, '10.77.0.150,10.77.0.159,255.255.255.0,10m', path.join(e.dir, 'dnsmasq.leases'));

  const d = await e.start();
  t.match(d.events('dhcp.listening')[0], { mode: 'proxy', ports: [67, 4011] }, 'metalboot: ProxyDHCP on 67 and 4011');
  await e.uploadGolden();
  const ids: Record<string, string> = {};
  for (const m of [BIOS, UEFI]) {
    await e.enrol(m);
    const op = await e.provision(m);
    t.equal(op.status, 'succeeded', `${m.name}: provisioned ${op.error ?? ''}`);
    ids[m.mac] = `proxy-${m.fw}-${process.pid.toString(36)}`;
    await e.stamp(m, ids[m.mac]!);
    await e.attachBmc(m);
  }

  const on: Record<string, number> = {};
  for (const m of [BIOS, UEFI]) on[m.mac] = await e.power(m, 'on');
  const waitBoot = (m: E2eMachine, ms: number) => e.waitMarker(m, ms).catch((err: Error) => {
    // Say why, from the daemon's own log: a refused script names its reason.
    const refused = e.events('http.boot-script-refused', m.mac);
    const seen = d.logs().filter((l) => l.mac === m.mac && String(l.event).startsWith('dhcp.')).map((l) => `${l.event} ${l.type ?? ''} ip=${l.ip ?? '-'} ${l.reason ?? ''}`);
    t.fail(refused.length
      ? `${m.name}: the sanboot script was refused to the machine: ${refused.map((l) => `from ${l.from}: ${l.reason}`).join('; ')} (DHCP seen by metalboot: ${seen.join(' | ')})`
      : `${m.name}: ${err.message.split('\n')[0]!}`);
    return undefined;
  });
  const hits = await Promise.all([waitBoot(BIOS, 90_000), waitBoot(UEFI, 150_000)]);
  t.equal(e.events('dhcp.ack').length + e.events('dhcp.offer').length, 0, 'metalboot handed out no address');
  for (const [i, m] of [BIOS, UEFI].entries()) {
    const hit = hits[i];
    if (!hit) continue;
    t.equal(hit.id, ids[m.mac], `${m.name}: booted its own clone: ${hit.line}`);
    t.comment(`${m.name}: power-on (POST) -> marker: ${hit.at - on[m.mac]!} ms`);
    const ackRe = new RegExp(`DHCPACK\\(${dDev}\\) (\\S+) ${m.mac}`);
    const ack = other.log.lines.map((l) => ackRe.exec(l)).filter(Boolean).at(-1);
    t.ok(ack, `${m.name}: dnsmasq acknowledged the machine`);
    const leased = ack?.[1];
    t.match(String(leased), /^10\.77\.0\.15\d$/, `${m.name}: dnsmasq leased ${leased} from its pool`);
    const proxy = [...e.events('dhcp.proxy-offer', m.mac), ...e.events('dhcp.proxy-ack', m.mac)];
    t.ok(proxy.length >= 1, `${m.name}: metalboot answered as ProxyDHCP (${proxy.map((l) => `${l.event} ${l.boot}`).join(', ')})`);
    t.ok(proxy.some((l) => l.boot === `http://10.77.0.1:8080/boot/${m.mac}.ipxe`), `${m.name}: with the machine's script URL for iPXE`);
    if (m.fw === 'uefi') {
      t.ok(proxy.some((l) => l.boot === 'snponly.efi'), `${m.name}: and snponly.efi for the firmware's PXE`);
      t.ok(d.events('tftp.transfer').some((l) => l.file === 'snponly.efi' && String(l.client).startsWith(`${leased}:`)), `${m.name}: snponly.efi over metalboot's TFTP to ${leased}`);
    }
    t.ok(e.events('http.boot-script', m.mac).some((l) => l.action === 'sanboot' && l.from === leased), `${m.name}: sanboot script served to the address dnsmasq gave`);
    t.equal(e.events('http.boot-script-refused', m.mac).length, 0, `${m.name}: no script refused`);
    t.ok(await e.waitState(m, 'active', 15_000), `${m.name}: active (iSCSI session seen)`);
  }

  for (const m of [BIOS, UEFI]) await e.powerOff(m);
  await other.stop();
  await e.destroy();
  t.notOk(e.lab.exists(), 'lab namespace deleted');
  await sleep(0);
});
