/**
 * Transfers under packet loss: nftables drops 5 % of the packets arriving on
 * the client's veth (this kernel has no netem). Every client still gets the
 * right bytes; the server's retransmissions are counted in its log.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildTftpLab, droppedPackets, dropOnClientIngress, sha256File, tftpClient } from '../helpers/tftp.js';
import { netnsUnavailable } from '../helpers/netns.js';

const MISSING = ['/usr/bin/curl', '/usr/bin/atftp', '/usr/bin/tftp', '/usr/sbin/nft'].find((f) => !existsSync(f));
const skip = netnsUnavailable() || (MISSING ? `${MISSING} is not installed` : false);

t.test('5 % loss on the client side: curl, atftp, tftp-hpa and a windowed transfer complete with the right sha256', { skip, timeout: 600_000 }, async (t) => {
  const files = { 'small.bin': 70_001, 'mid.bin': 2 << 20 };
  const lab = await buildTftpLab(t, 'tfl', 63, files);
  await dropOnClientIngress(lab, 50);
  const { serverIp: ip } = lab;
  const runs: [string, (f: string, o: string) => string[]][] = [
    ['curl --tftp-blksize 1468', (f, o) => ['curl', '-sS', '--max-time', '300', '--tftp-blksize', '1468', '-o', o, `tftp://${ip}/${f}`]],
    ['tftp-hpa', (f, o) => ['tftp', '-m', 'binary', ip, '-c', 'get', f, o]],
    ['atftp windowsize 16', (f, o) => ['atftp', '--option', 'blksize 1468', '--option', 'windowsize 16', '-g', '-r', f, '-l', o, ip]],
  ];
  let n = 0;
  for (const [name, argv] of runs) {
    for (const file of Object.keys(files)) {
      const out = path.join(lab.out, `${n++}-${file}`);
      const started = Date.now();
      await lab.net.exec(lab.cli, argv(file, out), 300_000);
      t.equal(await sha256File(out), lab.sha.get(file), `${name}: ${file} sha256 matches under loss`);
      t.comment(`${name} ${file}: ${Date.now() - started} ms`);
    }
  }
  const w = await tftpClient(lab, 'get', { file: 'mid.bin', options: [['blksize', '1468'], ['windowsize', '8']], timeoutMs: 10_000 }, 300_000);
  // On failure tap prints the extra object: the client's answer and the server's failed transfers.
  const diag = { client: w, failed: lab.daemon.events('tftp.transfer-failed') };
  t.equal(w.sha256, lab.sha.get('mid.bin'), 'socket-level windowed client (windowsize 8): sha256 matches under loss', diag);
  const dropped = await droppedPackets(lab);
  const retransmits = lab.daemon.events('tftp.transfer').reduce((s, l) => s + Number(l.retransmits), 0);
  t.ok(dropped > 50, `packets were really dropped (${dropped})`);
  t.ok(retransmits > 0, `the server retransmitted (${retransmits} packets)`);
  t.equal(lab.daemon.events('tftp.transfer-failed').length, 0, 'no transfer failed', diag);
});
