import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger, REDACT_CENSOR } from '../../src/log.js';

/** A stream that keeps everything written to it. */
function memory(): { stream: Writable; text: () => string; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const text = () => chunks.join('');
  return { stream, text, lines: () => text().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)) };
}

t.test('JSON lines with event, service, pid and ISO time', async (t) => {
  const m = memory();
  const log = createLogger({ level: 'info', destination: m.stream });
  log.info({ event: 'dhcp.ack', mac: '52:54:00:00:00:01', ip: '10.99.0.10' }, 'lease granted');
  const [line, ...rest] = m.lines();
  t.same(rest, []);
  t.match(line, {
    level: 'info',
    service: 'metalboot',
    pid: process.pid,
    event: 'dhcp.ack',
    mac: '52:54:00:00:00:01',
    ip: '10.99.0.10',
    msg: 'lease granted',
  });
  t.match(line!['time'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.equal(line!['hostname'], undefined, 'journald supplies the host');
});

t.test('secrets never reach the output', async (t) => {
  const m = memory();
  const log = createLogger({ level: 'debug', destination: m.stream });
  log.info({ event: 'x', password: 'hunter2', bmc: { password: 'p4ssw0rd-bmc' }, chapSecret: 's3cr3t-chap' }, 'one');
  log.info({ event: 'http.req', req: { headers: { authorization: 'Bearer tok-abc', host: 'h' } } }, 'two');
  log.info({ event: 'deep', a: { b: { token: 'tok-deep', secret: 'sec-deep' } }, list: [{ password: 'pw-in-list' }] }, 'three');
  log.child({ module: 'ipmi', bmc: { host: '10.0.0.5', password: 'pw-child' } }).debug({ event: 'ipmi.session' }, 'four');

  const out = m.text();
  for (const secret of ['hunter2', 'p4ssw0rd-bmc', 's3cr3t-chap', 'tok-abc', 'tok-deep', 'sec-deep', 'pw-in-list', 'pw-child']) {
    t.notOk(out.includes(secret), `${secret} is not in the output`);
  }
  const lines = m.lines();
  t.same(lines.map((l) => l['event']), ['x', 'http.req', 'deep', 'ipmi.session']);
  t.match(lines[0], { password: REDACT_CENSOR, bmc: { password: REDACT_CENSOR }, chapSecret: REDACT_CENSOR });
  t.match(lines[1], { req: { headers: { authorization: REDACT_CENSOR, host: 'h' } } });
  t.match(lines[3], { module: 'ipmi', bmc: { host: '10.0.0.5', password: REDACT_CENSOR } });
});

t.test('level filters', async (t) => {
  const m = memory();
  const log = createLogger({ level: 'warn', destination: m.stream });
  log.info({ event: 'quiet' }, 'dropped');
  log.error({ event: 'loud' }, 'kept');
  t.same(m.lines().map((l) => [l['level'], l['event']]), [['error', 'loud']]);
});

t.test('default destination is a synchronous fd writer', async (t) => {
  // fd 2 rather than 1, so the line does not interleave with TAP output on stdout.
  const log = createLogger({ level: 'info', destination: 2 });
  t.doesNotThrow(() => log.info({ event: 'test.fd' }, 'to stderr'));
  t.equal(log.level, 'info');
});
