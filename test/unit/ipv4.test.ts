import t from 'tap';
import { parseIpv4, formatIpv4, parseCidr, cidrContains, cidrBroadcast, ipv4FromBytes, ipv4ToBytes, rangesOverlap, Ipv4ParseError, type Ipv4 } from '../../src/net/ipv4.js';
import { parseMac, macFromBytes, MacParseError } from '../../src/net/mac.js';

t.test('parseIpv4 is strict', async (t) => {
  t.equal(parseIpv4('10.99.0.1'), 0x0a630001);
  t.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  t.equal(formatIpv4(parseIpv4('192.168.1.200')), '192.168.1.200');
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', ' 1.2.3.4', '1.2.3.4x', '0x1.2.3.4']) {
    t.throws(() => parseIpv4(bad), Ipv4ParseError, bad);
  }
});

t.test('bytes round trip', async (t) => {
  const ip = parseIpv4('172.16.5.254');
  t.same([...ipv4ToBytes(ip)], [172, 16, 5, 254]);
  t.equal(ipv4FromBytes(ipv4ToBytes(ip)), ip);
  t.throws(() => ipv4FromBytes(Buffer.alloc(3)));
});

t.test('cidr', async (t) => {
  const c = parseCidr('10.99.0.0/24');
  t.ok(cidrContains(c, parseIpv4('10.99.0.77')));
  t.notOk(cidrContains(c, parseIpv4('10.99.1.1')));
  t.equal(formatIpv4(cidrBroadcast(c)), '10.99.0.255');
  t.ok(cidrContains(parseCidr('0.0.0.0/0'), parseIpv4('8.8.8.8')));
  t.throws(() => parseCidr('10.99.0.1/24'), /host bits/);
  t.throws(() => parseCidr('10.99.0.0/33'), /prefix/);
  t.throws(() => parseCidr('10.99.0.0'), /missing/);
});

t.test('ranges overlap', async (t) => {
  const r = (a: string, b: string) => ({ first: parseIpv4(a), last: parseIpv4(b) });
  t.ok(rangesOverlap(r('10.0.0.1', '10.0.0.10'), r('10.0.0.10', '10.0.0.20')));
  t.notOk(rangesOverlap(r('10.0.0.1', '10.0.0.9'), r('10.0.0.10', '10.0.0.20')));
});

t.test('mac', async (t) => {
  t.equal(parseMac('52-54-00-AB-cd-01'), '52:54:00:ab:cd:01');
  t.equal(parseMac('525400abcd01'), '52:54:00:ab:cd:01');
  t.equal(macFromBytes(Buffer.from([0x52, 0x54, 0, 1, 2, 3])), '52:54:00:01:02:03');
  t.throws(() => parseMac('52:54:00:ab:cd'), MacParseError);
  const _typed: Ipv4 = parseIpv4('1.2.3.4');
  t.ok(_typed);
});
