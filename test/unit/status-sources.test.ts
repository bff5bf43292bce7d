import t from 'tap';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import { DirectoryProvider } from '../../src/tftp/provider.js';
import { TftpServer } from '../../src/tftp/server.js';
import { decodePacket, encodeRequest, OP_OACK } from '../../src/tftp/packet.js';
import { EventBus } from '../../src/events/bus.js';
import { MacHistory } from '../../src/status/history.js';
import { matches, parseEventFilter } from '../../src/status/filter.js';
import { parseMac } from '../../src/net/mac.js';

const quiet = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const A = parseMac('52:54:00:00:00:0a');
const B = parseMac('52:54:00:00:00:0b');
const C = parseMac('02:00:00:00:00:0c');

t.test('TftpServer.transfersInProgress: a running transfer with its progress, none after stop', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mbt-tftp-prog-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'f.bin'), Buffer.alloc(50_000, 1));
  let now = 5000;
  const server = new TftpServer({
    config: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, interface: '', maxBlksize: 1468, maxWindowsize: 4, maxTransfers: 8, timeoutMs: 1000, retries: 5 },
    provider: new DirectoryProvider(root), log: quiet, mtu: 1500, clock: () => now,
  });
  await server.start();
  t.same(server.transfersInProgress(), []);
  const c = dgram.createSocket('udp4');
  await new Promise<void>((r) => c.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => c.close());
  const got = new Promise<Buffer>((r) => c.once('message', (m) => r(m)));
  c.send(encodeRequest({ op: 1, filename: 'f.bin', mode: 'octet', options: [['tsize', '0']] }), server.port, '127.0.0.1');
  const first = decodePacket(await got);
  t.ok(first.ok && first.packet.op === OP_OACK, 'OACK');
  now = 6000;
  const list = server.transfersInProgress();
  t.same(list, [{ client: '127.0.0.1', file: 'f.bin', size: 50_000, bytes: 0, startedAt: 5000, retransmits: 0 }]);
  await server.stop();
  t.same(server.transfersInProgress(), []);
});

t.test('MacHistory: per-MAC, bounded per MAC and in MACs, most recent first, seeded from the ring', async (t) => {
  const bus = new EventBus(() => 1);
  bus.publish({ type: 'dhcp.offer', mac: A, ip: '10.0.0.1' });
  const h = new MacHistory({ perMac: 3, maxMacs: 2 });
  const off = h.attach(bus);
  t.equal(h.of(A).length, 1, 'took the ring');
  for (let i = 0; i < 5; i++) bus.publish({ type: 'syslog', mac: A, ip: '10.0.0.1', severity: 6, text: `l${i}` });
  t.same(h.of(A).map((e) => e.seq), [4, 5, 6], 'last 3 kept');
  bus.publish({ type: 'dhcp.offer', mac: B });
  bus.publish({ type: 'tftp.start', client: 'x', file: 'f', size: 1 }); // no MAC: ignored
  t.same(h.macs(), [B, A]);
  bus.publish({ type: 'dhcp.offer', mac: A });
  bus.publish({ type: 'dhcp.offer', mac: C });
  t.same(h.macs(), [C, A], 'least recently active MAC dropped');
  t.same(h.of(B), []);
  off();
  bus.publish({ type: 'dhcp.offer', mac: B });
  t.equal(h.size, 2);
  t.same(h.of(B), [], 'detached');
});

t.test('event filters: MAC exact or prefix, type prefixes, strict parsing', async (t) => {
  const bus = new EventBus(() => 1);
  const ea = bus.publish({ type: 'dhcp.ack', mac: A, ip: '10.0.0.1' });
  const eb = bus.publish({ type: 'tftp.end', client: '1.1.1.1', file: 'f', ok: true, bytes: 1, size: 1, durationMs: 1, retransmits: 0, mac: B });
  const ec = bus.publish({ type: 'syslog', mac: C, ip: '1.1.1.1', severity: 6, text: 'x' });
  const en = bus.publish({ type: 'tftp.start', client: '1.1.1.1', file: 'f', size: 1 });
  const sel = (q: { mac?: string; type?: string }) => {
    const p = parseEventFilter(q);
    if (!p.ok) throw new Error(p.error);
    return [ea, eb, ec, en].filter((e) => matches(p.filter, e)).map((e) => e.seq);
  };
  t.same(sel({}), [1, 2, 3, 4]);
  t.same(sel({ mac: '52-54-00-00-00-0A' }), [1], 'any MAC notation, exact');
  t.same(sel({ mac: '52:54:00' }), [1, 2], 'prefix');
  t.same(sel({ type: 'dhcp' }), [1]);
  t.same(sel({ type: 'tftp.end,syslog' }), [2, 3]);
  t.same(sel({ mac: '02', type: 'syslog' }), [3]);
  t.same(sel({ mac: '', type: '' }), [1, 2, 3, 4], 'empty means no filter');
  for (const bad of [{ mac: 'zz' }, { mac: '525400' }, { mac: '52:54:00:00:00:00:00' }, { type: 'DHCP' }, { type: 'a b' }, { mac: ['a', 'b'] }, { type: 'x,'.repeat(30) + 'y' }]) {
    const p = parseEventFilter(bad as never);
    t.equal(p.ok, false, JSON.stringify(bad));
  }
});
