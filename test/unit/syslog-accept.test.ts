import t from 'tap';
import { RereadSubnets, servedSubnets, sourceClassifier } from '../../src/syslog/accept.js';
import { parseCidr } from '../../src/net/ipv4.js';

const bound = new Set(['10.0.0.5', '192.168.9.9']);
const facts = { subnets: [parseCidr('10.0.0.0/24'), parseCidr('10.1.0.0/16')], hasBinding: (a: string) => bound.has(a.replace(/^::ffff:/, '')) };

t.test('served: inside a served subnet, those holding a lease told apart; nothing else', async (t) => {
  const c = sourceClassifier('served', facts);
  t.equal(c('10.0.0.5'), 'bound', 'a leased address');
  t.equal(c('::ffff:10.0.0.5'), 'bound', 'IPv4-mapped form');
  t.equal(c('10.0.0.77'), 'served', 'inside a served subnet, no binding');
  t.equal(c('10.1.200.3'), 'served', 'inside the second (relayed) subnet');
  t.equal(c('192.168.9.9'), 'not-served', 'subnets first: a binding outside them widens nothing');
  t.equal(c('10.2.0.1'), 'not-served');
  t.equal(c('203.0.113.7'), 'not-served');
  t.equal(c('0.0.0.0'), 'not-served');
  t.equal(c('fe80::1'), 'not-served', 'not IPv4');
  t.equal(c('garbage'), 'not-served');
});

t.test('served with no subnets (dhcp.mode off): nothing, bound or not', async (t) => {
  t.equal(sourceClassifier('served', { subnets: [], hasBinding: () => false })('10.0.0.5'), 'not-served');
  t.equal(sourceClassifier('served', { subnets: [], hasBinding: () => true })('10.0.0.5'), 'not-served');
});

t.test('proxy mode: the interface subnets are read again after a miss, at most every 10 s', async (t) => {
  let now = 0, reads = 0;
  let cidrs = [parseCidr('10.0.0.0/24')];
  const src = new RereadSubnets(() => { reads++; return cidrs; }, () => now);
  const c = sourceClassifier('served', { subnets: src, hasBinding: () => false });
  t.equal(reads, 1);
  t.equal(c('10.0.0.9'), 'served');
  cidrs = [parseCidr('10.0.0.0/24'), parseCidr('172.16.0.0/24')]; // the interface got a second address
  now = 5000;
  t.equal(c('172.16.0.4'), 'not-served', 'read at most every 10 s');
  t.equal(c('203.0.113.1'), 'not-served');
  t.equal(reads, 1, 'a flood from outside costs no reads inside the interval');
  now = 10_000;
  t.equal(c('172.16.0.4'), 'served', 'the new subnet, without a restart');
  t.equal(reads, 2);
  t.equal(c('10.0.0.9'), 'served');
  t.equal(reads, 2, 'a hit reads nothing');
});

t.test('any: everything, bound ones told apart', async (t) => {
  const c = sourceClassifier('any', facts);
  t.equal(c('203.0.113.7'), 'served');
  t.equal(c('10.0.0.5'), 'bound');
});

t.test('a CIDR list: only inside it, a binding outside does not widen it', async (t) => {
  const c = sourceClassifier([parseCidr('192.168.0.0/16')], facts);
  t.equal(c('192.168.9.9'), 'bound');
  t.equal(c('192.168.1.1'), 'served');
  t.equal(c('10.0.0.5'), 'not-served', 'leased, but outside the list');
  t.equal(c('10.0.0.77'), 'not-served');
});

t.test('servedSubnets: the configured subnets (server), the interface\'s own re-read on a miss (proxy), none (off)', async (t) => {
  const subnets = [{ cidr: parseCidr('10.0.0.0/24'), dns: [], leaseTime: 600 }, { cidr: parseCidr('10.1.0.0/16'), dns: [], leaseTime: 600 }];
  const read: string[] = [];
  const readInterface = (iface: string) => { read.push(iface); return [parseCidr('192.168.5.0/24')]; };
  t.same(servedSubnets({ mode: 'server', interface: 'lab0', subnets }, readInterface, () => 0), [parseCidr('10.0.0.0/24'), parseCidr('10.1.0.0/16')]);
  t.same(servedSubnets({ mode: 'off', interface: '', subnets: [] }, readInterface, () => 0), []);
  t.same(read, [], 'server and off modes read no interface');
  let now = 0;
  const proxy = servedSubnets({ mode: 'proxy', interface: 'lab0', subnets: [] }, readInterface, () => now);
  t.ok('current' in proxy, 'proxy mode: a source read again after a miss');
  const c = sourceClassifier('served', { subnets: proxy, hasBinding: () => false });
  t.equal(c('192.168.5.9'), 'served');
  t.equal(c('10.0.0.9'), 'not-served', 'the configured subnets are not proxy mode\'s');
  now = 10_000;
  c('10.0.0.9');
  t.same(read, ['lab0', 'lab0'], 'the DHCP interface, read at start and again after a miss 10 s later');
});
