/**
 * tgtd's management request for a new CHAP account, as metalboot encodes it, against the bytes the
 * real tgtadm 1.0.85 wrote to the control socket for the same command (captured with
 * `strace -f -e trace=write -xx tgtadm -C 23917 --lld iscsi --mode account --op new
 * --user mbuserx --password SecretSecret123` against a running tgtd; the answer was
 * `00000000 08000000`, and `0e000000 08000000` for the same account again).
 */
import t from 'tap';
import { decodeResponseHeader, encodeNewAccountRequest, tgtErrnoText, tgtSocketPath } from '../../src/iscsi/tgtd-ipc.js';
import { classifyTgtadmFailure } from '../../src/iscsi/tgtadm.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\\x/g, ''), 'hex');
const TGTADM_HEADER = hex(
  '\\x07\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x69\\x73\\x63\\x73\\x69' + '\\x00'.repeat(59)
  + '\\x9e\\x00\\x00\\x00\\xff\\xff\\xff\\xff' + '\\x00'.repeat(8) + '\\xff'.repeat(8) + '\\x00'.repeat(24),
);
const TGTADM_PARAMS = Buffer.from('user=mbuserx,password=SecretSecret123\0', 'latin1');

t.test('new-account request: byte for byte what tgtadm sends', async (t) => {
  t.equal(TGTADM_HEADER.length, 120, 'fixture: struct tgtadm_req is 120 bytes');
  const b = encodeNewAccountRequest('mbuserx', 'SecretSecret123', 'LE');
  t.same([...b], [...Buffer.concat([TGTADM_HEADER, TGTADM_PARAMS])], 'header and parameters equal tgtadm\'s');
  t.equal(b.readUInt32LE(72), b.length, 'len counts header and parameters');
  t.equal(encodeNewAccountRequest('mbuserx', 'SecretSecret123', 'BE').readUInt32BE(72), 158, 'host byte order is honoured');
});

t.test('new-account request: what tgtd would split or misread is refused before any byte is sent', async (t) => {
  t.throws(() => encodeNewAccountRequest('u,password=x', 'SecretSecret123'), /user/, 'a comma in the user');
  t.throws(() => encodeNewAccountRequest('mbuserx', 'Secret,Secret123'), /password/, 'a comma in the secret');
  t.throws(() => encodeNewAccountRequest('mbuserx', 'short'), /password/, 'a short secret');
  const e = (() => { try { encodeNewAccountRequest('mbuserx', 'Secret Secret123'); return undefined; } catch (x) { return x as Error; } })();
  t.notMatch(e?.message ?? '', 'Secret Secret123', 'the refusal does not echo the secret');
});

t.test('answers: tgtd\'s errno, bounded length, tgtadm\'s wording', async (t) => {
  t.same(decodeResponseHeader(hex('0000000008000000'), 'LE'), { err: 0, len: 8 }, 'success');
  t.same(decodeResponseHeader(hex('0e00000008000000'), 'LE'), { err: 14, len: 8 }, 'account exists (observed)');
  t.equal(classifyTgtadmFailure(22, tgtErrnoText(14)), 'exists', 'classified as tgtadm\'s message is');
  t.match(decodeResponseHeader(hex('00000000'), 'LE'), /4 bytes/, 'short header');
  t.match(decodeResponseHeader(hex('0000000004000000'), 'LE'), /out of range/, 'length below the header');
  t.match(decodeResponseHeader(hex('00000000ffffff7f'), 'LE'), /out of range/, 'absurd length');
  t.match(decodeResponseHeader(hex('ffffffff08000000'), 'LE'), /not a tgtd errno/, 'absurd errno');
  t.equal(tgtErrnoText(99), 'tgtd error 99', 'unknown errno named by number');
  t.equal(tgtSocketPath(23917), '/var/run/tgtd/socket.23917', 'tgtadm\'s socket path for -C 23917');
});
