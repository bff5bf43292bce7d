import t from 'tap';
import { sourceClassifier } from '../../src/syslog/accept.js';
import { parseCidr } from '../../src/net/ipv4.js';

const bound = new Set(['10.0.0.5', '192.168.9.9']);
const facts = { subnets: [parseCidr('10.0.0.0/24'), parseCidr('10.1.0.0/16')], hasBinding: (a: string) => bound.has(a.replace(/^::ffff:/, '')) };

t.test('served: a binding, or inside a served subnet; nothing else', async (t) => {
  const c = sourceClassifier('served', facts);
  t.equal(c('10.0.0.5'), 'bound', 'a leased address');
  t.equal(c('::ffff:10.0.0.5'), 'bound', 'IPv4-mapped form');
  t.equal(c('10.0.0.77'), 'served', 'inside a served subnet, no binding');
  t.equal(c('10.1.200.3'), 'served', 'inside the second (relayed) subnet');
  t.equal(c('192.168.9.9'), 'bound', 'a binding outside the subnets (ProxyDHCP saw it taken) still counts');
  t.equal(c('10.2.0.1'), 'not-served');
  t.equal(c('203.0.113.7'), 'not-served');
  t.equal(c('0.0.0.0'), 'not-served');
  t.equal(c('fe80::1'), 'not-served', 'not IPv4');
  t.equal(c('garbage'), 'not-served');
});

t.test('served with no subnets (dhcp.mode off): bindings only', async (t) => {
  const c = sourceClassifier('served', { subnets: [], hasBinding: () => false });
  t.equal(c('10.0.0.5'), 'not-served');
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
