import t, { type Test } from 'tap';
import {
  AUTH_MD5, AUTH_NONE, PAYLOAD_IPMI, PAYLOAD_RAKP1, RMCP_CLASS_ASF, RMCP_CLASS_IPMI,
  decodeAsf, decodeIpmiPacket, decodeRmcp, decodeSessionV15, decodeSessionV2, encodeAsfPing, encodeAsfPong,
  encodeRmcpHeader, encodeSessionV15, encodeSessionV2, md5AuthCode,
} from '../../src/ipmi/rmcp.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Every proper prefix of `buf` must decode to an error, never throw. */
function everyPrefixFails(t: Test, buf: Buffer, decode: (b: Buffer) => { ok: boolean }, from = 0): void {
  let ok = 0;
  for (let n = from; n < buf.length; n++) {
    let r: { ok: boolean };
    try { r = decode(buf.subarray(0, n)); } catch (e) { t.fail(`threw at length ${n}: ${String(e)}`); continue; }
    if (!r.ok) ok++;
    else t.fail(`prefix of ${n} bytes decoded`);
  }
  t.equal(ok, buf.length - from, 'every truncation is an error');
}

t.test('RMCP header: version 6, reserved, seq 0xff, class (§13.1.3 table 13-1)', async (t) => {
  t.same([...encodeRmcpHeader(RMCP_CLASS_IPMI)], [0x06, 0x00, 0xff, 0x07]);
  t.same([...encodeRmcpHeader(RMCP_CLASS_ASF)], [0x06, 0x00, 0xff, 0x06]);
  t.match(decodeRmcp(hex('06 00 ff 87')), { ok: true, value: { header: { version: 6, sequence: 0xff, messageClass: 7, ack: true } } });
  t.match(decodeRmcp(hex('05 00 ff 07')), { ok: false, code: 'unsupported' });
  t.match(decodeRmcp(hex('06 00 ff')), { ok: false, code: 'truncated' });
});

t.test('ASF presence ping: exact bytes (§13.2.3, ASF 2.0 §3.2.4.1)', async (t) => {
  // RMCP 06 00 ff 06 | IANA 000011be | type 80 | tag | reserved 00 | length 00
  t.same(encodeAsfPing(0x2a), hex('060 0ff06 000011be 80 2a 00 00'));
  t.same(decodeAsf(encodeAsfPing(7)), { ok: true, value: { type: 'ping', tag: 7 } });
});

t.test('ASF presence pong round trip and layout', async (t) => {
  const pong = encodeAsfPong({ tag: 9, entities: 0x81, interactions: 0 });
  t.equal(pong.length, 4 + 8 + 16);
  t.same(pong.subarray(4, 12), hex('000011be 40 09 00 10'));
  t.same(decodeAsf(pong), {
    ok: true, value: { type: 'pong', tag: 9, iana: 4542, oem: 0, entities: 0x81, interactions: 0, ipmiSupported: true },
  });
  everyPrefixFails(t, pong, decodeAsf);
  t.match(decodeAsf(Buffer.concat([encodeRmcpHeader(RMCP_CLASS_IPMI), pong.subarray(4)])), { ok: false, code: 'malformed' });
  const badIana = Buffer.from(pong); badIana[7] = 0xbf;
  t.match(decodeAsf(badIana), { ok: false, code: 'unsupported' });
});

t.test('IPMI 1.5 session, auth none: layout per §13.6 table 13-8', async (t) => {
  const msg = hex('20 18 c8 81 04 38 8e 04 b5');
  const p = encodeSessionV15({ authType: AUTH_NONE, sequence: 0, sessionId: 0, message: msg });
  // RMCP | auth type 00 | seq 00000000 | session id 00000000 | length 09 | message
  t.same(p, Buffer.concat([hex('0600ff07 00 00000000 00000000 09'), msg]));
  const d = decodeIpmiPacket(p, 0);
  t.same(d, { ok: true, value: { version: '1.5', session: { authType: 0, sequence: 0, sessionId: 0, message: msg } } });
  everyPrefixFails(t, p.subarray(4), decodeSessionV15);
});

t.test('IPMI 1.5 session, MD5: 16-byte AuthCode field, little-endian ids', async (t) => {
  const msg = hex('200018c88101');
  const code = md5AuthCode(Buffer.from('password'), 0x11223344, msg, 5);
  // python3: hashlib.md5(pw16 + struct.pack("<I",0x11223344) + msg + struct.pack("<I",5) + pw16).hexdigest(),
  // pw16 = b"password".ljust(16, b"\0")  (§22.17.1 multi-session AuthCode)
  t.equal(code.toString('hex'), '43f90bb401a4363a660174c0e559cdb2');
  const p = encodeSessionV15({ authType: AUTH_MD5, sequence: 5, sessionId: 0x11223344, authCode: code, message: msg });
  t.same(p.subarray(4, 13), hex('02 05000000 44332211'));
  t.same(p.subarray(13, 29), code);
  t.equal(p[29], msg.length);
  const d = decodeSessionV15(p.subarray(4));
  t.same(d, { ok: true, value: { authType: AUTH_MD5, sequence: 5, sessionId: 0x11223344, message: msg, authCode: code } });
  everyPrefixFails(t, p.subarray(4), decodeSessionV15);
  t.throws(() => encodeSessionV15({ authType: AUTH_MD5, sequence: 0, sessionId: 0, message: msg }));
});

t.test('RMCP+ session, unauthenticated: layout (§13.6 table 13-8)', async (t) => {
  const payload = hex('00 00 00 00 a3a2a1a0');
  const p = encodeSessionV2({ payloadType: PAYLOAD_RAKP1, encrypted: false, authenticated: false, sessionId: 0, sequence: 0, payload });
  // auth type 06 | payload type 12 | session id 0 | seq 0 | length 0800 (LE) | payload
  t.same(p, Buffer.concat([hex('0600ff07 06 12 00000000 00000000 0800'), payload]));
  const d = decodeSessionV2(p.subarray(4), 12);
  t.match(d, { ok: true, value: { payloadType: 0x12, encrypted: false, authenticated: false, sessionId: 0, sequence: 0, payload } });
  everyPrefixFails(t, p.subarray(4), (b) => decodeSessionV2(b, 12));
});

t.test('RMCP+ session, authenticated: integrity pad 0xFF to 4-byte alignment, pad length, next header 07, AuthCode (§13.28.4)', async (t) => {
  const seen: Buffer[] = [];
  const integrity = (data: Buffer) => { seen.push(Buffer.from(data)); return Buffer.alloc(12, 0xab); };
  for (let len = 0; len <= 9; len++) {
    const payload = Buffer.alloc(len, 0x5a);
    const p = encodeSessionV2({ payloadType: PAYLOAD_IPMI, encrypted: true, authenticated: true, sessionId: 0x01020304, sequence: 1, payload }, integrity);
    const covered = seen[seen.length - 1]!;
    t.equal(covered.length % 4, 0, `covered data aligned for payload ${len}`);
    const padLen = (4 - ((12 + len + 2) % 4)) % 4;
    t.equal(covered.length, 12 + len + padLen + 2);
    t.same([...covered.subarray(12 + len)], [...Array(padLen).fill(0xff), padLen, 0x07]);
    t.same(p.subarray(4), Buffer.concat([covered, Buffer.alloc(12, 0xab)]), 'AuthCode follows next header');
    const d = decodeSessionV2(p.subarray(4), 12);
    t.ok(d.ok);
    if (d.ok) {
      t.same(d.value.payload, payload);
      t.same(d.value.integrityData, covered);
      t.same(d.value.authCode, Buffer.alloc(12, 0xab));
      t.equal(d.value.encrypted, true);
      t.equal(d.value.sessionId, 0x01020304);
    }
    everyPrefixFails(t, p.subarray(4), (b) => decodeSessionV2(b, 12));
  }
  // The exact integrity data of the known-answer test in ipmi-rakp.test.ts:
  encodeSessionV2({ payloadType: PAYLOAD_IPMI, encrypted: true, authenticated: true, sessionId: 0x01020304, sequence: 1, payload: hex('0001020304050607') }, integrity);
  t.equal(seen[seen.length - 1]!.toString('hex'), '06c0040302010100000008000001020304050607ffff0207');
});

t.test('RMCP+ trailer corruption is detected, not thrown', async (t) => {
  const p = encodeSessionV2({ payloadType: PAYLOAD_IPMI, encrypted: false, authenticated: true, sessionId: 1, sequence: 2, payload: hex('aabbccddee') }, () => Buffer.alloc(16, 1)).subarray(4);
  t.ok(decodeSessionV2(p, 16).ok);
  const nh = Buffer.from(p); nh[nh.length - 17] = 0x06;
  t.match(decodeSessionV2(nh, 16), { ok: false, code: 'malformed', reason: /next header/ });
  const pl = Buffer.from(p); pl[pl.length - 18] = 3;
  t.match(decodeSessionV2(pl, 16), { ok: false, code: 'malformed' });
  const padByte = Buffer.from(p); padByte[12 + 5] = 0x00;
  t.match(decodeSessionV2(padByte, 16), { ok: false, code: 'malformed', reason: /0xFF/ });
  t.match(decodeSessionV2(p, 12), { ok: false }, 'wrong AuthCode length for the suite');
  const oem = Buffer.from(p); oem[1] = 0x42;
  t.match(decodeSessionV2(oem, 16), { ok: false, code: 'unsupported' });
});

t.test('hostile input never throws', async (t) => {
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed & 0xff; };
  for (let i = 0; i < 3000; i++) {
    const len = rnd() % 80;
    const b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = rnd();
    if (len > 0) b[0] = 6;
    if (len > 3) b[3] = (i & 1) ? 7 : 6;
    if (len > 4 && i % 3 === 0) b[4] = 6;
    decodeAsf(b);
    decodeIpmiPacket(b, 12);
    decodeIpmiPacket(b, 16);
  }
  t.pass('3000 random datagrams decoded without throwing');
});

t.test('IPMI 1.5 legacy pad byte at datagram lengths 56, 84, 112, 128, 156 (table 13-8 footnote)', async (t) => {
  for (let n = 0; n <= 150; n++) {
    const message = Buffer.alloc(n, 0x33);
    for (const authType of [AUTH_NONE, AUTH_MD5]) {
      const p = encodeSessionV15({ authType, sequence: 1, sessionId: 2, authCode: Buffer.alloc(16), message });
      const natural = 4 + 10 + (authType === AUTH_NONE ? 0 : 16) + n;
      const padded = [56, 84, 112, 128, 156].includes(natural);
      t.equal(p.length, natural + (padded ? 1 : 0));
      if (padded) t.equal(p[p.length - 1], 0);
      t.match(decodeSessionV15(p.subarray(4)), { ok: true, value: { message } });
    }
  }
});
