import t from 'tap';
import {
  checkIqnPrefix, checkIscsiName, ISCSI_NAME_MAX, IqnError, iqnForMac, iqnForName, isValidIscsiName, normalizeIscsiName,
} from '../../src/iscsi/iqn.js';

t.test('valid names (RFC 3720 §3.2.6.3 examples and ours) normalise to lower case', async (t) => {
  const cases: [string, string][] = [
    ['iqn.2001-04.com.example', 'iqn.2001-04.com.example'],
    ['iqn.2001-04.com.example:storage:diskarrays-sn-a8675309', 'iqn.2001-04.com.example:storage:diskarrays-sn-a8675309'],
    ['iqn.2001-04.com.example:storage.tape1.sys1.xyz', 'iqn.2001-04.com.example:storage.tape1.sys1.xyz'],
    ['iqn.2001-04.com.example:storage.disk2.sys1.xyz', 'iqn.2001-04.com.example:storage.disk2.sys1.xyz'],
    ['  IQN.2026-11.Lab.MetalBoot:VM1 ', 'iqn.2026-11.lab.metalboot:vm1'],
    ['iqn.2010-04.org.ipxe:00000000-0000-0000-0000-000000000000', 'iqn.2010-04.org.ipxe:00000000-0000-0000-0000-000000000000'],
    ['eui.02004567A425678D', 'eui.02004567a425678d'],
    ['naa.52004567BA64678D', 'naa.52004567ba64678d'],
    ['naa.62004567BA64678D0123456789ABCDEF', 'naa.62004567ba64678d0123456789abcdef'],
  ];
  for (const [input, want] of cases) {
    t.equal(normalizeIscsiName(input), want, input);
    t.ok(isValidIscsiName(input));
  }
  const r = checkIscsiName('iqn.2026-11.lab.metalboot:vm1:disk');
  t.ok(r.ok);
  if (r.ok && r.value.kind === 'iqn') {
    t.equal(r.value.date, '2026-11');
    t.equal(r.value.authority, 'lab.metalboot');
    t.equal(r.value.unique, 'vm1:disk');
  }
});

t.test('invalid names are refused with a reason', async (t) => {
  const bad = [
    '', ' ', 'iqn', 'iqn.', 'iqn.2001.com.example', 'iqn.01-04.com.example', 'iqn.2001-13.com.example', 'iqn.2001-00.com.example',
    'iqn.2001-04', 'iqn.2001-04.', 'iqn.2001-04.com..example', 'iqn.2001-04.-com.example', 'iqn.2001-04.com.example:',
    'iqn.2001-04.com.example:a b', 'iqn.2001-04.com.example:a_b', 'iqn.2001-04.com.example:a/b', 'iqn.2001-04.com.example:ä',
    'iqn.2001-04.com.example:a\nb', 'iqn.2001-04.com.example:a\0', 'eui.0200', 'eui.02004567A425678Z', 'naa.1234',
    'foo.2001-04.com.example', 'ALL', `iqn.2001-04.com.example:${'a'.repeat(ISCSI_NAME_MAX)}`,
  ];
  for (const b of bad) {
    const r = checkIscsiName(b);
    t.notOk(r.ok, JSON.stringify(b));
    t.throws(() => normalizeIscsiName(b), IqnError);
  }
  // Exactly 223 bytes is fine, 224 is not.
  const base = 'iqn.2001-04.com.example:';
  t.ok(isValidIscsiName(base + 'a'.repeat(ISCSI_NAME_MAX - base.length)));
  t.notOk(isValidIscsiName(base + 'a'.repeat(ISCSI_NAME_MAX - base.length + 1)));
});

t.test('prefixes', async (t) => {
  t.equal(checkIqnPrefix('IQN.2026-11.lab.metalboot'), 'iqn.2026-11.lab.metalboot');
  t.throws(() => checkIqnPrefix('iqn.2026-11.lab.metalboot:x'), IqnError);
  t.throws(() => checkIqnPrefix('eui.02004567a425678d'), IqnError);
  t.throws(() => checkIqnPrefix('nonsense'), IqnError);
});

t.test('iqnForName: safe names as is, others folded with a stable hash, never colliding', async (t) => {
  const p = 'iqn.2026-11.lab.metalboot';
  t.equal(iqnForName(p, 'vm1'), `${p}:vm1`);
  t.equal(iqnForName(p, 'rack1.node-07'), `${p}:rack1.node-07`);
  const folded = ['VM1', 'Web_01', 'web 01', 'web/01', '../../etc', 'ünïcödé', '-x-', 'a:b', 'x\n', '...', 'web-01', 'x'.repeat(400)];
  const seen = new Map<string, string>();
  for (const n of folded) {
    const iqn = iqnForName(p, n);
    t.ok(isValidIscsiName(iqn), `${JSON.stringify(n)} -> ${iqn}`);
    t.equal(normalizeIscsiName(iqn), iqn, 'already normalised');
    t.ok(Buffer.byteLength(iqn) <= ISCSI_NAME_MAX);
    t.equal(iqnForName(p, n), iqn, 'stable');
    t.notOk(seen.has(iqn), `no collision: ${n} vs ${seen.get(iqn)}`);
    seen.set(iqn, n);
  }
  t.match(iqnForName(p, 'Web_01'), /^iqn\.2026-11\.lab\.metalboot:web-01-[0-9a-f]{8}$/);
  t.match(iqnForName(p, 'ünïcödé'), /^iqn\.2026-11\.lab\.metalboot:n-c-d-[0-9a-f]{8}$/);
  t.match(iqnForName(p, '...'), /^iqn\.2026-11\.lab\.metalboot:[0-9a-f]{8}$/);
  t.throws(() => iqnForName(p, ''), IqnError);
  t.throws(() => iqnForName(`${p}:x`, 'vm1'), IqnError);
});

t.test('iqnForMac', async (t) => {
  const p = 'iqn.2026-11.lab.metalboot';
  t.equal(iqnForMac(p, '52:54:00:99:00:01'), `${p}:mac-525400990001`);
  t.equal(iqnForMac(p, '52-54-00-99-00-AB'), `${p}:mac-5254009900ab`);
  t.equal(iqnForMac(p, '5254009900ab'), `${p}:mac-5254009900ab`);
  t.throws(() => iqnForMac(p, '52:54:00:99:00'));
  t.throws(() => iqnForMac(p, 'zz:54:00:99:00:01'));
});
