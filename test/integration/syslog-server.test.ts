/**
 * Real syslog clients against SyslogServer on loopback: util-linux logger
 * (RFC 3164 and RFC 5424 over UDP, -d), a logger flood from 127.0.0.1 that the
 * per-source limit cuts down while iPXE-style lines from 127.0.0.2 still get
 * through, and oversized and garbage datagrams counted and dropped. Every
 * wait is bounded. Needs no root: the whole of 127/8 is local on Linux.
 */
import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { createLogger } from '../../src/log.js';
import { SyslogServer, type SyslogSource } from '../../src/syslog/server.js';
import type { SyslogMessage } from '../../src/syslog/message.js';

const LOGGER = ['/usr/bin/logger', '/bin/logger'].find((f) => existsSync(f));
const skip = LOGGER ? false : 'util-linux logger is not installed (bsdutils)';
const run = promisify(execFile);

const quiet = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

interface Got { msg: SyslogMessage; from: SyslogSource }

async function startServer(t: Test, rate: number, burst: number): Promise<{ server: SyslogServer; got: Got[]; port: number }> {
  const got: Got[] = [];
  const server = new SyslogServer({
    listen: { host: '127.0.0.1', port: 0 }, maxPerSecondPerSource: rate, burst, log: quiet,
    onMessage: (msg, from) => { got.push({ msg, from }); },
  });
  await server.start();
  t.teardown(() => server.stop());
  return { server, got, port: server.port! };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until `value()` has not changed for `quietMs` (UDP gives no end-of-stream). */
async function settle(value: () => number, quietMs = 300, maxMs = 10_000): Promise<void> {
  const end = Date.now() + maxMs;
  let last = value();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > end) throw new Error('counters never settled');
    await new Promise((r) => setTimeout(r, 20));
    const v = value();
    if (v !== last) { last = v; since = Date.now(); }
  }
}

const logger = (port: number, args: string[]): Promise<unknown> =>
  run(LOGGER!, ['-d', '-n', '127.0.0.1', '-P', String(port), ...args], { timeout: 10_000 });

async function udpFrom(t: Test, address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(0, address, () => resolve()); });
  t.teardown(() => s.close());
  return s;
}

const shortHost = os.hostname().split('.')[0]!;

t.test('logger --rfc3164 and --rfc5424 messages arrive parsed', { skip, timeout: 60_000 }, async (t) => {
  const { server, got, port } = await startServer(t, 100, 100);
  await logger(port, ['--rfc3164', '-t', 'mbtest', '-p', 'local3.warning', 'plain bsd']);
  await until('rfc3164', () => got.length === 1);
  t.match(got[0]!.msg, { format: '3164', facility: 19, severity: 4, app: 'mbtest', text: 'plain bsd' });
  t.match(got[0]!.msg.timestamp, /^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}$/);
  t.ok(got[0]!.msg.hostname === os.hostname() || got[0]!.msg.hostname === shortHost, `hostname ${String(got[0]!.msg.hostname)}`);
  t.equal(got[0]!.from.address, '127.0.0.1');

  await logger(port, ['--rfc5424', '-t', 'mbtest', '-p', 'daemon.err', '--msgid', 'BOOT', '--sd-id', 'mb@32473', '--sd-param', 'note="a \\] b"', 'ünïcödé 5424']);
  await until('rfc5424', () => got.length === 2);
  t.match(got[1]!.msg, { format: '5424', facility: 3, severity: 3, app: 'mbtest', text: 'ünïcödé 5424' });
  t.match(got[1]!.msg.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);

  // logger passes control characters through untouched; they come out escaped.
  await logger(port, ['--rfc3164', '-t', 'mbtest', 'line1\n{"event":"forged"}\x1b[2J']);
  await until('escaped', () => got.length >= 3);
  // logger splits nothing given on the command line; the newline is escaped.
  t.equal(got[2]!.msg.text, 'line1\\n{"event":"forged"}\\x1b[2J');

  // Lines from stdin, one datagram each (an empty line is an empty message).
  await new Promise<void>((resolve, reject) => {
    const p = spawn(LOGGER!, ['-d', '-n', '127.0.0.1', '-P', String(port), '--rfc5424', '-t', 'stdin'], { stdio: ['pipe', 'ignore', 'inherit'], timeout: 10_000 });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`logger exited ${code}`))));
    p.stdin.end('one\n\ntwo\n');
  });
  await until('stdin lines', () => got.length === 6);
  t.same(got.slice(3).map((g) => g.msg.text), ['one', '', 'two']);
  t.match(server.counters, { received: 6, accepted: 6, malformed: 0, oversized: 0, rateLimited: 0, handlerErrors: 0 });
});

t.test('a flood from one source is limited while another gets through; oversized and garbage are dropped', { skip, timeout: 60_000 }, async (t) => {
  const RATE = 5;
  const BURST = 20;
  const FLOOD = 2000;
  const { server, got, port } = await startServer(t, RATE, BURST);
  const ipxe = await udpFrom(t, '127.0.0.2');
  const hostile = await udpFrom(t, '127.0.0.3');

  // Oversized from a real client: logger with a larger --size. Sent first: the
  // limit is checked before the size, and 127.0.0.1 is about to be cut off.
  await logger(port, ['--rfc3164', '-t', 'big', '-S', '4000', 'x'.repeat(3000)]);
  await until('the oversized logger message', () => server.counters.oversized === 1);

  const started = Date.now();
  const flood = new Promise<void>((resolve, reject) => {
    const p = spawn(LOGGER!, ['-d', '-n', '127.0.0.1', '-P', String(port), '--rfc3164', '-t', 'flood'], { stdio: ['pipe', 'ignore', 'inherit'], timeout: 20_000 });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`logger exited ${code}`))));
    p.stdin.end(Array.from({ length: FLOOD }, (_, i) => `flood ${i}`).join('\n') + '\n');
  });
  // Once the flood is being cut, iPXE (another address) must still be heard.
  await until('the flood to hit the limit', () => server.counters.rateLimited > 0, 10_000);
  const ipxeLines = ['iPXE initialising devices...ok', 'Configuring (net0 52:54:00:12:34:56)...... ok', 'http://10.0.0.1/boot/x.ipxe... ok'];
  const fromIpxe = (): Got[] => got.filter((g) => g.from.address === '127.0.0.2');
  let ipxeSent = 0;
  for (const [i, line] of ipxeLines.entries()) {
    const want = i + 1;
    // UDP may lose a datagram under a flood; a bounded resend keeps the check about the limiter.
    for (let attempt = 0; fromIpxe().length < want; attempt++) {
      if (attempt === 5) throw new Error(`iPXE line ${i} never arrived`);
      ipxe.send(`<6>vm1 ipxe: ${line}`, port, '127.0.0.1');
      ipxeSent++;
      await until(`iPXE line ${i}`, () => fromIpxe().length >= want, 1000).catch(() => undefined);
    }
  }
  t.same(fromIpxe().map((g) => [g.msg.hostname, g.msg.app, g.msg.text]), ipxeLines.map((l) => ['vm1', 'ipxe', l]), `iPXE heard during the flood (${ipxeSent} sent)`);
  await flood;
  const elapsed = (Date.now() - started) / 1000;
  await settle(() => server.counters.received);
  const floodAccepted = got.filter((g) => g.msg.app === 'flood').length;
  t.comment(`flood: ${FLOOD} lines sent in ${elapsed.toFixed(2)} s, ${floodAccepted} accepted, ${server.counters.rateLimited} rate-limited, ${server.counters.received} received in all`);
  // One token went to the oversized message.
  t.ok(floodAccepted >= BURST - 1, `the burst got through: ${floodAccepted}`);
  t.ok(floodAccepted <= BURST - 1 + Math.ceil(RATE * elapsed) + 1, `then no more than the rate: ${floodAccepted} <= ${BURST} + ${RATE}/s × ${elapsed.toFixed(2)} s`);
  // Loopback drops what overflows the socket buffer; count what reached the handler.
  const floodReceived = server.counters.received - 1 - fromIpxe().length;
  t.equal(server.counters.rateLimited, floodReceived - floodAccepted, 'every other flood datagram was dropped by the limit');
  t.ok(floodReceived >= 10 * BURST, `a real flood reached the server (${floodReceived} datagrams)`);

  // Garbage and a 60 KB datagram from a third address (its own, full bucket).
  const before = { ...server.counters };
  hostile.send(Buffer.alloc(60_000, 0x41), port, '127.0.0.1');
  for (const g of ['no pri at all', '<999>bad pri', '<013>leading zero', '<13>1 2026-13-01T00:00:00Z h a - - - bad month']) hostile.send(g, port, '127.0.0.1');
  hostile.send(Buffer.from([0xff, 0x00, 0x1b, 0x5b, 0x32, 0x4a]), port, '127.0.0.1');
  hostile.send(Buffer.alloc(0), port, '127.0.0.1');
  await until('the hostile datagrams', () => server.counters.received === before.received + 7);
  const c = server.counters;
  t.equal(c.oversized, 2, 'the 3000-byte logger message and the 60 KB datagram');
  t.equal(c.malformed - before.malformed, 6, 'no PRI, PRI 999, PRI 013, bad RFC 5424 date, binary, empty');
  t.equal(c.accepted, before.accepted, 'nothing from the hostile source was accepted');
  t.equal(c.received, c.accepted + c.malformed + c.oversized + c.rateLimited, 'every datagram counted once');
  t.equal(c.handlerErrors, 0);
});
