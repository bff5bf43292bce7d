/**
 * scripts/tools.tsv, the one list of external tools: every row parses, names
 * a package and a probe, and install-deps.sh installs from it (no second list
 * of packages); a malformed row is a ToolListError naming file and line; a
 * test asking for a tool the list does not know fails instead of skipping.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseTools, ToolListError, toolMissing, tools } from '../helpers/tools.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

t.test('the real list', async (t) => {
  const list = tools();
  t.ok(list.size >= 30, `${list.size} tools`);
  for (const tool of list.values()) {
    t.ok(tool.probe.trim().length > 0, `${tool.name}: has a probe`);
    if (tool.name !== 'node') t.match(tool.pkg ?? '', /^[a-z0-9][a-z0-9+.-]+$/, `${tool.name}: a Debian package name`);
  }
  // The packages the issue found missing on a fresh Debian 12, and the fresh-root check's own tool.
  t.equal(list.get('qemu-iscsi')?.pkg, 'qemu-block-extra');
  t.equal(list.get('qemu-iscsi')?.scope, 'test');
  t.equal(list.get('debootstrap')?.pkg, 'debootstrap');
  t.equal(list.get('node')?.pkg, undefined, 'node is the pinned runtime, not a Debian package');
  const install = readFileSync(`${REPO}scripts/install-deps.sh`, 'utf8');
  t.match(install, /done < scripts\/tools\.tsv/, 'install-deps reads the list');
  t.notMatch(install, /\b(RUNTIME_PKGS|TEST_PKGS)=/, 'and keeps no list of its own');
});

t.test('parse errors name the line', async (t) => {
  t.throws(() => parseTools('# c\nonly\ttwo\n', 'x.tsv'), new ToolListError('x.tsv', 2, 'expected 5 TAB-separated columns, got 2'));
  t.throws(() => parseTools('a\tbogus\tp\t-\ttrue\n', 'x.tsv'), { name: 'ToolListError', line: 1 });
  t.throws(() => parseTools('a\ttest\tp\t-\ttrue\na\ttest\tq\t-\ttrue\n', 'x.tsv'), { message: /x\.tsv:2: tool "a" listed twice/ });
  const ok = parseTools('\n# comment\na\tbuild\t-\t/no/such\ttrue\n');
  t.same(ok.get('a'), { name: 'a', scope: 'build', pkg: undefined, path: '/no/such', probe: 'true' });
});

t.test('toolMissing', async (t) => {
  t.throws(() => toolMissing('no-such-tool'), { message: /not in .*tools\.tsv/ }, 'an unknown tool is an error, not a skip');
  const dpkg = tools().get('dpkg-deb')!;
  t.equal(toolMissing('dpkg-deb'), false, `${dpkg.path} exists here`);
});
