import t, { type Test } from 'tap';
import { selectBoot, ipxeScriptUrl, type BootTarget } from '../../src/dhcp/bootfile.js';
import { classify, type ClientInfo } from '../../src/dhcp/classify.js';
import { getIpv4, getIpv4List, getText, getUint32, getUint8, MessageType, Opt } from '../../src/dhcp/options.js';
import { decodePacket, encodePacket, FLAG_BROADCAST, type DhcpPacket } from '../../src/dhcp/packet.js';
import {
  buildInformAck, buildLeaseReply, buildNak, buildProxyReply, CLIENT_PORT, PROXY_PORT, replyDestination, SERVER_PORT, type Reply,
} from '../../src/dhcp/reply.js';
import type { BootFilesConfig } from '../../src/config/types.js';
import {
  BOOT_FILES, END, ip, ipxeDiscover, opt, ovmfDiscover, PUBLIC_URL, pxeBiosDiscover, rawPacket, subnet, UUID_OPT_VALUE, type RawFields,
} from '../helpers/dhcp.js';

const SERVER = ip('10.99.0.1');
const BCAST = ip('255.255.255.255');
const NET = subnet('10.99.0.0/24', '10.99.0.100', '10.99.0.199', {
  router: ip('10.99.0.254'), dns: [ip('10.99.0.53'), ip('1.1.1.1')], domainName: 'lab.example', leaseTime: 3600,
});

function decode(buf: Buffer): DhcpPacket {
  const r = decodePacket(buf);
  if (!r.ok) throw new Error(r.reason);
  return r.packet;
}

function req(options: Buffer[], over: Partial<RawFields> = {}): DhcpPacket {
  return decode(rawPacket({ options: Buffer.concat([...options, END]), ...over }));
}

function client(p: DhcpPacket): [DhcpPacket, ClientInfo] {
  return [p, classify(p)];
}

/** Encodes and decodes the reply, as the client would see it. */
function wire(t: Test, r: Reply): DhcpPacket {
  const buf = encodePacket(r.packet);
  t.ok(buf.length >= 300, 'reply at least 300 bytes');
  t.equal(buf[240], Opt.MessageType, 'message type first on the wire');
  return decode(buf);
}

const boot = (c: ClientInfo, files: BootFilesConfig = BOOT_FILES, url = PUBLIC_URL): BootTarget => selectBoot(c, files, url);

t.test('selectBoot: PXE ROMs get the iPXE binary for their arch over TFTP', async (t) => {
  const cases: [number | undefined, BootTarget][] = [
    [0, { kind: 'tftp', file: 'undionly.kpxe' }],
    [undefined, { kind: 'tftp', file: 'undionly.kpxe' }],
    [6, { kind: 'tftp', file: 'ipxe-ia32.efi' }],
    [7, { kind: 'tftp', file: 'snponly.efi' }],
    [9, { kind: 'tftp', file: 'snponly.efi' }],
    [11, { kind: 'tftp', file: 'ipxe-arm64.efi' }],
    [27, { kind: 'tftp', file: 'ipxe-riscv64.efi' }],
    [39, { kind: 'tftp', file: 'ipxe-loong64.efi' }],
  ];
  for (const [code, want] of cases) {
    const opts = [opt(53, [1]), opt(60, `PXEClient:Arch:${String(code ?? 0).padStart(5, '0')}:UNDI:003000`)];
    if (code !== undefined) opts.push(opt(93, [0, code]));
    t.same(boot(classify(req(opts))), want, `arch ${code}`);
  }
  for (const code of [10, 2, 99, 16]) {
    const b = boot(classify(req([opt(53, [1]), opt(60, 'PXEClient'), opt(93, [0, code])])));
    t.equal(b.kind, 'none', `PXE arch ${code} has no program`);
  }
  // Configured names are used, not hard-coded ones.
  const custom = { ...BOOT_FILES, bios: 'custom/undi.kpxe', efiX64: 'custom/x64.efi' };
  t.same(boot(classify(decode(pxeBiosDiscover())), custom), { kind: 'tftp', file: 'custom/undi.kpxe' });
  t.same(boot(classify(decode(ovmfDiscover())), custom), { kind: 'tftp', file: 'custom/x64.efi' });
});

t.test('selectBoot: UEFI HTTP boot gets a URL', async (t) => {
  const http = (code: number) => boot(classify(req([opt(53, [1]), opt(60, `HTTPClient:Arch:${code}:UNDI:003000`), opt(93, [0, code])])));
  t.same(http(16), { kind: 'http', url: 'http://10.99.0.1:8080/boot-assets/snponly.efi' });
  t.same(http(19), { kind: 'http', url: 'http://10.99.0.1:8080/boot-assets/ipxe-arm64.efi' });
  t.same(http(28), { kind: 'http', url: 'http://10.99.0.1:8080/boot-assets/ipxe-riscv64.efi' });
  t.same(http(40), { kind: 'http', url: 'http://10.99.0.1:8080/boot-assets/ipxe-loong64.efi' });
  t.equal(http(15).kind, 'none');
  t.equal(http(0).kind, 'none');
});

t.test('selectBoot: a client already running iPXE only ever gets its script URL (no chainload loop)', async (t) => {
  const variants: Buffer[][] = [
    [opt(77, 'iPXE'), opt(60, 'PXEClient:Arch:00000:UNDI:002001'), opt(93, [0, 0])],
    [opt(77, 'iPXE'), opt(60, 'PXEClient:Arch:00007:UNDI:003016'), opt(93, [0, 7])],
    [opt(77, 'iPXE'), opt(60, 'PXEClient:Arch:00011:UNDI:003016'), opt(93, [0, 11])],
    [opt(77, 'iPXE'), opt(60, 'HTTPClient:Arch:00016'), opt(93, [0, 16])],
    [opt(175, [19, 1, 1]), opt(60, 'PXEClient'), opt(93, [0, 9])],
    [opt(77, [4, ...Buffer.from('iPXE')])],
  ];
  for (const v of variants) {
    const c = classify(req([opt(53, [1]), ...v]));
    const b = boot(c);
    t.same(b, { kind: 'ipxe-script', url: 'http://10.99.0.1:8080/boot/52:54:00:12:34:56.ipxe' });
    const target = 'url' in b ? b.url : 'file' in b ? b.file : '';
    t.notMatch(target, /\.(kpxe|efi|pxe)$/, 'never an iPXE binary');
  }
  t.equal(ipxeScriptUrl('http://x', '52:54:00:00:00:01'), 'http://x/boot/52:54:00:00:00:01.ipxe');
  // Without a MAC there is no script to name.
  const ib = boot(classify(req([opt(53, [1]), opt(77, 'iPXE')], { htype: 32, hlen: 0 })));
  t.equal(ib.kind, 'none');
});

t.test('selectBoot: ordinary clients boot nothing', async (t) => {
  t.same(boot(classify(req([opt(53, [1])]))), { kind: 'none', reason: 'not a network-boot client' });
  t.equal(boot(classify(req([opt(53, [1]), opt(60, 'MSFT 5.0')]))).kind, 'none');
});

t.test('PXE BIOS OFFER (server mode): lease, boot file, PXE options, UUID echo, T1/T2', async (t) => {
  const [p, c] = client(decode(pxeBiosDiscover()));
  const r = buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.100'), subnet: NET, leaseTime: 3600 }, boot(c), SERVER);
  t.same(r.to, { address: BCAST, port: CLIENT_PORT }, 'broadcast (flag set, no ciaddr)');
  const q = wire(t, r);
  t.equal(q.op, 2);
  t.equal(q.xid, 0x9a3c5e01);
  t.equal(q.flags, 0x8000);
  t.equal(q.yiaddr, ip('10.99.0.100'));
  t.equal(q.ciaddr, 0, 'no ciaddr in an OFFER');
  t.equal(q.siaddr, SERVER, 'next-server');
  t.equal(q.file, 'undionly.kpxe');
  t.same(q.chaddr, p.chaddr);
  const o = q.options;
  t.equal(getUint8(o, Opt.MessageType), MessageType.Offer);
  t.equal(getIpv4(o, Opt.ServerId), SERVER);
  t.equal(getUint32(o, Opt.LeaseTime), 3600);
  t.equal(getUint32(o, Opt.RenewalTime), 1800, 'T1 = 0.5');
  t.equal(getUint32(o, Opt.RebindingTime), 3150, 'T2 = 0.875');
  t.equal(getIpv4(o, Opt.SubnetMask), ip('255.255.255.0'));
  t.same(getIpv4List(o, Opt.Router), [ip('10.99.0.254')]);
  t.same(getIpv4List(o, Opt.DnsServers), [ip('10.99.0.53'), ip('1.1.1.1')]);
  t.equal(getText(o, Opt.DomainName), 'lab.example');
  t.equal(getIpv4(o, Opt.BroadcastAddress), ip('10.99.0.255'));
  t.equal(getText(o, Opt.VendorClass), 'PXEClient');
  t.same([...o.get(Opt.VendorSpecific)!], [6, 1, 8, 255], 'PXE discovery control: boot the offered file');
  t.same(o.get(Opt.ClientUuid), UUID_OPT_VALUE, 'UUID echoed byte for byte');
  t.equal(getText(o, Opt.BootfileName), 'undionly.kpxe', 'option 67 because the ROM asked for it');
  t.notOk(o.has(Opt.Ipxe), 'no iPXE options for a PXE ROM');
});

t.test('T1/T2 round down for odd lease times', async (t) => {
  const [p, c] = client(req([opt(53, [1])]));
  const q = buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.100'), subnet: NET, leaseTime: 1001 }, boot(c), SERVER).packet;
  t.equal(getUint32(q.options, Opt.LeaseTime), 1001);
  t.equal(getUint32(q.options, Opt.RenewalTime), 500);
  t.equal(getUint32(q.options, Opt.RebindingTime), 875);
});

t.test('OVMF OFFER: snponly.efi, no option 67 unless asked, hostname', async (t) => {
  const [p, c] = client(decode(ovmfDiscover()));
  const r = buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.101'), subnet: NET, leaseTime: 600, hostname: 'node7' }, boot(c), SERVER);
  const q = wire(t, r);
  t.equal(q.file, 'snponly.efi');
  t.equal(getText(q.options, Opt.BootfileName), 'snponly.efi', 'OVMF asks for 67');
  t.equal(getText(q.options, Opt.Hostname), 'node7');
  const [p2, c2] = client(req([opt(53, [1]), opt(60, 'PXEClient'), opt(93, [0, 7]), opt(55, [1, 3])]));
  const q2 = buildLeaseReply(p2, c2, MessageType.Offer, { ip: ip('10.99.0.101'), subnet: NET, leaseTime: 600 }, boot(c2), SERVER).packet;
  t.equal(q2.file, 'snponly.efi');
  t.notOk(q2.options.has(Opt.BootfileName), 'not asked for 67');
  t.notOk(q2.options.has(Opt.ClientUuid), 'no UUID sent, none echoed');
  t.notOk(q2.options.has(Opt.Hostname));
});

t.test('a 0-length UUID option is not echoed as garbage', async (t) => {
  const [p, c] = client(req([opt(53, [1]), opt(60, 'PXEClient'), opt(93, [0, 0]), opt(97, [])]));
  const q = buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.101'), subnet: NET, leaseTime: 600 }, boot(c), SERVER).packet;
  t.notOk(q.options.has(Opt.ClientUuid));
});

t.test('arm64 UEFI PXE OFFER', async (t) => {
  const [p, c] = client(req([opt(53, [1]), opt(60, 'PXEClient:Arch:00011:UNDI:003000'), opt(93, [0, 11])]));
  const q = wire(t, buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.102'), subnet: NET, leaseTime: 600 }, boot(c), SERVER));
  t.equal(q.file, 'ipxe-arm64.efi');
  t.equal(q.siaddr, SERVER);
});

t.test('UEFI HTTP boot OFFER: URL and vendor class HTTPClient', async (t) => {
  const [p, c] = client(req([opt(53, [1]), opt(60, 'HTTPClient:Arch:00016:UNDI:003001'), opt(93, [0, 16]), opt(55, [1, 3, 60, 67])]));
  const q = wire(t, buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.103'), subnet: NET, leaseTime: 600 }, boot(c), SERVER));
  t.equal(q.file, 'http://10.99.0.1:8080/boot-assets/snponly.efi');
  t.equal(getText(q.options, Opt.BootfileName), 'http://10.99.0.1:8080/boot-assets/snponly.efi');
  t.equal(getText(q.options, Opt.VendorClass), 'HTTPClient', 'UEFI HTTP boot ignores offers without it');
  t.notOk(q.options.has(Opt.VendorSpecific), 'no PXE option 43');
  t.equal(q.siaddr, 0, 'no TFTP next-server');
});

t.test('iPXE in server mode: script URL and 175.176 (no-pxedhcp)', async (t) => {
  const [p, c] = client(decode(ipxeDiscover()));
  const q = wire(t, buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.104'), subnet: NET, leaseTime: 600 }, boot(c), SERVER));
  t.equal(q.file, 'http://10.99.0.1:8080/boot/52:54:00:aa:bb:02.ipxe');
  t.equal(getText(q.options, Opt.BootfileName), q.file);
  t.same([...q.options.get(Opt.Ipxe)!], [176, 1, 1]);
  t.same(q.options.get(Opt.ClientUuid), UUID_OPT_VALUE);
  t.same(r2dest(p), { address: BCAST, port: CLIENT_PORT });
});

function r2dest(p: DhcpPacket) {
  return replyDestination(p, MessageType.Offer);
}

t.test('plain (non-boot) client: no boot fields at all', async (t) => {
  const [p, c] = client(req([opt(53, [1]), opt(55, [1, 3, 6, 67])]));
  const q = wire(t, buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.105'), subnet: NET, leaseTime: 600 }, boot(c), SERVER));
  t.equal(q.file, '');
  t.equal(q.siaddr, 0);
  for (const code of [Opt.VendorClass, Opt.VendorSpecific, Opt.BootfileName, Opt.Ipxe, Opt.ClientUuid]) t.notOk(q.options.has(code), `no option ${code}`);
  t.equal(getUint32(q.options, Opt.LeaseTime), 600);
});

t.test('subnet without router, DNS or domain', async (t) => {
  const bare = subnet('192.168.7.0/26', '192.168.7.10', '192.168.7.20');
  const [p, c] = client(req([opt(53, [1])]));
  const q = buildLeaseReply(p, c, MessageType.Offer, { ip: ip('192.168.7.10'), subnet: bare, leaseTime: 60 }, boot(c), SERVER).packet;
  t.equal(getIpv4(q.options, Opt.SubnetMask), ip('255.255.255.192'));
  t.equal(getIpv4(q.options, Opt.BroadcastAddress), ip('192.168.7.63'));
  t.notOk(q.options.has(Opt.Router));
  t.notOk(q.options.has(Opt.DnsServers));
  t.notOk(q.options.has(Opt.DomainName));
});

t.test('ACK copies ciaddr (renewal) and is unicast to it', async (t) => {
  const [p, c] = client(req([opt(53, [3])], { ciaddr: '10.99.0.150' }));
  const r = buildLeaseReply(p, c, MessageType.Ack, { ip: ip('10.99.0.150'), subnet: NET, leaseTime: 600 }, boot(c), SERVER);
  t.equal(r.packet.ciaddr, ip('10.99.0.150'));
  t.equal(r.packet.yiaddr, ip('10.99.0.150'));
  t.equal(getUint8(r.packet.options, Opt.MessageType), MessageType.Ack);
  t.same(r.to, { address: ip('10.99.0.150'), port: CLIENT_PORT });
});

t.test('RFC 2131 §4.1 destinations', async (t) => {
  const relayed = req([opt(53, [1])], { giaddr: '10.20.0.1', ciaddr: '10.20.0.50', flags: 0x8000 });
  for (const mt of [MessageType.Offer, MessageType.Ack, MessageType.Nak]) {
    t.same(replyDestination(relayed, mt), { address: ip('10.20.0.1'), port: SERVER_PORT }, `relayed ${mt} → giaddr:67`);
  }
  const renewing = req([opt(53, [3])], { ciaddr: '10.99.0.50' });
  t.same(replyDestination(renewing, MessageType.Ack), { address: ip('10.99.0.50'), port: CLIENT_PORT }, 'ciaddr → unicast');
  t.same(replyDestination(renewing, MessageType.Nak), { address: BCAST, port: CLIENT_PORT }, 'NAK without relay → broadcast even with ciaddr');
  const bflag = req([opt(53, [1])], { flags: 0x8000 });
  t.same(replyDestination(bflag, MessageType.Offer), { address: BCAST, port: CLIENT_PORT }, 'broadcast flag → broadcast');
  const noflag = req([opt(53, [1])], { flags: 0 });
  t.same(replyDestination(noflag, MessageType.Offer), { address: BCAST, port: CLIENT_PORT }, 'no flag, no ciaddr: broadcast (no ARP injection)');
  // ciaddr with broadcast flag: still unicast to ciaddr (the client has the address).
  const both = req([opt(53, [3])], { flags: 0x8000, ciaddr: '10.99.0.51' });
  t.same(replyDestination(both, MessageType.Ack), { address: ip('10.99.0.51'), port: CLIENT_PORT });
});

t.test('NAK: broadcast, server id, message, no address; via relay sets the broadcast flag', async (t) => {
  const direct = req([opt(53, [3]), opt(50, [10, 1, 1, 1])], { ciaddr: '10.99.0.77' });
  const n = buildNak(direct, SERVER, 'wrong network');
  t.same(n.to, { address: BCAST, port: CLIENT_PORT });
  const q = wire(t, n);
  t.equal(getUint8(q.options, Opt.MessageType), MessageType.Nak);
  t.equal(getIpv4(q.options, Opt.ServerId), SERVER);
  t.equal(getText(q.options, Opt.Message), 'wrong network');
  t.equal(q.yiaddr, 0);
  t.equal(q.ciaddr, 0);
  t.equal(q.siaddr, 0);
  t.equal(q.flags & FLAG_BROADCAST, 0, 'direct NAK keeps the client flags');
  t.notOk(q.options.has(Opt.LeaseTime));
  t.equal(q.file, '');

  const relayed = req([opt(53, [3])], { giaddr: '10.20.0.1', flags: 0 });
  const rn = buildNak(relayed, SERVER, 'x'.repeat(300));
  t.same(rn.to, { address: ip('10.20.0.1'), port: SERVER_PORT });
  t.equal(rn.packet.flags & FLAG_BROADCAST, FLAG_BROADCAST, 'relay is told to broadcast');
  t.equal(rn.packet.giaddr, ip('10.20.0.1'));
  t.equal(getText(rn.packet.options, Opt.Message)!.length, 200, 'message capped');
});

t.test('ProxyDHCP OFFER (port 67): yiaddr 0, boot info only, broadcast', async (t) => {
  const [p, c] = client(decode(pxeBiosDiscover()));
  const r = buildProxyReply(p, c, MessageType.Offer, boot(c), SERVER, { address: ip('0.0.0.0'), port: 68 });
  t.same(r.to, { address: BCAST, port: CLIENT_PORT });
  const q = wire(t, r);
  t.equal(q.yiaddr, 0, 'never an address');
  t.equal(q.ciaddr, 0);
  t.equal(q.siaddr, SERVER);
  t.equal(q.file, 'undionly.kpxe');
  t.same([...q.options.keys()].sort((a, b) => a - b), [43, 53, 54, 60, 67, 97], 'only 53/54/60/43/97 (+67 as asked)');
  t.equal(getUint8(q.options, Opt.MessageType), MessageType.Offer);
  t.equal(getIpv4(q.options, Opt.ServerId), SERVER);
  t.equal(getText(q.options, Opt.VendorClass), 'PXEClient');
  t.same([...q.options.get(Opt.VendorSpecific)!], [6, 1, 8, 255]);
  t.same(q.options.get(Opt.ClientUuid), UUID_OPT_VALUE);

  // Without option 97 and 67 in the request: exactly 53/54/60/43.
  const [p2, c2] = client(req([opt(53, [1]), opt(60, 'PXEClient:Arch:00007:UNDI:003000'), opt(93, [0, 7])]));
  const q2 = buildProxyReply(p2, c2, MessageType.Offer, boot(c2), SERVER, { address: ip('0.0.0.0'), port: 68 }).packet;
  t.same([...q2.options.keys()].sort((a, b) => a - b), [43, 53, 54, 60]);
  t.equal(q2.file, 'snponly.efi');

  // Relayed proxy offer goes back through the relay.
  const [p3, c3] = client(decode(pxeBiosDiscover({ giaddr: '10.20.0.1' })));
  t.same(buildProxyReply(p3, c3, MessageType.Offer, boot(c3), SERVER, { address: ip('10.20.0.1'), port: 67 }).to, { address: ip('10.20.0.1'), port: SERVER_PORT });
});

t.test('ProxyDHCP ACK (port 4011): to the source, ciaddr kept, yiaddr 0', async (t) => {
  const [p, c] = client(decode(rawPacket({
    ciaddr: '10.99.0.42',
    chaddr: [0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01],
    options: Buffer.concat([opt(53, [3]), opt(60, 'PXEClient:Arch:00000:UNDI:002001'), opt(93, [0, 0]), opt(97, UUID_OPT_VALUE), END]),
  })));
  const source = { address: ip('10.99.0.42'), port: 4011 };
  const r = buildProxyReply(p, c, MessageType.Ack, boot(c), SERVER, source);
  t.same(r.to, source);
  const q = wire(t, r);
  t.equal(getUint8(q.options, Opt.MessageType), MessageType.Ack);
  t.equal(q.yiaddr, 0);
  t.equal(q.ciaddr, ip('10.99.0.42'));
  t.equal(q.file, 'undionly.kpxe');
  t.notOk(q.options.has(Opt.LeaseTime));
  t.notOk(q.options.has(Opt.SubnetMask));
  t.same(q.options.get(Opt.ClientUuid), UUID_OPT_VALUE);
  t.equal(PROXY_PORT, 4011);
});

t.test('ProxyDHCP to iPXE: script URL but never 175.176', async (t) => {
  const [p, c] = client(decode(ipxeDiscover()));
  const q = wire(t, buildProxyReply(p, c, MessageType.Offer, boot(c), SERVER, { address: ip('0.0.0.0'), port: 68 }));
  t.equal(q.file, 'http://10.99.0.1:8080/boot/52:54:00:aa:bb:02.ipxe');
  t.notOk(q.options.has(Opt.Ipxe), 'no-pxedhcp would make iPXE ignore the proxy itself');
  t.equal(q.yiaddr, 0);
  // iPXE ignores a ProxyDHCP reply without next-server, even for an HTTP URL.
  t.equal(q.siaddr, SERVER, 'next-server set');
});

t.test('INFORM ACK: configuration only, to ciaddr or the relay', async (t) => {
  const [p, c] = client(req([opt(53, [8])], { ciaddr: '10.99.0.20' }));
  const r = buildInformAck(p, c, NET, boot(c), SERVER);
  t.same(r.to, { address: ip('10.99.0.20'), port: CLIENT_PORT });
  const q = wire(t, r);
  t.equal(getUint8(q.options, Opt.MessageType), MessageType.Ack);
  t.equal(q.yiaddr, 0, 'no yiaddr for INFORM');
  t.equal(q.ciaddr, ip('10.99.0.20'));
  for (const code of [Opt.LeaseTime, Opt.RenewalTime, Opt.RebindingTime]) t.notOk(q.options.has(code), `no option ${code}`);
  t.equal(getIpv4(q.options, Opt.SubnetMask), ip('255.255.255.0'));
  t.equal(getIpv4(q.options, Opt.ServerId), SERVER);
  const [p2, c2] = client(req([opt(53, [8])], { ciaddr: '10.20.0.20', giaddr: '10.20.0.1' }));
  t.same(buildInformAck(p2, c2, NET, boot(c2), SERVER).to, { address: ip('10.20.0.1'), port: SERVER_PORT });
});

t.test('a URL longer than the file field still encodes (carried in option 67)', async (t) => {
  const longUrl = 'http://metalboot-provisioning.very-long-subdomain.datacenter-one.lab.example.internal:8080/some/deep/prefix';
  const [p, c] = client(decode(ipxeDiscover()));
  const b = boot(c, BOOT_FILES, longUrl);
  t.equal(b.kind, 'ipxe-script');
  const url = `${longUrl}/boot/52:54:00:aa:bb:02.ipxe`;
  t.ok(url.length > 127);
  const r = buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.104'), subnet: NET, leaseTime: 600 }, b, SERVER);
  let buf: Buffer | undefined;
  t.doesNotThrow(() => { buf = encodePacket(r.packet); });
  const q = decode(buf!);
  t.equal(getText(q.options, Opt.BootfileName), url, 'full URL in option 67');
  t.equal(q.file, '', 'file field left empty rather than truncated');

  // Even when the client did not list 67 in option 55.
  const [p2, c2] = client(req([opt(53, [1]), opt(77, 'iPXE')]));
  const r2 = buildLeaseReply(p2, c2, MessageType.Offer, { ip: ip('10.99.0.104'), subnet: NET, leaseTime: 600 }, boot(c2, BOOT_FILES, longUrl), SERVER);
  const q2 = decode(encodePacket(r2.packet));
  t.equal(getText(q2.options, Opt.BootfileName), `${longUrl}/boot/52:54:00:12:34:56.ipxe`);
  // Same in proxy mode.
  const r3 = buildProxyReply(p, c, MessageType.Offer, b, SERVER, { address: ip('0.0.0.0'), port: 68 });
  t.equal(getText(decode(encodePacket(r3.packet)).options, Opt.BootfileName), url);
});

t.test('relay agent information (option 82) is echoed unchanged in relayed replies, last (RFC 3046 §2.2)', async (t) => {
  const info = Buffer.from([1, 4, 0xde, 0xad, 0xbe, 0xef, 2, 2, 0x12, 0x34]);
  const [p, c] = client(req([opt(53, [1]), opt(82, [...info])], { giaddr: '10.20.0.1' }));
  const offer = wire(t, buildLeaseReply(p, c, MessageType.Offer, { ip: ip('10.99.0.100'), subnet: NET, leaseTime: 600 }, boot(c), SERVER));
  t.same(offer.options.get(Opt.RelayAgentInfo), info, 'offer echoes 82');
  t.equal([...offer.options.keys()].at(-1), Opt.RelayAgentInfo, '82 is the last option');
  t.same(wire(t, buildNak(p, SERVER, 'no')).options.get(Opt.RelayAgentInfo), info, 'NAK echoes 82');
  // Not relayed (no giaddr): nothing to echo to.
  const [p2, c2] = client(req([opt(53, [1]), opt(82, [...info])]));
  t.notOk(wire(t, buildLeaseReply(p2, c2, MessageType.Offer, { ip: ip('10.99.0.100'), subnet: NET, leaseTime: 600 }, boot(c2), SERVER)).options.has(Opt.RelayAgentInfo));
});

t.test('option 7 (log server) only when a syslog receiver is configured: lease replies, INFORM ACK, ProxyDHCP', async (t) => {
  const LOG = ip('10.99.0.2');
  const [p, c] = client(decode(ipxeDiscover()));
  const grant = { ip: ip('10.99.0.104'), subnet: NET, leaseTime: 600 };
  t.equal(wire(t, buildLeaseReply(p, c, MessageType.Offer, grant, boot(c), SERVER)).options.has(Opt.LogServers), false, 'absent by default');
  t.same(getIpv4List(wire(t, buildLeaseReply(p, c, MessageType.Offer, grant, boot(c), SERVER, LOG)).options, Opt.LogServers), [LOG]);
  t.same(getIpv4List(wire(t, buildLeaseReply(p, c, MessageType.Ack, grant, boot(c), SERVER, LOG)).options, Opt.LogServers), [LOG]);
  const [pi, ci] = client(req([opt(53, [8])], { ciaddr: '10.99.0.120' }));
  t.same(getIpv4List(wire(t, buildInformAck(pi, ci, NET, boot(ci), SERVER, LOG)).options, Opt.LogServers), [LOG]);
  t.equal(wire(t, buildInformAck(pi, ci, NET, boot(ci), SERVER)).options.has(Opt.LogServers), false);
  const [pp, cp] = client(decode(pxeBiosDiscover()));
  const proxy = buildProxyReply(pp, cp, MessageType.Offer, boot(cp), SERVER, { address: ip('0.0.0.0'), port: 68 }, LOG);
  t.same(getIpv4List(wire(t, proxy).options, Opt.LogServers), [LOG]);
});
