import t from 'tap';
import { readFileSync } from 'node:fs';
import { applyPlan, ApplyPlanError, checkDesired, diffTargets, isSettled, normalizeDesired, PlanError, type DesiredTarget, type PlanOp } from '../../src/iscsi/plan.js';
import { dataLuns, parseTargetShow, type TgtadmOp, type TgtTarget } from '../../src/iscsi/tgtadm.js';

const fixture = (name: string): string => readFileSync(new URL(`../../../test/fixtures/tgtadm/${name}`, import.meta.url), 'utf8');
const P = 'iqn.2026-11.lab.metalboot:';
const ours = (iqn: string): boolean => iqn.startsWith(P);
const runs = (ops: readonly PlanOp[]): TgtadmOp[] => ops.flatMap((o) => (o.type === 'run' ? [o.op] : []));
const blocked = (ops: readonly PlanOp[]) => ops.filter((o) => o.type === 'blocked');

/** The desired state that fixture show-targets.txt was built from. */
const VM1: DesiredTarget = {
  iqn: `${P}vm1`, tid: 1,
  luns: [{ lun: 1, backingStore: '/tmp/tgtx/disk1.img', bstype: 'rdwr', readonly: false }, { lun: 2, backingStore: '/tmp/tgtx/golden.img', bstype: 'aio', readonly: true }],
  initiatorNames: ['iqn.2026-11.lab.init:vm1'], initiatorAddresses: ['127.0.0.1'], incomingUsers: ['vm1user'], outgoingUser: 'vm1mutual',
};
const VM2: DesiredTarget = {
  iqn: `${P}vm2`, tid: 2,
  luns: [{ lun: 1, backingStore: '/tmp/tgtx/disk2.img', bstype: 'aio', readonly: false }, { lun: 3, backingStore: '/tmp/tgtx/with space.img', bstype: 'rdwr', readonly: false }],
  initiatorNames: [], initiatorAddresses: ['10.99.0.12', '10.99.0.0/24', 'fd99::12'], incomingUsers: ['vm2user'],
};

/** A tiny in-memory tgtd good enough to apply plans and check idempotence. */
function simulate(start: readonly TgtTarget[], ops: readonly TgtadmOp[]): TgtTarget[] {
  const m = new Map(start.map((x) => [x.tid, JSON.parse(JSON.stringify(x)) as { -readonly [K in keyof TgtTarget]: any }]));
  for (const op of ops) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const x: any = 'tid' in op ? m.get(op.tid) : undefined;
    switch (op.op) {
      case 'new-target':
        if (m.has(op.tid)) throw new Error('exists');
        m.set(op.tid, { tid: op.tid, iqn: op.iqn, driver: 'iscsi', state: 'ready', sessions: [], luns: [{ lun: 0, path: null }], accounts: [], initiatorAddresses: [], initiatorNames: [] });
        break;
      case 'delete-target': if (!op.force && x.sessions.length) throw new Error('busy'); m.delete(op.tid); break;
      case 'new-lun': x.luns.push({ lun: op.lun, path: op.backingStore, bstype: op.bstype, readonly: false }); break;
      case 'lun-readonly': x.luns.find((l: any) => l.lun === op.lun).readonly = op.readonly; break;
      case 'delete-lun': x.luns = x.luns.filter((l: any) => l.lun !== op.lun); break;
      case 'bind-name': x.initiatorNames.push(op.iqn); break;
      case 'unbind-name': x.initiatorNames = x.initiatorNames.filter((n: string) => n !== op.iqn); break;
      case 'bind-address': x.initiatorAddresses.push(op.address); break;
      case 'unbind-address': x.initiatorAddresses = x.initiatorAddresses.filter((n: string) => n !== op.address); break;
      case 'bind-account': x.accounts.push({ user: op.user, outgoing: op.outgoing }); break;
      case 'unbind-account': x.accounts = x.accounts.filter((a: any) => !(a.user === op.user && a.outgoing === op.outgoing)); break;
      default: break;
    }
  }
  return [...m.values()];
}

t.test('the fixture matches its description: nothing to do, foreign target untouched', async (t) => {
  const actual = parseTargetShow(fixture('show-targets.txt'));
  t.same(diffTargets(actual, [VM1, VM2], ours), []);
  // Same with open sessions on vm1.
  t.same(diffTargets(parseTargetShow(fixture('show-connections.txt')), [VM1, VM2], ours), []);
});

t.test('empty tgtd: everything created; LUNs and readonly before any access', async (t) => {
  const ops = diffTargets([], [VM1, VM2], ours);
  t.ok(ops.every((o) => o.type === 'run'));
  const names = runs(ops).map((o) => `${o.op}:${'tid' in o ? o.tid : ''}`);
  t.same(names.slice(0, 7), ['new-target:1', 'new-lun:1', 'new-lun:1', 'lun-readonly:1', 'bind-account:1', 'bind-account:1', 'bind-name:1']);
  for (const tid of [1, 2]) {
    const mine: string[] = runs(ops).filter((o) => 'tid' in o && o.tid === tid).map((o) => o.op);
    const lastLun = Math.max(mine.lastIndexOf('new-lun'), mine.lastIndexOf('lun-readonly'));
    const firstAccess = Math.min(...['bind-name', 'bind-address', 'bind-account'].map((k) => mine.indexOf(k)).filter((i) => i >= 0));
    t.ok(lastLun < firstAccess, `tid ${tid}: LUNs before access`);
  }
  const ro = runs(ops).filter((o) => o.op === 'lun-readonly');
  t.same(ro, [{ op: 'lun-readonly', tid: 1, lun: 2, readonly: true }]);
  const after = simulate([], runs(ops));
  t.same(diffTargets(after, [VM1, VM2], ours), [], 'idempotent');
});

t.test('unowned targets are never touched, their tids never reused', async (t) => {
  const actual = parseTargetShow(fixture('show-targets.txt'));
  const want: DesiredTarget = { ...VM1, iqn: `${P}vm3`, tid: 7 };
  const ops = diffTargets(actual, [want], ours);
  for (const o of runs(ops)) if ('tid' in o) t.not(o.tid, 7, `${o.op} not on the foreign tid 7`);
  t.same(runs(ops).filter((o) => o.op === 'delete-target').map((o) => 'tid' in o && o.tid), [1, 2], 'owned unwanted deleted');
  t.match(runs(ops).find((o) => o.op === 'new-target'), { tid: 1, iqn: `${P}vm3` }, 'lowest free tid (1 is freed by the delete)');
  // Wanted but not owned: blocked, never changed.
  const foreign: DesiredTarget = { ...VM2, iqn: 'iqn.2026-11.other:foreign', tid: undefined };
  const ops2 = diffTargets(actual, [VM1, VM2, foreign], ours);
  t.same(runs(ops2), []);
  t.match(blocked(ops2), [{ tid: 7, reason: /not ours/ }]);
});

t.test('a target with an open session is never removed, nor its LUNs; tightening still happens', async (t) => {
  const live = parseTargetShow(fixture('show-connections.txt'));
  const ops = diffTargets(live, [VM2], ours);
  t.same(runs(ops), []);
  t.match(blocked(ops), [{ tid: 1, iqn: `${P}vm1`, reason: /2 session\(s\) open \(iqn.2026-11.lab.init:vm1, iqn.2026-11.lab.init:extra\)/ }]);

  const drift: DesiredTarget = {
    ...VM1, luns: [{ lun: 1, backingStore: '/tmp/tgtx/other.img', bstype: 'rdwr', readonly: false }], initiatorAddresses: [], outgoingUser: null,
  };
  const ops2 = diffTargets(live, [drift, VM2], ours);
  t.same(runs(ops2), [
    { op: 'unbind-account', tid: 1, user: 'vm1mutual', outgoing: true },
    { op: 'unbind-address', tid: 1, address: '127.0.0.1' },
  ]);
  t.match(blocked(ops2), [{ tid: 1, reason: /LUN 2 .*sessions are open/ }, { tid: 1, reason: /LUN 1 is rdwr:\/tmp\/tgtx\/disk1.img, wanted rdwr:\/tmp\/tgtx\/other.img/ }]);
  t.notOk(isSettled(ops2));
  t.ok(isSettled(blocked(ops2)));
});

t.test('drift without sessions: LUN, readonly, ACL and account drift fixed in a safe order', async (t) => {
  const actual = parseTargetShow(fixture('show-targets.txt'));
  const want: DesiredTarget = {
    ...VM1,
    luns: [
      { lun: 1, backingStore: '/tmp/tgtx/disk1.img', bstype: 'aio', readonly: false }, // bstype drift
      { lun: 2, backingStore: '/tmp/tgtx/golden.img', bstype: 'aio', readonly: true },
      { lun: 4, backingStore: '/tmp/tgtx/new.img', bstype: 'rdwr', readonly: true },
    ],
    initiatorNames: ['iqn.2026-11.lab.init:vm1b'], initiatorAddresses: ['127.0.0.2'], incomingUsers: ['vm1user', 'spare'], outgoingUser: null,
  };
  const ops = runs(diffTargets(actual, [want, VM2], ours));
  t.same(ops, [
    { op: 'unbind-account', tid: 1, user: 'vm1mutual', outgoing: true },
    { op: 'unbind-name', tid: 1, iqn: 'iqn.2026-11.lab.init:vm1' },
    { op: 'unbind-address', tid: 1, address: '127.0.0.1' },
    { op: 'delete-lun', tid: 1, lun: 1 },
    { op: 'new-lun', tid: 1, lun: 1, backingStore: '/tmp/tgtx/disk1.img', bstype: 'aio' },
    { op: 'new-lun', tid: 1, lun: 4, backingStore: '/tmp/tgtx/new.img', bstype: 'rdwr' },
    { op: 'lun-readonly', tid: 1, lun: 4, readonly: true },
    { op: 'bind-account', tid: 1, user: 'spare', outgoing: false },
    { op: 'bind-name', tid: 1, iqn: 'iqn.2026-11.lab.init:vm1b' },
    { op: 'bind-address', tid: 1, address: '127.0.0.2' },
  ]);
  t.same(diffTargets(simulate(actual, ops), [want, VM2], ours), [], 'second plan empty');

  // Someone made the golden LUN writable: fixed even while sessions are open.
  const live = parseTargetShow(fixture('show-connections.txt').replace('Readonly: Yes', 'Readonly: No'));
  t.same(runs(diffTargets(live, [VM1, VM2], ours)), [{ op: 'lun-readonly', tid: 1, lun: 2, readonly: true }]);
  // Someone bound ALL on our target: removed.
  const all = parseTargetShow(fixture('show-targets.txt').replace('        127.0.0.1\n', '        127.0.0.1\n        ALL\n'));
  t.same(runs(diffTargets(all, [VM1, VM2], ours)), [{ op: 'unbind-address', tid: 1, address: 'ALL' }]);
});

t.test('accounts: created when missing, rotated on request, owned leftovers deleted', async (t) => {
  const actual = parseTargetShow(fixture('show-targets.txt'));
  const have = ['spare', 'vm2user', 'vm1mutual', 'vm1user'];
  const desired = [{ user: 'vm1user', secret: 'sekret-12chars' }, { user: 'vm1mutual', secret: 'mutualsecret12' }, { user: 'vm2user', secret: 'othersecret12' }];
  t.same(diffTargets(actual, [VM1, VM2], ours, { actual: have, desired }), []);
  const ops = diffTargets(actual, [VM1, VM2], ours, { actual: have, desired, owned: () => true });
  t.same(runs(ops), [{ op: 'delete-account', user: 'spare' }]);
  const rot = runs(diffTargets(actual, [VM1, VM2], ours, { actual: have, desired, recreate: new Set(['vm1user']) }));
  t.same(rot, [
    { op: 'unbind-account', tid: 1, user: 'vm1user', outgoing: false },
    { op: 'delete-account', user: 'vm1user' },
    { op: 'new-account', user: 'vm1user', secret: 'sekret-12chars' },
    { op: 'bind-account', tid: 1, user: 'vm1user', outgoing: false },
  ]);
  const fresh = runs(diffTargets([], [VM1], ours, { actual: [], desired: desired.slice(0, 2) }));
  t.same(fresh.slice(0, 3).map((o) => o.op), ['new-account', 'new-account', 'new-target'], 'accounts exist before they are bound');
  // An account still bound to a foreign target is not deleted.
  const foreignBound = parseTargetShow(fixture('show-targets.txt').replace(/(Target 7[\s\S]*Account information:\n)/, '$1        spare\n'));
  t.same(runs(diffTargets(foreignBound, [VM1, VM2], ours, { actual: have, desired, owned: () => true })), []);
});

t.test('bad desired state is refused before any op is planned', async (t) => {
  const bad: [DesiredTarget[], RegExp][] = [
    [[{ ...VM1, initiatorAddresses: ['ALL'] }], /ALL/],
    [[{ ...VM1, initiatorAddresses: ['0.0.0.0/0'] }], /\/0/],
    [[{ ...VM1, initiatorNames: [], initiatorAddresses: [] }], /nobody could log in/],
    [[{ ...VM1, iqn: 'IQN.2026-11.lab.metalboot:vm1' }], /not normalised/],
    [[VM1, VM1], /listed twice/],
    [[{ ...VM1, luns: [VM1.luns[0]!, VM1.luns[0]!] }], /LUN 1 listed twice/],
    [[{ ...VM1, luns: [{ lun: 0, backingStore: '/a', bstype: 'rdwr', readonly: true }] }], /LUN 0/],
    [[{ ...VM1, luns: [{ lun: 1, backingStore: 'rel', bstype: 'rdwr', readonly: true }] }], /absolute/],
    [[{ ...VM1, incomingUsers: ['vm1mutual'] }], /both incoming and outgoing/],
    [[{ ...VM1, tid: 0 }], /tid/],
  ];
  for (const [d, re] of bad) t.throws(() => diffTargets([], d, ours), re);
  t.throws(() => checkDesired([VM1], [{ user: 'vm1user', secret: 'short' }]), PlanError);
  t.throws(() => checkDesired([VM1], [{ user: 'vm1user', secret: 'sekret-12chars' }]), /vm1mutual is bound but not among/);
  t.equal(normalizeDesired({ ...VM1, iqn: 'IQN.2026-11.Lab.MetalBoot:VM1', initiatorNames: ['IQN.2026-11.LAB.init:VM1'] }).iqn, `${P}vm1`);
});

t.test('tid choice: preferred when free, else lowest free, never colliding between new targets', async (t) => {
  const actual = parseTargetShow(fixture('show-targets.txt')); // tids 1, 2, 7
  const a: DesiredTarget = { ...VM2, iqn: `${P}a`, tid: 7 };
  const b: DesiredTarget = { ...VM2, iqn: `${P}b`, tid: 3 };
  const c: DesiredTarget = { ...VM2, iqn: `${P}c` };
  const ops = runs(diffTargets(actual, [VM1, VM2, a, b, c], ours)).filter((o) => o.op === 'new-target');
  t.same(ops.map((o) => 'tid' in o && [o.iqn, o.tid]), [[`${P}a`, 4], [`${P}b`, 3], [`${P}c`, 5]]);
});

t.test('applyPlan runs in order, skips blocked, rolls back a LUN whose readonly failed', async (t) => {
  const done: string[] = [];
  const ok = { run: async (op: TgtadmOp) => { done.push(op.op); return ''; } };
  const res = await applyPlan(ok, [
    { type: 'run', op: { op: 'new-target', tid: 1, iqn: `${P}x` }, why: '' },
    { type: 'blocked', tid: 2, iqn: `${P}y`, reason: 'busy' },
    { type: 'run', op: { op: 'new-lun', tid: 1, lun: 1, backingStore: '/g', bstype: 'aio' }, why: '' },
  ]);
  t.same(res, { ran: 2, blocked: 1 });
  t.same(done, ['new-target', 'new-lun']);
  const done2: string[] = [];
  const failing = { run: async (op: TgtadmOp) => { done2.push(op.op); if (op.op === 'lun-readonly') throw new Error('nope'); return ''; } };
  await t.rejects(applyPlan(failing, [
    { type: 'run', op: { op: 'new-lun', tid: 1, lun: 1, backingStore: '/g', bstype: 'aio' }, why: '' },
    { type: 'run', op: { op: 'lun-readonly', tid: 1, lun: 1, readonly: true }, why: '' },
    { type: 'run', op: { op: 'bind-name', tid: 1, iqn: 'iqn.2026-11.a:b' }, why: '' },
  ]), /nope/);
  t.same(done2, ['new-lun', 'lun-readonly', 'delete-lun'], 'LUN deleted, nothing after the failure ran for that target');
});

t.test('applyPlan: one target failing does not leave the others undone; every failure is named', async (t) => {
  // Three fresh machine targets, as the disks service describes them (LUN 1 on an LV, IQN + CHAP).
  const m = (n: number): DesiredTarget => ({
    iqn: `${P}m${n}`, tid: n, luns: [{ lun: 1, backingStore: `/dev/vg/mbd-m${n}`, bstype: 'aio', readonly: false }],
    initiatorNames: [`iqn.2026-11.lab.init:m${n}`], initiatorAddresses: [], incomingUsers: [`mb-i${n}`],
  });
  const targets = [m(1), m(2), m(3)];
  const accounts = targets.map((d, i) => ({ user: d.incomingUsers[0]!, secret: `secret-of-m${i + 1}-xyz` }));
  const ops = diffTargets([], targets, ours, { actual: [], desired: accounts });
  const done: TgtadmOp[] = [];
  // m1's LV is missing (tgtd: "can't find the path"); m3's account cannot be made.
  const tgtd = {
    run: async (op: TgtadmOp) => {
      if (op.op === 'new-lun' && op.tid === 1) throw new Error('tgtadm new-lun failed (not-found): invalid request');
      if (op.op === 'new-account' && op.user === 'mb-i3') throw new Error(`tgtadm new-account failed: argv --password ${op.secret}`);
      done.push(op);
      return '';
    },
  };
  const err = await applyPlan(tgtd, ops).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof ApplyPlanError, 'a typed error');
  const e = err as ApplyPlanError;
  t.same(e.failures.map((f) => [f.target, f.step]), [
    ['account mb-i3', 'new-account mb-i3'],
    [`${P}m1`, 'new-lun 1'],
    [`${P}m3`, 'bind-account mb-i3'],
  ], 'each failure names its target and step');
  t.match(e.message, new RegExp(`${P}m1 new-lun 1: .*invalid request`));
  t.notMatch(e.message, /secret-of-m3/, 'the secret of a failed new-account is scrubbed');
  t.ok(e.skipped.every((s) => s.target === `${P}m1` || s.target === `${P}m3`), 'only the failed targets had steps skipped');
  // m2 got everything; m1 and m3 were created but admit no one (no ACL bound after their failure).
  const built = simulate([], done);
  const m2 = built.find((x) => x.iqn === `${P}m2`);
  t.same(m2?.initiatorNames, ['iqn.2026-11.lab.init:m2']);
  t.same(m2?.accounts, [{ user: 'mb-i2', outgoing: false }]);
  t.same(m2 && dataLuns(m2).map((l) => l.lun), [1]);
  for (const n of [1, 3]) {
    const x = built.find((y) => y.iqn === `${P}m${n}`);
    t.same(x?.initiatorNames, [], `m${n}: no initiator bound after its failure`);
  }
  t.equal(e.ran, done.length);
  // The next plan (a fresh show) only has m1's and m3's steps left.
  const again = diffTargets(built, targets, ours, { actual: ['mb-i1', 'mb-i2'], desired: accounts });
  t.same([...new Set(again.flatMap((o) => (o.type === 'run' && o.target ? [o.target] : [])))].sort(), [`${P}m1`, `${P}m3`]);
});

t.test('a LUN is compared by its export: bstype and backing store (rbd pool/image too); bsopts go to new-lun', async (t) => {
  // `show` as tgt prints an rbd LUN (usr/target.c: the backstore's name, the path as given).
  const shown = (bstype: string, store: string): TgtTarget[] => parseTargetShow([
    `Target 5: ${P}rbd1`, '    System information:', '        Driver: iscsi', '        State: ready', '    I_T nexus information:',
    '    LUN information:', '        LUN: 0', '            Type: controller', '            Backing store type: null', '            Backing store path: None',
    '        LUN: 1', '            Type: disk', '            Size: 1024 MB, Block size: 512', '            Readonly: No',
    `            Backing store type: ${bstype}`, `            Backing store path: ${store}`, '            Backing store flags: ',
    '    Account information:', '        mb-i5', '    ACL information:', '        iqn.2026-11.lab.init:rbd1', '',
  ].join('\n'));
  const want = (lun: DesiredTarget['luns'][number]): DesiredTarget => ({
    iqn: `${P}rbd1`, tid: 5, luns: [lun], initiatorNames: ['iqn.2026-11.lab.init:rbd1'], initiatorAddresses: [], incomingUsers: ['mb-i5'],
  });
  const rbd = { lun: 1, bstype: 'rbd', backingStore: 'metalboot/mbd-n5', bsopts: 'conf=/etc/ceph/ceph.conf;id=metalboot', readonly: false } as const;

  t.same(diffTargets(shown('rbd', 'metalboot/mbd-n5'), [want(rbd)], ours), [], 'same bstype and pool/image: nothing to do');
  t.same(diffTargets(shown('rbd', 'metalboot/mbd-n5'), [want({ ...rbd, bsopts: 'id=other' })], ours), [],
    'bsopts are not in show: not drift the plan can see (documented in plan.ts)');
  t.same(runs(diffTargets(shown('rbd', 'metalboot/mbd-old'), [want(rbd)], ours)), [
    { op: 'delete-lun', tid: 5, lun: 1 },
    { op: 'new-lun', tid: 5, lun: 1, bstype: 'rbd', backingStore: 'metalboot/mbd-n5', bsopts: 'conf=/etc/ceph/ceph.conf;id=metalboot' },
  ], 'another image: the LUN is made again, with its bsopts');
  t.same(runs(diffTargets(shown('aio', 'metalboot/mbd-n5'), [want(rbd)], ours)).map((o) => o.op), ['delete-lun', 'new-lun'], 'same string, other bstype: drift');
  const file = { lun: 1, bstype: 'rdwr', backingStore: '/srv/mb/disks/n5.raw', readonly: false } as const;
  t.same(runs(diffTargets(shown('rbd', 'metalboot/mbd-n5'), [want(file)], ours)), [
    { op: 'delete-lun', tid: 5, lun: 1 },
    { op: 'new-lun', tid: 5, lun: 1, bstype: 'rdwr', backingStore: '/srv/mb/disks/n5.raw' },
  ], 'moved to a path backend: no bsopts key on the op');
  t.same(runs(diffTargets([], [want(rbd)], ours)).find((o) => o.op === 'new-lun'),
    { op: 'new-lun', tid: 5, lun: 1, bstype: 'rbd', backingStore: 'metalboot/mbd-n5', bsopts: 'conf=/etc/ceph/ceph.conf;id=metalboot' }, 'a new target: new-lun carries the export');

  t.throws(() => diffTargets([], [want({ ...rbd, backingStore: '/dev/rbd0' })], ours), PlanError, 'rbd with a path: refused before any step');
  t.throws(() => diffTargets([], [want({ ...rbd, bsopts: 'cephx_key=AQB' })], ours), PlanError, 'a secret in bsopts: refused');
  t.throws(() => diffTargets([], [want({ ...file, bsopts: 'id=x' })], ours), PlanError, 'bsopts on a path backend: refused');
  t.throws(() => diffTargets([], [want({ ...file, bstype: 'sg' as 'rdwr' })], ours), /bstype/, 'an unknown bstype: refused');
});
