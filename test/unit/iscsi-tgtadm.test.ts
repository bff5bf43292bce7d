import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  checkVolumeExport, classifyTgtadmFailure, dataLuns, parseAccountShow, parsePortalShow, parseTargetShow, portalArg, redactArgv,
  redactSecret, tgtadmArgv, TgtadmArgError, TgtadmParseError, type TgtadmOp,
} from '../../src/iscsi/tgtadm.js';
import { CommandError, type Runner } from '../../src/exec/run.js';
import { applyPlan, ApplyPlanError } from '../../src/iscsi/plan.js';
import { Tgtd, TgtadmError } from '../../src/iscsi/tgtd.js';

/** Captured from tgt 1.0.85 (Debian 12); see test/fixtures/tgtadm/README.md. */
const fixture = (name: string): string => readFileSync(new URL(`../../../test/fixtures/tgtadm/${name}`, import.meta.url), 'utf8');

t.test('show with two live sessions: every field', async (t) => {
  const targets = parseTargetShow(fixture('show-connections.txt'));
  t.same(targets.map((x) => [x.tid, x.iqn]), [[1, 'iqn.2026-11.lab.metalboot:vm1'], [2, 'iqn.2026-11.lab.metalboot:vm2'], [7, 'iqn.2026-11.other:foreign']]);
  const [t1, t2, t7] = targets;
  t.equal(t1!.driver, 'iscsi');
  t.equal(t1!.state, 'ready');
  t.same(t1!.sessions, [
    { nexus: 17, initiator: 'iqn.2026-11.lab.init:vm1', alias: null, connections: [{ cid: 0, address: '127.0.0.1' }] },
    { nexus: 18, initiator: 'iqn.2026-11.lab.init:extra', alias: null, connections: [{ cid: 0, address: '127.0.0.1' }] },
  ]);
  t.same(t1!.luns.map((l) => [l.lun, l.type, l.bstype, l.path, l.readonly, l.sizeMb, l.blockSize]), [
    [0, 'controller', 'null', null, false, 0, 1],
    [1, 'disk', 'rdwr', '/tmp/tgtx/disk1.img', false, 4, 512],
    [2, 'disk', 'aio', '/tmp/tgtx/golden.img', true, 8, 512],
  ]);
  t.same(t1!.luns[1], {
    lun: 1, type: 'disk', scsiId: 'IET     00010001', scsiSn: 'beaf11', sizeMb: 4, blockSize: 512, online: true, readonly: false,
    swp: false, bstype: 'rdwr', path: '/tmp/tgtx/disk1.img', bsflags: '',
  });
  t.same(t1!.accounts, [{ user: 'vm1user', outgoing: false }, { user: 'vm1mutual', outgoing: true }]);
  t.same(t1!.initiatorAddresses, ['127.0.0.1']);
  t.same(t1!.initiatorNames, ['iqn.2026-11.lab.init:vm1']);

  t.same(t2!.sessions, []);
  t.same(dataLuns(t2!).map((l) => [l.lun, l.bstype, l.path]), [[1, 'aio', '/tmp/tgtx/disk2.img'], [3, 'rdwr', '/tmp/tgtx/with space.img']]);
  t.same(t2!.accounts, [{ user: 'vm2user', outgoing: false }]);
  t.same(t2!.initiatorAddresses, ['10.99.0.12', '10.99.0.0/24', 'fd99::12']);
  t.same(t2!.initiatorNames, []);

  t.same(dataLuns(t7!), []);
  t.same(t7!.accounts, []);
  t.same(t7!.initiatorAddresses, []);
  t.same(t7!.initiatorNames, []);
  t.ok(Object.isFrozen(t1) && Object.isFrozen(t1!.luns) && Object.isFrozen(t1!.luns[0]) && Object.isFrozen(t1!.sessions[0]!.connections));
});

t.test('show after the sessions closed, offline state, empty tgtd', async (t) => {
  const after = parseTargetShow(fixture('show-targets.txt'));
  t.same(after.map((x) => x.sessions.length), [0, 0, 0]);
  t.same(parseTargetShow(fixture('show-offline.txt')).map((x) => x.state), ['ready', 'ready', 'offline']);
  t.same(parseTargetShow(fixture('show-empty.txt')), []);
  t.same(parseTargetShow(''), []);
});

t.test('odd whitespace: tabs, CRLF, extra blanks and blank lines parse the same', async (t) => {
  const text = fixture('show-connections.txt');
  const want = parseTargetShow(text);
  const variants = [
    text.replace(/\n/g, '\r\n'),
    text.replace(/^( +)/gm, (m) => '\t'.repeat(m.length / 4)),
    text.replace(/^ +/gm, ''),
    text.replace(/: /g, ':   ').replace(/\n/g, '\n\n'),
    text.replace(/\n/g, '   \n'),
    `\n\n${text}\n\n`,
  ];
  for (const [i, v] of variants.entries()) t.same(parseTargetShow(v), want, `variant ${i}`);
});

t.test('paths with ": " and alias values survive', async (t) => {
  const text = [
    'Target 3: iqn.2026-11.lab.metalboot:odd',
    '    I_T nexus information:',
    '        I_T nexus: 4',
    '            Initiator: iqn.2010-04.org.ipxe:abc alias: host-a',
    '            Connection: 0',
    '                IP Address: fd99::5',
    '            Connection: 1',
    '                IP Address: 10.0.0.5',
    '        I_T nexus: 5',
    '            Initiator: iqn.1993-08.org.debian:01:abc',
    '    LUN information:',
    '        LUN: 1',
    '            Backing store type: rdwr',
    '            Backing store path: /srv/a: b/c.img',
    '            Some future field: 12',
    '    Future information:',
    '        whatever: x',
    '        free text',
    '    ACL information:',
    '        ALL',
    '        eui.02004567a425678d',
  ].join('\n');
  const [x] = parseTargetShow(text);
  t.equal(x!.sessions[0]!.alias, 'host-a');
  t.same(x!.sessions[0]!.connections, [{ cid: 0, address: 'fd99::5' }, { cid: 1, address: '10.0.0.5' }]);
  t.equal(x!.sessions[1]!.initiator, 'iqn.1993-08.org.debian:01:abc');
  t.equal(x!.luns[0]!.path, '/srv/a: b/c.img');
  t.same(x!.initiatorAddresses, ['ALL']);
  t.same(x!.initiatorNames, ['eui.02004567a425678d']);
});

t.test('structural garbage throws TgtadmParseError naming the line', async (t) => {
  const bad = [
    'garbage before any target',
    'Target x: iqn.a',
    'Target 1:',
    'Target 1: iqn.2026-11.a:b\n    LUN information:\n        Type: disk',
    'Target 1: iqn.2026-11.a:b\n    I_T nexus information:\n            Initiator: iqn.x',
    'Target 1: iqn.2026-11.a:b\n    I_T nexus information:\n        I_T nexus: 3\n                IP Address: 1.2.3.4',
    'Target 1: iqn.2026-11.a:b\n    LUN information:\n        LUN: -1',
    'Target 1: iqn.2026-11.a:b\n    Account information:\n        two words',
    'Target 1: iqn.2026-11.a:b\n    ACL information:\n        1.2.3.4 extra',
  ];
  for (const b of bad) t.throws(() => parseTargetShow(b), TgtadmParseError, JSON.stringify(b));
  try {
    parseTargetShow('Target 1: iqn.2026-11.a:b\n    LUN information:\n        Type: disk');
  } catch (e) {
    t.equal((e as TgtadmParseError).lineNo, 3);
  }
});

t.test('account show', async (t) => {
  t.same(parseAccountShow(fixture('account-show.txt')), ['spare', 'vm2user', 'vm1mutual', 'vm1user']);
  t.same(parseAccountShow(fixture('account-empty.txt')), []);
  t.same(parseAccountShow('Account list:\r\n\tx\r\n'), ['x']);
  t.throws(() => parseAccountShow('x\n'), TgtadmParseError);
  t.throws(() => parseAccountShow('Account list:\n a b\n'), TgtadmParseError);
});

t.test('portal show', async (t) => {
  t.same(parsePortalShow('Portal: 127.0.0.1:13290,1\n'), [{ address: '127.0.0.1', port: 13290, tpgt: 1 }]);
  t.same(parsePortalShow('Portal: [::]:3260,1\nPortal: 0.0.0.0:3260,1\n'), [{ address: '::', port: 3260, tpgt: 1 }, { address: '0.0.0.0', port: 3260, tpgt: 1 }]);
  t.same(parsePortalShow(''), []);
  t.throws(() => parsePortalShow('Portal: nonsense'), TgtadmParseError);
  t.equal(portalArg('127.0.0.1', 3260), 'portal=127.0.0.1:3260');
  t.equal(portalArg('::1', 3260), 'portal=[::1]:3260');
  t.throws(() => portalArg('localhost', 3260), TgtadmArgError);
  t.throws(() => portalArg('127.0.0.1', 0), TgtadmArgError);
});

t.test('argv for every operation', async (t) => {
  const C = ['tgtadm', '-C', '99', '--lld', 'iscsi'];
  const cases: [TgtadmOp, string[]][] = [
    [{ op: 'show-targets' }, [...C, '--mode', 'target', '--op', 'show']],
    [{ op: 'show-accounts' }, [...C, '--mode', 'account', '--op', 'show']],
    [{ op: 'show-portals' }, [...C, '--mode', 'portal', '--op', 'show']],
    [{ op: 'show-sys' }, ['tgtadm', '-C', '99', '--mode', 'sys', '--op', 'show']],
    [{ op: 'new-target', tid: 3, iqn: 'iqn.2026-11.lab.metalboot:vm1' }, [...C, '--mode', 'target', '--op', 'new', '--tid', '3', '--targetname', 'iqn.2026-11.lab.metalboot:vm1']],
    [{ op: 'delete-target', tid: 3, force: false }, [...C, '--mode', 'target', '--op', 'delete', '--tid', '3']],
    [{ op: 'delete-target', tid: 3, force: true }, [...C, '--mode', 'target', '--op', 'delete', '--force', '--tid', '3']],
    [{ op: 'target-state', tid: 3, state: 'offline' }, [...C, '--mode', 'target', '--op', 'update', '--tid', '3', '--name', 'state', '--value', 'offline']],
    [{ op: 'new-lun', tid: 3, lun: 1, backingStore: '/srv/a b.img', bstype: 'rdwr' }, [...C, '--mode', 'logicalunit', '--op', 'new', '--tid', '3', '--lun', '1', '--backing-store', '/srv/a b.img', '--bstype', 'rdwr']],
    [{ op: 'lun-readonly', tid: 3, lun: 1, readonly: true }, [...C, '--mode', 'logicalunit', '--op', 'update', '--tid', '3', '--lun', '1', '--params', 'readonly=1']],
    [{ op: 'lun-readonly', tid: 3, lun: 1, readonly: false }, [...C, '--mode', 'logicalunit', '--op', 'update', '--tid', '3', '--lun', '1', '--params', 'readonly=0']],
    [{ op: 'delete-lun', tid: 3, lun: 2 }, [...C, '--mode', 'logicalunit', '--op', 'delete', '--tid', '3', '--lun', '2']],
    [{ op: 'bind-address', tid: 3, address: '10.99.0.0/24' }, [...C, '--mode', 'target', '--op', 'bind', '--tid', '3', '--initiator-address', '10.99.0.0/24']],
    [{ op: 'unbind-address', tid: 3, address: 'ALL' }, [...C, '--mode', 'target', '--op', 'unbind', '--tid', '3', '--initiator-address', 'ALL']],
    [{ op: 'bind-name', tid: 3, iqn: 'iqn.2010-04.org.ipxe:x' }, [...C, '--mode', 'target', '--op', 'bind', '--tid', '3', '--initiator-name', 'iqn.2010-04.org.ipxe:x']],
    [{ op: 'unbind-name', tid: 3, iqn: 'IQN.weird' }, [...C, '--mode', 'target', '--op', 'unbind', '--tid', '3', '--initiator-name', 'IQN.weird']],
    [{ op: 'new-account', user: 'u1', secret: 'abcdefghijkl' }, [...C, '--mode', 'account', '--op', 'new', '--user', 'u1', '--password', 'abcdefghijkl']],
    [{ op: 'delete-account', user: 'u1' }, [...C, '--mode', 'account', '--op', 'delete', '--user', 'u1']],
    [{ op: 'bind-account', tid: 3, user: 'u1', outgoing: false }, [...C, '--mode', 'account', '--op', 'bind', '--tid', '3', '--user', 'u1']],
    [{ op: 'bind-account', tid: 3, user: 'u1', outgoing: true }, [...C, '--mode', 'account', '--op', 'bind', '--tid', '3', '--user', 'u1', '--outgoing']],
    [{ op: 'unbind-account', tid: 3, user: 'u1', outgoing: true }, [...C, '--mode', 'account', '--op', 'unbind', '--tid', '3', '--user', 'u1', '--outgoing']],
    [{ op: 'sys-state', state: 'offline' }, ['tgtadm', '-C', '99', '--mode', 'sys', '--op', 'update', '--name', 'State', '--value', 'offline']],
    [{ op: 'sys-delete' }, ['tgtadm', '-C', '99', '--mode', 'sys', '--op', 'delete']],
  ];
  for (const [op, argv] of cases) t.same(tgtadmArgv(op, { controlPort: 99 }), argv, op.op);
  t.same(tgtadmArgv({ op: 'show-targets' }).slice(0, 3), ['tgtadm', '-C', '0'], 'default control port 0');
  t.same(tgtadmArgv({ op: 'show-targets' }, { tgtadm: '/usr/sbin/tgtadm' })[0], '/usr/sbin/tgtadm');
  t.same(tgtadmArgv({ op: 'show-targets' }, { controlPort: 32767 }).slice(1, 3), ['-C', '32767']);
  for (const bad of [32768, 65535, -1, 1.5]) t.throws(() => tgtadmArgv({ op: 'show-targets' }, { controlPort: bad }), TgtadmArgError, `control port ${bad}`);
});

t.test('new-lun exports what the backend describes: rbd pool/image with bsopts', async (t) => {
  const C = ['tgtadm', '-C', '0', '--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'new', '--tid', '4', '--lun', '1'];
  t.same(tgtadmArgv({ op: 'new-lun', tid: 4, lun: 1, bstype: 'rbd', backingStore: 'metalboot/mbd-node-01' }),
    [...C, '--backing-store', 'metalboot/mbd-node-01', '--bstype', 'rbd'], 'rbd without options');
  t.same(tgtadmArgv({ op: 'new-lun', tid: 4, lun: 1, bstype: 'rbd', backingStore: 'rbd_pool.2/disk-1', bsopts: 'conf=/etc/ceph/lab.conf;id=metalboot;cluster=lab' }),
    [...C, '--backing-store', 'rbd_pool.2/disk-1', '--bstype', 'rbd', '--bsopts', 'conf=/etc/ceph/lab.conf;id=metalboot;cluster=lab'], 'rbd with conf, id and cluster');
  t.same(tgtadmArgv({ op: 'new-lun', tid: 4, lun: 1, bstype: 'aio', backingStore: '/dev/vg0/mbd-n1' }),
    [...C, '--backing-store', '/dev/vg0/mbd-n1', '--bstype', 'aio'], 'a path backend: no --bsopts');
  const refused: [TgtadmOp & { op: 'new-lun' }, RegExp][] = [
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: '/dev/rbd0' }, /pool\/image, not a path/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'image-only' }, /pool\/image, not a path/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'pool/ns/image' }, /pool\/image, not a path/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'pool/image@snap' }, /pool and image names/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'pool/-image' }, /pool and image names/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'pool/.image' }, /pool and image names/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'pool/a,path=x' }, /pool and image names/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'pool/a b' }, /pool and image names/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'pool/a\nTarget 9: x' }, /pool and image names/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: `pool/${'x'.repeat(251)}` }, /pool and image names/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'p/i', bsopts: 'cephx_key=AQBsecretsecret==' }, /option cephx_key refused/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'p/i', bsopts: 'virsecretuuid=1234' }, /option virsecretuuid refused/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'p/i', bsopts: 'id=a,path=/etc/shadow' }, /id: 1-255 of/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'p/i', bsopts: 'id=a;id=b' }, /id given twice/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'p/i', bsopts: 'conf=/etc/ceph/a b.conf' }, /conf: 1-255 of/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rbd', backingStore: 'p/i', bsopts: '' }, /key=value/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rdwr', backingStore: '/a', bsopts: 'id=a' }, /bstype rdwr takes no options/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'aio', backingStore: 'pool/image' }, /absolute path/],
    [{ op: 'new-lun', tid: 1, lun: 1, bstype: 'rdwr', backingStore: '/srv/a,b.img' }, /comma/],
  ];
  for (const [op, why] of refused) {
    const e = t.throws(() => tgtadmArgv(op), TgtadmArgError, JSON.stringify(op)) as unknown;
    t.match((e as Error).message, why, `${JSON.stringify(op)}: ${String((e as Error).message)}`);
  }
  const key = (() => { try { checkVolumeExport({ bstype: 'rbd', backingStore: 'p/i', bsopts: 'id=a;cephx_key=AQBsecretsecret==' }); } catch (e) { return (e as Error).message; } return ''; })();
  t.match(key, /cephx_key/, 'the refusal names the option');
  t.notMatch(key, /AQBsecret/, 'but not its value (a Ceph key)');
});

t.test('builders refuse what must never reach tgtd', async (t) => {
  const bad: TgtadmOp[] = [
    { op: 'bind-address', tid: 1, address: 'ALL' },
    { op: 'bind-address', tid: 1, address: 'all' },
    { op: 'bind-address', tid: 1, address: '0.0.0.0/0' },
    { op: 'bind-address', tid: 1, address: '::/0' },
    { op: 'bind-address', tid: 1, address: 'notanaddress' },
    { op: 'bind-address', tid: 1, address: '10.0.0.1/33' },
    { op: 'bind-address', tid: 1, address: '' },
    { op: 'new-target', tid: 0, iqn: 'iqn.2026-11.a:b' },
    { op: 'new-target', tid: 1.5, iqn: 'iqn.2026-11.a:b' },
    { op: 'new-target', tid: 1, iqn: 'IQN.2026-11.a:b' },
    { op: 'new-target', tid: 1, iqn: 'iqn.2026-11.a:b c' },
    { op: 'new-lun', tid: 1, lun: 0, backingStore: '/a', bstype: 'rdwr' },
    { op: 'new-lun', tid: 1, lun: 1, backingStore: 'relative.img', bstype: 'rdwr' },
    { op: 'new-lun', tid: 1, lun: 1, backingStore: '/a\nTarget 9: iqn.x:y', bstype: 'rdwr' },
    { op: 'new-lun', tid: 1, lun: 1, backingStore: '/a ', bstype: 'rdwr' },
    { op: 'new-lun', tid: 1, lun: 1, backingStore: '/a', bstype: 'sg' as 'rdwr' },
    { op: 'delete-lun', tid: 1, lun: 0 },
    { op: 'bind-name', tid: 1, iqn: 'nonsense' },
    { op: 'new-account', user: 'u', secret: 'short' },
    { op: 'new-account', user: 'u', secret: 'has space in it' },
    { op: 'new-account', user: 'u', secret: '-startsdash-xx' },
    { op: 'new-account', user: 'u', secret: 'percent%sign12' },
    { op: 'new-account', user: 'u (outgoing)', secret: 'abcdefghijkl' },
    { op: 'new-account', user: '--user', secret: 'abcdefghijkl' },
    { op: 'unbind-account', tid: 1, user: '-x', outgoing: false },
  ];
  for (const op of bad) t.throws(() => tgtadmArgv(op), TgtadmArgError, JSON.stringify(op));
  try {
    tgtadmArgv({ op: 'new-account', user: 'u', secret: 'bad secret value' });
  } catch (e) {
    t.notMatch((e as Error).message, /bad secret value/, 'the secret is not in the error');
  }
});

t.test('redaction and failure classification', async (t) => {
  t.same(redactArgv(['tgtadm', '--user', 'u', '--password', 'sekret-12chars']), ['tgtadm', '--user', 'u', '--password', '<redacted>']);
  t.same(redactArgv(['x', '--password=abc']), ['x', '--password=<redacted>']);
  t.equal(redactSecret({ op: 'new-account', user: 'u', secret: 'Sekret-123456' }, 'refused Sekret-123456 (Sekret-123456)'), 'refused <redacted> (<redacted>)');
  t.equal(redactSecret({ op: 'delete-account', user: 'Sekret-123456' }, 'Sekret-123456'), 'Sekret-123456', 'only new-account carries a secret');
  // Messages captured from tgtadm 1.0.85 (exit 22 unless noted).
  const cases: [number, string, string][] = [
    [22, 'tgtadm: this target already exists', 'exists'],
    [22, 'tgtadm: this logical unit number already exists', 'exists'],
    [22, 'tgtadm: this account already exists', 'exists'],
    [22, 'tgtadm: this access control rule already exists', 'exists'],
    [22, 'tgtadm: this target already has an outgoing account', 'exists'],
    [22, "tgtadm: can't find the target", 'not-found'],
    [22, "tgtadm: can't find the logical unit", 'not-found'],
    [22, "tgtadm: can't find the account", 'not-found'],
    [22, 'tgtadm: this access control rule does not exist', 'not-found'],
    [22, 'tgtadm: this target is still active', 'busy'],
    [22, 'tgtadm: invalid request', 'invalid'],
    [22, "tgtadm: logicalunit mode: option '-P' is not allowed/supported", 'invalid'],
    [107, 'tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected', 'not-running'],
    [22, "-C argument value '32768' out of range", 'invalid'],
    [1, 'something new', 'other'],
  ];
  for (const [code, stderr, kind] of cases) t.equal(classifyTgtadmFailure(code, stderr), kind, stderr);
});

t.test('Tgtd: a failing new-account never exposes the secret', async (t) => {
  const secret = 'TopSecret-123456';
  const seen: (readonly string[])[] = [];
  const runner: Runner = async (argv) => {
    seen.push(argv);
    // A hostile stderr that echoes the command line back.
    throw new CommandError(argv, 'exit', 22, `tgtadm: this account already exists (${argv.join(' ')})`);
  };
  const tgtd = new Tgtd({ runner, controlPort: 4242, chapSecretsVia: 'argv' });
  const err = await tgtd.run({ op: 'new-account', user: 'u1', secret }).catch((e: unknown) => e);
  t.type(err, TgtadmError);
  t.type(err, CommandError, 'still a CommandError for generic callers');
  const e = err as TgtadmError;
  t.equal(e.kind, 'exists');
  t.equal(e.op, 'new-account');
  t.equal(e.cause, undefined);
  const everything = JSON.stringify({ m: e.message, a: e.argv, s: e.stderr, st: e.stack, all: Object.entries(e) });
  t.notMatch(everything, secret);
  t.ok(e.argv.includes('<redacted>'));
  t.equal(seen[0]![seen[0]!.indexOf('--password') + 1], secret, 'the runner did get the real secret');
});

t.test('Tgtd: timeouts, spawn failures and a readonly failure roll the LUN back', async (t) => {
  const calls: string[] = [];
  const runner: Runner = async (argv) => {
    calls.push(argv.slice(3).join(' '));
    if (argv.includes('--params')) throw new CommandError(argv, 'timeout', undefined, '');
    return { stdout: '', stderr: '', code: 0 };
  };
  const tgtd = new Tgtd({ runner, controlPort: 1 });
  const err = (await applyPlan(tgtd, [
    { type: 'run', op: { op: 'new-lun', tid: 1, lun: 1, backingStore: '/golden.img', bstype: 'aio' }, why: '' },
    { type: 'run', op: { op: 'lun-readonly', tid: 1, lun: 1, readonly: true }, why: '' },
  ]).catch((e: unknown) => e)) as ApplyPlanError;
  t.match(err.failures, [{ step: 'lun-readonly 1=1', error: /^tgtadm lun-readonly failed \(timeout\)/ }]);
  t.match(calls, [/logicalunit --op new/, /--params readonly=1/, /logicalunit --op delete --tid 1 --lun 1/]);

  const noTgtd = new Tgtd({ runner: async (argv) => { throw new CommandError(argv, 'exit', 107, 'tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected'); } });
  t.equal(await noTgtd.isRunning(), false);
  await t.rejects(noTgtd.ensureRunning(), /manageTgtd is off/);
  const spawnFail = new Tgtd({ runner: async (argv) => { throw new CommandError(argv, 'spawn', undefined, 'spawn tgtadm ENOENT'); } });
  t.match(await spawnFail.show().catch((e: unknown) => e), { kind: 'spawn' });
});

t.test('Tgtd.ensureRunning starts tgtd, waits, and refuses a fallen-back portal', async (t) => {
  const mk = (portalOut: string) => {
    let up = false;
    const calls: string[][] = [];
    const runner: Runner = async (argv) => {
      calls.push([...argv]);
      if (argv[0] === 'tgtd') { up = true; return { stdout: '', stderr: '', code: 0 }; }
      if (!up) throw new CommandError(argv, 'exit', 107, 'Transport endpoint is not connected');
      if (argv.includes('portal')) return { stdout: portalOut, stderr: '', code: 0 };
      if (argv.includes('delete') && argv.includes('sys')) up = false;
      return { stdout: '', stderr: '', code: 0 };
    };
    return { calls, tgtd: new Tgtd({ runner, controlPort: 77, manageTgtd: true, portal: { address: '127.0.0.1', port: 3260 }, pidFile: '/run/x.pid', sleep: async () => {} }) };
  };
  const good = mk('Portal: 127.0.0.1:3260,1\n');
  t.equal(await good.tgtd.ensureRunning(), 'started');
  t.same(good.calls.find((c) => c[0] === 'tgtd'), ['tgtd', '-C', '77', '-p', '/run/x.pid', '--iscsi', 'portal=127.0.0.1:3260']);
  t.equal(await good.tgtd.ensureRunning(), 'running');
  const bad = mk('Portal: [::]:3260,1\nPortal: 0.0.0.0:3260,1\n');
  await t.rejects(bad.tgtd.ensureRunning(), /portal 127\.0\.0\.1:3260 not bound/);
  t.ok(bad.calls.some((c) => c.includes('sys') && c.includes('delete')), 'the misbound tgtd was stopped');
});
