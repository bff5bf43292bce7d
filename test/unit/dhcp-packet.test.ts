import t from 'tap';
import {
  BOOTREPLY, BOOTREQUEST, decodePacket, encodePacket, FLAG_BROADCAST, HEADER_LEN, MAGIC_COOKIE, replyTo, type DhcpPacket,
} from '../../src/dhcp/packet.js';
import {
  encodeSubOptions, getBytes, getIpv4, getIpv4List, getParamRequestList, getText, getUint16, getUint32, getUint8,
  MessageType, messageTypeName, Opt, parseSubOptions, setIpv4, setIpv4List, setText, setUint32, setUint8,
} from '../../src/dhcp/options.js';
import { END, ip, ipxeDiscover, opt, ovmfDiscover, pxeBiosDiscover, rawPacket, UUID_OPT_VALUE } from '../helpers/dhcp.js';

function decodeOk(buf: Buffer): DhcpPacket {
  const r = decodePacket(buf);
  if (!r.ok) throw new Error(`decode failed: ${r.reason}`);
  return r.packet;
}

function basePacket(over: Partial<DhcpPacket> = {}): DhcpPacket {
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 1,
    secs: 0,
    flags: 0,
    ciaddr: ip('0.0.0.0'),
    yiaddr: ip('0.0.0.0'),
    siaddr: ip('0.0.0.0'),
    giaddr: ip('0.0.0.0'),
    chaddr: Buffer.alloc(16),
    sname: '',
    file: '',
    options: new Map([[Opt.MessageType, Buffer.from([1])]]),
    ...over,
  };
}

/** Walks the encoded options area and returns [code, length] of each TLV, stopping at End. */
function tlvs(buf: Buffer): [number, number][] {
  const out: [number, number][] = [];
  let i = 240;
  while (i < buf.length) {
    const c = buf[i]!;
    if (c === 0) { i++; continue; }
    if (c === 255) { out.push([255, 0]); break; }
    out.push([c, buf[i + 1]!]);
    i += 2 + buf[i + 1]!;
  }
  return out;
}

t.test('encode → decode round trip keeps every header field', async (t) => {
  const chaddr = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const p: DhcpPacket = {
    op: BOOTREPLY,
    htype: 6,
    hlen: 16,
    hops: 3,
    xid: 0xdeadbeef,
    secs: 0xfffe,
    flags: FLAG_BROADCAST,
    ciaddr: ip('10.0.0.1'),
    yiaddr: ip('10.0.0.2'),
    siaddr: ip('10.0.0.3'),
    giaddr: ip('255.254.253.252'),
    chaddr,
    sname: 'server.example',
    file: 'pxelinux/undionly.kpxe',
    options: new Map([
      [Opt.MessageType, Buffer.from([5])],
      [Opt.ServerId, Buffer.from([10, 0, 0, 3])],
      [Opt.LeaseTime, Buffer.from([0, 0, 0x0e, 0x10])],
      [Opt.VendorClass, Buffer.from('PXEClient')],
      [Opt.Hostname, Buffer.alloc(0)],
    ]),
  };
  const buf = encodePacket(p);
  const q = decodeOk(buf);
  t.equal(q.op, BOOTREPLY);
  t.equal(q.htype, 6);
  t.equal(q.hlen, 16);
  t.equal(q.hops, 3);
  t.equal(q.xid, 0xdeadbeef);
  t.equal(q.secs, 0xfffe);
  t.equal(q.flags, 0x8000);
  t.equal(q.ciaddr, ip('10.0.0.1'));
  t.equal(q.yiaddr, ip('10.0.0.2'));
  t.equal(q.siaddr, ip('10.0.0.3'));
  t.equal(q.giaddr, ip('255.254.253.252'));
  t.same([...q.chaddr], [...chaddr]);
  t.equal(q.sname, 'server.example');
  t.equal(q.file, 'pxelinux/undionly.kpxe');
  t.same([...q.options.keys()].sort((a, b) => a - b), [12, 51, 53, 54, 60]);
  t.same(q.options.get(Opt.Hostname), Buffer.alloc(0), 'zero-length option survives');
  for (const [code, v] of p.options) t.same(q.options.get(code), v, `option ${code}`);

  // Byte positions as RFC 2131 §2 lays them out.
  t.equal(buf[0], 2);
  t.equal(buf.readUInt32BE(4), 0xdeadbeef);
  t.equal(buf.readUInt16BE(10), 0x8000);
  t.equal(buf.readUInt32BE(24), ip('255.254.253.252'));
  t.equal(buf.toString('latin1', 44, 44 + 14), 'server.example');
  t.equal(buf[44 + 14], 0, 'sname NUL-terminated');
  t.equal(buf.toString('latin1', 108, 108 + 22), 'pxelinux/undionly.kpxe');
  t.equal(buf.readUInt32BE(HEADER_LEN), MAGIC_COOKIE);
});

t.test('encode: message type first, End last, minimum 300 bytes, zero padding', async (t) => {
  const p = basePacket({
    options: new Map<number, Buffer>([
      [Opt.ServerId, Buffer.from([1, 2, 3, 4])],
      [Opt.VendorClass, Buffer.from('x')],
      [Opt.MessageType, Buffer.from([2])],
      [Opt.Pad, Buffer.from([1])], // never emitted
      [Opt.End, Buffer.from([1])], // never emitted
    ]),
  });
  const buf = encodePacket(p);
  t.equal(buf.length, 300, 'short reply padded to 300 bytes (RFC 1542)');
  t.same(tlvs(buf), [[53, 1], [54, 4], [60, 1], [255, 0]]);
  t.equal(buf[240], 53, 'message type is the first option');
  const endAt = 240 + 3 + 6 + 3;
  t.equal(buf[endAt], 255);
  t.ok(buf.subarray(endAt + 1).every((b) => b === 0), 'zero padding after End');

  // Large: no padding needed, and still exact.
  const big = basePacket({ options: new Map([[Opt.MessageType, Buffer.from([2])], [Opt.VendorSpecific, Buffer.alloc(200, 7)]]) });
  const bb = encodePacket(big);
  t.equal(bb.length, 240 + 3 + 202 + 1);
});

t.test('encode rejects sname/file that do not fit their fields', async (t) => {
  t.throws(() => encodePacket(basePacket({ sname: 'a'.repeat(64) })), RangeError);
  t.throws(() => encodePacket(basePacket({ file: 'a'.repeat(128) })), RangeError);
  t.doesNotThrow(() => encodePacket(basePacket({ sname: 'a'.repeat(63), file: 'b'.repeat(127) })));
  const q = decodeOk(encodePacket(basePacket({ sname: 'a'.repeat(63), file: 'b'.repeat(127) })));
  t.equal(q.sname, 'a'.repeat(63));
  t.equal(q.file, 'b'.repeat(127));
});

t.test('RFC 3396: a 600-byte option is split on encode and joined on decode', async (t) => {
  const long = Buffer.alloc(600);
  for (let i = 0; i < long.length; i++) long[i] = (i * 7 + 3) & 0xff;
  const p = basePacket({ options: new Map([[Opt.MessageType, Buffer.from([2])], [Opt.VendorSpecific, long], [Opt.Hostname, Buffer.from('h')]]) });
  const buf = encodePacket(p);
  t.same(tlvs(buf), [[53, 1], [43, 255], [43, 255], [43, 90], [12, 1], [255, 0]], 'three consecutive instances');
  const q = decodeOk(buf);
  t.same(q.options.get(Opt.VendorSpecific), long, 'concatenated in order');
  t.same(q.options.get(Opt.Hostname), Buffer.from('h'));

  // Exactly 255 and 510 bytes: no empty trailing instance.
  const b255 = encodePacket(basePacket({ options: new Map([[Opt.MessageType, Buffer.from([2])], [43, Buffer.alloc(255, 1)]]) }));
  t.same(tlvs(b255), [[53, 1], [43, 255], [255, 0]]);
  const b510 = encodePacket(basePacket({ options: new Map([[Opt.MessageType, Buffer.from([2])], [43, Buffer.alloc(510, 1)]]) }));
  t.same(tlvs(b510), [[53, 1], [43, 255], [43, 255], [255, 0]]);
});

t.test('RFC 3396 decode: split instances, even non-adjacent ones, are concatenated', async (t) => {
  const buf = rawPacket({
    options: Buffer.concat([opt(53, [1]), opt(77, 'ab'), opt(12, 'host'), opt(77, 'cd'), END]),
  });
  const q = decodeOk(buf);
  t.equal(q.options.get(77)!.toString(), 'abcd');
  t.equal(q.options.get(12)!.toString(), 'host');
});

t.test('captured-style PXE BIOS DISCOVER', async (t) => {
  const buf = pxeBiosDiscover();
  const q = decodeOk(buf);
  t.equal(q.op, BOOTREQUEST);
  t.equal(q.xid, 0x9a3c5e01);
  t.equal(q.secs, 4);
  t.equal(q.flags, 0x8000);
  t.equal(q.chaddr.subarray(0, 6).toString('hex'), '525400aabb01');
  t.equal(getUint8(q.options, Opt.MessageType), MessageType.Discover);
  t.equal(getUint16(q.options, Opt.MaxMessageSize), 1260);
  t.equal(getText(q.options, Opt.VendorClass), 'PXEClient:Arch:00000:UNDI:002001');
  t.equal(getUint16(q.options, Opt.ClientArch), 0);
  t.same([...q.options.get(Opt.ClientNdi)!], [1, 2, 1]);
  t.same(q.options.get(Opt.ClientUuid), UUID_OPT_VALUE);
  t.same(getParamRequestList(q.options).slice(0, 5), [1, 2, 3, 5, 6]);
  t.equal(getParamRequestList(q.options).length, 25);
  t.equal(q.sname, '');
  t.equal(q.file, '');
});

t.test('captured-style iPXE DISCOVER with user class and option 175', async (t) => {
  const q = decodeOk(ipxeDiscover());
  t.equal(q.options.get(Opt.UserClass)!.toString(), 'iPXE');
  const subs = parseSubOptions(q.options.get(Opt.Ipxe)!);
  t.ok(subs);
  t.same([...subs!.keys()], [177, 235, 23, 19, 17, 39]);
  t.same([...subs!.get(177)!], [1, 0x80, 0x86, 0x10, 0x0e]);
  t.same([...subs!.get(19)!], [1]);
  t.equal(getBytes(q.options, Opt.ClientId)!.toString('hex'), '01525400aabb02');
});

t.test('captured-style OVMF DISCOVER', async (t) => {
  const q = decodeOk(ovmfDiscover());
  t.equal(getUint16(q.options, Opt.ClientArch), 7);
  t.equal(getText(q.options, Opt.VendorClass), 'PXEClient:Arch:00007:UNDI:003000');
  t.equal(getUint16(q.options, Opt.MaxMessageSize), 1500);
  t.same([...q.options.get(Opt.ClientNdi)!], [1, 3, 0]);
});

t.test('Pad bytes anywhere in the options area are skipped', async (t) => {
  const buf = rawPacket({
    options: Buffer.concat([Buffer.from([0, 0]), opt(53, [3]), Buffer.from([0]), opt(50, [10, 0, 0, 9]), Buffer.from([0, 0, 0]), END, Buffer.from([0, 0])]),
  });
  const q = decodeOk(buf);
  t.same([...q.options.keys()], [53, 50]);
  t.equal(getIpv4(q.options, Opt.RequestedIp), ip('10.0.0.9'));
});

t.test('End stops parsing: garbage after it is ignored', async (t) => {
  const buf = rawPacket({ options: Buffer.concat([opt(53, [1]), END, Buffer.from([12, 200, 1, 2])]) });
  const q = decodeOk(buf);
  t.same([...q.options.keys()], [53]);
});

t.test('missing End: accepted when the options area is exactly used up', async (t) => {
  const buf = rawPacket({ options: Buffer.concat([opt(53, [1]), opt(12, 'node1')]) });
  const q = decodeOk(buf);
  t.equal(getText(q.options, Opt.Hostname), 'node1');
  // An empty options area (no End at all) decodes to no options.
  const empty = decodeOk(rawPacket({ options: Buffer.alloc(0) }));
  t.equal(empty.options.size, 0);
});

t.test('lying lengths are rejected, never read past the buffer', async (t) => {
  const past = decodePacket(rawPacket({ options: Buffer.concat([opt(53, [1]), Buffer.from([12, 10, 0x41, 0x42])]) }));
  t.equal(past.ok, false);
  if (!past.ok) t.match(past.reason, /option 12 length 10 runs past the end/);
  const noLen = decodePacket(rawPacket({ options: Buffer.concat([opt(53, [1]), Buffer.from([12])]) }));
  t.equal(noLen.ok, false);
  if (!noLen.ok) t.match(noLen.reason, /no length byte/);
  // A length that lands exactly on the end is fine.
  t.equal(decodePacket(rawPacket({ options: Buffer.from([12, 2, 0x41, 0x42]) })).ok, true);
});

t.test('header sanity: hlen > 16, bad op, wrong cookie', async (t) => {
  const hlen17 = decodePacket(rawPacket({ hlen: 17, options: END }));
  t.same(hlen17, { ok: false, reason: 'hlen 17 > 16' });
  t.equal(decodePacket(rawPacket({ hlen: 16, options: END })).ok, true);
  t.equal(decodePacket(rawPacket({ hlen: 255, options: END })).ok, false);
  t.same(decodePacket(rawPacket({ op: 3, options: END })), { ok: false, reason: 'bad op 3' });
  t.same(decodePacket(rawPacket({ op: 0, options: END })), { ok: false, reason: 'bad op 0' });
  t.same(decodePacket(rawPacket({ cookie: 0x63825364, options: END })), { ok: false, reason: 'no DHCP magic cookie' });
  // A BOOTP packet (no cookie, zero vendor area) is not DHCP.
  t.equal(decodePacket(rawPacket({ cookie: 0, options: Buffer.alloc(60) })).ok, false);
});

t.test('truncation at every length 0..300 never throws', async (t) => {
  // Options laid out so we know where every option boundary is.
  const options = Buffer.concat([opt(53, [1]), opt(60, 'PXEClient:Arch:00000:UNDI:002001'), opt(93, [0, 0]), opt(97, UUID_OPT_VALUE), END]);
  const full = rawPacket({ options, flags: 0x8000 });
  // Offsets (relative to the packet) at which a complete option ends.
  const boundaries = new Set<number>([240]);
  let off = 240;
  for (const len of [1, 32, 2, 17]) { off += 2 + len; boundaries.add(off); }
  t.equal(full.length, 301, 'End is the 301st byte');
  let okCount = 0;
  for (let n = 0; n <= full.length; n++) {
    const slice = full.subarray(0, n);
    let r: ReturnType<typeof decodePacket> | undefined;
    t.doesNotThrow(() => { r = decodePacket(slice); }, `length ${n}`);
    if (n < 240) {
      t.equal(r!.ok, false, `length ${n} is too short`);
      continue;
    }
    if (n >= full.length - 1) {
      // End reached (or only End is cut): everything is there.
      t.equal(r!.ok, true, `length ${n}`);
      continue;
    }
    if (boundaries.has(n)) {
      t.equal(r!.ok, true, `length ${n} ends on an option boundary`);
      if (r!.ok) {
        for (const [code, v] of r!.packet.options) t.same(v, decodeOk(full).options.get(code), `option ${code} intact at ${n}`);
      }
      okCount++;
    } else {
      t.equal(r!.ok, false, `length ${n} cuts an option`);
    }
  }
  t.equal(okCount, [...boundaries].filter((b) => b < full.length - 1).length);
  t.equal(okCount, 4, 'after the header, 53, 60 and 93');
});

t.test('random garbage never throws', async (t) => {
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const base = pxeBiosDiscover();
  const threw: string[] = [];
  let decoded = 0;
  for (let k = 0; k < 2000; k++) {
    const b = Buffer.from(base);
    const flips = 1 + (rnd() % 8);
    for (let j = 0; j < flips; j++) b[236 + (rnd() % (b.length - 236))] = rnd() & 0xff;
    // Also corrupt the overload target areas sometimes.
    if (k % 3 === 0) b[44 + (rnd() % 192)] = rnd() & 0xff;
    const cut = b.subarray(0, 236 + (rnd() % (b.length - 235)));
    for (const input of [cut, b]) {
      try {
        const r = decodePacket(input);
        if (r.ok) decoded++;
      } catch (e) {
        threw.push(`${k}: ${String(e)}`);
      }
    }
  }
  t.same(threw, [], 'no input threw');
  t.ok(decoded > 0 && decoded < 4000, `a mix of accepted and rejected inputs (${decoded} accepted)`);
});

t.test('option overload (52): options in file, sname, both', async (t) => {
  const fileOpts = Buffer.concat([opt(12, 'from-file'), END]);
  const snameOpts = Buffer.concat([opt(15, 'from.sname'), END]);
  const mk = (v: number) => rawPacket({
    file: fileOpts,
    sname: snameOpts,
    options: Buffer.concat([opt(53, [1]), opt(52, [v]), END]),
  });

  const f = decodeOk(mk(1));
  t.equal(getText(f.options, Opt.Hostname), 'from-file');
  t.notOk(f.options.has(Opt.DomainName), 'sname not read as options with value 1');
  t.equal(f.file, '', 'file not reported as a boot file name');
  t.ok(f.sname.startsWith('\x0f\x0afrom.sname'), 'sname kept as text with value 1');
  t.notOk(f.options.has(Opt.Overload), 'option 52 consumed');

  const s = decodeOk(mk(2));
  t.equal(getText(s.options, Opt.DomainName), 'from.sname');
  t.notOk(s.options.has(Opt.Hostname));
  t.equal(s.sname, '');
  t.not(s.file, '');

  const b = decodeOk(mk(3));
  t.equal(getText(b.options, Opt.Hostname), 'from-file');
  t.equal(getText(b.options, Opt.DomainName), 'from.sname');
  t.equal(b.file, '');
  t.equal(b.sname, '');
});

t.test('overload: long option continues main → file → sname (RFC 3396 §7 order)', async (t) => {
  const buf = rawPacket({
    file: Buffer.concat([opt(43, 'BB'), END]),
    sname: Buffer.concat([opt(43, 'CC'), END]),
    options: Buffer.concat([opt(53, [1]), opt(43, 'AA'), opt(52, [3]), END]),
  });
  t.equal(decodeOk(buf).options.get(43)!.toString(), 'AABBCC');
});

t.test('overload: bad values and bad contents are rejected', async (t) => {
  for (const v of [[0], [4], [255], [1, 1], []]) {
    const r = decodePacket(rawPacket({ options: Buffer.concat([opt(53, [1]), opt(52, v), END]) }));
    t.equal(r.ok, false, `overload ${JSON.stringify(v)}`);
    if (!r.ok) t.match(r.reason, /overload/);
  }
  // A lying length inside the file area.
  const badFile = decodePacket(rawPacket({
    file: Buffer.concat([Buffer.alloc(120), Buffer.from([12, 50, 1, 2])]),
    options: Buffer.concat([opt(53, [1]), opt(52, [1]), END]),
  }));
  t.equal(badFile.ok, false);
  if (!badFile.ok) t.match(badFile.reason, /^file:/);
  const badSname = decodePacket(rawPacket({
    sname: Buffer.concat([Buffer.alloc(62), Buffer.from([12, 5])]),
    options: Buffer.concat([opt(53, [1]), opt(52, [2]), END]),
  }));
  t.equal(badSname.ok, false);
  if (!badSname.ok) t.match(badSname.reason, /^sname:/);
  // An all-zero file area is all Pad: fine.
  t.equal(decodePacket(rawPacket({ options: Buffer.concat([opt(53, [1]), opt(52, [3]), END]) })).ok, true);
});

t.test('sname/file are C strings; non-overloaded fields decode as text', async (t) => {
  const q = decodeOk(rawPacket({
    sname: Buffer.from('srv\0junk'),
    file: Buffer.from('boot/file.efi\0\x01\x02'),
    options: Buffer.concat([opt(53, [1]), END]),
  }));
  t.equal(q.sname, 'srv');
  t.equal(q.file, 'boot/file.efi');
  // A full 128-byte file field without NUL.
  const full = decodeOk(rawPacket({ file: Buffer.alloc(128, 0x61), options: END }));
  t.equal(full.file, 'a'.repeat(128));
});

t.test('replyTo copies xid, flags, giaddr, chaddr and nothing else', async (t) => {
  const req = decodeOk(rawPacket({
    xid: 77, secs: 9, hops: 2, flags: 0x8000, ciaddr: '10.0.0.5', yiaddr: '10.0.0.6', siaddr: '10.0.0.7', giaddr: '10.1.0.1',
    file: Buffer.from('x'), sname: Buffer.from('y'),
    options: Buffer.concat([opt(53, [3]), END]),
  }));
  const r = replyTo(req);
  t.equal(r.op, BOOTREPLY);
  t.equal(r.xid, 77);
  t.equal(r.flags, 0x8000);
  t.equal(r.giaddr, ip('10.1.0.1'));
  t.equal(r.hops, 0);
  t.equal(r.secs, 0);
  t.equal(r.ciaddr, 0);
  t.equal(r.yiaddr, 0);
  t.equal(r.siaddr, 0);
  t.equal(r.file, '');
  t.equal(r.sname, '');
  t.equal(r.options.size, 0);
  t.same(r.chaddr, req.chaddr);
  r.chaddr[0] = 0xff;
  t.not(req.chaddr[0], 0xff, 'chaddr is a copy');
});

t.test('typed accessors read wrong lengths as absent', async (t) => {
  const o = new Map<number, Buffer>([
    [1, Buffer.from([1, 2, 3])],
    [2, Buffer.from([1, 2])],
    [3, Buffer.from([0xff, 0xff, 0xff, 0xfe])],
    [6, Buffer.from([8, 8, 8, 8, 1, 1, 1, 1])],
    [7, Buffer.from([8, 8, 8])],
    [53, Buffer.from([1, 2])],
    [60, Buffer.from('PXEClient\0trailing')],
    [12, Buffer.from([0x41, 0x0a, 0x7f, 0xe9, 0x42])],
    [13, Buffer.alloc(0)],
  ]);
  t.equal(getUint8(o, 53), undefined, 'uint8 of 2 bytes');
  t.equal(getUint16(o, 1), undefined);
  t.equal(getUint16(o, 2), 0x0102);
  t.equal(getUint32(o, 3), 0xfffffffe);
  t.equal(getUint32(o, 2), undefined);
  t.equal(getIpv4(o, 3), ip('255.255.255.254'));
  t.equal(getIpv4(o, 1), undefined);
  t.same(getIpv4List(o, 6), [ip('8.8.8.8'), ip('1.1.1.1')]);
  t.equal(getIpv4List(o, 7), undefined);
  t.equal(getIpv4List(o, 13), undefined);
  t.equal(getText(o, 60), 'PXEClient', 'cut at NUL');
  t.equal(getText(o, 12), 'A???B', 'control and high bytes replaced');
  t.equal(getText(o, 12, 2), 'A?');
  t.equal(getText(o, 13), undefined);
  t.equal(getText(o, 99), undefined);
  t.same(getParamRequestList(o), []);
  t.equal(messageTypeName(5), 'ack');
  t.equal(messageTypeName(99), 'unknown');
  t.equal(messageTypeName(undefined), 'unknown');
});

t.test('setters', async (t) => {
  const o = new Map<number, Buffer>();
  setIpv4(o, 54, ip('10.0.0.1'));
  setIpv4List(o, 6, [ip('1.2.3.4'), ip('5.6.7.8')]);
  setUint8(o, 53, 0x105);
  setUint32(o, 51, -1);
  setText(o, 60, 'PXEClient');
  t.same([...o.get(54)!], [10, 0, 0, 1]);
  t.same([...o.get(6)!], [1, 2, 3, 4, 5, 6, 7, 8]);
  t.same([...o.get(53)!], [5]);
  t.same([...o.get(51)!], [255, 255, 255, 255]);
  t.equal(o.get(60)!.toString(), 'PXEClient');
});

t.test('sub-options: parse and encode', async (t) => {
  t.same(parseSubOptions(Buffer.from([1, 2, 0xaa, 0xbb, 0, 2, 0, 255, 9, 9, 9])), new Map([[1, Buffer.from([0xaa, 0xbb])], [2, Buffer.alloc(0)]]));
  t.equal(parseSubOptions(Buffer.from([1, 5, 0])), undefined, 'length past end');
  t.equal(parseSubOptions(Buffer.from([1])), undefined, 'no length byte');
  t.same(parseSubOptions(Buffer.from([1, 1, 7, 1, 1, 8])), new Map([[1, Buffer.from([7, 8])]]), 'repeats concatenated');
  t.same(encodeSubOptions([[6, Buffer.from([8])]], true), Buffer.from([6, 1, 8, 255]));
  t.same(encodeSubOptions([[1, Buffer.from('ab')], [2, Buffer.alloc(0)]]), Buffer.from([1, 2, 0x61, 0x62, 2, 0]));
  t.throws(() => encodeSubOptions([[1, Buffer.alloc(256)]]), RangeError);
});
