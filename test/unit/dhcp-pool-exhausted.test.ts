import t from 'tap';
import { PoolExhaustionWarnings } from '../../src/dhcp/pool-exhausted.js';

t.test('pool-exhausted warnings: at most one per subnet per interval, with the count kept quiet', async (t) => {
  const w = new PoolExhaustionWarnings(60_000);
  t.same(w.note('10.0.0.0/24', 0), { subnet: '10.0.0.0/24', suppressed: 0 }, 'the first is reported');
  for (let i = 1; i <= 5; i++) t.equal(w.note('10.0.0.0/24', i * 1000), undefined, `then quiet (${i})`);
  t.same(w.note('10.1.0.0/24', 5000), { subnet: '10.1.0.0/24', suppressed: 0 }, 'another subnet has its own interval');
  t.equal(w.note('10.0.0.0/24', 59_999), undefined, 'still inside the minute');
  t.same(w.note('10.0.0.0/24', 60_000), { subnet: '10.0.0.0/24', suppressed: 6 }, 'a minute later: reported, with the 6 not reported');
  t.equal(w.note('10.0.0.0/24', 60_001), undefined);
});
