/**
 * fs/under-root.ts on a real directory: what resolves inside the root is opened, everything that
 * leaves it is refused, and a file swapped for a link after the check is refused too.
 */
import t from 'tap';
import { link, mkdtemp, mkdir, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openUnderRoot, relativeNameProblem } from '../../src/fs/under-root.js';

t.test('openUnderRoot: inside is served, links out, chains out, .., absolute, loops, dirs, FIFOs are not', async (t) => {
  const base = await realpath(await mkdtemp(join(tmpdir(), 'mb-under-root-')));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  await mkdir(join(root, 'sub'), { recursive: true });
  await writeFile(join(base, 'secret'), 'outside-secret');
  await writeFile(join(root, 'vmlinuz'), 'kernel-bytes');
  await writeFile(join(root, 'sub', 'initrd'), 'initrd-bytes');
  await symlink(join(base, 'secret'), join(root, 'link-out')); // absolute link out
  await symlink('../secret', join(root, 'rel-out')); // relative link out
  await symlink('link-out', join(root, 'chain-out')); // a chain whose end is out
  await symlink(base, join(root, 'dir-out')); // a directory link out
  await symlink('vmlinuz', join(root, 'link-in')); // inside: followed
  await symlink('link-in', join(root, 'chain-in')); // chain that stays inside: followed
  await symlink('loop-b', join(root, 'loop-a'));
  await symlink('loop-a', join(root, 'loop-b'));
  await symlink('/etc/shadow', join(root, 'shadow'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  // A root reached through a link itself is fine: the comparison is between real paths.
  await symlink(root, join(base, 'root-link'));

  const read = async (r: Awaited<ReturnType<typeof openUnderRoot>>) => {
    if (!r.ok) return undefined;
    try { return (await r.file.readFile()).toString(); } finally { await r.file.close(); }
  };
  for (const [name, want] of [['vmlinuz', 'kernel-bytes'], ['sub/initrd', 'initrd-bytes'], ['link-in', 'kernel-bytes'], ['chain-in', 'kernel-bytes']] as const) {
    t.equal(await read(await openUnderRoot(root, name)), want, `${name}: served`);
    t.equal(await read(await openUnderRoot(join(base, 'root-link'), name)), want, `${name} through a linked root: served`);
  }
  const refused: [string, RegExp][] = [
    ['link-out', /outside the root/], ['rel-out', /outside the root/], ['chain-out', /outside the root/], ['dir-out/secret', /outside the root/],
    ['shadow', /outside the root|no such file/], ['loop-a', /symlink loop/], ['sub', /not a regular file/], ['fifo', /not a regular file/],
    ['../secret', /dot segment/], ['sub/../../secret', /dot segment/], ['.', /dot segment/], [join(base, 'secret'), /absolute path/],
    ['/etc/shadow', /absolute path/], ['sub//initrd', /empty path segment/], ['', /empty name/], ['vmlinuz\0x', /NUL/],
  ];
  for (const [name, why] of refused) {
    const r = await openUnderRoot(root, name);
    t.notOk(r.ok, `${JSON.stringify(name)}: refused`);
    if (!r.ok) t.match(r.reason, why, `${JSON.stringify(name)}: ${r.reason}`);
    await read(r);
  }
  t.match(await openUnderRoot(root, 'missing'), { ok: false, kind: 'not-found' });
  t.match(await openUnderRoot(join(base, 'no-root'), 'vmlinuz'), { ok: false, kind: 'not-found' });
  t.equal(relativeNameProblem('a/b.c'), undefined);
});

t.test('openUnderRoot: a file swapped for a link out while it is being opened is never served', async (t) => {
  // The race the check-then-open order must survive: a writer keeps replacing `vmlinuz` with a
  // link to the secret and back. Whatever interleaving happens, only the real kernel is read.
  const base = await realpath(await mkdtemp(join(tmpdir(), 'mb-under-root-race-')));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  await mkdir(root);
  await writeFile(join(base, 'secret'), 'outside-secret');
  await writeFile(join(root, 'good'), 'kernel-bytes');
  let stop = false, swaps = 0;
  const swapper = (async () => {
    const deadline = Date.now() + 3000;
    for (let i = 0; i < 20_000 && !stop && Date.now() < deadline; i++) {
      // A regular file (a hard link of `good`) and a link out, in turn, each put in place atomically.
      await (i % 2 ? symlink(join(base, 'secret'), join(root, 'tmp')) : link(join(root, 'good'), join(root, 'tmp'))).catch(() => undefined);
      await rename(join(root, 'tmp'), join(root, 'vmlinuz')).catch(() => undefined);
      swaps++;
      // The regular file stays a little longer, so clean opens happen between the swaps too.
      if (i % 2 === 0) for (let k = 0; k < 4; k++) await new Promise((r) => setImmediate(r));
    }
  })();
  const seen = new Map<string, number>();
  const deadline = Date.now() + 2500;
  for (let i = 0; i < 5000 && Date.now() < deadline; i++) {
    const r = await openUnderRoot(root, 'vmlinuz');
    const got = r.ok ? (await r.file.readFile()).toString() : `refused`;
    if (r.ok) await r.file.close();
    seen.set(got, (seen.get(got) ?? 0) + 1);
  }
  stop = true;
  await swapper;
  t.notOk(seen.has('outside-secret'), `the secret was never read (${JSON.stringify([...seen])}, ${swaps} swaps)`);
  t.ok((seen.get('kernel-bytes') ?? 0) > 0 && (seen.get('refused') ?? 0) > 0, 'both outcomes happened: the race was exercised');
});
