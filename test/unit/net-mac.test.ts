import t from 'tap';
import { nonUnicastMacReason, parseMac } from '../../src/net/mac.js';

t.test('nonUnicastMacReason: broadcast, any group-bit address and all-zero are not one machine\'s', async (t) => {
  t.equal(nonUnicastMacReason(parseMac('ff:ff:ff:ff:ff:ff')), 'the broadcast address');
  t.equal(nonUnicastMacReason(parseMac('00:00:00:00:00:00')), 'the all-zero address');
  for (const m of ['01:00:5e:00:00:01', '33:33:00:00:00:01', '01:80:c2:00:00:00', '03:00:00:00:00:00']) {
    t.equal(nonUnicastMacReason(parseMac(m)), 'a multicast address', `${m}: group bit set`);
  }
  for (const m of ['52:54:00:12:34:56', '02:00:00:00:00:01', '00:00:00:00:00:01', 'fe:ff:ff:ff:ff:ff']) {
    t.equal(nonUnicastMacReason(parseMac(m)), undefined, `${m}: unicast (locally administered or not)`);
  }
});
