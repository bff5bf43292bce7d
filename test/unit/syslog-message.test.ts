import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MAX_DATAGRAM, escapeUnsafe, parseSyslog, type ParseResult, type SyslogMessage } from '../../src/syslog/message.js';

/** Captured from util-linux logger 2.38.1; see test/fixtures/syslog/README.md. */
const fixture = (name: string): Buffer => readFileSync(new URL(`../../../test/fixtures/syslog/${name}`, import.meta.url));

const ok = (r: ParseResult): SyslogMessage => {
  if (!r.ok) throw new Error(`expected ok, got ${r.reason}: ${r.detail}`);
  return r.value;
};
const parse = (s: string | Buffer): ParseResult => parseSyslog(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);

t.test('what iPXE sends (src/net/udp/syslog.c syslog_send: "<%d>%s%s%s%sipxe: %s")', async (t) => {
  // hostname + domain from DHCP options 12 and 15, default facility kern, severity info.
  t.same(ok(parse('<6>pxe01.lab.example ipxe: iPXE 1.21.1+ (g4e456d99) -- Open Source Network Boot Firmware -- https://ipxe.org')), {
    facility: 0, severity: 6, format: '3164', hostname: 'pxe01.lab.example', app: 'ipxe',
    text: 'iPXE 1.21.1+ (g4e456d99) -- Open Source Network Boot Firmware -- https://ipxe.org',
  });
  // hostname only (no domain): "%s%s%s%s" = host, "", "", " ".
  t.same(ok(parse('<6>vm1 ipxe: Configuring (net0 52:54:00:12:34:56)...... ok')), {
    facility: 0, severity: 6, format: '3164', hostname: 'vm1', app: 'ipxe', text: 'Configuring (net0 52:54:00:12:34:56)...... ok',
  });
  // no hostname setting: "<6>ipxe: ...".
  t.same(ok(parse('<6>ipxe: http://10.0.0.1/boot/52-54-00-12-34-56.ipxe... ok')), {
    facility: 0, severity: 6, format: '3164', app: 'ipxe', text: 'http://10.0.0.1/boot/52-54-00-12-34-56.ipxe... ok',
  });
  // A console line split at SYSLOG_BUFSIZE - 1 = 127 characters, and an empty line (a bare "\n" on the console).
  t.equal(ok(parse(`<6>vm1 ipxe: ${'x'.repeat(127)}`)).text.length, 127);
  t.same(ok(parse('<6>vm1 ipxe: ')), { facility: 0, severity: 6, format: '3164', hostname: 'vm1', app: 'ipxe', text: '' });
  // Errors are logged with a severity set by an ANSI private sequence: e.g. <3> (err).
  t.match(ok(parse('<3>vm1 ipxe: Could not boot: No such file or directory (https://ipxe.org/2d12618e)')), { severity: 3, facility: 0 });
  // ipxe/syslogs.c (TLS) ends its lines with "\n"; it is framing, not text.
  t.equal(ok(parse('<6>vm1 ipxe: done\n')).text, 'done');
});

t.test('util-linux logger datagrams (fixtures)', async (t) => {
  t.same(ok(parseSyslog(fixture('logger-rfc3164.bin'))), {
    facility: 19, severity: 4, format: '3164', timestamp: 'Nov 22 07:01:59', hostname: 'vm', app: 'metalboot-test', text: 'hello from logger rfc3164',
  });
  t.same(ok(parseSyslog(fixture('logger-rfc3164-pid-utf8.bin'))), {
    facility: 1, severity: 5, format: '3164', timestamp: 'Nov 22 07:01:59', hostname: 'vm', app: 'tagged', text: 'with pid ünïcödé',
  });
  t.same(ok(parseSyslog(fixture('logger-rfc5424.bin'))), {
    facility: 1, severity: 5, format: '5424', timestamp: '2026-11-22T07:01:59.473630+00:00', hostname: 'vm', app: 'metalboot-test', text: 'hello from logger rfc5424',
  });
  // [timeQuality ...][zoo@123 tiger="hungry\] \"x\" \\ y"][a@1 b="c"]: escaped ], " and \ inside a value.
  t.same(ok(parseSyslog(fixture('logger-rfc5424-sd.bin'))), {
    facility: 1, severity: 5, format: '5424', timestamp: '2026-11-22T07:01:59.578866+00:00', hostname: 'vm', app: 'app', text: 'with structured data',
  });
  t.same(ok(parseSyslog(fixture('logger-rfc5424-nil.bin'))), { facility: 1, severity: 5, format: '5424', app: 'bare', text: 'nil fields' });
  // An empty line on logger's stdin: SD, one space, no MSG.
  t.same(ok(parseSyslog(fixture('logger-rfc5424-empty.bin'))), {
    facility: 1, severity: 5, format: '5424', timestamp: '2026-11-22T07:05:01.615501+00:00', hostname: 'vm', app: 's', text: '',
  });
  // logger passes control characters through as they are: ESC [2J (clear screen), BEL.
  t.equal(ok(parseSyslog(fixture('logger-rfc3164-ansi.bin'))).text, 'a\\x1b[2Jb\\x07c');
});

t.test('RFC 3164 §5.4 and RFC 5424 §6.5 examples', async (t) => {
  t.same(ok(parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")), {
    facility: 4, severity: 2, format: '3164', timestamp: 'Oct 11 22:14:15', hostname: 'mymachine', app: 'su', text: "'su root' failed for lonvick on /dev/pts/8",
  });
  t.same(ok(parse('<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!')), {
    facility: 1, severity: 5, format: '3164', timestamp: 'Feb  5 17:32:18', hostname: '10.0.0.99', text: 'Use the BFG!',
  });
  t.same(ok(parse('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \u{feff}An application event log entry...')), {
    facility: 20, severity: 5, format: '5424', timestamp: '2003-10-11T22:14:15.003Z', hostname: 'mymachine.example.com', app: 'evntslog', text: 'An application event log entry...',
  });
  t.same(ok(parse('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]')), {
    facility: 20, severity: 5, format: '5424', timestamp: '2003-10-11T22:14:15.003Z', hostname: 'mymachine.example.com', app: 'evntslog', text: '',
  });
  t.same(ok(parse('<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}\'su root\' failed for lonvick on /dev/pts/8')).text, "'su root' failed for lonvick on /dev/pts/8");
  t.same(ok(parse('<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It\'s time to make the do-nuts.')), {
    facility: 20, severity: 5, format: '5424', timestamp: '2003-08-24T05:14:15.000003-07:00', hostname: '192.0.2.1', app: 'myproc', text: "%% It's time to make the do-nuts.",
  });
});

t.test('structured data is skipped exactly, whatever its values hold', async (t) => {
  const m = ok(parse('<14>1 - h a - - [x@1 k="a \\] b] \\" c [ d=\\"e"][y@2] real text'));
  t.equal(m.text, 'real text');
  t.equal(ok(parse('<14>1 - h a - - [x@1 k=""] t')).text, 't');
  for (const bad of [
    '<14>1 - h a - - [x@1 k="unterminated] t',
    '<14>1 - h a - - [x@1 k="v" t',
    '<14>1 - h a - - [x@1 k=v] t',
    '<14>1 - h a - - [] t',
    '<14>1 - h a - - [x@1 =\"v\"] t',
    '<14>1 - h a - - [x@1 k="v"]t',
    '<14>1 - h a - - x t',
    `<14>1 - h a - - [${'x'.repeat(33)}] t`,
    '<14>1 - h a - - [x@1 k="v\\',
  ]) {
    t.match(parse(bad), { ok: false, reason: 'malformed' }, bad);
  }
});

t.test('RFC 5424 header fields are held to §6', async (t) => {
  for (const bad of [
    '<14>1 2003-13-11T22:14:15Z h a - - - m',
    '<14>1 2003-10-11 22:14:15Z h a - - - m',
    '<14>1 2003-10-11T22:14:15.0000001Z h a - - - m',
    '<14>1 2003-10-11T22:14:15 h a - - - m',
    `<14>1 - ${'h'.repeat(256)} a - - - m`,
    `<14>1 - h ${'a'.repeat(49)} - - - m`,
    `<14>1 - h a ${'p'.repeat(129)} - - m`,
    `<14>1 - h a - ${'m'.repeat(33)} - m`,
    '<14>1 - h  a - - - m',
    '<14>1 - h a - -',
    '<14>1 -',
  ]) {
    t.match(parse(bad), { ok: false, reason: 'malformed' }, bad);
  }
  t.same(ok(parse('<14>1 - - - - - -')), { facility: 1, severity: 6, format: '5424', text: '' });
  // Not a 5424 header at all: BSD content that starts with "1 ".
  t.same(ok(parse('<6>1 file copied')), { facility: 0, severity: 6, format: '3164', text: '1 file copied' });
});

t.test('PRI: 1..3 digits, no leading zeros, 0..191', async (t) => {
  t.match(ok(parse('<0>x')), { facility: 0, severity: 0 });
  t.match(ok(parse('<191>x')), { facility: 23, severity: 7 });
  t.match(ok(parse('<7>x')), { facility: 0, severity: 7 });
  for (const bad of ['<192>x', '<00>x', '<01>x', '<007>x', '<1000>x', '<>x', '<a>x', '<1', '<', 'x', '13>x', ' <13>x', '<-1>x', '<+1>x']) {
    t.match(parse(bad), { ok: false, reason: 'malformed' }, JSON.stringify(bad));
  }
  t.same(ok(parse('<13>')), { facility: 1, severity: 5, format: '3164', text: '' }, 'PRI alone: an empty message');
});

t.test('RFC 3164 degenerate forms', async (t) => {
  t.same(ok(parse('<13>just some words')), { facility: 1, severity: 5, format: '3164', text: 'just some words' });
  t.same(ok(parse('<13>tag[123]: x')), { facility: 1, severity: 5, format: '3164', app: 'tag', text: 'x' });
  t.same(ok(parse('<13>Nov 22 07:01:52 tagged[1]: no host')), { facility: 1, severity: 5, format: '3164', timestamp: 'Nov 22 07:01:52', app: 'tagged', text: 'no host' });
  t.same(ok(parse('<13>Nov 2 07:01:52 h t: unpadded day')), { facility: 1, severity: 5, format: '3164', timestamp: 'Nov 2 07:01:52', hostname: 'h', app: 't', text: 'unpadded day' });
  t.same(ok(parse('<13>2024-01-02T03:04:05.123+01:00 h t: iso stamp')), { facility: 1, severity: 5, format: '3164', timestamp: '2024-01-02T03:04:05.123+01:00', hostname: 'h', app: 't', text: 'iso stamp' });
  t.same(ok(parse('<13>Foo 22 07:01:52 h t: no such month')), { facility: 1, severity: 5, format: '3164', text: 'Foo 22 07:01:52 h t: no such month' });
  t.same(ok(parse('<13>Nov 22 25:01:52 h t: bad hour')).timestamp, undefined);
  t.same(ok(parse('<13>Nov 22 07:01:52 ')), { facility: 1, severity: 5, format: '3164', timestamp: 'Nov 22 07:01:52', text: '' });
  // A "hostname" with a control character is not a hostname: the whole thing is escaped text.
  t.same(ok(parse('<13>h\x1b[2J ipxe: x')), { facility: 1, severity: 5, format: '3164', text: 'h\\x1b[2J ipxe: x' });
});

t.test('output is printable: newlines, ANSI escapes, C1, bidi controls and NUL are escaped', async (t) => {
  const m = ok(parse('<6>vm1 ipxe: ok\n{"level":"error","event":"forged"}\r\x1b[31mred\x1b[0m\x07\x00\x7f\u0085\u202eevil\u2028x\tz'));
  t.equal(m.text, 'ok\\n{"level":"error","event":"forged"}\\r\\x1b[31mred\\x1b[0m\\x07\\x00\\x7f\\x85\\u202eevil\\u2028x\\tz');
  t.notMatch(m.text, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
  t.equal(escapeUnsafe('plain ünïcödé ✓ 日本'), 'plain ünïcödé ✓ 日本');
  // Trailing framing (LF, CRLF, NUL) is dropped, not escaped.
  t.equal(ok(parse('<6>ipxe: a\r\n')).text, 'a');
  t.equal(ok(parse('<6>ipxe: a\x00')).text, 'a');
});

t.test('invalid UTF-8 becomes U+FFFD, never an exception', async (t) => {
  const buf = Buffer.concat([Buffer.from('<6>ipxe: a'), Buffer.from([0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf0, 0x9f]), Buffer.from('z')]);
  const m = ok(parseSyslog(buf));
  t.match(m.text, /^a\uFFFD+\(\uFFFD+z$/);
  t.notMatch(m.text, /[\uD800-\uDFFF]/, 'no lone surrogates');
  // Latin-1 bytes in a header position: not a hostname, escaped as text.
  t.same(ok(parseSyslog(Buffer.from([0x3c, 0x36, 0x3e, 0xe9, 0x20, 0x78]))), { facility: 0, severity: 6, format: '3164', text: '\uFFFD x' });
});

t.test('size bounds', async (t) => {
  t.match(parse(''), { ok: false, reason: 'malformed' });
  const exact = Buffer.concat([Buffer.from('<6>ipxe: '), Buffer.alloc(MAX_DATAGRAM - 9, 0x61)]);
  t.equal(exact.length, MAX_DATAGRAM);
  t.equal(ok(parseSyslog(exact)).text.length, MAX_DATAGRAM - 9);
  t.match(parseSyslog(Buffer.concat([exact, Buffer.from('a')])), { ok: false, reason: 'oversized' });
  t.match(parseSyslog(Buffer.alloc(65507, 0x61)), { ok: false, reason: 'oversized' });
  t.match(parseSyslog(exact, { maxBytes: 100 }), { ok: false, reason: 'oversized' });
});

t.test('fuzz: random and mutated datagrams never throw and yield printable output', async (t) => {
  const seeds = [
    '<6>vm1 ipxe: Configuring (net0 52:54:00:12:34:56)...... ok',
    '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\\]"] msg',
    '<34>Oct 11 22:14:15 mymachine su: x',
  ].map((s) => Buffer.from(s));
  const unsafe = /[\u0000-\u001f\u007f-\u009f\u2028-\u202e\u2066-\u2069]/;
  const printableAscii = /^[\x21-\x7e]+$/;
  let okCount = 0;
  for (let n = 0; n < 20_000; n++) {
    let buf: Buffer;
    if (n % 2 === 0) {
      buf = randomBytes(n % 300);
      if (n % 4 === 0 && buf.length > 3) buf.write(`<${n % 200}>`, 0, 'latin1');
    } else {
      buf = Buffer.from(seeds[n % seeds.length]!);
      for (let k = 0; k < 1 + (n % 5); k++) buf[Math.floor(Math.random() * buf.length)] = Math.floor(Math.random() * 256);
      if (n % 7 === 0) buf = buf.subarray(0, Math.floor(Math.random() * buf.length));
    }
    let r: ParseResult;
    try {
      r = parseSyslog(buf);
    } catch (e) {
      t.fail(`threw on ${buf.toString('hex')}: ${String(e)}`);
      return;
    }
    if (!r.ok) continue;
    okCount++;
    const v = r.value;
    if (unsafe.test(v.text) || (v.hostname !== undefined && !printableAscii.test(v.hostname)) || (v.app !== undefined && !printableAscii.test(v.app))
        || v.facility < 0 || v.facility > 23 || v.severity < 0 || v.severity > 7) {
      t.fail(`unsafe output for ${buf.toString('hex')}: ${JSON.stringify(v)}`);
      return;
    }
  }
  t.ok(okCount > 1000, `${okCount} of 20000 parsed, all printable`);
});
