import t, { type Test } from 'tap';
import {
  CC_INSUFFICIENT_PRIVILEGE, CC_NODE_BUSY, CC_NOT_SUPPORTED_IN_PRESENT_STATE, CC_TIMEOUT, CHASSIS_CONTROL, NETFN_APP, NETFN_CHASSIS,
  activateSession, chassisControl, checksum, getSessionChallenge, closeSession, completionCodeName, decodeBootFlags, decodeChannelAuthCapabilities, decodeChassisStatus,
  decodeDeviceId, decodeRequest, decodeResponse, encodeBootFlags, encodeRequest, encodeResponse, getBootFlags,
  getChannelAuthCapabilities, getChannelCipherSuites, getChassisStatus, getDeviceId, getSystemBootOptions, isTransientCompletion,
  parseCipherSuiteRecords, responseMatches, setBootDevice, setBootInfoAcknowledge, setBootOptionsInProgress, setBootValidBitClearing, setSessionPrivilegeLevel, type Command,
} from '../../src/ipmi/commands.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function everyPrefixFails(t: Test, buf: Buffer, decode: (b: Buffer) => { ok: boolean }, minOk: number): void {
  for (let n = 0; n < minOk; n++) {
    try {
      if (decode(buf.subarray(0, n)).ok) t.fail(`prefix of ${n} bytes decoded`);
    } catch (e) { t.fail(`threw at length ${n}: ${String(e)}`); }
  }
  t.pass(`truncations below ${minOk} bytes rejected`);
}

t.test('checksum: two\'s complement (§13.8, IPMB)', async (t) => {
  t.equal(checksum(hex('2018')), 0xc8);
  t.equal(checksum(Buffer.alloc(0)), 0);
  t.equal((checksum(hex('81043801')) + 0x81 + 0x04 + 0x38 + 0x01) & 0xff, 0);
});

t.test('request framing: exact bytes of Get Channel Auth Capabilities (§13.8 table 13-4)', async (t) => {
  const c = getChannelAuthCapabilities(4);
  const b = encodeRequest({ netFn: c.netFn, cmd: c.cmd, rqSeq: 1, data: c.data });
  // Expected from python3: ck = lambda b: (-sum(b)) & 0xff; [20 18 ck] + [81 04 38 8e 04 ck]
  t.same(b, hex('2018c881 04388e04b1'));
  t.same(decodeRequest(b), { ok: true, value: { rsAddr: 0x20, netFn: 6, rsLun: 0, rqAddr: 0x81, rqSeq: 1, rqLun: 0, cmd: 0x38, data: hex('8e04') } });
  everyPrefixFails(t, b, decodeRequest, b.length);
  for (let i = 0; i < b.length; i++) {
    const bad = Buffer.from(b); bad[i] = bad[i]! ^ 0x10;
    t.match(decodeRequest(bad), { ok: false, code: 'checksum' }, `flipped byte ${i} detected`);
  }
});

t.test('response framing and matching', async (t) => {
  // ipmi_sim-style answer to the request above; expected bytes from python3 as for the request.
  const raw = hex('811c6320043800019604030000000006');
  const r = decodeResponse(raw);
  t.match(r, { ok: true, value: { rqAddr: 0x81, netFn: 7, rsAddr: 0x20, rqSeq: 1, cmd: 0x38, completionCode: 0 } });
  if (!r.ok) return;
  t.same(encodeResponse({ netFn: 7, rqSeq: 1, cmd: 0x38, completionCode: 0, data: r.value.data }), raw);
  t.ok(responseMatches({ netFn: NETFN_APP, cmd: 0x38, rqSeq: 1 }, r.value));
  t.notOk(responseMatches({ netFn: NETFN_APP, cmd: 0x38, rqSeq: 2 }, r.value));
  t.notOk(responseMatches({ netFn: NETFN_CHASSIS, cmd: 0x38, rqSeq: 1 }, r.value));
  everyPrefixFails(t, raw, decodeResponse, raw.length);
  const bad = Buffer.from(raw); bad[9] = 0x97;
  t.match(decodeResponse(bad), { ok: false, code: 'checksum', reason: /data checksum/ });
  t.match(decodeResponse(hex('2018c88104388e04b1')), { ok: false, code: 'malformed' }, 'a request is not a response');
  const caps = decodeChannelAuthCapabilities(r.value.data);
  t.match(caps, {
    ok: true,
    value: { channel: 1, extended: true, authNone: false, authMd2: true, authMd5: true, authPassword: true, nonNullUsers: true, ipmi15: true, ipmi20: true, oemIana: 0 },
  });
  everyPrefixFails(t, r.value.data, decodeChannelAuthCapabilities, 8);
});

t.test('completion codes by name (§5.2 table 5-2)', async (t) => {
  t.equal(completionCodeName(0x00), 'ok');
  t.equal(completionCodeName(CC_NODE_BUSY), 'node busy');
  t.equal(completionCodeName(0xc1), 'invalid command');
  t.equal(completionCodeName(CC_TIMEOUT), 'timeout while processing command');
  t.equal(completionCodeName(0xc7), 'request data length invalid');
  t.equal(completionCodeName(0xcc), 'invalid data field in request');
  t.equal(completionCodeName(CC_INSUFFICIENT_PRIVILEGE), 'insufficient privilege level');
  t.equal(completionCodeName(CC_NOT_SUPPORTED_IN_PRESENT_STATE), 'command not supported in present state');
  t.equal(completionCodeName(0xff), 'unspecified error');
  t.match(completionCodeName(0x80), /command-specific/);
  t.match(completionCodeName(0x05), /OEM/);
  t.ok(isTransientCompletion(CC_NODE_BUSY));
  t.ok(isTransientCompletion(CC_TIMEOUT));
  t.notOk(isTransientCompletion(CC_INSUFFICIENT_PRIVILEGE));
});

t.test('request data of each command (§22, §28)', async (t) => {
  const is = (c: Command<unknown>, netFn: number, cmd: number, data: string) => t.same([c.netFn, c.cmd, c.data.toString('hex')], [netFn, cmd, data]);
  is(getChannelAuthCapabilities(4), 6, 0x38, '8e04');
  is(getChannelAuthCapabilities(2, 1, false), 6, 0x38, '0102');
  is(getChannelCipherSuites(0), 6, 0x54, '0e0080');
  is(getChannelCipherSuites(2), 6, 0x54, '0e0082');
  is(setSessionPrivilegeLevel(4), 6, 0x3b, '04');
  is(closeSession(0x01020304), 6, 0x3c, '04030201');
  is(getDeviceId(), 6, 0x01, '');
  is(getChassisStatus(), 0, 0x01, '');
  is(chassisControl('off'), 0, 0x02, '00');
  is(chassisControl('on'), 0, 0x02, '01');
  is(chassisControl('cycle'), 0, 0x02, '02');
  is(chassisControl('reset'), 0, 0x02, '03');
  is(chassisControl('soft'), 0, 0x02, '05');
  t.equal(CHASSIS_CONTROL.diag, 4);
  // Parameter 3 "BMC boot flag valid bit clearing", 08h = don't clear after the 60 s timeout (§28.13 table 28-14).
  is(setBootValidBitClearing(), 0, 0x08, '0308');
  is(setBootOptionsInProgress('in-progress'), 0, 0x08, '0001');
  is(setBootOptionsInProgress('complete'), 0, 0x08, '0000');
  is(setBootInfoAcknowledge(), 0, 0x08, '040101');
  is(getSystemBootOptions(5), 0, 0x09, '050000');
  is(getBootFlags(), 0, 0x09, '050000');
});

t.test('Set System Boot Options parameter 5 (§28.13 table 28-14, boot flags)', async (t) => {
  // byte 1: bit 7 valid, bit 6 persistent, bit 5 EFI; byte 2 bits 5:2 device selector
  t.equal(setBootDevice({ device: 'pxe' }).data.toString('hex'), '058004000000');
  t.equal(setBootDevice({ device: 'pxe', efi: true }).data.toString('hex'), '05a004000000');
  t.equal(setBootDevice({ device: 'disk', persistent: true }).data.toString('hex'), '05c008000000');
  t.equal(setBootDevice({ device: 'bios' }).data.toString('hex'), '058018000000');
  t.equal(setBootDevice({ device: 'cdrom', persistent: true, efi: true }).data.toString('hex'), '05e014000000');
  // Encode/decode round trip for every device and flag.
  for (const device of ['none', 'pxe', 'disk', 'disk-safe', 'diag', 'cdrom', 'bios', 'remote-floppy', 'remote-cdrom', 'remote-media', 'remote-disk', 'floppy'] as const) {
    for (const persistent of [false, true]) for (const efi of [false, true]) {
      t.match(decodeBootFlags(encodeBootFlags({ device, persistent, efi })), { ok: true, value: { valid: true, persistent, efi, device } });
    }
  }
  t.match(decodeBootFlags(hex('80 28 00 00 00')), { ok: true, value: { device: 'unknown' } }, 'reserved selector 1010b');
  everyPrefixFails(t, hex('80 04 00 00 00'), decodeBootFlags, 5);
});

t.test('Get System Boot Options parameter 5 decode (§28.13)', async (t) => {
  const cmd = getBootFlags();
  // version 01, parameter 05 (valid), then the 5 boot flag bytes: valid, persistent, EFI, PXE.
  t.match(cmd.decode(hex('01 05 e0 04 00 00 00')), { ok: true, value: { valid: true, persistent: true, efi: true, device: 'pxe' } });
  t.match(cmd.decode(hex('01 05 00 00 00 00 00')), { ok: true, value: { valid: false, device: 'none' } });
  t.match(cmd.decode(hex('01 03 08')), { ok: false, code: 'malformed' }, 'answer for another parameter');
  everyPrefixFails(t, hex('01 05 e0 04 00 00 00'), cmd.decode, 7);
  t.match(getSystemBootOptions(5).decode(hex('01 85 80 04 00 00 00')), { ok: true, value: { version: 1, parameter: 5, invalid: true } });
});

t.test('Get Device ID decode (§20.1)', async (t) => {
  // id 20, rev 81 (SDRs, rev 1), fw 02.35 (BCD), IPMI 2.0, support bf, mfr 0x0002a2 (LE), product 0x0100, aux 4 bytes
  const d = decodeDeviceId(hex('20 81 02 35 02 bf a2 02 00 00 01 01 02 03 04'));
  t.match(d, {
    ok: true,
    value: { deviceId: 0x20, deviceRevision: 1, providesSdrs: true, deviceAvailable: true, firmwareMajor: 2, firmwareMinor: 35, ipmiVersion: '2.0', additionalSupport: 0xbf, manufacturerId: 0x2a2, productId: 0x0100, auxFirmware: hex('01020304') },
  });
  t.match(decodeDeviceId(hex('20 01 82 09 51 00 00 00 00 00 00')), { ok: true, value: { deviceAvailable: false, firmwareMajor: 2, firmwareMinor: 9, ipmiVersion: '1.5' } });
  everyPrefixFails(t, hex('20 81 02 35 02 bf a2 02 00 00 01'), decodeDeviceId, 11);
});

t.test('Get Chassis Status decode (§28.2)', async (t) => {
  // power on, restore policy "previous" (bits 6:5 = 01); last event: on via IPMI; misc: cooling fault; front panel 00
  t.match(decodeChassisStatus(hex('21 10 08 00')), {
    ok: true,
    value: { powerOn: true, powerFault: false, restorePolicy: 'previous', lastEvent: { onByIpmi: true, acFailed: false }, coolingFault: true, frontPanel: 0 },
  });
  t.match(decodeChassisStatus(hex('48 01 00')), { ok: true, value: { powerOn: false, powerFault: true, restorePolicy: 'always-on', lastEvent: { acFailed: true } } });
  everyPrefixFails(t, hex('21 10 08'), decodeChassisStatus, 3);
});

t.test('cipher suite records (§22.15 table 22-18)', async (t) => {
  // Records for suites 3 and 17 as a BMC lists them, then an OEM record (C1h, IANA 0x0002a2).
  const raw = hex('c0 03 01 41 81  c0 11 03 44 81  c1 80 a2 02 00 01 41 80');
  t.same(parseCipherSuiteRecords(raw), {
    ok: true,
    value: [
      { id: 3, auth: 1, integrity: [1], confidentiality: [1] },
      { id: 17, auth: 3, integrity: [4], confidentiality: [1] },
      { id: 0x80, oemIana: 0x2a2, auth: 1, integrity: [1], confidentiality: [0] },
    ],
  });
  t.match(parseCipherSuiteRecords(hex('c0')), { ok: false, code: 'truncated' });
  t.match(parseCipherSuiteRecords(hex('c0 03 41')), { ok: false, code: 'malformed' });
  t.match(parseCipherSuiteRecords(hex('d0 03 01')), { ok: false, code: 'malformed' });
  for (let n = 0; n <= raw.length; n++) t.doesNotThrow(() => parseCipherSuiteRecords(raw.subarray(0, n)));
  const c = getChannelCipherSuites(0);
  t.same(c.decode(hex('01 c0 03 01 41 81')), { ok: true, value: { channel: 1, records: hex('c0 03 01 41 81') } });
  t.match(c.decode(Buffer.alloc(0)), { ok: false, code: 'truncated' });
  t.match(c.decode(Buffer.alloc(18)), { ok: false, code: 'malformed' });
});

t.test('hostile response data never throws', async (t) => {
  let seed = 99;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed & 0xff; };
  const decoders = [decodeResponse, decodeRequest, decodeChannelAuthCapabilities, decodeDeviceId, decodeChassisStatus, decodeBootFlags, parseCipherSuiteRecords, getBootFlags().decode, setSessionPrivilegeLevel(4).decode];
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.alloc(rnd() % 40);
    for (let j = 0; j < b.length; j++) b[j] = rnd();
    for (const d of decoders) d(b);
  }
  t.pass('no decoder threw');
});

t.test('IPMI 1.5 Get Session Challenge and Activate Session (§22.16, §22.17)', async (t) => {
  const g = getSessionChallenge(2, Buffer.from('admin'));
  t.same([g.netFn, g.cmd, g.data.toString('hex')], [6, 0x39, '02' + Buffer.from('admin').toString('hex') + '00'.repeat(11)]);
  const rsp = hex('05000000 000102030405060708090a0b0c0d0e0f');
  t.same(g.decode(rsp), { ok: true, value: { tempSessionId: 5, challenge: rsp.subarray(4) } });
  everyPrefixFails(t, rsp, g.decode, 20);
  const a = activateSession(2, 4, rsp.subarray(4), 0x11223344);
  t.equal(a.data.toString('hex'), '0204' + '000102030405060708090a0b0c0d0e0f' + '44332211');
  const ar = hex('02 82000000 06af26b7 04');
  t.same(a.decode(ar), { ok: true, value: { authType: 2, sessionId: 0x82, inboundSequence: 0xb726af06, maxPrivilege: 4 } });
  everyPrefixFails(t, ar, a.decode, 10);
  t.throws(() => getSessionChallenge(2, Buffer.alloc(17)), RangeError);
  t.throws(() => activateSession(2, 4, Buffer.alloc(15), 0), RangeError);
});
