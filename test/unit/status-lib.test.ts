/** The status page's pure helpers (status/lib.js, plain JS served as is) that draw syslog lines. */
import t from 'tap';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** <root>/status/lib.js from dist/test/unit/. */
const LIB = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../status/lib.js')).href;

interface Lib {
  syslogList(messages: unknown, fmtTime?: (at: number) => string): { toString(): string } | '';
  severityClass(sev: number): string;
}

t.test('syslog lines under a boot attempt: escaped, coloured by severity, nothing when none', async (t) => {
  const lib = (await import(LIB)) as Lib;
  t.equal(String(lib.syslogList([])), '');
  t.equal(String(lib.syslogList(undefined)), '', 'an attempt from an older daemon has no messages');
  const out = String(lib.syslogList([
    { at: 1, text: 'net0: <b>open</b> "ok" & <script>alert(1)</script>', severity: 6 },
    { at: 2, text: 'Could not boot', severity: 3 },
    { at: 3, text: 'slow', severity: 4 },
  ], (at) => `t${at}`));
  t.equal(out, '<ol class="syslog" aria-label="syslog">'
    + '<li class="sev-info"><time>t1</time><span class="mono">net0: &lt;b&gt;open&lt;/b&gt; &quot;ok&quot; &amp; &lt;script&gt;alert(1)&lt;/script&gt;</span></li>'
    + '<li class="sev-err"><time>t2</time><span class="mono">Could not boot</span></li>'
    + '<li class="sev-warn"><time>t3</time><span class="mono">slow</span></li></ol>');
  t.notMatch(out, /style=/, 'no inline styles (the page CSP forbids them)');
  t.same([0, 3, 4, 5, 7].map(lib.severityClass), ['err', 'err', 'warn', 'info', 'info']);
});
