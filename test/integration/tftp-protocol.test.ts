/**
 * metalboot's TFTP server at the socket level, against the real daemon in a
 * namespace: duplicate-ACK replay (no Sorcerer's Apprentice), hostile names
 * over the wire, write requests, the transfer limit, packets from a wrong TID,
 * and a client that vanishes after its request.
 */
import t from 'tap';
import { readdir } from 'node:fs/promises';
import { buildTftpLab, tftpClient } from '../helpers/tftp.js';
import { netnsUnavailable } from '../helpers/netns.js';

const skip = netnsUnavailable();

/** Hostile names (the unit test's table and more); every one must get an ERROR and nothing served. */
const HOSTILE = [
  '../etc/passwd', '../../../../../../etc/shadow', 'sub/../../x', '..', '.', './small.bin', '/etc/passwd', '//etc/passwd',
  '\\etc\\passwd', '..\\..\\etc\\passwd', 'small.bin\u0000', '%2e%2e/etc/passwd', '%2E%2E%2Fetc%2Fpasswd', '..%2fetc%2fpasswd',
  '%252e%252e/etc/passwd', '%c0%ae%c0%ae/etc/passwd', '\u00c0\u00ae\u00c0\u00ae/etc/passwd', 'sub//small.bin', 'a'.repeat(300),
  `${'../'.repeat(60)}etc/passwd`, 'link-out', 'small.bin\n', '/proc/self/environ', '~/.ssh/id_rsa', '',
];

t.test('TFTP protocol behaviour at the socket level', { skip, timeout: 300_000 }, async (t) => {
  const lab = await buildTftpLab(t, 'tfp', 62, { 'small.bin': 70_001, 'exact.bin': 512 * 40, 'mid.bin': 3 << 20 }, 'maxTransfers: 4\ntimeoutMs: 1000\nretries: 3');
  const { symlink } = await import('node:fs/promises');
  await symlink('/etc/passwd', `${lab.root}/link-out`);

  await t.test('duplicate-ACK replay: every ACK sent twice, DATA packets stay within a small bound', async (t) => {
    for (const [file, opts] of [['small.bin', []], ['exact.bin', []], ['mid.bin', [['blksize', '1468']]], ['mid.bin', [['blksize', '1468'], ['windowsize', '8']]]] as const) {
      const r = await tftpClient(lab, 'get', { file, options: opts, ackTimes: 2 });
      t.equal(r.ok, true, `${file} ${JSON.stringify(opts)}: complete`);
      t.equal(r.sha256, lab.sha.get(file), `${file}: sha256`);
      const blocks = Number(r.blocks);
      t.ok(Number(r.dataPackets) <= blocks + 3, `${file} ${JSON.stringify(opts)}: ${String(r.dataPackets)} DATA packets for ${blocks} blocks (a Sorcerer's Apprentice server would send ~2×)`);
    }
  });

  await t.test('hostile names over the wire: every one gets an ERROR, nothing is served', async (t) => {
    const r = await tftpClient<{ name: string; reply: { op: string; code?: number } }[]>(lab, 'ask', { names: HOSTILE });
    t.equal(r.length, HOSTILE.length);
    for (const x of r) {
      t.equal(x.reply.op, 'error', `${JSON.stringify(x.name.slice(0, 50))}: ERROR`);
      t.ok(x.reply.code === 1 || x.reply.code === 2 || x.reply.code === 4, `${JSON.stringify(x.name.slice(0, 50))}: code ${String(x.reply.code)} (not found / access violation / malformed)`);
    }
    t.equal(lab.daemon.events('tftp.transfer').filter((l) => HOSTILE.includes(String(l.file))).length, 0, 'no transfer of a hostile name was logged');
    t.ok(lab.daemon.events('tftp.refused').length >= HOSTILE.length - 3, `refusals logged (${lab.daemon.events('tftp.refused').length})`);
  });

  await t.test('write requests are refused with access violation and nothing is written', async (t) => {
    const before = (await readdir(lab.root)).sort();
    const r = await tftpClient<{ name: string; reply: { op: string; code?: number } }[]>(lab, 'ask', { names: ['new.bin', 'small.bin', '../escape.bin'], wrq: true });
    for (const x of r) t.match(x.reply, { op: 'error', code: 2 }, `WRQ ${x.name}: access violation`);
    t.same((await readdir(lab.root)).sort(), before, 'the root is unchanged');
    t.ok(lab.daemon.events('tftp.write-refused').length >= 3, 'logged');
  });

  await t.test('a packet from a wrong TID gets an error; the transfer completes', async (t) => {
    const r = await tftpClient(lab, 'get', { file: 'small.bin', wrongTid: true });
    t.match(r.wrongTidReply, { op: 'error', code: 5 }, 'the stranger got "unknown transfer ID"');
    t.equal(r.ok, true);
    t.equal(r.sha256, lab.sha.get('small.bin'), 'the real transfer was not disturbed');
  });

  await t.test('maxTransfers: a request beyond the limit gets a busy ERROR', async (t) => {
    const r = await tftpClient<{ held: { op: string }[]; extra: { op: string; code?: number; message?: string } }>(lab, 'busy', { file: 'small.bin', hold: 4 });
    t.ok(r.held.every((h) => h.op === 'data'), 'the first 4 transfers started');
    t.match(r.extra, { op: 'error', code: 0, message: /busy/ }, `the 5th got: ${JSON.stringify(r.extra)}`);
    t.ok(lab.daemon.events('tftp.busy').length >= 1, 'logged');
    // The held transfers time out (3 retries × 1 s): wait so the next subtest has room.
    await lab.daemon.waitForEvent('tftp.transfer-failed', 10_000, () => lab.daemon.events('tftp.transfer-failed').length >= 4);
  });

  await t.test('a client that vanishes after its request is cleaned up within the retry budget', async (t) => {
    const before = lab.daemon.events('tftp.transfer-failed').length;
    const started = Date.now();
    const r = await tftpClient(lab, 'vanish', { file: 'small.bin', options: [['blksize', '1024']] });
    t.match(r.first, { op: 'oack' });
    const failed = await lab.daemon.waitForEvent('tftp.transfer-failed', 15_000, () => lab.daemon.events('tftp.transfer-failed').length > before);
    const ms = Date.now() - started;
    t.match(failed, { file: 'small.bin', error: /timeout/ }, 'the end is logged with a timeout error');
    // Budget: timeoutMs × (retries + 1) = 4 s without progress.
    t.ok(ms >= 3500 && ms <= 6000, `cleaned up after ${ms} ms (budget 4000 ms)`);
    t.ok(Number(failed.retransmits) <= 10, `retransmits bounded (${String(failed.retransmits)})`);
  });
});

