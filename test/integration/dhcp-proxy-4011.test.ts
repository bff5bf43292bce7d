/**
 * ProxyDHCP's second exchange (PXE 2.1 §2.2.5): a PXE client that already has
 * an address asks on port 4011 and gets an ACK back at its own address and
 * port, with boot information and no address. Non-PXE clients get nothing.
 * Real firmware in this lab takes the port-67 offer directly, so this drives
 * port 4011 with a crafted request from a client namespace.
 */
import t from 'tap';
import path from 'node:path';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { REPO_ROOT, startDaemon } from '../helpers/daemon.js';
import { END, opt, rawPacket, UUID_OPT_VALUE } from '../helpers/dhcp.js';
import { decodePacket } from '../../src/dhcp/packet.js';
import { getIpv4, getText, getUint8, MessageType, Opt } from '../../src/dhcp/options.js';
import { parseIpv4 } from '../../src/net/ipv4.js';

const skip = netnsUnavailable();
const ASK = path.join(REPO_ROOT, 'dist/test/helpers/udp-ask.js');

t.test('ProxyDHCP answers a PXE REQUEST on port 4011 at its source', { skip, timeout: 60_000 }, async (t) => {
  const net = new TestNet('p4k');
  t.teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const sdev = `${net.tag}s`, cdev = `${net.tag}c`;
  await net.veth(srv, sdev, cli, cdev, '10.89.0.1/24', '10.89.0.77/24');
  const d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.89.0.1:8080", publicUrl: "http://10.89.0.1:8080" }
dhcp:
  mode: proxy
  interface: ${sdev}
  bootFiles: { efiX64: snponly.efi }
`);
  t.teardown(() => d.stop());

  const chaddr = [0x52, 0x54, 0x00, 0x89, 0x00, 0x01];
  const ask = async (options: Buffer[]) => {
    const pkt = rawPacket({ ciaddr: '10.89.0.77', chaddr, options: Buffer.concat([...options, END]) });
    const r = await net.exec(cli, ['node', ASK, '--from-port', '68', '--to', '10.89.0.1', '--port', '4011', '--hex', pkt.toString('hex'), '--timeout-ms', '2000'], 10_000);
    return JSON.parse(r.stdout.trim()) as { timeout?: true; from?: string; port?: number; hex?: string };
  };

  const pxe = [opt(53, [MessageType.Request]), opt(60, 'PXEClient:Arch:00007:UNDI:003000'), opt(93, [0, 7]), opt(97, UUID_OPT_VALUE)];
  const ans = await ask(pxe);
  t.notOk(ans.timeout, 'an answer came');
  t.equal(ans.from, '10.89.0.1');
  t.equal(ans.port, 4011, 'from the ProxyDHCP port');
  const dec = decodePacket(Buffer.from(ans.hex!, 'hex'));
  t.ok(dec.ok);
  if (!dec.ok) return;
  const p = dec.packet;
  t.equal(getUint8(p.options, Opt.MessageType), MessageType.Ack, 'DHCPACK');
  t.equal(p.yiaddr, 0, 'no address');
  t.equal(p.ciaddr, parseIpv4('10.89.0.77'), 'ciaddr kept');
  t.equal(p.file, 'snponly.efi', 'the UEFI x64 boot file');
  t.equal(p.siaddr, parseIpv4('10.89.0.1'), 'next-server');
  t.equal(getText(p.options, Opt.VendorClass), 'PXEClient');
  t.equal(getIpv4(p.options, Opt.ServerId), parseIpv4('10.89.0.1'));
  t.same(p.options.get(Opt.ClientUuid), UUID_OPT_VALUE, 'UUID echoed');
  await d.waitForEvent('dhcp.proxy-ack', 5000, (l) => l.mac === '52:54:00:89:00:01');

  // A non-PXE client on 4011 gets no answer.
  const plain = await ask([opt(53, [MessageType.Request]), opt(60, 'udhcp 1.35.0')]);
  t.ok(plain.timeout, 'non-PXE request ignored');
});
