import t from 'tap';
import type { EventBody, MetalbootEvent } from '../../src/events/bus.js';
import { EventBus } from '../../src/events/bus.js';
import { buildTimeline, lastStep, MESSAGES_KEPT } from '../../src/status/timeline.js';
import { parseMac } from '../../src/net/mac.js';

const MAC = parseMac('52:54:00:00:00:01');
const pxe = { mac: MAC, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', ipxe: false, arch: 'bios' };
const ipxe = { mac: MAC, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', ipxe: true, arch: 'bios' };
const os = { mac: MAC, vendorClass: 'udhcp 1.36', ipxe: false, arch: 'unknown' };

/** Events at the given times (ms), through a real bus for seq and at. */
function seq(items: [number, EventBody][]): MetalbootEvent[] {
  let now = 0;
  const bus = new EventBus(() => now);
  return items.map(([at, b]) => { now = at; return bus.publish(b); });
}

/** A full BIOS boot starting at t0: PXE DHCP, TFTP, iPXE DHCP, script, iSCSI login, active. */
function fullBoot(t0: number): [number, EventBody][] {
  return [
    [t0, { type: 'dhcp.offer', ...pxe, ip: '10.0.0.100' }],
    [t0 + 100, { type: 'dhcp.ack', ...pxe, ip: '10.0.0.100' }],
    [t0 + 150, { type: 'tftp.start', client: '10.0.0.100', file: 'undionly.kpxe', size: 70000, mac: MAC }],
    [t0 + 900, { type: 'tftp.end', client: '10.0.0.100', file: 'undionly.kpxe', ok: true, bytes: 70000, size: 70000, durationMs: 750, retransmits: 0, mac: MAC }],
    [t0 + 2000, { type: 'dhcp.offer', ...ipxe, ip: '10.0.0.100' }],
    [t0 + 2050, { type: 'dhcp.ack', ...ipxe, ip: '10.0.0.100' }],
    [t0 + 2100, { type: 'boot.script', mac: MAC, ip: '10.0.0.100', action: 'sanboot', served: true }],
    [t0 + 3000, { type: 'iscsi.login', iqn: 'iqn.2026-11.org.metalboot:m1', initiator: 'iqn.x:initiator:m1', mac: MAC }],
    [t0 + 9000, { type: 'machine.state', mac: MAC, from: 'booting', to: 'active', reason: 'disk login', actor: 'system' }],
  ];
}

t.test('a full boot: steps in order, contiguous, with durations', async (t) => {
  const ev = seq(fullBoot(1000));
  const [a, ...more] = buildTimeline(ev, { now: 20_000 });
  t.equal(more.length, 0, 'the iPXE DHCP after TFTP is the same attempt');
  t.equal(a!.state, 'active');
  t.equal(a!.startedAt, 1000);
  t.equal(a!.endedAt, 10_000);
  t.same(a!.steps.map((s) => [s.name, s.at, s.endAt, s.durationMs, s.state, s.detail]), [
    ['dhcp', 1000, 1100, 100, 'done', '10.0.0.100'],
    ['tftp', 1150, 1900, 750, 'done', 'undionly.kpxe'],
    ['script', 1900, 3100, 1200, 'done', 'sanboot'],
    ['iscsi', 3100, 4000, 900, 'done', 'iqn.2026-11.org.metalboot:m1'],
    ['active', 4000, 10_000, 6000, 'done', 'disk login'],
  ]);
  t.equal(a!.firstSeq, 1);
  t.equal(a!.lastSeq, 9);
  t.same(lastStep([a!]), { name: 'active', at: 10_000, state: 'done', attempt: 'active' });
});

t.test('running steps take their duration from now', async (t) => {
  const ev = seq(fullBoot(0).slice(0, 3));
  const [a] = buildTimeline(ev, { now: 5150 });
  t.equal(a!.state, 'running');
  const tftp = a!.steps[1]!;
  t.same([tftp.name, tftp.state, tftp.durationMs, tftp.endAt], ['tftp', 'running', 5000, undefined]);
  t.same(lastStep([a!])?.name, 'tftp');
  const [b] = buildTimeline(seq([[0, { type: 'dhcp.offer', ...pxe, ip: '10.0.0.5' }]]), { now: 300 });
  t.same(b!.steps.map((s) => [s.name, s.state, s.durationMs]), [['dhcp', 'running', 300]], 'DHCP offered, no ACK yet');
});

t.test('a reboot after the script was served starts a new attempt; the old one is interrupted', async (t) => {
  const first = fullBoot(0).slice(0, 7); // up to the script
  const ev = seq([...first, ...fullBoot(60_000)]);
  const tl = buildTimeline(ev, { now: 100_000 });
  t.equal(tl.length, 2);
  t.equal(tl[0]!.state, 'interrupted');
  t.equal(tl[0]!.endedAt, 60_000);
  t.equal(tl[0]!.lastSeq, 7);
  t.equal(tl[1]!.state, 'active');
  t.equal(tl[1]!.firstSeq, 8);
});

t.test('a PXE ROM asking again after TFTP is a restart; running steps of the old attempt fail', async (t) => {
  const ev = seq([
    ...fullBoot(0).slice(0, 3), // TFTP started, never ended (machine reset mid-download)
    [30_000, { type: 'dhcp.offer', ...pxe, ip: '10.0.0.100' }],
  ]);
  const tl = buildTimeline(ev, { now: 31_000 });
  t.equal(tl.length, 2);
  t.same(tl[0]!.steps.map((s) => [s.name, s.state]), [['dhcp', 'done'], ['tftp', 'failed']]);
  t.equal(tl[0]!.steps[1]!.detail, 'interrupted');
  t.same(tl[1]!.steps.map((s) => [s.name, s.state]), [['dhcp', 'running']]);
});

t.test('TFTP: a failed size probe then a good download is one done step; a failure left alone stays failed', async (t) => {
  const base = (ok2: boolean): [number, EventBody][] => [
    [0, { type: 'dhcp.offer', ...pxe }],
    [10, { type: 'dhcp.ack', ...pxe, ip: '10.0.0.7' }],
    [20, { type: 'tftp.start', client: '10.0.0.7', file: 'ipxe.efi', size: 1000, mac: MAC }],
    [30, { type: 'tftp.end', client: '10.0.0.7', file: 'ipxe.efi', ok: false, bytes: 0, size: 1000, durationMs: 10, retransmits: 0, error: 'client aborted: tsize probe', mac: MAC }],
    [40, { type: 'tftp.start', client: '10.0.0.7', file: 'ipxe.efi', size: 1000, mac: MAC }],
    [90, { type: 'tftp.end', client: '10.0.0.7', file: 'ipxe.efi', ok: ok2, bytes: ok2 ? 1000 : 10, size: 1000, durationMs: 50, retransmits: 2, ...(ok2 ? {} : { error: 'timeout' }), mac: MAC }],
  ];
  const [a] = buildTimeline(seq(base(true)), { now: 100 });
  t.same(a!.steps.map((s) => [s.name, s.at, s.endAt, s.state, s.detail]), [['dhcp', 0, 10, 'done', '10.0.0.7'], ['tftp', 20, 90, 'done', 'ipxe.efi']]);
  t.equal(a!.state, 'running');
  const [b] = buildTimeline(seq(base(false)), { now: 100 });
  t.same(b!.steps.at(-1), { name: 'tftp', at: 20, endAt: 90, durationMs: 70, state: 'failed', detail: 'timeout' });
  t.same(lastStep([b!])?.state, 'failed');
  // A size query the server knows as such (declined at the OACK) leaves the step running.
  const probe = base(true).slice(0, 4);
  probe[3] = [30, { type: 'tftp.end', client: '10.0.0.7', file: 'ipxe.efi', ok: false, declined: true, bytes: 0, size: 1000, durationMs: 10, retransmits: 0, error: 'client error 8: User aborted the transfer', mac: MAC }];
  const [c] = buildTimeline(seq(probe), { now: 35 });
  t.same(c!.steps.at(-1), { name: 'tftp', at: 20, durationMs: 15, state: 'running', detail: 'ipxe.efi' }, 'declined: still running, waiting for the download');
  t.equal(c!.state, 'running');
});

t.test('a refused script fails the attempt; machine.state failed fails the running step', async (t) => {
  const [a] = buildTimeline(seq([
    [0, { type: 'dhcp.offer', ...ipxe }],
    [10, { type: 'dhcp.ack', ...ipxe, ip: '10.0.0.7' }],
    [20, { type: 'boot.script', mac: MAC, ip: '10.0.0.7', action: 'none', served: false, reason: 'unknown machine' }],
  ]), { now: 100 });
  t.equal(a!.state, 'failed');
  t.same(a!.steps.at(-1), { name: 'script', at: 10, endAt: 20, durationMs: 10, state: 'failed', detail: 'unknown machine' });

  const [b] = buildTimeline(seq([
    [0, { type: 'dhcp.offer', ...ipxe }],
    [50, { type: 'machine.state', mac: MAC, from: 'booting', to: 'failed', reason: 'boot timeout', actor: 'system' }],
  ]), { now: 100 });
  t.equal(b!.state, 'failed');
  t.same(b!.steps.map((s) => [s.name, s.state, s.detail, s.durationMs]), [['dhcp', 'failed', 'boot timeout', 50]]);
  t.equal(b!.endedAt, 50);
});

t.test('after an active boot: the OS own DHCP does not start an attempt, a PXE one does', async (t) => {
  const ev = seq([
    ...fullBoot(0),
    [20_000, { type: 'dhcp.offer', ...os, ip: '10.0.0.100' }],
    [20_010, { type: 'dhcp.ack', ...os, ip: '10.0.0.100' }],
    [50_000, { type: 'dhcp.offer', ...pxe, ip: '10.0.0.100' }],
  ]);
  const tl = buildTimeline(ev, { now: 50_100 });
  t.equal(tl.length, 2);
  t.equal(tl[0]!.state, 'active');
  t.equal(tl[0]!.lastSeq, 11, 'the OS DHCP is grouped with the booted attempt');
  t.same(tl[1]!.steps.map((s) => s.name), ['dhcp']);
});

t.test('unrelated and out-of-order events do not reopen earlier steps', async (t) => {
  const ev = seq([
    ...fullBoot(0).slice(0, 7),
    [2200, { type: 'tftp.start', client: '10.0.0.100', file: 'late.bin', size: 1, mac: MAC }],
    [2300, { type: 'dhcp.ack', ...ipxe, ip: '10.0.0.100' }],
    [2400, { type: 'syslog', mac: MAC, ip: '10.0.0.100', severity: 6, text: 'ipxe: hello' }],
    [2500, { type: 'power.command', mac: MAC, driver: 'ipmi', target: '10.0.1.5', command: 'power.status', ok: true, ms: 3 }],
  ]);
  const [a] = buildTimeline(ev, { now: 3000 });
  t.same(a!.steps.map((s) => [s.name, s.state]), [['dhcp', 'done'], ['tftp', 'done'], ['script', 'done']]);
  t.equal(a!.lastSeq, 11);
  t.equal(a!.lastEventAt, 2500);
});

t.test('no boot events: no attempts; keeps the last N; ack without offer opens one', async (t) => {
  t.same(buildTimeline(seq([[0, { type: 'syslog', mac: MAC, ip: '1.2.3.4', severity: 6, text: 'x' }]]), { now: 1 }), []);
  const many: [number, EventBody][] = [];
  for (let i = 0; i < 15; i++) many.push(...fullBoot(i * 100_000));
  const tl = buildTimeline(seq(many), { now: 2_000_000, keep: 4 });
  t.equal(tl.length, 4);
  t.equal(tl[0]!.startedAt, 1_100_000);
  t.ok(tl.every((a) => a.state === 'active'));
  const [r] = buildTimeline(seq([[5, { type: 'dhcp.ack', ...os, ip: '10.0.0.9' }]]), { now: 10 });
  t.same(r!.steps.map((s) => [s.name, s.state, s.detail]), [['dhcp', 'done', '10.0.0.9']], 'INIT-REBOOT client');
});

t.test('custom active and failed states', async (t) => {
  const ev = seq([
    [0, { type: 'dhcp.offer', ...ipxe }],
    [10, { type: 'machine.state', mac: MAC, from: 'x', to: 'ready', reason: 'r', actor: 'a' }],
  ]);
  t.equal(buildTimeline(ev, { now: 20 })[0]!.state, 'running');
  t.equal(buildTimeline(ev, { now: 20, activeStates: ['ready'] })[0]!.state, 'active');
  t.equal(buildTimeline(ev, { now: 20, failedStates: ['ready'] })[0]!.state, 'failed');
});

t.test('syslog lines go with the attempt they arrive in, last 20 kept, steps unchanged', async (t) => {
  const log = (at: number, text: string, severity = 6): [number, EventBody] => [at, { type: 'syslog', mac: MAC, ip: '10.0.0.100', severity, text }];
  const boot = fullBoot(1000);
  const ev = seq([
    log(500, 'before any attempt'),
    ...boot.slice(0, 6),
    log(3060, 'net0: 52:54:00:00:00:01 using undionly on 0000:00:03.0', 6),
    log(3070, 'net0: <b>open</b> ok'),
    ...boot.slice(6),
    log(10_500, 'Could not boot: No such file', 3),
  ]);
  const [a] = buildTimeline(ev, { now: 20_000 });
  const plain = buildTimeline(seq(boot), { now: 20_000 })[0]!;
  t.same(a!.steps, plain.steps, 'steps as without the syslog lines');
  t.equal(a!.state, 'active');
  t.same(a!.messages, [
    { at: 3060, text: 'net0: 52:54:00:00:00:01 using undionly on 0000:00:03.0', severity: 6 },
    { at: 3070, text: 'net0: <b>open</b> ok', severity: 6 },
    { at: 10_500, text: 'Could not boot: No such file', severity: 3 },
  ], 'in order, the raw text; none from before the attempt');
  t.same(plain.messages, []);

  // Two attempts: each keeps its own lines; a flood keeps the newest MESSAGES_KEPT.
  const flood: [number, EventBody][] = [];
  for (let i = 0; i < MESSAGES_KEPT + 5; i++) flood.push(log(61_000 + i, `line ${i}`));
  const [first, second] = buildTimeline(seq([...fullBoot(0).slice(0, 7), log(2200, 'first boot'), ...fullBoot(60_000).slice(0, 2), ...flood]), { now: 70_000 });
  t.same(first!.messages.map((m) => m.text), ['first boot']);
  t.equal(MESSAGES_KEPT, 20);
  t.same(second!.messages.map((m) => m.text), flood.slice(-MESSAGES_KEPT).map(([, b]) => (b as { text: string }).text));
  t.same(second!.steps.map((s) => [s.name, s.state]), [['dhcp', 'done']]);
});
