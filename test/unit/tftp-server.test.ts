import t from 'tap';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { bufferFile, DirectoryProvider } from '../../src/tftp/provider.js';
import { TftpServer } from '../../src/tftp/server.js';
import { decodePacket, encodeAck, encodeRequest, OP_OACK, type TftpPacket } from '../../src/tftp/packet.js';
import { Writable } from 'node:stream';

const quiet = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

function nextPacket(s: dgram.Socket): Promise<{ p: TftpPacket; port: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer')), 3000);
    s.once('message', (m, r) => { clearTimeout(timer); const d = decodePacket(m); if (d.ok) resolve({ p: d.packet, port: r.port }); else reject(new Error(d.reason)); });
  });
}

t.test('blksize is capped by the interface MTU − 32; stop() aborts running transfers', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mbt-tftp-srv-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'f.bin'), Buffer.alloc(100_000, 1));
  const server = new TftpServer({
    config: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, interface: '', maxBlksize: 1468, maxWindowsize: 16, maxTransfers: 8, timeoutMs: 1000, retries: 5 },
    provider: new DirectoryProvider(root), log: quiet, mtu: 1000,
  });
  // port 0 in the config: an ephemeral request port for the test.
  await server.start();
  t.equal(server.maxBlksize, 968);
  const c = dgram.createSocket('udp4');
  await new Promise<void>((r) => c.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => c.close());
  c.send(encodeRequest({ op: 1, filename: 'f.bin', mode: 'octet', options: [['blksize', '1468'], ['tsize', '0']] }), server.port, '127.0.0.1');
  const oack = await nextPacket(c);
  t.same(oack.p, { op: OP_OACK, options: [['blksize', '968'], ['tsize', '100000']] });
  c.send(encodeAck(0), oack.port, '127.0.0.1');
  const data = await nextPacket(c);
  t.match(data.p, { op: 3, block: 1 });
  t.equal(server.activeTransfers, 1);
  await server.stop();
  t.equal(server.activeTransfers, 0, 'stopped with the transfer aborted');
  t.equal(server.counters.failed, 1);
});

/**
 * The event loop is held up past the give-up time while the client's ACK is
 * already waiting in the socket: the transfer must read it and go on, not
 * judge the client silent. Both ways a window is sent: streamed from a
 * regular file (native) and from a provider without a descriptor (JavaScript).
 */
for (const kind of ['regular file (streamed)', 'in-memory file']) {
  t.test(`a stalled event loop does not fail a transfer whose ACKs are waiting: ${kind}`, async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'mbt-tftp-stall-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const content = Buffer.alloc(512 * 5 + 7, 3);
    await writeFile(join(root, 'f.bin'), content);
    const dir = new DirectoryProvider(root);
    const provider = kind.startsWith('regular') ? dir : { open: async () => ({ ok: true as const, file: bufferFile(content) }) };
    const server = new TftpServer({
      // Give up after 100 ms × (1 + 1) without progress.
      config: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, interface: '', maxBlksize: 1468, maxWindowsize: 16, maxTransfers: 8, timeoutMs: 100, retries: 1 },
      provider, log: quiet,
    });
    await server.start();
    t.teardown(() => server.stop());
    const c = dgram.createSocket('udp4');
    await new Promise<void>((r) => c.bind(0, '127.0.0.1', () => r()));
    t.teardown(() => c.close());
    c.send(encodeRequest({ op: 1, filename: 'f.bin', mode: 'octet' }), server.port, '127.0.0.1');
    const blocks: number[] = [];
    for (let i = 1; i <= 6; i++) {
      let d = await nextPacket(c);
      // The stall holds this client too (one process): the streaming thread's next
      // block waited unacknowledged through it, so the server may legitimately
      // send it again afterwards. A duplicate of an earlier block is skipped, as
      // a real client skips it; anything else must be the next block.
      for (let dup = 0; d.p.op === 3 && d.p.block < i && dup < 3; dup++) d = await nextPacket(c);
      t.match(d.p, { op: 3, block: i });
      blocks.push(i);
      c.send(encodeAck(i), d.port, '127.0.0.1');
      if (i === 2) {
        // The ACK is on its way (dgram sends at once); now hold the loop for twice the give-up time.
        const until = Date.now() + 400;
        while (Date.now() < until) { /* stall */ }
      }
    }
    await new Promise((r) => setTimeout(r, 100));
    t.same(blocks, [1, 2, 3, 4, 5, 6]);
    t.equal(server.counters.completed, 1, 'completed');
    t.equal(server.counters.failed, 0, 'not given up');
  });
}
