/**
 * Real TFTP clients against metalboot's TFTP server, across a veth between
 * two namespaces: curl (tftp://, with and without --tftp-blksize), atftp
 * (blksize, tsize, windowsize options) and tftp-hpa (plain RFC 1350). Each
 * fetches a small file and a 32 MiB file (32 MiB at blksize 512 is 65536
 * blocks: the block number rolls over); every sha256 must match.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildTftpLab, sha256File, type TftpLab } from '../helpers/tftp.js';
import { netnsUnavailable } from '../helpers/netns.js';

const MISSING = ['/usr/bin/curl', '/usr/bin/atftp', '/usr/bin/tftp'].find((f) => !existsSync(f));
const skip = netnsUnavailable() || (MISSING ? `${MISSING} is not installed` : false);

const FILES = { 'small.bin': 70_001, 'big.bin': 32 << 20 };

interface Client { name: string; argv: (lab: TftpLab, file: string, out: string) => string[]; expect?: { blksize: number; windowsize: number } }

const CLIENTS: Client[] = [
  { name: 'curl', argv: (l, f, o) => ['curl', '-sS', '--max-time', '120', '-o', o, `tftp://${l.serverIp}/${f}`], expect: { blksize: 512, windowsize: 1 } },
  { name: 'curl --tftp-blksize 1468', argv: (l, f, o) => ['curl', '-sS', '--max-time', '120', '--tftp-blksize', '1468', '-o', o, `tftp://${l.serverIp}/${f}`], expect: { blksize: 1468, windowsize: 1 } },
  {
    name: 'atftp blksize 1468, tsize, windowsize 16',
    argv: (l, f, o) => ['atftp', '--option', 'blksize 1468', '--option', 'tsize 0', '--option', 'windowsize 16', '-g', '-r', f, '-l', o, l.serverIp],
    expect: { blksize: 1468, windowsize: 16 },
  },
  { name: 'atftp blksize 512 (no windowsize)', argv: (l, f, o) => ['atftp', '--option', 'blksize 512', '-g', '-r', f, '-l', o, l.serverIp], expect: { blksize: 512, windowsize: 1 } },
  { name: 'tftp-hpa', argv: (l, f, o) => ['tftp', '-m', 'binary', l.serverIp, '-c', 'get', f, o], expect: { blksize: 512, windowsize: 1 } },
];

t.test('curl, atftp and tftp-hpa fetch small and 32 MiB files with the right sha256', { skip, timeout: 600_000 }, async (t) => {
  const lab = await buildTftpLab(t, 'tfc', 61, FILES);
  let n = 0;
  for (const c of CLIENTS) {
    for (const file of Object.keys(FILES)) {
      const out = path.join(lab.out, `${n++}-${file}`);
      const started = Date.now();
      await lab.net.exec(lab.cli, c.argv(lab, file, out), 180_000);
      const ms = Date.now() - started;
      t.equal(await sha256File(out), lab.sha.get(file), `${c.name}: ${file} sha256 matches`);
      const log = await lab.daemon.waitForEvent('tftp.transfer', 10_000, (l) => l.file === file && typeof l.client === 'string' && !seen.has(`${String(l.client)}/${file}`));
      seen.add(`${String(log.client)}/${file}`);
      t.equal(log.bytes, FILES[file as keyof typeof FILES], `${c.name}: ${file} logged with its size`);
      if (c.expect) t.match(log, c.expect, `${c.name}: negotiated blksize ${c.expect.blksize}, windowsize ${c.expect.windowsize}`);
      for (const k of ['client', 'file', 'blksize', 'windowsize', 'bytes', 'durationMs', 'retransmits']) t.ok(k in log, `log has ${k}`);
      const mib = FILES[file as keyof typeof FILES] / (1 << 20);
      t.comment(`${c.name} ${file}: ${ms} ms${mib >= 1 ? ` (${(mib / (ms / 1000)).toFixed(1)} MiB/s)` : ''}, retransmits ${String(log.retransmits)}`);
    }
  }
  t.equal(lab.daemon.events('tftp.transfer-failed').length, 0, 'no transfer failed');
});

const seen = new Set<string>();
