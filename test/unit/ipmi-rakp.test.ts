import t, { type Test } from 'tap';
import {
  AUTH_ALG_HMAC_SHA1, AUTH_ALG_HMAC_SHA256, CIPHER_SUITE_17, CIPHER_SUITE_3, CONF_ALG_AES_CBC_128, INTEGRITY_ALG_HMAC_SHA1_96,
  INTEGRITY_ALG_HMAC_SHA256_128, PRIV_ADMINISTRATOR, ROLE_NAME_ONLY_LOOKUP, checkRakp2, checkRakp4, decodeOpenSessionRequest,
  decodeOpenSessionResponse, decodeRakp1, decodeRakp2, decodeRakp3, decodeRakp4, decryptPayload, deriveSessionKeys,
  encodeOpenSessionRequest, encodeOpenSessionResponse, encodeRakp1, encodeRakp2, encodeRakp3, encodeRakp4, encryptPayload,
  integrityAuthCode, openPacket, rakp2AuthCode, rakp3AuthCode, rakp4Icv, rakpStatusName, passwordKey, verifyIntegrity,
  type CipherSuite, type RakpContext,
} from '../../src/ipmi/rakp.js';
import { PAYLOAD_IPMI, decodeSessionV2, encodeSessionV2 } from '../../src/ipmi/rmcp.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function everyPrefixFails(t: Test, buf: Buffer, decode: (b: Buffer) => { ok: boolean }): void {
  for (let n = 0; n < buf.length; n++) {
    try {
      if (decode(buf.subarray(0, n)).ok) t.fail(`prefix of ${n} bytes decoded`);
    } catch (e) { t.fail(`threw at length ${n}: ${String(e)}`); }
  }
  t.pass(`all ${buf.length} truncations rejected`);
}

t.test('Open Session Request: layout per §13.17 table 13-9', async (t) => {
  const b = encodeOpenSessionRequest({
    tag: 0x01, maxPrivilege: PRIV_ADMINISTRATOR, consoleSessionId: 0xa0a1a2a3,
    auth: AUTH_ALG_HMAC_SHA256, integrity: INTEGRITY_ALG_HMAC_SHA256_128, confidentiality: CONF_ALG_AES_CBC_128,
  });
  t.same(b, hex(`01 04 0000 a3a2a1a0
                 00 0000 08 03 000000
                 01 0000 08 04 000000
                 02 0000 08 01 000000`));
  t.same(decodeOpenSessionRequest(b), { ok: true, value: { tag: 1, maxPrivilege: 4, consoleSessionId: 0xa0a1a2a3, auth: 3, integrity: 4, confidentiality: 1 } });
  everyPrefixFails(t, b, decodeOpenSessionRequest);
});

t.test('Open Session Response: success (§13.18 table 13-10) and short error form', async (t) => {
  const ok = encodeOpenSessionResponse({
    tag: 1, status: 0, maxPrivilege: 4, consoleSessionId: 0xa0a1a2a3, bmcSessionId: 0x01020304,
    auth: AUTH_ALG_HMAC_SHA1, integrity: INTEGRITY_ALG_HMAC_SHA1_96, confidentiality: CONF_ALG_AES_CBC_128,
  });
  t.same(ok.subarray(0, 12), hex('01 00 04 00 a3a2a1a0 04030201'));
  t.equal(ok.length, 36);
  t.same(decodeOpenSessionResponse(ok), {
    ok: true, value: { tag: 1, status: 0, maxPrivilege: 4, consoleSessionId: 0xa0a1a2a3, bmcSessionId: 0x01020304, auth: 1, integrity: 1, confidentiality: 1 },
  });
  everyPrefixFails(t, ok, decodeOpenSessionResponse);
  const refused = hex('01 11 00 00 a3a2a1a0');
  t.same(decodeOpenSessionResponse(refused), { ok: true, value: { tag: 1, status: 0x11, maxPrivilege: 0, consoleSessionId: 0xa0a1a2a3 } });
  t.equal(rakpStatusName(0x11), 'no cipher suite match with proposed security algorithms');
  t.match(rakpStatusName(0x7f), /unknown/);
  const badAlg = Buffer.from(ok); badAlg[12 + 8] = 0x05;
  t.match(decodeOpenSessionResponse(badAlg), { ok: false, code: 'malformed' });
});

t.test('RAKP 1–4 layouts (§13.20–§13.23) and round trips', async (t) => {
  const rm = hex('000102030405060708090a0b0c0d0e0f');
  const r1 = encodeRakp1({ tag: 2, bmcSessionId: 0x01020304, consoleRandom: rm, role: 0x14, username: Buffer.from('admin') });
  t.same(r1, Buffer.concat([hex('02 000000 04030201'), rm, hex('14 0000 05'), Buffer.from('admin')]));
  t.same(decodeRakp1(r1), { ok: true, value: { tag: 2, bmcSessionId: 0x01020304, consoleRandom: rm, role: 0x14, username: Buffer.from('admin') } });
  everyPrefixFails(t, r1, decodeRakp1);
  const long = Buffer.from(r1); long[27] = 17;
  t.match(decodeRakp1(long), { ok: false, code: 'malformed' });

  const r2 = encodeRakp2({ tag: 2, status: 0, consoleSessionId: 0xa0a1a2a3, bmcRandom: Buffer.alloc(16, 0x10), bmcGuid: Buffer.alloc(16, 0x20), authCode: Buffer.alloc(32, 0x30) });
  t.equal(r2.length, 8 + 16 + 16 + 32);
  t.same(r2.subarray(0, 8), hex('02 00 0000 a3a2a1a0'));
  const d2 = decodeRakp2(r2, 32);
  t.match(d2, { ok: true, value: { tag: 2, status: 0, consoleSessionId: 0xa0a1a2a3 } });
  if (d2.ok) t.same([d2.value.bmcRandom, d2.value.bmcGuid, d2.value.authCode], [Buffer.alloc(16, 0x10), Buffer.alloc(16, 0x20), Buffer.alloc(32, 0x30)]);
  everyPrefixFails(t, r2, (b) => decodeRakp2(b, 32));
  t.match(decodeRakp2(hex('02 0d 0000 a3a2a1a0'), 32), { ok: true, value: { status: 0x0d } }, 'error status: 8 bytes suffice');

  const r3 = encodeRakp3({ tag: 3, status: 0, bmcSessionId: 0x01020304, authCode: Buffer.alloc(20, 7) });
  t.same(r3.subarray(0, 8), hex('03 00 0000 04030201'));
  t.same(decodeRakp3(r3, 20), { ok: true, value: { tag: 3, status: 0, bmcSessionId: 0x01020304, authCode: Buffer.alloc(20, 7) } });
  everyPrefixFails(t, r3, (b) => decodeRakp3(b, 20));

  const r4 = encodeRakp4({ tag: 3, status: 0, consoleSessionId: 0xa0a1a2a3, icv: Buffer.alloc(12, 9) });
  t.same(decodeRakp4(r4, 12), { ok: true, value: { tag: 3, status: 0, consoleSessionId: 0xa0a1a2a3, icv: Buffer.alloc(12, 9) } });
  everyPrefixFails(t, r4, (b) => decodeRakp4(b, 12));
  t.match(decodeRakp4(hex('03 0f 0000 a3a2a1a0'), 12), { ok: true, value: { status: 0x0f, icv: Buffer.alloc(0) } });
});

/*
 * Known answers, produced independently of this code by test/fixtures/ipmi/kat.py (python3
 * hmac/hashlib only; run it to see them again):
 *   pw = b"password".ljust(20, b"\0"); user = b"admin"; role = 0x14
 *   rm = bytes(range(0x00,0x10)); rc = bytes(range(0x10,0x20)); guid = bytes(range(0x20,0x30))
 *   sidm = struct.pack("<I", 0xa0a1a2a3); sidc = struct.pack("<I", 0x01020304); rn = bytes([role, len(user)]) + user
 *   sik = H(pw, rm + rc + rn); k1 = H(sik, b"\x01" * 20); k2 = H(sik, b"\x02" * 20)       # §13.31, §13.32
 *   rakp2 = H(pw, sidm + sidc + rm + rc + guid + rn); rakp3 = H(pw, rc + sidm + rn)        # §13.21, §13.22
 *   rakp4 = H(sik, rm + sidc + guid)[:icv]                                                  # §13.23
 *   authcode = H(k1, data)[:12 or 16], data = 06c0040302010100000008000001020304050607ffff0207  # §13.28.4
 * with H = hmac.new(k, m, hashlib.sha1 | hashlib.sha256), icv = 12 | 16. The §13.32 constants
 * are 20 bytes for SHA-256 too (ipmitool's lanplus_generate_k1/k2, FreeIPMI): suite 17's K1/K2
 * below are HMAC-SHA256 over 20 bytes of 01h/02h, not 32.
 */
const KAT = {
  3: {
    sik: '122c77c4b11ccd93251cbae6c34a9cb6310da154',
    k1: 'e4472be78f9a81fa68297aab696a7be8c97fc9f8',
    k2: '2b6552012a2517cb3b5713901d757a6efc7d8301',
    rakp2: 'afbecf3fa92ffebd6f3d8c41bff1235f8a13f4b2',
    rakp3: '7fc6db6b1f57b356a4a457a8df87c8d2d6aecdd9',
    rakp4: '31dbe38a7d82ebd965fbd0a3',
    authcode: '528cecacc6bd3d04d33e5ae1',
  },
  17: {
    sik: 'e5935f7199865ad961063477b0662684e2ce9b1da8f2b8d41c5ce127d37e9bcf',
    k1: 'dc4fe73d075306f6897115dd63257385e845c10404fa1d73991790c6a101bec2',
    k2: '2a4f969ea6dfa83066f36674fdc2fea289fa1a21da90303e9b5269b54ec5adb5',
    rakp2: 'ea83d92de0324c9f8c2f68c6cfe77d3a24b34407fdf5f00404f2e0b3a907e049',
    rakp3: '90267bdbb30b252a36ad5b8c20ad30167c5fda508a1097ee0d53dd1745bfd58c',
    rakp4: 'c6f81174312ba64fb0ef3c1efa13b44d',
    authcode: 'b2701d3b2e6871bbe2bb647fe9199cde',
  },
} as const;

function ctx(suite: CipherSuite): RakpContext {
  return {
    suite, consoleSessionId: 0xa0a1a2a3, bmcSessionId: 0x01020304,
    consoleRandom: hex('000102030405060708090a0b0c0d0e0f'), bmcRandom: hex('101112131415161718191a1b1c1d1e1f'),
    bmcGuid: hex('202122232425262728292a2b2c2d2e2f'), role: PRIV_ADMINISTRATOR | ROLE_NAME_ONLY_LOOKUP, username: Buffer.from('admin'),
  };
}

for (const suite of [CIPHER_SUITE_3, CIPHER_SUITE_17]) {
  t.test(`cipher suite ${suite.id}: key derivation and RAKP AuthCodes match independent known answers`, async (t) => {
    const k = KAT[suite.id as 3 | 17];
    const c = ctx(suite);
    const pw = Buffer.from('password');
    const keys = deriveSessionKeys(c, pw);
    t.equal(keys.sik.toString('hex'), k.sik, 'SIK (§13.31)');
    t.equal(keys.k1.toString('hex'), k.k1, 'K1 (§13.32)');
    t.equal(keys.k2.toString('hex'), k.k2, 'K2 (§13.32)');
    t.equal(rakp2AuthCode(c, passwordKey(pw)).toString('hex'), k.rakp2, 'RAKP 2 key exchange AuthCode');
    t.equal(rakp3AuthCode(c, passwordKey(pw)).toString('hex'), k.rakp3, 'RAKP 3 AuthCode');
    t.equal(rakp4Icv(c, keys.sik).toString('hex'), k.rakp4, `RAKP 4 ICV (${suite.icvLength} bytes)`);
    t.equal(integrityAuthCode(keys, hex('06c0040302010100000008000001020304050607ffff0207')).toString('hex'), k.authcode, 'packet AuthCode');

    t.same(checkRakp2(c, pw, hex(k.rakp2)), { ok: true });
    const wrong = checkRakp2(c, Buffer.from('passw0rd'), hex(k.rakp2));
    t.match(wrong, { ok: false, code: 'auth-code' });
    t.same(checkRakp4(c, keys, hex(k.rakp4)), { ok: true });
    const bad4 = checkRakp4(c, keys, Buffer.alloc(suite.icvLength));
    t.match(bad4, { ok: false, code: 'icv' });
    for (const r of [wrong, bad4]) {
      if (r.ok) continue;
      for (const secret of [keys.sik, keys.k1, keys.k2]) t.notOk(r.reason.includes(secret.toString('hex')), 'no key in the reason');
      t.notOk(r.reason.includes('passw0rd'), 'the given password is not in the reason');
    }
    t.same(deriveSessionKeys(c, pw, Buffer.alloc(0)).sik, keys.sik, 'empty Kg means the password is used');
    t.notSame(deriveSessionKeys(c, pw, Buffer.from('bmckey')).sik, keys.sik, 'a BMC key changes SIK');
  });

  t.test(`cipher suite ${suite.id}: authenticated, encrypted packet round trip`, async (t) => {
    const keys = deriveSessionKeys(ctx(suite), Buffer.from('password'));
    const msg = hex('2018c881043801');
    const enc = encryptPayload(keys.k2, msg);
    const pkt = encodeSessionV2({ payloadType: PAYLOAD_IPMI, encrypted: true, authenticated: true, sessionId: 0x01020304, sequence: 3, payload: enc }, (d) => integrityAuthCode(keys, d));
    const d = decodeSessionV2(pkt.subarray(4), suite.authCodeLength);
    t.ok(d.ok);
    if (!d.ok) return;
    t.ok(verifyIntegrity(keys, d.value.integrityData, d.value.authCode));
    t.same(decryptPayload(keys.k2, d.value.payload), { ok: true, value: msg });
    const flipped = Buffer.from(pkt); flipped[20] = flipped[20]! ^ 1;
    const df = decodeSessionV2(flipped.subarray(4), suite.authCodeLength);
    t.ok(df.ok && !verifyIntegrity(keys, df.value.integrityData, df.value.authCode), 'a flipped bit fails integrity');
  });
}

t.test('suite parameters (§13.28, table 22-20)', async (t) => {
  t.match(CIPHER_SUITE_3, { auth: 1, integrity: 1, confidentiality: 1, keyLength: 20, icvLength: 12, authCodeLength: 12 });
  t.match(CIPHER_SUITE_17, { auth: 3, integrity: 4, confidentiality: 1, keyLength: 32, icvLength: 16, authCodeLength: 16 });
  t.throws(() => passwordKey(Buffer.alloc(21)), RangeError);
});

t.test('AES-CBC-128: fixed-IV known answer (§13.29)', async (t) => {
  // data 01..0a (10 bytes) + pad 01 02 03 04 05 + pad length 05 = one block. Expected ciphertext from:
  //   printf '\x01..\x0a\x01\x02\x03\x04\x05\x05' | openssl enc -aes-128-cbc -K 000102030405060708090a0b0c0d0e0f \
  //     -iv f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff -nopad | xxd -p
  const k2 = Buffer.concat([hex('000102030405060708090a0b0c0d0e0f'), hex('deadbeef')]); // only the first 16 bytes are the key
  const iv = hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');
  const enc = encryptPayload(k2, hex('0102030405060708090a'), iv);
  t.equal(enc.toString('hex'), 'f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff' + '12020c421efb8057eac68158fc2bddd7');
  t.same(decryptPayload(k2, enc), { ok: true, value: hex('0102030405060708090a') });
});

t.test('AES-CBC-128: round trip at every length, pad rules, hostile ciphertext', async (t) => {
  const k2 = Buffer.alloc(20, 0x42);
  for (let n = 0; n <= 40; n++) {
    const data = Buffer.alloc(n, n);
    const enc = encryptPayload(k2, data);
    t.equal((enc.length - 16) % 16, 0);
    t.equal(enc.length - 16, Math.ceil((n + 1) / 16) * 16, `length ${n}: minimal padding`);
    t.same(decryptPayload(k2, enc), { ok: true, value: data });
  }
  t.notSame(encryptPayload(k2, Buffer.alloc(5)), encryptPayload(k2, Buffer.alloc(5)), 'random IV per packet');
  t.match(decryptPayload(k2, Buffer.alloc(31)), { ok: false, code: 'truncated' });
  t.match(decryptPayload(k2, Buffer.alloc(33)), { ok: false, code: 'malformed' });
  let failures = 0;
  for (let i = 0; i < 200; i++) {
    const r = decryptPayload(Buffer.alloc(16, i), Buffer.alloc(48, i * 7));
    if (!r.ok) { failures++; t.notOk(r.reason.includes('42424242'), 'no key in the reason'); }
  }
  t.ok(failures > 150, 'garbage ciphertext almost always fails the pad check');
});

t.test('hostile input to every RAKP decoder and to openPacket never throws', async (t) => {
  const keys = deriveSessionKeys(ctx(CIPHER_SUITE_17), Buffer.from('password'));
  const good = encodeSessionV2(
    { payloadType: PAYLOAD_IPMI, encrypted: true, authenticated: true, sessionId: 1, sequence: 1, payload: encryptPayload(keys.k2, hex('2018c881043b043c')) },
    (d) => integrityAuthCode(keys, d),
  );
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed & 0xff; };
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.alloc(rnd() % 90);
    for (let j = 0; j < b.length; j++) b[j] = rnd();
    if (b.length > 1 && i % 2 === 0) b[1] = 0;
    decodeOpenSessionRequest(b); decodeOpenSessionResponse(b); decodeRakp1(b);
    decodeRakp2(b, 20); decodeRakp2(b, 32); decodeRakp3(b, 32); decodeRakp4(b, 16);
    decryptPayload(keys.k2, b);
    const m = Buffer.from(good); m[4 + (rnd() % (m.length - 4))] = rnd();
    const r = openPacket(keys, m);
    if (r.ok && !m.equals(good)) t.fail('a modified packet was accepted');
  }
  t.same(openPacket(keys, good), { ok: true, value: { payloadType: 0, sessionId: 1, sequence: 1, encrypted: true, message: hex('2018c881043b043c') } });
});
