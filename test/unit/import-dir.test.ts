/**
 * The import directory: the pure containment rule, then openImportFile against a real directory
 * tree with links leading out (to a file, through a directory) and in.
 */
import t from 'tap';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ImportPathError, openImportFile } from '../../src/images/import-dir.js';
import { isInside } from '../../src/fs/under-root.js';

t.test('isInside: strictly below the root, after normalising; never by string prefix', async (t) => {
  const cases: [string, string, boolean][] = [
    ['/var/lib/mb/import', '/var/lib/mb/import/a.raw', true],
    ['/var/lib/mb/import/', '/var/lib/mb/import/sub/a.raw', true],
    ['/var/lib/mb/import', '/var/lib/mb/import/..foo', true],
    ['/var/lib/mb/import', '/var/lib/mb/import', false],
    ['/var/lib/mb/import', '/var/lib/mb/import/', false],
    ['/var/lib/mb/import', '/var/lib/mb/import-evil/a.raw', false],
    ['/var/lib/mb/import', '/var/lib/mb/import/../api-token', false],
    ['/var/lib/mb/import', '/var/lib/mb/import/sub/../../db/CURRENT', false],
    ['/var/lib/mb/import', '/etc/shadow', false],
    ['/var/lib/mb/import', 'import/a.raw', false],
    ['import', '/import/a.raw', false],
    ['/', '/etc/shadow', true],
  ];
  for (const [root, p, want] of cases) t.equal(isInside(root, p), want, `${p} in ${root}`);
});

t.test('openImportFile: inside only, links resolved, opened once', async (t) => {
  const base = await mkdtemp(path.join(tmpdir(), 'mb-impdir-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const dir = path.join(base, 'import');
  await mkdir(path.join(dir, 'sub'), { recursive: true });
  const secret = path.join(base, 'secret.txt');
  await writeFile(secret, 'root:$6$notreally\n');
  await writeFile(path.join(dir, 'good.raw'), Buffer.alloc(4096, 7));
  await writeFile(path.join(dir, 'sub', 'deep.raw'), Buffer.alloc(512, 1));
  await symlink(secret, path.join(dir, 'to-secret'));
  await symlink('../secret.txt', path.join(dir, 'relative-out'));
  await symlink(base, path.join(dir, 'up'));
  await symlink('/etc', path.join(dir, 'etc'));
  await symlink('good.raw', path.join(dir, 'alias.raw'));
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);

  const ok = async (p: string, size: number) => {
    const o = await openImportFile(dir, p);
    try { t.equal(o.sizeBytes, size, `${p} opened, ${size} bytes`); } finally { await o.fh.close(); }
  };
  await ok(path.join(dir, 'good.raw'), 4096);
  await ok(path.join(dir, 'sub', 'deep.raw'), 512);
  await ok(path.join(dir, 'alias.raw'), 4096);
  await ok(path.join(dir, 'sub', '..', 'good.raw'), 4096);

  const refused = async (p: string, problem: string) => {
    const e = await openImportFile(dir, p).then(() => undefined, (x: unknown) => x);
    t.ok(e instanceof ImportPathError, `${p}: refused`);
    if (!(e instanceof ImportPathError)) return;
    t.equal(e.problem, problem, `${p}: ${problem}`);
    t.match(e.message, /^path: /, 'the message names the field');
    t.ok(e.message.includes(dir), 'and the import directory');
    t.notMatch(e.message, /notreally/, 'never the content');
  };
  await refused(secret, 'outside');
  await refused('/etc/shadow', 'outside');
  await refused(path.join(dir, '..', 'secret.txt'), 'outside');
  await refused(path.join(dir, 'to-secret'), 'outside');
  await refused(path.join(dir, 'relative-out'), 'outside');
  await refused(path.join(dir, 'up', 'secret.txt'), 'outside');
  await refused(path.join(dir, 'etc', 'shadow'), 'outside');
  await refused('good.raw', 'not-absolute');
  await refused(path.join(dir, 'missing.raw'), 'not-found');
  await refused(path.join(dir, 'sub'), 'not-a-file');
  await refused(path.join(dir, 'fifo'), 'not-a-file');
});
