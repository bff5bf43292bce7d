import t from 'tap';
import { TokenBucket, TokenBucketLimiter } from '../../src/syslog/rate-limit.js';

t.test('burst, then the refill rate', async (t) => {
  let now = 1000;
  const l = new TokenBucketLimiter({ ratePerSecond: 10, burst: 5, clock: () => now });
  const takes = (n: number, key = 'a'): number => { let k = 0; for (let i = 0; i < n; i++) if (l.take(key)) k++; return k; };
  t.equal(takes(20), 5, 'a full bucket lets the burst through');
  now += 100;
  t.equal(takes(5), 1, '100 ms at 10/s is one token');
  now += 50;
  t.equal(takes(5), 0, 'half a token is not enough');
  now += 50;
  t.equal(takes(5), 1);
  now += 60_000;
  t.equal(takes(20), 5, 'an idle bucket refills to burst, not beyond');
  t.equal(takes(5, 'b'), 5, 'another source has its own bucket');
});

t.test('fractional rates and a clock that steps back', async (t) => {
  let now = 0;
  const l = new TokenBucketLimiter({ ratePerSecond: 0.5, burst: 1, clock: () => now });
  t.ok(l.take('x'));
  t.notOk(l.take('x'));
  now = 1999;
  t.notOk(l.take('x'));
  now = 2000;
  t.ok(l.take('x'), 'one token per 2 s');
  now = -50_000;
  t.notOk(l.take('x'), 'time going backwards refills nothing');
});

t.test('the table is bounded: spoofed sources evict the least recently used', async (t) => {
  let now = 0;
  const l = new TokenBucketLimiter({ ratePerSecond: 1, burst: 2, maxSources: 100, clock: () => now });
  t.ok(l.take('busy'));
  t.ok(l.take('busy'));
  t.notOk(l.take('busy'), 'busy is limited');
  for (let i = 0; i < 99; i++) l.take(`10.0.0.${i}`);
  t.equal(l.size, 100);
  t.notOk(l.take('busy'), 'busy still tracked (and refreshed) at the cap');
  for (let i = 0; i < 10_000; i++) l.take(`spoof-${i}`);
  t.equal(l.size, 100, 'never more than maxSources');
  t.equal(l.evictions, 10_000);
  t.ok(l.take('busy'), 'an evicted source comes back with a full bucket');
});

t.test('options are checked', async (t) => {
  t.throws(() => new TokenBucketLimiter({ ratePerSecond: 0, burst: 1 }), RangeError);
  t.throws(() => new TokenBucketLimiter({ ratePerSecond: Number.NaN, burst: 1 }), RangeError);
  t.throws(() => new TokenBucketLimiter({ ratePerSecond: 1, burst: 0.5 }), RangeError);
  t.throws(() => new TokenBucketLimiter({ ratePerSecond: 1, burst: 1, maxSources: 0 }), RangeError);
  t.doesNotThrow(() => new TokenBucketLimiter({ ratePerSecond: 1, burst: 1 }).take('a'));
});

t.test('TokenBucket: one bucket for every source together', async (t) => {
  let now = 0;
  const b = new TokenBucket({ ratePerSecond: 200, burst: 1000, clock: () => now });
  let n = 0;
  for (let i = 0; i < 5000; i++) if (b.take()) n++;
  t.equal(n, 1000, 'the burst, then nothing');
  now += 1000;
  n = 0;
  for (let i = 0; i < 5000; i++) if (b.take()) n++;
  t.equal(n, 200, 'one second refills the rate');
  now += 10;
  t.ok(b.take(), '10 ms at 200/s is two tokens');
  t.ok(b.take());
  t.notOk(b.take());
  now = -1e6;
  t.notOk(b.take(), 'a clock stepping back refills nothing');
  t.throws(() => new TokenBucket({ ratePerSecond: 0, burst: 1 }), RangeError);
  t.throws(() => new TokenBucket({ ratePerSecond: 1, burst: 0.5 }), RangeError);
});
