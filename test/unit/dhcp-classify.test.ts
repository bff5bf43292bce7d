import t from 'tap';
import { archFromCode, classify, maxMessageSize, parseUserClasses, parseUuidOption, type ClientArch } from '../../src/dhcp/classify.js';
import { MessageType } from '../../src/dhcp/options.js';
import { decodePacket, type DhcpPacket } from '../../src/dhcp/packet.js';
import {
  END, ip, ipxeDiscover, opt, ovmfDiscover, pxeBiosDiscover, rawPacket, UUID_BYTES, UUID_OPT_VALUE, UUID_TEXT, type RawFields,
} from '../helpers/dhcp.js';

function decode(buf: Buffer): DhcpPacket {
  const r = decodePacket(buf);
  if (!r.ok) throw new Error(r.reason);
  return r.packet;
}

function withOptions(options: Buffer[], over: Partial<RawFields> = {}): DhcpPacket {
  return decode(rawPacket({ options: Buffer.concat([opt(53, [1]), ...options, END]), ...over }));
}

t.test('every RFC 4578 / IANA arch code', async (t) => {
  const table: [number | undefined, ClientArch][] = [
    [0, 'bios'],
    [6, 'efi-ia32'],
    [7, 'efi-x64'],
    [9, 'efi-x64'],
    [10, 'efi-arm32'],
    [11, 'efi-arm64'],
    [15, 'http-ia32'],
    [16, 'http-x64'],
    [18, 'http-arm32'],
    [19, 'http-arm64'],
    [27, 'efi-riscv64'],
    [28, 'http-riscv64'],
    [39, 'efi-loong64'],
    [40, 'http-loong64'],
    [25, 'unknown'],
    [37, 'unknown'],
    [1, 'unknown'],
    [2, 'unknown'],
    [8, 'unknown'],
    [12, 'unknown'],
    [17, 'unknown'],
    [20, 'unknown'],
    [0xffff, 'unknown'],
    [undefined, 'unknown'],
  ];
  for (const [code, arch] of table) {
    t.equal(archFromCode(code), arch, `archFromCode(${code})`);
    if (code === undefined) continue;
    const c = classify(withOptions([opt(93, [code >> 8, code & 0xff]), opt(60, 'PXEClient')]));
    t.equal(c.arch, arch, `option 93 = ${code}`);
    t.equal(c.archCode, code);
  }
});

t.test('option 93: a list uses the first entry; malformed lengths are no arch', async (t) => {
  const list = classify(withOptions([opt(93, [0, 7, 0, 0])]));
  t.equal(list.archCode, 7);
  t.equal(list.arch, 'efi-x64');
  for (const bad of [[7], [0, 7, 0], []]) {
    const c = classify(withOptions([opt(93, bad)]));
    t.equal(c.archCode, undefined, `93 = ${JSON.stringify(bad)}`);
    t.equal(c.arch, 'unknown');
  }
  t.equal(classify(withOptions([])).archCode, undefined);
});

t.test('PXE BIOS DISCOVER classification', async (t) => {
  const c = classify(decode(pxeBiosDiscover()));
  t.equal(c.mac, '52:54:00:aa:bb:01');
  t.equal(c.messageType, MessageType.Discover);
  t.equal(c.xid, 0x9a3c5e01);
  t.equal(c.arch, 'bios');
  t.equal(c.archCode, 0);
  t.equal(c.isPxe, true);
  t.equal(c.isHttpClient, false);
  t.equal(c.isIpxe, false);
  t.equal(c.vendorClass, 'PXEClient:Arch:00000:UNDI:002001');
  t.equal(c.uuid, UUID_TEXT);
  t.equal(c.sentUuidOption, true);
  t.equal(c.broadcastFlag, true);
  t.equal(c.relayed, false);
  t.equal(c.relayInfo, undefined);
  t.equal(c.giaddr, 0);
  t.ok(c.paramRequestList.includes(67));
  t.same(c.userClasses, []);
  t.equal(c.ipxeFeatures.size, 0);
});

t.test('iPXE DISCOVER classification', async (t) => {
  const c = classify(decode(ipxeDiscover()));
  t.equal(c.isIpxe, true);
  t.equal(c.isPxe, true, 'iPXE also sends PXEClient');
  t.same(c.userClasses, ['iPXE']);
  t.same([...c.ipxeFeatures].sort((a, b) => a - b), [17, 19, 23, 39, 177, 235]);
  t.equal(c.clientId, '01525400aabb02');
  t.equal(c.broadcastFlag, false);
});

t.test('OVMF DISCOVER classification', async (t) => {
  const c = classify(decode(ovmfDiscover()));
  t.equal(c.arch, 'efi-x64');
  t.equal(c.archCode, 7);
  t.equal(c.isPxe, true);
  t.equal(c.isIpxe, false);
  t.equal(c.uuid, UUID_TEXT);
});

t.test('UEFI HTTP boot client', async (t) => {
  const c = classify(withOptions([opt(93, [0, 16]), opt(60, 'HTTPClient:Arch:00016:UNDI:003000')]));
  t.equal(c.isHttpClient, true);
  t.equal(c.isPxe, false);
  t.equal(c.arch, 'http-x64');
});

t.test('iPXE detection: user class forms and option 175 alone', async (t) => {
  // RFC 3004 form: one (len, data) item.
  const rfc = classify(withOptions([opt(77, [4, ...Buffer.from('iPXE')])]));
  t.same(rfc.userClasses, ['iPXE']);
  t.equal(rfc.isIpxe, true);
  // RFC 3004 form with several items.
  const multi = classify(withOptions([opt(77, [3, 0x66, 0x6f, 0x6f, 4, ...Buffer.from('iPXE')])]));
  t.same(multi.userClasses, ['foo', 'iPXE']);
  t.equal(multi.isIpxe, true);
  // Bare string, as iPXE sends it.
  const bare = classify(withOptions([opt(77, 'iPXE')]));
  t.same(bare.userClasses, ['iPXE']);
  t.equal(bare.isIpxe, true);
  // Only option 175.
  const only175 = classify(withOptions([opt(175, [19, 1, 1])]));
  t.equal(only175.isIpxe, true);
  t.same([...only175.ipxeFeatures], [19]);
  // 175 with a broken sub-option list still means iPXE, with no features.
  const broken175 = classify(withOptions([opt(175, [19, 9, 1])]));
  t.equal(broken175.isIpxe, true);
  t.equal(broken175.ipxeFeatures.size, 0);
  // Other user classes are not iPXE, and "iPXE" must match exactly.
  t.equal(classify(withOptions([opt(77, 'MSFT 5.0')])).isIpxe, false);
  t.equal(classify(withOptions([opt(77, 'gPXE')])).isIpxe, false);
  t.equal(classify(withOptions([opt(77, 'iPXE-nope')])).isIpxe, false);
});

t.test('parseUserClasses edge cases', async (t) => {
  t.same(parseUserClasses(undefined), []);
  t.same(parseUserClasses(Buffer.alloc(0)), []);
  t.same(parseUserClasses(Buffer.from([0, 1])), ['\x00\x01'], 'zero-length item: whole value is one class');
  t.same(parseUserClasses(Buffer.from([2, 0x61, 0x62, 5, 0x63])), ['\x02ab\x05c'], 'item running past the end');
});

t.test('UUID option 97', async (t) => {
  t.equal(parseUuidOption(UUID_OPT_VALUE), UUID_TEXT);
  t.equal(parseUuidOption(Buffer.concat([Buffer.from([0]), Buffer.from('ABCDEF0123456789abcdef0123456789', 'hex')])), 'abcdef01-2345-6789-abcd-ef0123456789', 'lower-case');
  t.equal(parseUuidOption(undefined), undefined);
  t.equal(parseUuidOption(Buffer.alloc(0)), undefined);
  t.equal(parseUuidOption(Buffer.concat([Buffer.from([1]), UUID_BYTES])), undefined, 'type must be 0');
  t.equal(parseUuidOption(UUID_BYTES), undefined, '16 bytes without type');
  t.equal(parseUuidOption(Buffer.concat([UUID_OPT_VALUE, Buffer.from([0])])), undefined, '18 bytes');

  const zero = classify(withOptions([opt(97, [])]));
  t.equal(zero.uuid, undefined, '0-length option: no uuid');
  t.equal(zero.sentUuidOption, true, '…but it was sent');
  const good = classify(withOptions([opt(97, UUID_OPT_VALUE)]));
  t.equal(good.uuid, UUID_TEXT);
  const bad = classify(withOptions([opt(97, [0, 1, 2, 3])]));
  t.equal(bad.uuid, undefined);
  t.equal(bad.sentUuidOption, true);
  const none = classify(withOptions([]));
  t.equal(none.sentUuidOption, false);
});

t.test('relay agent information (option 82) and giaddr', async (t) => {
  const c = classify(withOptions([opt(82, [1, 4, 0, 1, 0, 0x2a, 2, 6, 0xde, 0xad, 0xbe, 0xef, 0, 1, 9, 1, 7])], { giaddr: '10.20.0.1', hops: 1 }));
  t.equal(c.relayed, true);
  t.equal(c.giaddr, ip('10.20.0.1'));
  t.same(c.relayInfo, { circuitId: '0001002a', remoteId: 'deadbeef0001' });
  const onlyCircuit = classify(withOptions([opt(82, [1, 2, 0xab, 0xcd])], { giaddr: '10.20.0.1' }));
  t.equal(onlyCircuit.relayInfo?.circuitId, 'abcd');
  t.equal(onlyCircuit.relayInfo?.remoteId, undefined);
  const broken = classify(withOptions([opt(82, [1, 9, 0])], { giaddr: '10.20.0.1' }));
  t.equal(broken.relayInfo, undefined, 'malformed option 82 is ignored');
  t.equal(broken.relayed, true);
  t.equal(classify(withOptions([])).relayed, false);
});

t.test('MAC only for Ethernet (htype 1, hlen 6)', async (t) => {
  t.equal(classify(withOptions([])).mac, '52:54:00:12:34:56');
  t.equal(classify(withOptions([], { htype: 6 })).mac, undefined, 'IEEE 802 (token ring)');
  t.equal(classify(withOptions([], { htype: 32, hlen: 0 })).mac, undefined, 'InfiniBand');
  t.equal(classify(withOptions([], { htype: 1, hlen: 8 })).mac, undefined, 'htype 1 but hlen 8');
  t.equal(classify(withOptions([], { htype: 1, hlen: 0 })).mac, undefined);
});

t.test('message type, addresses, hostname, client id, broadcast flag', async (t) => {
  const c = classify(decode(rawPacket({
    ciaddr: '10.0.0.9',
    flags: 0x8001,
    options: Buffer.concat([
      opt(53, [3]), opt(50, [10, 0, 0, 7]), opt(54, [10, 0, 0, 1]), opt(12, 'node-1\0'), opt(61, []), opt(55, [1, 3, 67]), END,
    ]),
  })));
  t.equal(c.messageType, MessageType.Request);
  t.equal(c.requestedIp, ip('10.0.0.7'));
  t.equal(c.serverId, ip('10.0.0.1'));
  t.equal(c.ciaddr, ip('10.0.0.9'));
  t.equal(c.hostname, 'node-1');
  t.equal(c.clientId, undefined, 'empty client id is none');
  t.same(c.paramRequestList, [1, 3, 67]);
  t.equal(c.broadcastFlag, true);
  // Bad lengths read as absent.
  const bad = classify(withOptions([opt(50, [10, 0, 0]), opt(54, [1, 2, 3, 4, 5])]));
  t.equal(bad.requestedIp, undefined);
  t.equal(bad.serverId, undefined);
  // No or broken message type.
  t.equal(classify(decode(rawPacket({ options: END }))).messageType, undefined);
  t.equal(classify(decode(rawPacket({ options: Buffer.concat([opt(53, [1, 1]), END]) }))).messageType, undefined);
  // Hostname capped at 63 characters.
  t.equal(classify(withOptions([opt(12, 'h'.repeat(100))])).hostname!.length, 63);
});

t.test('vendor class prefix matching', async (t) => {
  t.equal(classify(withOptions([opt(60, 'PXEClient')])).isPxe, true);
  t.equal(classify(withOptions([opt(60, 'PXEClient:Arch:00000:UNDI:002001\0')])).vendorClass, 'PXEClient:Arch:00000:UNDI:002001');
  t.equal(classify(withOptions([opt(60, 'pxeclient')])).isPxe, false, 'case-sensitive like the PXE spec');
  t.equal(classify(withOptions([opt(60, 'MSFT 5.0')])).isPxe, false);
  t.equal(classify(withOptions([opt(60, 'HTTPClient')])).isHttpClient, true);
  t.equal(classify(withOptions([])).vendorClass, undefined);
});

t.test('maxMessageSize: option 57, never below 576', async (t) => {
  t.equal(maxMessageSize(withOptions([opt(57, [0x05, 0xdc])])), 1500);
  t.equal(maxMessageSize(withOptions([opt(57, [0x01, 0x00])])), 576, '256 is below the minimum');
  t.equal(maxMessageSize(withOptions([opt(57, [0x05])])), 576, 'malformed');
  t.equal(maxMessageSize(withOptions([])), 576);
});
