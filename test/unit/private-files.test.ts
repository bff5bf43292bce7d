/**
 * tightenTree on a real directory tree: modes as an older version or a 022/000 umask left them
 * are made owner-only, read-only files stay read-only, and nothing outside the tree is touched
 * through a symbolic link or a hard link planted in it.
 */
import t from 'tap';
import { chmod, link, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { needsTightening, privateMode, securePrivateDirs, tightenTree } from '../../src/store/private-files.js';

const modeOf = async (p: string) => (await stat(p)).mode & 0o7777;

t.test('privateMode / needsTightening', async (t) => {
  t.equal(privateMode(0o755), 0o700);
  t.equal(privateMode(0o644), 0o600);
  t.equal(privateMode(0o444), 0o400, 'read-only stays read-only');
  t.equal(privateMode(0o4755), 0o700, 'set-id bits go');
  t.equal(privateMode(0o600), 0o600);
  t.equal(needsTightening(0o600), false);
  t.equal(needsTightening(0o400), false);
  t.equal(needsTightening(0o700), false);
  t.equal(needsTightening(0o640), true);
  t.equal(needsTightening(0o1700), true);
});

t.test('tightenTree: dirs 0700, files owner-only; links not followed; bounded', async (t) => {
  const base = await mkdtemp(path.join(tmpdir(), 'mb-tighten-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const root = path.join(base, 'data');
  const outside = path.join(base, 'outside.txt');
  const outsideDir = path.join(base, 'outside-dir');
  await mkdir(path.join(root, 'db'), { recursive: true });
  await mkdir(path.join(root, 'volumes', 'images'), { recursive: true });
  await mkdir(outsideDir);
  await writeFile(outside, 'not ours');
  await writeFile(path.join(outsideDir, 'f'), 'not ours either');
  await writeFile(path.join(root, 'db', '000003.log'), 'bmc password in clear');
  await writeFile(path.join(root, 'api-token'), 'x'.repeat(32));
  await writeFile(path.join(root, 'volumes', 'images', 'golden.raw'), 'image');
  await writeFile(path.join(root, 'already.json'), '{}');
  await symlink(outside, path.join(root, 'link-to-file'));
  await symlink(outsideDir, path.join(root, 'link-to-dir'));
  await link(outside, path.join(root, 'hardlink'));
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  for (const d of [root, path.join(root, 'db'), path.join(root, 'volumes'), path.join(root, 'volumes', 'images'), outsideDir]) await chmod(d, 0o755);
  for (const f of [path.join(root, 'db', '000003.log'), path.join(root, 'api-token'), outside, path.join(outsideDir, 'f')]) await chmod(f, 0o644);
  await chmod(path.join(root, 'volumes', 'images', 'golden.raw'), 0o444);
  await chmod(path.join(root, 'already.json'), 0o600);
  await chmod(path.join(root, 'fifo'), 0o666);

  const r = await tightenTree(root);
  t.equal(await modeOf(root), 0o700, 'root 0700');
  for (const d of ['db', 'volumes', 'volumes/images']) t.equal(await modeOf(path.join(root, d)), 0o700, `${d}/ 0700`);
  t.equal(await modeOf(path.join(root, 'db', '000003.log')), 0o600);
  t.equal(await modeOf(path.join(root, 'api-token')), 0o600);
  t.equal(await modeOf(path.join(root, 'volumes', 'images', 'golden.raw')), 0o400, 'a read-only image stays read-only, for root only');
  t.equal(await modeOf(outside), 0o644, 'a file reached by a symlink or a hard link is not touched');
  t.equal(await modeOf(outsideDir), 0o755, 'a directory reached by a symlink is not touched');
  t.equal(await modeOf(path.join(outsideDir, 'f')), 0o644, 'nor what is in it');
  t.equal(await modeOf(path.join(root, 'fifo')), 0o666, 'a FIFO is not opened');
  const changed = r.tightened.map((x) => path.relative(root, x.path)).sort();
  t.same(changed, ['', 'api-token', 'db', 'db/000003.log', 'volumes', 'volumes/images', 'volumes/images/golden.raw'], 'each change is reported');
  t.same(r.tightened.find((x) => x.path.endsWith('api-token')), { path: path.join(root, 'api-token'), from: 0o644, to: 0o600 });
  t.same(r.failed.map((x) => path.relative(root, x.path)), ['hardlink'], 'the hard-linked file is reported, not changed');
  t.equal(r.truncated, false);

  const again = await tightenTree(root);
  t.same(again.tightened, [], 'a second walk has nothing to do');

  const missing = await tightenTree(path.join(base, 'nope'));
  t.same(missing, { root: path.join(base, 'nope'), tightened: [], failed: [], otherFs: [], truncated: false }, 'a missing root is nothing to do');

  await chmod(path.join(root, 'db'), 0o755);
  await chmod(path.join(root, 'volumes', 'images'), 0o755);
  const shallow = await tightenTree(root, { maxDepth: 1, maxEntries: 1000 });
  t.equal(shallow.truncated, true, 'depth bound reported');
  t.equal(await modeOf(path.join(root, 'db')), 0o700, 'first level done');
  t.equal(await modeOf(path.join(root, 'volumes', 'images')), 0o755, 'below the bound not walked');
  const few = await tightenTree(root, { maxDepth: 16, maxEntries: 1 });
  t.equal(few.truncated, true, 'entry bound reported');
});

t.test('securePrivateDirs: dataDir, and a storage directory outside it as its own tree, one warning each', async (t) => {
  const base = await mkdtemp(path.join(tmpdir(), 'mb-secure-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const data = path.join(base, 'data');
  const inside = path.join(data, 'volumes');
  const elsewhere = path.join(base, 'volumes');
  await mkdir(inside, { recursive: true });
  await mkdir(elsewhere);
  for (const f of [path.join(data, 'api-token'), path.join(inside, 'disk.raw'), path.join(elsewhere, 'disk.raw')]) { await writeFile(f, 'x'); await chmod(f, 0o644); }
  for (const d of [data, inside, elsewhere]) await chmod(d, 0o755);
  const lines: { level: string; obj: { event?: string; root?: string; count?: number } }[] = [];
  const log = { warn: (obj: object) => { lines.push({ level: 'warn', obj }); }, info: (obj: object) => { lines.push({ level: 'info', obj }); } };

  await securePrivateDirs(data, inside, log);
  t.same(lines.map((l) => [l.obj.event, l.obj.root, l.obj.count]), [['files.tightened', data, 4]], 'a storage directory below dataDir is walked with it (dirs data, volumes and two files)');
  t.equal(await modeOf(path.join(inside, 'disk.raw')), 0o600);
  t.equal(await modeOf(path.join(elsewhere, 'disk.raw')), 0o644, 'nothing outside the trees is touched');

  lines.length = 0;
  await securePrivateDirs(data, elsewhere, log);
  t.same(lines.map((l) => [l.obj.event, l.obj.root]), [['files.tightened', elsewhere]], 'a storage directory elsewhere is its own tree; dataDir has nothing left to fix');
  t.equal(await modeOf(path.join(elsewhere, 'disk.raw')), 0o600);
  t.equal(await modeOf(elsewhere), 0o700);

  lines.length = 0;
  await securePrivateDirs(data, undefined, log);
  t.same(lines, [], 'nothing to change: no line');
});
