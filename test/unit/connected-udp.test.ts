/**
 * net/connected-udp.ts and native/udp-pump.c against the kernel's real UDP on
 * loopback: batches leave in order with the right bytes, ACKs and other
 * packets arrive classified, strangers are not delivered, ICMP errors are
 * reported, bad batches are refused, and close stops everything.
 */
import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnectedUdp, STREAM_RECORD, streamRecord, type PeerPacket, type StreamRecord } from '../../src/net/connected-udp.js';

async function peer(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

function collect(s: dgram.Socket, n: number, ms = 2000): Promise<Buffer[]> {
  const got: Buffer[] = [];
  return new Promise((resolve) => {
    const timer = setTimeout(() => { s.off('message', on); resolve(got); }, ms);
    const on = (m: Buffer) => {
      got.push(m);
      if (got.length === n) { clearTimeout(timer); s.off('message', on); resolve(got); }
    };
    s.on('message', on);
  });
}

function until(packets: PeerPacket[], n: number, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve) => {
    const check = () => (packets.length >= n || Date.now() > end ? resolve() : setTimeout(check, 5));
    check();
  });
}

t.test('a batch leaves in order, each packet exactly its slice of the buffer', async (t) => {
  const p = await peer();
  t.teardown(() => p.close());
  const sock = ConnectedUdp.open({ address: '127.0.0.1', device: '', peerAddress: '127.0.0.1', peerPort: p.address().port }, () => undefined);
  t.teardown(() => sock.close());
  t.ok(sock.port > 0, `bound to an ephemeral port (${sock.port})`);
  const buf = Buffer.alloc(300);
  for (let i = 0; i < buf.length; i++) buf[i] = i & 0xff;
  const offsets = Uint32Array.from([0, 100, 200]);
  const lengths = Uint32Array.from([10, 100, 1]);
  const arriving = collect(p, 3);
  t.equal(sock.send(buf, offsets, lengths, 3), 3, 'three sent');
  const got = await arriving;
  t.same(got.map((b) => [...b]), [[...buf.subarray(0, 10)], [...buf.subarray(100, 200)], [...buf.subarray(200, 201)]]);
  // The buffer is free again at once: change it and send the first slot only.
  buf.fill(7, 0, 10);
  const again = collect(p, 1);
  t.equal(sock.send(buf, offsets, lengths, 1), 1);
  t.same([...(await again)[0]!], new Array(10).fill(7), 'the kernel copied the bytes at send time');
});

t.test('packets from the peer arrive classified; strangers are not delivered', async (t) => {
  const p = await peer();
  const stranger = await peer();
  t.teardown(() => { p.close(); stranger.close(); });
  const packets: PeerPacket[] = [];
  const sock = ConnectedUdp.open({ address: '127.0.0.1', device: '', peerAddress: '127.0.0.1', peerPort: p.address().port }, (x) => packets.push(x));
  t.teardown(() => sock.close());
  stranger.send(Buffer.from([0, 4, 0, 9]), sock.port, '127.0.0.1');
  p.send(Buffer.from([0, 4, 0xab, 0xcd]), sock.port, '127.0.0.1');
  p.send(Buffer.from([0, 5, 0, 1, 0x62, 0x79, 0x65, 0]), sock.port, '127.0.0.1');
  await until(packets, 2);
  await new Promise((r) => setTimeout(r, 50));
  t.same(packets, [
    { kind: 'ack', block: 0xabcd },
    { kind: 'other', data: Buffer.from([0, 5, 0, 1, 0x62, 0x79, 0x65, 0]) },
  ], 'the ACK as its block number, the ERROR as bytes; nothing from the stranger');
});

t.test('an ICMP port unreachable from a vanished peer is reported as a receive error', async (t) => {
  const p = await peer();
  const port = p.address().port;
  await new Promise<void>((r) => p.close(() => r()));
  const packets: PeerPacket[] = [];
  const sock = ConnectedUdp.open({ address: '127.0.0.1', device: '', peerAddress: '127.0.0.1', peerPort: port }, (x) => packets.push(x));
  t.teardown(() => sock.close());
  t.equal(sock.sendOne(Buffer.from('hello')), 1);
  await until(packets, 1);
  t.same(packets, [{ kind: 'error', errno: 111 }], 'ECONNREFUSED');
  t.ok(sock.sendOne(Buffer.from('again')) <= 1, 'a later send reports, never throws');
  // The socket still hears its peer afterwards: a peer bound again on that port answers.
  const back = dgram.createSocket('udp4');
  await new Promise<void>((r) => back.bind(port, '127.0.0.1', () => r()));
  t.teardown(() => back.close());
  packets.length = 0;
  back.send(Buffer.from([0, 4, 0, 2]), sock.port, '127.0.0.1');
  const end = Date.now() + 2000;
  while (!packets.some((x) => x.kind === 'ack') && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  // The error from the second send may arrive first.
  t.same(packets.filter((x) => x.kind !== 'error'), [{ kind: 'ack', block: 2 }], 'still receiving after the error');
});

t.test('a batch outside the buffer or bigger than the arrays is refused before anything is sent', async (t) => {
  const p = await peer();
  t.teardown(() => p.close());
  const sock = ConnectedUdp.open({ address: '127.0.0.1', device: '', peerAddress: '127.0.0.1', peerPort: p.address().port }, () => undefined);
  t.teardown(() => sock.close());
  const buf = Buffer.alloc(64);
  const arriving = collect(p, 1, 300);
  t.throws(() => sock.send(buf, Uint32Array.from([0, 60]), Uint32Array.from([4, 5]), 2), RangeError, 'the second packet ends past the buffer');
  t.throws(() => sock.send(buf, Uint32Array.from([0xffffffff]), Uint32Array.from([2]), 1), RangeError, 'offset overflow');
  t.throws(() => sock.send(buf, Uint32Array.from([0]), Uint32Array.from([4]), 2), TypeError, 'count beyond the arrays');
  t.same(await arriving, [], 'nothing left');
});

t.test('close stops receiving and sending and frees the port', async (t) => {
  const p = await peer();
  t.teardown(() => p.close());
  const packets: PeerPacket[] = [];
  const sock = ConnectedUdp.open({ address: '127.0.0.1', device: '', peerAddress: '127.0.0.1', peerPort: p.address().port }, (x) => packets.push(x));
  const port = sock.port;
  sock.close();
  sock.close();
  t.equal(sock.sendOne(Buffer.from('x')), 0, 'a send after close does nothing');
  p.send(Buffer.from([0, 4, 0, 1]), port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 100));
  t.same(packets, [], 'nothing delivered after close');
  // The fd is closed once libuv lets go of it: the port can be bound again.
  const again = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => { again.once('error', reject); again.bind(port, '127.0.0.1', () => resolve()); });
  again.close();
  t.pass('port free again');
});

t.test('opening towards a bad address names what failed', async (t) => {
  t.throws(() => ConnectedUdp.open({ address: '127.0.0.1', device: '', peerAddress: 'not-an-ip', peerPort: 69 }, () => undefined), /cannot open UDP 127\.0\.0\.1:0 to not-an-ip:69/);
  t.throws(() => ConnectedUdp.open({ address: '127.0.0.1', device: 'no-such-if0', peerAddress: '127.0.0.2', peerPort: 69 }, () => undefined), /on no-such-if0/);
});

/**
 * Streaming: the peer plays a TFTP client (ACKs the last block of each window);
 * the native side answers each full-window ACK with the next window from the
 * file, logs it, hands the log over when full or before any other packet, and
 * leaves the ACK of the file's last block to JavaScript.
 */
async function streamRun(t: Test, blksize: number, windowsize: number, size: number, logRecords: number) {
  const dir = await mkdtemp(join(tmpdir(), 'mbt-pump-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bytes = randomBytes(size);
  await writeFile(join(dir, 'f'), bytes);
  const fh = await open(join(dir, 'f'), 'r');
  t.teardown(() => fh.close());
  const p = await peer();
  t.teardown(() => p.close());
  const events: PeerPacket[] = [];
  const records: StreamRecord[] = [];
  const log = new Float64Array(logRecords * STREAM_RECORD);
  const sock = ConnectedUdp.open({ address: '127.0.0.1', device: '', peerAddress: '127.0.0.1', peerPort: p.address().port }, (x) => {
    events.push(x);
    if (x.kind === 'log') for (let i = 0; i < x.count; i++) records.push(streamRecord(log, i));
  });
  t.teardown(() => sock.close());
  const total = Math.floor(size / blksize) + 1;
  const slotLen = 4 + blksize;
  const slots = Buffer.alloc(slotLen * Math.min(windowsize, total));
  sock.stream(fh.fd, slots, blksize, windowsize, size, log);
  // The first window is JavaScript's: fill the slots, send, arm.
  const count = Math.min(windowsize, total);
  const offsets = new Uint32Array(count);
  const lengths = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const data = bytes.subarray(i * blksize, (i + 1) * blksize);
    slots.writeUInt16BE(3, i * slotLen);
    slots.writeUInt16BE(i + 1, i * slotLen + 2);
    data.copy(slots, i * slotLen + 4);
    offsets[i] = i * slotLen;
    lengths[i] = 4 + data.length;
  }
  t.equal(sock.send(slots, offsets, lengths, count), count);
  sock.arm(1, count);
  // The client: collect blocks, ACK each full window (or the last block).
  const received: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stalled at block ${received.length}`)), 5000);
    p.on('message', (m, r) => {
      const block = m.readUInt16BE(2);
      if (m.readUInt16BE(0) !== 3 || block !== ((received.length + 1) & 0xffff)) return;
      received.push(m.subarray(4));
      const last = m.length - 4 < blksize;
      if (last || received.length % windowsize === 0) p.send(Buffer.from([0, 4, block >> 8, block & 0xff]), r.port, '127.0.0.1');
      if (last) { clearTimeout(timer); resolve(); }
    });
  });
  await new Promise((r) => setTimeout(r, 50));
  t.ok(Buffer.concat(received).equals(bytes), `the file arrived whole (${received.length} blocks)`);
  // Every window after the first was sent natively and logged, in order.
  const windows = Math.ceil(total / windowsize);
  t.equal(records.length, windows - 1, 'one record per natively sent window');
  records.forEach((r, i) => {
    const first = (i + 1) * windowsize + 1;
    const n = Math.min(windowsize, total - first + 1);
    if (r.first !== first || r.count !== n || r.ackBlock !== first - 1 || r.bytes !== Math.min(size - (first - 1) * blksize, n * blksize) || r.sentAt < r.ackAt) {
      t.fail(`record ${i}: ${JSON.stringify(r)}`);
    }
  });
  // Only the ACK of the last block reached JavaScript as a packet, after the last log.
  const acks = events.filter((e) => e.kind === 'ack');
  t.same(acks, [{ kind: 'ack', block: total & 0xffff }], 'the last ACK is left to JavaScript');
  t.same(events.slice(-2).map((e) => e.kind), ['ack', 'settled'], 'after the records, then settled');
  t.ok(events.filter((e) => e.kind === 'log').every((e) => e.kind === 'log' && e.count <= logRecords), 'the log is handed over before it overflows');
  return { sock, records };
}

t.test('streaming lock-step: each ACK is answered natively with the next block from the file', async (t) => {
  await streamRun(t, 512, 1, 512 * 20 + 100, 4);
});

t.test('streaming windows of 3, a file that ends on a block boundary (an empty last block)', async (t) => {
  await streamRun(t, 64, 3, 64 * 10, 64);
});

t.test('streaming: a duplicate ACK, a disarmed window and drain() go through JavaScript', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mbt-pump-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'f'), randomBytes(1000));
  const fh = await open(join(dir, 'f'), 'r');
  t.teardown(() => fh.close());
  const p = await peer();
  t.teardown(() => p.close());
  const events: PeerPacket[] = [];
  const log = new Float64Array(8 * STREAM_RECORD);
  const sock = ConnectedUdp.open({ address: '127.0.0.1', device: '', peerAddress: '127.0.0.1', peerPort: p.address().port }, (x) => events.push(x));
  t.teardown(() => sock.close());
  const slots = Buffer.alloc(4 + 100);
  sock.stream(fh.fd, slots, 100, 1, 1000, log);
  sock.arm(1, 1);
  const ack = (b: number) => p.send(Buffer.from([0, 4, 0, b]), sock.port, '127.0.0.1');
  const data = collect(p, 2);
  ack(1);
  ack(2);
  t.same((await data).map((m) => m.readUInt16BE(2)), [2, 3], 'ACK 1 and ACK 2 answered natively');
  t.same(events, [], 'nothing for JavaScript yet');
  t.equal(sock.drain(), 2, 'two records wait');
  t.same([streamRecord(log, 0).first, streamRecord(log, 1).first], [2, 3]);
  t.equal(sock.drain(), 0, 'drained');
  ack(2);
  await new Promise((r) => setTimeout(r, 50));
  t.same(events, [{ kind: 'ack', block: 2 }, { kind: 'settled' }], 'a duplicate ACK goes to JavaScript, and disarms');
  ack(3);
  await new Promise((r) => setTimeout(r, 50));
  t.same(events.slice(2), [{ kind: 'ack', block: 3 }, { kind: 'settled' }], 'disarmed: the next ACK goes to JavaScript too');
  t.equal(sock.arm(3, 1), true, 'armed again once everything was handed over');
  const more = collect(p, 1);
  ack(3);
  t.same((await more).map((m) => m.readUInt16BE(2)), [4], 'ACK 3 answered natively again');
  t.equal(sock.drain(), 1);
  sock.arm(0, 0);
  ack(4);
  await new Promise((r) => setTimeout(r, 50));
  t.same(events.slice(4), [{ kind: 'ack', block: 4 }, { kind: 'settled' }], 'arm(0, 0) disarms');
  t.throws(() => sock.arm(10, 2), RangeError, 'a window past the end of the file');
  t.throws(() => sock.arm(1, 2), RangeError, 'a window larger than windowsize');
  t.throws(() => sock.stream(fh.fd, slots, 100, 1, 1000, log), TypeError, 'streaming is set up once');
  const other = ConnectedUdp.open({ address: '127.0.0.1', device: '', peerAddress: '127.0.0.1', peerPort: p.address().port }, () => undefined);
  t.teardown(() => other.close());
  t.throws(() => other.stream(fh.fd, slots, 100, 65, 1000, log), RangeError, 'windowsize above 64');
  t.throws(() => other.stream(fh.fd, Buffer.alloc(10), 100, 1, 1000, log), RangeError, 'slots smaller than one block');
});
