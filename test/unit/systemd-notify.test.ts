/**
 * The sd_notify protocol against a real AF_UNIX datagram socket (a python3
 * receiver: node cannot receive unix datagrams), for filesystem and abstract
 * addresses; the environment rules (sd_watchdog_enabled); and the daemon
 * itself: READY=1 only once it serves, STOPPING=1 on SIGTERM, watchdog pings.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { nativeNotify, readNotifyEnv, SystemdNotifier, type NotifyLog } from '../../src/systemd/notify.js';
import { NotifyReceiver } from '../helpers/notify-receiver.js';
import { LineCollector } from '../helpers/netns.js';
import { METALBOOTD, REPO_ROOT } from '../helpers/daemon.js';

function memLog(): NotifyLog & { warnings: object[] } {
  const warnings: object[] = [];
  return { warnings, warn: (o) => { warnings.push(o); }, debug: () => undefined };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tmpDir(t: Test): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'mbt-notify-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

t.test('environment: no socket is a no-op, watchdog only for our pid, variables removed', async (t) => {
  t.same(readNotifyEnv({}, 100), { socket: undefined, watchdogIntervalMs: undefined });
  t.same(readNotifyEnv({ NOTIFY_SOCKET: '' }, 100), { socket: undefined, watchdogIntervalMs: undefined });
  const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '100', OTHER: 'x' };
  t.same(readNotifyEnv(env, 100), { socket: '/run/systemd/notify', watchdogIntervalMs: 15_000 }, 'half of WATCHDOG_USEC');
  t.same(env, { OTHER: 'x' }, 'NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID removed (children never inherit them)');
  t.equal(readNotifyEnv({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '101' }, 100).watchdogIntervalMs, undefined, 'watchdog meant for another pid');
  t.equal(readNotifyEnv({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '2000000' }, 100).watchdogIntervalMs, 1000, 'no WATCHDOG_PID: ours');
  t.equal(readNotifyEnv({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: 'soon' }, 100).watchdogIntervalMs, undefined, 'garbage ignored');
  t.equal(readNotifyEnv({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '0' }, 100).watchdogIntervalMs, undefined, 'zero is off');
  const kept: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '@x' };
  readNotifyEnv(kept, 1, false);
  t.same(kept, { NOTIFY_SOCKET: '@x' }, 'unset=false keeps them');

  let sent = 0;
  const n = new SystemdNotifier({ env: { socket: undefined, watchdogIntervalMs: 5 }, send: () => { sent++; } });
  t.equal(n.enabled, false);
  t.equal(n.ready(), false);
  t.equal(n.stopping(), false);
  n.startWatchdog();
  await sleep(30);
  n.stopWatchdog();
  t.equal(sent, 0, 'nothing sent without NOTIFY_SOCKET, watchdog included');
});

t.test('native notify: one datagram per call to a path socket and to an abstract socket', async (t) => {
  const dir = await tmpDir(t);
  const file = await NotifyReceiver.start(path.join(dir, 'notify.sock'));
  const abs = await NotifyReceiver.start(`@mbt-notify-${process.pid}-${Date.now()}`);
  t.teardown(async () => { await file.close(); await abs.close(); });

  nativeNotify(file.address, 'READY=1\nSTATUS=serving');
  nativeNotify(abs.address, 'WATCHDOG=1');
  const a = await file.waitFor('READY=1');
  t.equal(a.state, 'READY=1\nSTATUS=serving', 'the exact bytes, newline-separated fields');
  t.equal(a.pid, process.pid, 'kernel credentials name us (what NotifyAccess=main checks)');
  t.equal((await abs.waitFor('WATCHDOG=1')).state, 'WATCHDOG=1', 'abstract socket (@ prefix)');

  const big = `STATUS=${'x'.repeat(4000)}`;
  nativeNotify(file.address, big);
  t.equal((await file.waitFor(big)).state.length, big.length, 'a long state in one datagram');

  t.throws(() => nativeNotify(path.join(dir, 'missing.sock'), 'READY=1'), { code: 'E2', message: /No such file/ }, 'ENOENT thrown by the addon');
  t.throws(() => nativeNotify('relative.sock', 'READY=1'), RangeError, 'relative paths refused');
  t.throws(() => nativeNotify(`/${'a'.repeat(200)}`, 'READY=1'), RangeError, 'paths longer than sun_path refused');
  t.throws(() => nativeNotify(file.address, ''), RangeError, 'empty state refused');
});

t.test('notifier: fields joined, newlines in values cannot forge fields, failures logged once and not thrown', async (t) => {
  const dir = await tmpDir(t);
  const rx = await NotifyReceiver.start(path.join(dir, 'n.sock'));
  t.teardown(() => rx.close());
  const log = memLog();
  const n = new SystemdNotifier({ env: { socket: rx.address, watchdogIntervalMs: undefined }, log });
  t.equal(n.enabled, true);
  t.equal(n.status('start failed: bad\nREADY=1'), true);
  t.equal((await rx.waitFor('STATUS=start failed: bad READY=1')).state, 'STATUS=start failed: bad READY=1', 'one field, newline flattened');
  t.equal(n.ready('serving'), true);
  t.equal((await rx.waitFor('READY=1')).state, 'READY=1\nSTATUS=serving');
  t.equal(n.stopping(), true);
  t.equal((await rx.waitFor('STOPPING=1')).state, 'STOPPING=1\nSTATUS=stopping');

  const gone = new SystemdNotifier({ env: { socket: path.join(dir, 'nobody.sock'), watchdogIntervalMs: undefined }, log });
  t.equal(gone.ready(), false, 'send failure returns false');
  t.equal(gone.ready(), false);
  t.equal(log.warnings.length, 1, 'logged once per kind of failure');
  t.match(log.warnings[0], { event: 'systemd.notify-failed', err: /No such file/ });
});

t.test('watchdog: WATCHDOG=1 at half of WATCHDOG_USEC until stopped', async (t) => {
  const dir = await tmpDir(t);
  const rx = await NotifyReceiver.start(path.join(dir, 'wd.sock'));
  t.teardown(() => rx.close());
  const n = new SystemdNotifier({ env: readNotifyEnv({ NOTIFY_SOCKET: rx.address, WATCHDOG_USEC: '100000' }, process.pid) });
  t.equal(n.watchdogIntervalMs, 50);
  const t0 = Date.now();
  n.startWatchdog();
  n.startWatchdog(); // idempotent
  await sleep(520);
  n.stopWatchdog();
  const elapsed = Date.now() - t0;
  await sleep(150);
  const pings = rx.received().filter((m) => m.state === 'WATCHDOG=1').length;
  // One at once, then one per 50 ms: about 11 in 520 ms; timers on a busy CI box may run late, never early.
  t.ok(pings >= 5 && pings <= Math.floor(elapsed / 50) + 2, `${pings} pings in ${elapsed} ms`);
  await sleep(150);
  t.equal(rx.received().filter((m) => m.state === 'WATCHDOG=1').length, pings, 'none after stopWatchdog');
});

t.test('metalbootd: READY=1 only once it serves, STOPPING=1 on SIGTERM, watchdog while running, variables not inherited', { timeout: 60_000 }, async (t) => {
  const dir = await tmpDir(t);
  const rx = await NotifyReceiver.start(path.join(dir, 'daemon.sock'));
  t.teardown(() => rx.close());
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const cfg = path.join(dir, 'metalboot.yaml');
  await writeFile(cfg, `dataDir: ${dir}/data
http: { listen: "127.0.0.1:${port}" }
dhcp: { mode: off }
tftp: { enabled: false }
iscsi: { enabled: false }
`);
  const proc = spawn('node', [METALBOOTD, '--config', cfg], {
    cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: rx.address, WATCHDOG_USEC: '200000' },
  });
  const out = new LineCollector(proc.stdout);
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });

  const ready = await rx.waitFor('READY=1', 30_000);
  t.equal(ready.pid, proc.pid, 'sent by the main process (NotifyAccess=main)');
  // READY=1 means serving: the health check answers at once, and daemon.ready was logged first.
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.same(await res.json(), { status: 'ok' }, '/healthz answers when READY=1 arrives');
  t.ok(out.lines.some((l) => l.includes('"event":"daemon.ready"')), 'daemon.ready logged before READY=1');
  await sleep(400);
  t.ok(rx.received().filter((m) => m.state === 'WATCHDOG=1').length >= 2, 'watchdog pings at 100 ms');
  proc.kill('SIGTERM');
  const stopping = await rx.waitFor('STOPPING=1', 10_000);
  t.match(stopping.state, /^STOPPING=1/);
  t.equal(await exited, 0, 'clean exit');
  const states = rx.received().map((m) => m.state.split('\n')[0]);
  t.ok(states.indexOf('READY=1') < states.indexOf('STOPPING=1'), 'READY before STOPPING');
  t.equal(states.filter((s) => s === 'READY=1').length, 1, 'READY=1 once');
});
