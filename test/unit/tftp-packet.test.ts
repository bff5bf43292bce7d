import t from 'tap';
import {
  OP_ACK, OP_DATA, OP_ERROR, OP_OACK, OP_RRQ, OP_WRQ, decodePacket, encodeAck, encodeData, encodeError, encodeOack, encodeRequest,
} from '../../src/tftp/packet.js';

t.test('RRQ with options round-trips; names lowercased, mode case-insensitive', async (t) => {
  const raw = Buffer.from('\x00\x01ipxe.efi\x00OcTeT\x00BLKSIZE\x001468\x00tsize\x000\x00windowsize\x0016\x00', 'latin1');
  const d = decodePacket(raw);
  t.ok(d.ok);
  if (!d.ok) return;
  t.same(d.packet, { op: OP_RRQ, filename: 'ipxe.efi', mode: 'octet', options: [['blksize', '1468'], ['tsize', '0'], ['windowsize', '16']] });
  const again = decodePacket(encodeRequest({ op: OP_RRQ, filename: 'ipxe.efi', mode: 'octet', options: [['blksize', '1468'], ['tsize', '0'], ['windowsize', '16']] }));
  t.same(again, d);
});

t.test('WRQ, netascii and a trailing lone option name', async (t) => {
  const d = decodePacket(Buffer.from('\x00\x02a/b\x00netascii\x00blksize\x00', 'latin1'));
  t.same(d, { ok: true, packet: { op: OP_WRQ, filename: 'a/b', mode: 'netascii', options: [] } });
});

t.test('request errors: unknown mode, missing terminator, missing mode', async (t) => {
  t.match(decodePacket(Buffer.from('\x00\x01f\x00binary\x00', 'latin1')), { ok: false, reason: /unknown mode/ });
  t.match(decodePacket(Buffer.from('\x00\x01f\x00octet', 'latin1')), { ok: false, reason: /NUL/ });
  t.match(decodePacket(Buffer.from('\x00\x01f\x00', 'latin1')), { ok: false, reason: /filename and mode/ });
  t.match(decodePacket(Buffer.from([0])), { ok: false, reason: /too short/ });
  t.match(decodePacket(Buffer.from([0, 9, 0, 0])), { ok: false, reason: /unknown opcode 9/ });
});

t.test('DATA, ACK, ERROR, OACK', async (t) => {
  t.same(decodePacket(encodeData(65535, Buffer.from('abc'))), { ok: true, packet: { op: OP_DATA, block: 65535, data: Buffer.from('abc') } });
  t.same(decodePacket(encodeData(0, Buffer.alloc(0))), { ok: true, packet: { op: OP_DATA, block: 0, data: Buffer.alloc(0) } });
  t.same(decodePacket(encodeAck(65536 + 7)), { ok: true, packet: { op: OP_ACK, block: 7 } }, 'block numbers are written modulo 65536');
  t.same(decodePacket(Buffer.from([0, 4, 0, 1, 0xff, 0xff])), { ok: true, packet: { op: OP_ACK, block: 1 } }, 'padded ACK accepted');
  const e = encodeError(2, 'access violation');
  t.same([...e.subarray(0, 4)], [0, 5, 0, 2]);
  t.equal(e[e.length - 1], 0, 'message NUL-terminated');
  t.same(decodePacket(e), { ok: true, packet: { op: OP_ERROR, code: 2, message: 'access violation' } });
  t.same(decodePacket(Buffer.from([0, 5, 0, 1, 0x41])), { ok: true, packet: { op: OP_ERROR, code: 1, message: 'A' } }, 'unterminated message tolerated');
  t.same(decodePacket(encodeOack([['blksize', '1468'], ['tsize', '99']])), { ok: true, packet: { op: OP_OACK, options: [['blksize', '1468'], ['tsize', '99']] } });
  t.match(decodePacket(Buffer.from('\x00\x06blksize\x00', 'latin1')), { ok: false });
});

t.test('fuzz: every truncation and 20000 random mutations decode without throwing', async (t) => {
  const seeds = [
    encodeRequest({ op: OP_RRQ, filename: 'undionly.kpxe', mode: 'octet', options: [['blksize', '1468'], ['tsize', '0'], ['timeout', '1'], ['windowsize', '8']] }),
    encodeRequest({ op: OP_WRQ, filename: 'x', mode: 'netascii' }),
    encodeData(3, Buffer.alloc(100, 7)), encodeAck(9), encodeError(1, 'nope'), encodeOack([['tsize', '12']]),
  ];
  let n = 0;
  for (const s of seeds) {
    for (let len = 0; len <= s.length; len++) { decodePacket(s.subarray(0, len)); n++; }
  }
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  for (let i = 0; i < 20000; i++) {
    const s = Buffer.from(seeds[rnd() % seeds.length]!);
    const flips = 1 + (rnd() % 4);
    for (let f = 0; f < flips; f++) s[rnd() % s.length] = rnd() & 0xff;
    const cut = s.subarray(0, rnd() % (s.length + 1));
    const r = decodePacket(cut);
    if (typeof r.ok !== 'boolean') t.fail('no result');
    n++;
  }
  t.ok(n > 20000, `${n} inputs decoded without an exception`);
});
