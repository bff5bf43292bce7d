import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import { SyslogServer, type SyslogSource } from '../../src/syslog/server.js';
import type { SyslogMessage } from '../../src/syslog/message.js';

const lines: string[] = [];
const log = createLogger({ level: 'debug', destination: new Writable({ write: (c, _e, cb) => { lines.push(String(c)); cb(); } }) });

async function client(t: Test): Promise<dgram.Socket> {
  const c = dgram.createSocket('udp4');
  await new Promise<void>((r) => c.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => c.close());
  return c;
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('counts every datagram once; handler errors are caught', async (t) => {
  const got: [SyslogMessage, SyslogSource][] = [];
  let mode: 'ok' | 'throw' | 'reject' = 'ok';
  const server = new SyslogServer({
    listen: { host: '127.0.0.1', port: 0 }, maxPerSecondPerSource: 1000, burst: 1000, log,
    onMessage: (m, from) => {
      got.push([m, from]);
      if (mode === 'throw') throw new Error('boom');
      if (mode === 'reject') return Promise.reject(new Error('async boom'));
    },
  });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.port!;
  t.ok(port > 0);
  const c = await client(t);
  c.send('<6>vm1 ipxe: hello', port, '127.0.0.1');
  await until('first message', () => got.length === 1);
  t.same(got[0]![0], { facility: 0, severity: 6, format: '3164', hostname: 'vm1', app: 'ipxe', text: 'hello' });
  t.same(got[0]![1], { address: '127.0.0.1', port: c.address().port });

  c.send(Buffer.alloc(3000, 0x41), port, '127.0.0.1');
  c.send('garbage', port, '127.0.0.1');
  c.send(Buffer.alloc(0), port, '127.0.0.1');
  await until('drops counted', () => server.counters.received === 4);
  t.match(server.counters, { received: 4, accepted: 1, oversized: 1, malformed: 2, rateLimited: 0, handlerErrors: 0 });

  mode = 'throw';
  c.send('<6>ipxe: a', port, '127.0.0.1');
  await until('throwing handler', () => server.counters.handlerErrors === 1);
  mode = 'reject';
  c.send('<6>ipxe: b', port, '127.0.0.1');
  await until('rejecting handler', () => server.counters.handlerErrors === 2);
  mode = 'ok';
  c.send('<6>ipxe: c', port, '127.0.0.1');
  await until('still serving', () => got.length === 4);
  t.match(server.counters, { received: 7, accepted: 4, handlerErrors: 2 });
  t.ok(lines.some((l) => l.includes('"event":"syslog.handler-error"') && l.includes('async boom')));
  t.ok(lines.some((l) => l.includes('"event":"syslog.oversized"')));
});

t.test('per-source limit with an injected clock; stop() then start() again', async (t) => {
  let now = 0;
  const got: string[] = [];
  const server = new SyslogServer({
    listen: { host: '127.0.0.1', port: 0 }, maxPerSecondPerSource: 1, burst: 3, log, clock: () => now,
    onMessage: (m) => { got.push(m.text); },
  });
  await server.start();
  const port = server.port!;
  const c = await client(t);
  for (let i = 0; i < 10; i++) c.send(`<6>ipxe: ${i}`, port, '127.0.0.1');
  await until('10 received', () => server.counters.received === 10);
  t.same(got, ['0', '1', '2']);
  t.equal(server.counters.rateLimited, 7);
  t.equal(lines.filter((l) => l.includes('"event":"syslog.rate-limited"')).length, 1, 'one warning, not seven');
  now += 1000;
  c.send('<6>ipxe: later', port, '127.0.0.1');
  await until('refilled', () => got.length === 4);
  await server.stop();
  t.equal(server.port, undefined);
  await server.stop();
  await server.start();
  t.teardown(() => server.stop());
  await t.rejects(server.start(), /already started/);
});

t.test('a busy port is a clear start() error', async (t) => {
  const a = new SyslogServer({ listen: { host: '127.0.0.1', port: 0 }, maxPerSecondPerSource: 1, burst: 1, log, onMessage: () => {} });
  await a.start();
  t.teardown(() => a.stop());
  const b = new SyslogServer({ listen: { host: '127.0.0.1', port: a.port! }, maxPerSecondPerSource: 1, burst: 1, log, onMessage: () => {} });
  await t.rejects(b.start(), /cannot open syslog UDP 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  t.equal(b.port, undefined);
});

t.test('source filter, then per source, then in total with half kept for bound sources', async (t) => {
  let now = 0;
  const got: string[] = [];
  // 127.0.0.1 plays a leased machine; 127.0.0.2..4 addresses of a served subnet without a lease; 127.0.0.9 is outside.
  const cls = (a: string) => (a === '127.0.0.1' ? 'bound' as const : a === '127.0.0.9' ? 'not-served' as const : 'served' as const);
  const server = new SyslogServer({
    listen: { host: '127.0.0.1', port: 0 }, maxPerSecondPerSource: 1, burst: 4, log, clock: () => now,
    classify: cls, total: { maxPerSecond: 1, burst: 8 },
    onMessage: (m) => { got.push(m.text); },
  });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.port!;
  const from = async (address: string) => {
    const c = dgram.createSocket('udp4');
    await new Promise<void>((r) => c.bind(0, address, () => r()));
    t.teardown(() => c.close());
    return c;
  };
  const outside = await from('127.0.0.9');
  for (let i = 0; i < 5; i++) outside.send(`<6>x: outside ${i}`, port, '127.0.0.1');
  await until('outside counted', () => server.counters.notServed === 5);
  t.same(got, [], 'nothing from outside');
  t.equal(lines.filter((l) => l.includes('"event":"syslog.not-served"')).length, 1, 'one warning for five');
  // Three unbound sources, 4 each (their per-source burst): 12 pass per source, but they share half the total (4).
  for (const a of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
    const c = await from(a);
    for (let i = 0; i < 4; i++) c.send(`<6>x: ${a} ${i}`, port, '127.0.0.1');
  }
  await until('unbound counted', () => server.counters.received === 17);
  t.equal(got.length, 4, 'unbound sources together got half the total burst');
  t.equal(server.counters.rateLimitedTotal, 8);
  // The bound machine still gets the other half.
  const machine = await from('127.0.0.1');
  for (let i = 0; i < 6; i++) machine.send(`<6>ipxe: line ${i}`, port, '127.0.0.1');
  await until('bound counted', () => server.counters.received === 23);
  t.same(got.filter((l) => l.startsWith('line')), ['line 0', 'line 1', 'line 2', 'line 3'], 'the bound source: its per-source burst, from the share kept for it');
  t.match(server.counters, { received: 23, notServed: 5, accepted: 8, rateLimited: 2, rateLimitedTotal: 8 });
  const c = server.counters;
  t.equal(c.received, c.notServed + c.rateLimited + c.rateLimitedTotal + c.malformed + c.oversized + c.accepted, 'every datagram counted once');
});
