import t from 'tap';
import { RrqTransfer, negotiate, MIN_RTO_MS, type Action, type TransferLimits } from '../../src/tftp/transfer.js';
import type { TftpOption } from '../../src/tftp/packet.js';

const LIMITS: TransferLimits = { maxBlksize: 1468, maxWindowsize: 16, timeoutMs: 1000, retries: 5 };

function sends(actions: readonly Action[]): number[] {
  return actions.flatMap((a) => (a.type === 'send-data' ? [a.block] : []));
}
function readOf(actions: readonly Action[]): { block: number; count: number } | undefined {
  const r = actions.find((a) => a.type === 'read');
  return r && r.type === 'read' ? { block: r.block, count: r.count } : undefined;
}

/** Drives a transfer: reads complete at once with the right byte count. */
class Driver {
  now = 0;
  log: Action[] = [];
  constructor(readonly x: RrqTransfer) {}
  run(actions: Action[]): Action[] {
    const out: Action[] = [];
    let queue = actions;
    while (queue.length) {
      out.push(...queue);
      const r = readOf(queue);
      queue = [];
      if (r) {
        const start = (r.block - 1) * this.x.params.blksize;
        const bytes = Math.min(this.x.size - start, r.count * this.x.params.blksize);
        queue = this.x.onRead(r.block, r.count, bytes, this.now);
      }
    }
    this.log.push(...out);
    return out;
  }
  start() { return this.run(this.x.start(this.now)); }
  ack(b: number) { return this.run(this.x.onAck(b & 0xffff, this.now)); }
  timeout() { return this.run(this.x.onTimeout(this.now)); }
}

function transfer(size: number, opts: readonly TftpOption[], limits = LIMITS): Driver {
  const p = negotiate(opts, size, limits);
  return new Driver(new RrqTransfer(size, p, limits.retries));
}

t.test('negotiate: OACK only for requested, acceptable options, in the client\'s order', async (t) => {
  t.same(negotiate([], 100, LIMITS), { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] }, 'no options: RFC 1350, no OACK');
  t.same(negotiate([['foo', '1'], ['blksize', '7'], ['windowsize', '0'], ['timeout', '256'], ['tsize', 'x']], 100, LIMITS).oack, [], 'unknown and invalid options ignored, no OACK');
  const n = negotiate([['tsize', '0'], ['blksize', '9000'], ['timeout', '3'], ['windowsize', '64']], 4242, LIMITS);
  t.same(n.oack, [['tsize', '4242'], ['blksize', '1468'], ['timeout', '3'], ['windowsize', '16']]);
  t.equal(n.blksize, 1468, 'blksize capped by maxBlksize');
  t.equal(n.windowsize, 16, 'windowsize capped by maxWindowsize');
  t.equal(n.timeoutMs, 3000, 'timeout in seconds');
  t.same(negotiate([['blksize', '8']], 1, LIMITS).oack, [['blksize', '8']], 'smallest blksize');
  t.same(negotiate([['blksize', '70000']], 1, { ...LIMITS, maxBlksize: 65464 }).oack, [['blksize', '65464']], 'never above RFC 2348 max');
  t.same(negotiate([['blksize', '1024'], ['blksize', '2000']], 1, LIMITS).oack, [['blksize', '1024']], 'first of a repeated option');
  t.same(negotiate([['tsize', '0']], undefined, LIMITS).oack, [], 'tsize left out when the size is unknown');
  t.same(negotiate([['windowsize', '4']], 1, LIMITS).oack, [['windowsize', '4']]);
});

t.test('plain RFC 1350 lock-step: DATA 1.. with no OACK, a short last block, finish on its ACK', async (t) => {
  const d = transfer(1300, []);
  const first = d.start();
  t.notOk(first.some((a) => a.type === 'send-oack'), 'no OACK');
  t.same(sends(first), [1]);
  t.same(first.filter((a) => a.type === 'send-data').map((a) => a.type === 'send-data' && a.length), [512]);
  t.same(sends(d.ack(1)), [2]);
  const last = d.ack(2);
  t.same(last.filter((a) => a.type === 'send-data'), [{ type: 'send-data', block: 3, slot: 0, length: 276 }], 'last block 276 bytes');
  t.same(d.ack(3).find((a) => a.type === 'finish'), { type: 'finish', ok: true });
  t.ok(d.x.done);
  t.equal(d.x.stats.bytesAcked, 1300);
});

t.test('size a multiple of blksize ends with an empty block; empty file is one empty block', async (t) => {
  const d = transfer(1024, []);
  d.start(); d.ack(1);
  const third = d.ack(2);
  t.same(third.filter((a) => a.type === 'send-data'), [{ type: 'send-data', block: 3, slot: 0, length: 0 }]);
  t.ok(d.ack(3).some((a) => a.type === 'finish'));
  const e = transfer(0, []);
  t.same(e.start().filter((a) => a.type === 'send-data'), [{ type: 'send-data', block: 1, slot: 0, length: 0 }]);
  t.ok(e.ack(1).some((a) => a.type === 'finish'));
});

t.test('OACK first, DATA after ACK 0; blksize and windowsize shape the windows', async (t) => {
  const d = transfer(10_000, [['blksize', '1000'], ['windowsize', '4'], ['tsize', '0']]);
  const s = d.start();
  t.same(s[0], { type: 'send-oack', options: [['blksize', '1000'], ['windowsize', '4'], ['tsize', '10000']] });
  t.same(sends(s), [], 'nothing before ACK 0');
  t.same(sends(d.ack(5)), [], 'a stray ACK before the OACK is acknowledged sends nothing');
  t.same(sends(d.ack(0)), [1, 2, 3, 4], 'a whole window at once');
  t.same(sends(d.ack(4)), [5, 6, 7, 8]);
  const w3 = d.ack(8);
  t.same(sends(w3), [9, 10, 11], 'last window: 11 blocks total (10000/1000 + 1 empty)');
  t.equal(w3.filter((a) => a.type === 'send-data').at(-1)?.type === 'send-data' && (w3.filter((a) => a.type === 'send-data').at(-1) as { length: number }).length, 0);
  t.ok(d.ack(11).some((a) => a.type === 'finish'));
});

t.test('window restart after a lost block: ACK of the last good block moves the window there', async (t) => {
  const d = transfer(100_000, [['blksize', '1000'], ['windowsize', '8']]);
  d.start();
  t.same(sends(d.ack(0)), [1, 2, 3, 4, 5, 6, 7, 8]);
  // Block 4 lost: the client acknowledges 3.
  t.same(sends(d.ack(3)), [4, 5, 6, 7, 8, 9, 10, 11], 'restart from block 4');
  t.same(sends(d.ack(3)), [], 'the same ACK again sends nothing');
  t.same(sends(d.ack(11)), [12, 13, 14, 15, 16, 17, 18, 19]);
});

t.test('duplicate and stale ACKs never cause sends (Sorcerer\'s Apprentice)', async (t) => {
  const d = transfer(512 * 50, []);
  d.start();
  let total = 1;
  for (let b = 1; b <= 50; b++) {
    total += sends(d.ack(b)).length;
    total += sends(d.ack(b)).length; // every ACK twice
    total += sends(d.ack(b - 1)).length; // and an old one
  }
  t.equal(total, 51, 'exactly one DATA per block: 50 full + 1 empty');
  t.equal(d.x.stats.duplicateAcks, 100);
  t.ok(d.ack(51).some((a) => a.type === 'finish'));
  t.ok(d.x.done);
});

t.test('timeouts retransmit the window with backoff; no progress for timeout × (retries+1) finishes with an error', async (t) => {
  const d = transfer(10_000, [['windowsize', '2']]);
  d.start();
  d.now = 1;
  d.ack(0);
  const timers: number[] = [];
  let resent = 0;
  let finish: Action | undefined;
  for (let i = 0; i < 100 && !finish; i++) {
    const lastTimer = [...d.log].reverse().find((a) => a.type === 'set-timer');
    d.now += lastTimer && lastTimer.type === 'set-timer' ? lastTimer.ms : 1000;
    const out = d.timeout();
    resent += sends(out).length;
    for (const a of out) if (a.type === 'set-timer') timers.push(a.ms);
    finish = out.find((a) => a.type === 'finish');
  }
  t.match(finish, { type: 'finish', ok: false, reason: /timeout/, sendError: { code: 0 } });
  t.ok(d.now - 1 >= 6000 && d.now - 1 <= 6000 + 1, `gave up after ${d.now - 1} ms without progress (timeout 1000 × 6)`);
  t.ok(timers.every((ms, i) => i === 0 || ms >= timers[i - 1]! || ms < 1000), `backoff ${timers.join(',')}`);
  t.ok(timers.every((ms) => ms <= 1000), 'never above the timeout');
  t.ok(resent <= 2 * 12, `bounded retransmissions (${resent} packets)`);
  t.equal(d.x.stats.retransmits, resent);
  t.same(sends(d.ack(2)), [], 'nothing after finishing');
});

t.test('OACK is retransmitted on timeout; progress resets the give-up clock', async (t) => {
  const d = transfer(600, [['tsize', '0']]);
  d.start();
  d.now = 250;
  t.ok(d.timeout().some((a) => a.type === 'send-oack'), 'OACK again');
  d.now = 5000;
  t.same(sends(d.ack(0)), [1]);
  d.now = 5900;
  t.same(sends(d.timeout()), [1], 'block 1 again, no give-up: progress was 900 ms ago');
  d.now = 6000;
  t.same(sends(d.ack(1)), [2]);
  t.ok(d.ack(2).some((a) => a.type === 'finish' && a.ok));
});

t.test('the retransmission timeout adapts to the measured round trip, not below the floor', async (t) => {
  const d = transfer(512 * 100, []);
  d.start();
  for (let b = 1; b <= 20; b++) { d.now += 2; d.ack(b); }
  t.equal(d.x.currentRto, MIN_RTO_MS, 'fast LAN: floor');
  const slow = transfer(512 * 100, [['timeout', '2']]);
  slow.start();
  slow.now += 300;
  slow.ack(0);
  for (let b = 1; b <= 20; b++) { slow.now += 300; slow.ack(b); }
  t.ok(slow.x.currentRto > 300 && slow.x.currentRto <= 2000, `slow client: ${slow.x.currentRto} ms`);
});

t.test('block numbers roll over to 0 after 65535', async (t) => {
  const d = transfer(512 * 65_540, []);
  d.start();
  for (let b = 1; b <= 65_535; b++) d.ack(b);
  const next = d.ack(65_535);
  t.same(sends(next), [], 'duplicate at the edge');
  t.same(sends(d.ack(65_536)), [65_537], 'ACK 0 on the wire is block 65536');
  t.equal(d.x.stats.duplicateAcks, 1);
});

t.test('short read (file shrank), read error and client error finish the transfer', async (t) => {
  const x = new RrqTransfer(2000, negotiate([], 2000, LIMITS), 5);
  const r = x.start(0);
  t.match(readOf(r), { block: 1, count: 1 });
  t.match(x.onRead(1, 1, 100, 0).find((a) => a.type === 'finish'), { ok: false, reason: /short read/, sendError: { code: 0 } });
  const y = new RrqTransfer(2000, negotiate([], 2000, LIMITS), 5);
  y.start(0);
  t.match(y.onReadError('EIO').find((a) => a.type === 'finish'), { ok: false, sendError: {} });
  const z = new RrqTransfer(2000, negotiate([['blksize', '1024']], 2000, LIMITS), 5);
  z.start(0);
  const f = z.onClientError(8, 'declined');
  t.match(f.find((a) => a.type === 'finish'), { ok: false, declined: true, reason: /client error 8/ }, 'an ERROR answering the OACK: options declined (a size query)');
  t.notOk(f.some((a) => a.type === 'finish' && a.sendError), 'no error sent back to an error');
  // Once data has gone out, the same ERROR is a failed transfer.
  const w = new RrqTransfer(2000, negotiate([], 2000, LIMITS), 5);
  w.start(0);
  w.onRead(1, 1, 512, 0);
  const g = w.onClientError(8, 'declined');
  t.match(g.find((a) => a.type === 'finish'), { ok: false, reason: /client error 8/ });
  t.notOk(g.some((a) => a.type === 'finish' && a.declined), 'after data: failed, not declined');
});
