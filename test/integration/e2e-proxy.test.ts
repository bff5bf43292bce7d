/**
 * Proxy mode, end to end: a separate DHCP server (dnsmasq, addresses only: no boot file, no
 * next-server, no PXE or iPXE options, --no-ping) on the lab's L2, and metalboot beside it in
 * `dhcp.mode: proxy` (ProxyDHCP on 67 and 4011) giving boot information only. A BIOS machine
 * (iPXE ROM) takes its address from dnsmasq and its script URL from metalboot, gets the sanboot
 * script at the address dnsmasq gave it, and boots its own clone over iSCSI.
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

const skip = e2eUnavailable(['bios']) || (process.getuid?.() === 0 ? false : 'needs root');
const M: E2eMachine = { name: 'proxy-bios', mac: '52:54:00:77:30:01', fw: 'bios', bmcPort: 7801 };

t.test('e2e proxy mode: dnsmasq hands out the address, metalboot the boot; a BIOS machine boots its clone', { skip, timeout: 600_000 }, async (t) => {
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
  await e.enrol(M);
  const op = await e.provision(M);
  t.equal(op.status, 'succeeded', `provisioned ${op.error ?? ''}`);
  const id = `proxy-${process.pid.toString(36)}`;
  await e.stamp(M, id);
  await e.attachBmc(M);

  const on = await e.power(M, 'on');
  const hit = await e.waitMarker(M, 90_000).catch((err: Error) => {
    // Say why, from the daemon's own log: a refused script names its reason.
    const refused = e.events('http.boot-script-refused', M.mac);
    const seen = d.logs().filter((l) => l.mac === M.mac && String(l.event).startsWith('dhcp.')).map((l) => `${l.event} ${l.type ?? ''} ip=${l.ip ?? '-'} ${l.reason ?? ''}`);
    t.fail(refused.length
      ? `the sanboot script was refused to the machine: ${refused.map((l) => `from ${l.from}: ${l.reason}`).join('; ')} (DHCP seen by metalboot: ${seen.join(' | ')})`
      : err.message.split('\n')[0]!);
    return undefined;
  });
  if (!hit) return;
  t.equal(hit.id, id, `the machine booted its own clone: ${hit.line}`);
  t.comment(`power-on (POST) -> marker: ${hit.at - on} ms`);

  const ackRe = new RegExp(`DHCPACK\\(${dDev}\\) (\\S+) ${M.mac}`);
  const ack = other.log.lines.map((l) => ackRe.exec(l)).filter(Boolean).at(-1);
  t.ok(ack, 'dnsmasq acknowledged the machine');
  const leased = ack?.[1];
  t.match(String(leased), /^10\.77\.0\.15\d$/, `dnsmasq leased ${leased} from its pool`);
  t.equal(e.events('dhcp.ack').length + e.events('dhcp.offer').length, 0, 'metalboot handed out no address');
  const proxy = [...e.events('dhcp.proxy-offer', M.mac), ...e.events('dhcp.proxy-ack', M.mac)];
  t.ok(proxy.length >= 1, `metalboot answered as ProxyDHCP (${proxy.map((l) => l.event).join(', ')})`);
  t.ok(proxy.every((l) => l.boot === `http://10.77.0.1:8080/boot/${M.mac}.ipxe`), 'with the machine\'s script URL');
  t.ok(e.events('http.boot-script', M.mac).some((l) => l.action === 'sanboot' && l.from === leased), 'sanboot script served to the address dnsmasq gave');
  t.equal(e.events('http.boot-script-refused', M.mac).length, 0, 'no script refused');
  t.ok(await e.waitState(M, 'active', 15_000), 'machine active (iSCSI session seen)');

  await e.powerOff(M);
  await other.stop();
  await e.destroy();
  t.notOk(e.lab.exists(), 'lab namespace deleted');
  await sleep(0);
});
