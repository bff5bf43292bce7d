/**
 * What the protocol edges publish on the event bus: dhcp/events.ts (from real packets through
 * the real classifier and the ProxyDHCP handler), tftp/events.ts, syslog/events.ts and
 * iscsi/events.ts; and the pool-exhaustion warning wired to a real bus.
 */
import t from 'tap';
import { classify, type ClientInfo } from '../../src/dhcp/classify.js';
import { handleProxy, type HandlerContext, type Outcome } from '../../src/dhcp/handler.js';
import { decodePacket } from '../../src/dhcp/packet.js';
import { PROXY_PORT } from '../../src/dhcp/reply.js';
import { dhcpEvent, proxyReplyMac } from '../../src/dhcp/events.js';
import { warnOnPoolExhaustion } from '../../src/dhcp/pool-exhausted.js';
import { tftpEvent } from '../../src/tftp/events.js';
import { syslogEvent, syslogPublisher } from '../../src/syslog/events.js';
import { sessionEvent } from '../../src/iscsi/events.js';
import { EventBus, type MetalbootEvent } from '../../src/events/bus.js';
import { BOOT_FILES, ip, ipxeDiscover, mac, opt, ovmfDiscover, PUBLIC_URL, pxeBiosDiscover, END } from '../helpers/dhcp.js';

const ctx: HandlerContext = { serverId: ip('10.99.0.1'), bootFiles: BOOT_FILES, publicUrl: PUBLIC_URL };
const SOURCE = { address: ip('0.0.0.0'), port: 68 };

function proxied(buf: Buffer, port = 67): { o: Outcome; c: ClientInfo } {
  const d = decodePacket(buf);
  if (!d.ok) throw new Error(d.reason);
  const c = classify(d.packet);
  return { o: handleProxy(d.packet, c, ctx, port, SOURCE), c };
}

t.test('dhcpEvent: a PXE ROM\'s proxy offer carries what the client said and the boot file', async (t) => {
  const { o, c } = proxied(pxeBiosDiscover());
  const e = dhcpEvent(o, c);
  t.same(e, { type: 'dhcp.proxy-offer', arch: 'bios', ipxe: false, mac: '52:54:00:aa:bb:01', message: 'discover', vendorClass: 'PXEClient:Arch:00000:UNDI:002001', uuid: '00010203-0405-0607-0809-0a0b0c0d0e0f', bootFile: BOOT_FILES.bios });
  t.notOk(Object.values(e).some((v) => v === undefined), 'no field is present without a value');
  t.equal(proxyReplyMac(o), '52:54:00:aa:bb:01', 'a proxy offer of ours opens the MAC\'s script window');
});

t.test('dhcpEvent: iPXE gets its script URL; UEFI on 4011 an ACK; the address from option 50 or ciaddr', async (t) => {
  const ipxe = proxied(ipxeDiscover());
  t.match(dhcpEvent(ipxe.o, ipxe.c), { type: 'dhcp.proxy-offer', arch: 'bios', ipxe: true, bootFile: `${PUBLIC_URL}/boot/52:54:00:aa:bb:02.ipxe` });
  const uefi = proxied(ovmfDiscover(), PROXY_PORT);
  const ack = dhcpEvent(uefi.o, uefi.c);
  t.match(ack, { type: 'dhcp.proxy-ack', arch: 'efi-x64', bootFile: BOOT_FILES.efiX64 });
  t.equal(proxyReplyMac(uefi.o), '52:54:00:aa:bb:03');
  t.notOk('ip' in ack, 'no address known: no ip field');
  const asked = proxied(pxeBiosDiscover({ options: Buffer.concat([opt(53, [1]), opt(50, [10, 99, 0, 42]), opt(60, 'PXEClient:Arch:00000:UNDI:002001'), opt(93, [0, 0]), END]) }));
  t.equal(dhcpEvent(asked.o, asked.c).ip, '10.99.0.42', 'the requested address (option 50)');
  const ci = proxied(pxeBiosDiscover({ ciaddr: '10.99.0.43' }));
  t.equal(dhcpEvent(ci.o, ci.c).ip, '10.99.0.43', 'else ciaddr');
});

t.test('dhcpEvent: an ignored client carries the reason and opens no script window', async (t) => {
  const { o, c } = proxied(pxeBiosDiscover({ options: Buffer.concat([opt(53, [1]), END]) }));
  const e = dhcpEvent(o, c);
  t.match(e, { type: 'dhcp.ignored', mac: '52:54:00:aa:bb:01', reason: 'not a PXE client', message: 'discover' });
  t.notOk('bootFile' in e);
  t.equal(proxyReplyMac(o), undefined);
  const noAddress: Outcome = { event: 'dhcp.no-address', mac: mac('52:54:00:aa:bb:09'), reason: 'pool exhausted', exhaustedSubnet: '10.99.0.0/24' };
  t.match(dhcpEvent(noAddress, c), { type: 'dhcp.no-address', mac: '52:54:00:aa:bb:09', reason: 'pool exhausted', exhaustedSubnet: '10.99.0.0/24' });
});

t.test('warnOnPoolExhaustion: one warning per subnet per interval from the bus, with the count kept quiet', async (t) => {
  let now = 0;
  const bus = new EventBus(() => now);
  const lines: { obj: object; msg: string }[] = [];
  const off = warnOnPoolExhaustion(bus, { warn: (obj, msg) => lines.push({ obj, msg }) }, () => now, 60_000);
  const m = mac('52:54:00:aa:bb:09');
  const exhausted = () => bus.publish({ type: 'dhcp.no-address', mac: m, reason: 'pool exhausted', exhaustedSubnet: '10.99.0.0/24' });
  exhausted();
  bus.publish({ type: 'dhcp.no-address', mac: m, reason: 'no subnet for this client' });
  now = 1000; exhausted();
  now = 60_000; exhausted();
  t.same(lines.map((l) => l.obj), [
    { event: 'dhcp.pool-exhausted', subnet: '10.99.0.0/24', mac: m, suppressed: 0 },
    { event: 'dhcp.pool-exhausted', subnet: '10.99.0.0/24', mac: m, suppressed: 1 },
  ], 'a no-address without an exhausted pool is not a warning');
  t.match(lines[0]!.msg, /10\.99\.0\.0\/24 exhausted/);
  off();
  now = 200_000; exhausted();
  t.equal(lines.length, 2, 'unsubscribed');
});

t.test('tftpEvent: start and end, attributed when the MAC is known', async (t) => {
  const m = mac('52:54:00:aa:bb:01');
  t.same(tftpEvent({ phase: 'start', client: '10.99.0.5', file: 'undionly.kpxe', size: 70_000 }, m), { type: 'tftp.start', client: '10.99.0.5', file: 'undionly.kpxe', size: 70_000, mac: m });
  const end = tftpEvent({ phase: 'end', client: '10.99.0.5', file: 'undionly.kpxe', ok: false, declined: true, bytes: 0, size: 70_000, durationMs: 3, retransmits: 0 }, undefined);
  t.same(end, { type: 'tftp.end', client: '10.99.0.5', file: 'undionly.kpxe', ok: false, declined: true, bytes: 0, size: 70_000, durationMs: 3, retransmits: 0 });
  t.notOk('mac' in end && 'phase' in end);
});

t.test('syslog: one event and one log line per message, attributed by source address', async (t) => {
  const bus = new EventBus(() => 5);
  const seen: MetalbootEvent[] = [];
  bus.subscribe((e) => seen.push(e));
  const logged: object[] = [];
  const m = mac('52:54:00:aa:bb:01');
  const onMessage = syslogPublisher(bus, { info: (obj) => { logged.push(obj); } }, (a) => (a === '10.99.0.5' ? m : undefined));
  const msg = { facility: 1, severity: 6, format: '3164', app: 'ipxe', text: 'net0: link up' } as const;
  onMessage(msg, { address: '10.99.0.5', port: 514 });
  onMessage(msg, { address: '10.99.0.6', port: 514 });
  t.match(seen, [{ type: 'syslog', ip: '10.99.0.5', severity: 6, text: 'net0: link up', mac: m }, { type: 'syslog', ip: '10.99.0.6' }]);
  t.notOk('mac' in seen[1]!, 'an unknown source has no mac');
  t.same(logged, [
    { event: 'syslog.message', mac: m, from: '10.99.0.5', severity: 6, app: 'ipxe', text: 'net0: link up' },
    { event: 'syslog.message', mac: undefined, from: '10.99.0.6', severity: 6, app: 'ipxe', text: 'net0: link up' },
  ]);
  t.same(syslogEvent(msg, '10.99.0.7', undefined), { type: 'syslog', ip: '10.99.0.7', severity: 6, text: 'net0: link up' });
});

t.test('sessionEvent: login and logout with the first connection\'s address and the owner', async (t) => {
  const m = mac('52:54:00:aa:bb:01');
  const s = { nexus: 1, initiator: 'iqn.2026-11.org.metalboot:m1:initiator', alias: null, connections: [{ cid: 0, address: '10.99.0.5' }] };
  t.same(sessionEvent('login', 'iqn.2026-11.org.metalboot:m1', s, m), { type: 'iscsi.login', iqn: 'iqn.2026-11.org.metalboot:m1', initiator: s.initiator, address: '10.99.0.5', mac: m });
  t.same(sessionEvent('logout', 'iqn.x', { ...s, connections: [] }, undefined), { type: 'iscsi.logout', iqn: 'iqn.x', initiator: s.initiator });
});
