/**
 * Issue 13 item 7, against the real daemon (file backend, a tgtd it manages, in a namespace):
 * secrets at rest must not be readable by a local unprivileged user, and a server-side image
 * import must not read files outside images.importDir.
 *
 * The attack as found: metalbootd started from a shell with a permissive umask made its dataDir
 * 0755 and the LevelDB files 0644 (BMC passwords and CHAP secrets in clear), clones 0644 and
 * images 0444; importing /etc/shadow as an image made it world-readable. Here the daemon is
 * started under umask 000, a machine is enrolled with a BMC password, an image uploaded and one
 * imported, a disk provisioned; then `nobody` (setpriv, no groups) tries to read every file
 * under dataDir and greps it for the password and the CHAP secret. An older version's
 * 0755/0644 dataDir is then tightened at the next start. Imports from outside the import
 * directory (directly, through a file link, a directory link, `..`) are refused while imports
 * from inside it and uploads keep working.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseMac } from '../../src/net/mac.js';
import { openStore } from '../../src/store/db.js';
import { decodeDiskRecord } from '../../src/disks/record.js';
import { sh, netnsUnavailable } from '../helpers/netns.js';
import { tgtdUnavailable } from '../helpers/tgtd.js';
import { buildDiskLab, sha256 } from '../helpers/disks.js';

const skip = netnsUnavailable() || tgtdUnavailable() || (existsSync('/usr/bin/setpriv') ? false : 'setpriv (util-linux) not installed');
const MAC = parseMac('52:54:00:5e:c0:07');
const BMC_PASSWORD = `bmc-${randomBytes(6).toString('hex')}`; // 16 chars, IPMI's limit is 20
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** Every entry under root (lstat, links not followed), as root sees it. Bounded: a test dataDir has a few dozen. */
async function walk(root: string): Promise<{ path: string; mode: number; kind: 'dir' | 'file' | 'other' }[]> {
  const out: { path: string; mode: number; kind: 'dir' | 'file' | 'other' }[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < 10_000) {
    const d = queue.shift()!;
    for (const n of await readdir(d)) {
      const p = path.join(d, n);
      const st = await lstat(p);
      const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
      out.push({ path: p, mode: st.mode & 0o7777, kind });
      if (kind === 'dir') queue.push(p);
    }
  }
  return out;
}

/** The files under dataDir that uid/gid 65534 without groups can open and read, in one process. */
async function readableByNobody(files: readonly string[]): Promise<string[]> {
  const r = await sh([...NOBODY, 'sh', '-c', 'for f in "$@"; do cat -- "$f" >/dev/null 2>&1 && printf "%s\\n" "$f"; done; exit 0', 'sh', ...files], 60_000);
  return r.stdout.split('\n').filter(Boolean);
}

/** Files under dir in which grep (as the given user) finds any of the strings. */
async function grepFor(asNobody: boolean, dir: string, needles: readonly string[]): Promise<string[]> {
  const argv = ['grep', '-r', '-a', '-l', '-F', ...needles.flatMap((n) => ['-e', n]), dir];
  const r = await sh(asNobody ? [...NOBODY, ...argv] : argv, 60_000, [0, 1, 2]);
  return r.stdout.split('\n').filter(Boolean);
}

t.test('secrets at rest: dataDir, store, token, images and clones are root\'s alone; imports only from importDir', { skip, timeout: 600_000 }, async (t) => {
  const lab = await buildDiskLab(t, 'sfl');
  // mkdtemp makes the lab dir 0700, which alone would stop a non-root reader; a real dataDir's
  // parent (/var/lib) is 0755, so open the way down to dataDir like that.
  await chmod(lab.dir, 0o755);
  const importDir = path.join(lab.dataDir, 'import');

  // A fresh dataDir, started from a shell with umask 000 (the daemon inherits it).
  const shellUmask = process.umask(0o000);
  try { await lab.start(); } finally { process.umask(shellUmask); }
  t.match(lab.daemon.events('daemon.starting')[0], { umask: '0000 -> 0077' }, 'the daemon replaced the shell\'s umask');

  const image = randomBytes(2 << 20);
  const upFile = path.join(lab.dir, 'golden.raw');
  await writeFile(upFile, image);
  const outsideFile = path.join(lab.dir, 'outside.raw');
  await writeFile(outsideFile, randomBytes(64 << 10));

  await t.test('enrol with a BMC password, upload, import from importDir, provision a disk', async (t) => {
    const enrol = await lab.api('PUT', `/api/v1/machines/${MAC}`, { name: 'victim', bmc: { host: '127.0.0.1', port: 9, user: 'admin', password: BMC_PASSWORD } });
    t.equal(enrol.status, 201, enrol.body);
    t.notMatch(enrol.body, BMC_PASSWORD, 'the password is write-only');
    t.equal((await lab.upload('/api/v1/images/golden', upFile)).status, 201, 'upload over HTTP');
    t.equal(((await stat(importDir).catch(() => undefined))?.mode ?? 0) & 0o777, 0o700, 'the import directory was made, 0700');
    await mkdir(importDir, { recursive: true }); // (for a run against a daemon that does not make it)
    // The admin's own copy, private like everything in dataDir (the walk below checks every mode).
    await writeFile(path.join(importDir, 'local.raw'), image, { mode: 0o600 });
    const imp = await lab.api('POST', '/api/v1/images/local/import', { path: path.join(importDir, 'local.raw') });
    t.equal(imp.status, 201, imp.body);
    t.equal(imp.json().sha256, sha256(image), 'imported from inside importDir');
    const disk = await lab.api('PUT', `/api/v1/disks/${MAC}`, { image: 'golden' });
    t.equal(disk.status, 201, disk.body);
  });

  await t.test('imports from outside importDir are refused (403 naming the field and the directory); inside still works', async (t) => {
    await symlink('/etc/shadow', path.join(importDir, 'shadow.raw'));
    await symlink(outsideFile, path.join(importDir, 'outside-link.raw'));
    await symlink('/etc', path.join(importDir, 'etc'));
    await symlink(lab.dir, path.join(importDir, 'up'));
    const attempts: [string, string][] = [
      ['shadow', '/etc/shadow'],
      ['outside', outsideFile],
      ['dotdot', `${importDir}/../api-token`],
      ['shadowlink', path.join(importDir, 'shadow.raw')],
      ['outsidelink', path.join(importDir, 'outside-link.raw')],
      ['etcdir', path.join(importDir, 'etc', 'shadow')],
      ['updir', path.join(importDir, 'up', 'outside.raw')],
    ];
    for (const [id, p] of attempts) {
      const r = await lab.api('POST', `/api/v1/images/${id}/import`, { path: p });
      t.equal(r.status, 403, `${p}: 403 (${r.body})`);
      t.match(r.json().error, /^path: /, 'names the field');
      t.ok(String(r.json().error).includes(importDir), 'names the import directory');
    }
    const rel = await lab.api('POST', '/api/v1/images/rel/import', { path: 'local.raw' });
    t.equal(rel.status, 400, 'a relative path: 400');
    const ids = (await lab.api('GET', '/api/v1/images')).json().images.map((i: { id: string }) => i.id).sort();
    t.same(ids, ['golden', 'local'], 'no image was made from any of them');
    t.equal(lab.daemon.events('images.import-refused').length, attempts.length + 1, 'each refusal logged');
    // The legitimate admin during the attempts: an import from inside (through a link that stays inside) and an upload.
    await symlink('local.raw', path.join(importDir, 'alias.raw'));
    const ok = await lab.api('POST', '/api/v1/images/alias/import', { path: path.join(importDir, 'alias.raw') });
    t.equal(ok.status, 201, ok.body);
    t.equal((await lab.upload('/api/v1/images/golden2', upFile)).status, 201, 'an upload still works');
  });

  await lab.daemon.stop();
  // The CHAP secret never leaves the daemon; read it from a copy of the store, since opening the
  // store itself would rewrite its files (with this process's umask) before they are checked.
  const copy = await mkdtemp(path.join(tmpdir(), 'mbt-sfl-store-'));
  t.teardown(() => rm(copy, { recursive: true, force: true }));
  await sh(['cp', '-a', path.join(lab.dataDir, 'db'), copy]);
  const store = await openStore(copy);
  const recs = await store.loadRecords('disks').finally(() => store.close());
  const rec = recs.map(({ key, value }) => decodeDiskRecord(key, value)).find((r) => typeof r !== 'string' && r.mac === MAC);
  const chapSecret = typeof rec === 'object' ? rec.chap.secret : undefined;
  t.ok(chapSecret && chapSecret.length >= 12, 'the store holds the CHAP secret');

  const checkPrivate = async (t: Test, when: string) => {
    t.equal((await stat(lab.dataDir)).mode & 0o7777, 0o700, `${when}: dataDir 0700`);
    const entries = await walk(lab.dataDir);
    const loose = entries.filter((e) => e.kind !== 'other' && (e.mode & 0o077) !== 0).map((e) => `${path.relative(lab.dataDir, e.path)} ${e.mode.toString(8)}`);
    t.same(loose, [], `${when}: no directory or file under dataDir gives group or other anything`);
    const files = entries.filter((e) => e.kind === 'file').map((e) => e.path);
    t.ok(files.some((f) => f.includes(`${path.sep}db${path.sep}`)) && files.some((f) => f.endsWith('api-token')), `${when}: ${files.length} files, LevelDB and token among them`);
    const img = entries.find((e) => e.path.endsWith(path.join('volumes', 'images', 'golden.raw')));
    t.equal(img?.mode, 0o400, `${when}: a read-only image is 0400`);
    const clones = entries.filter((e) => e.kind === 'file' && e.path.includes(path.join('volumes', 'disks')) && e.path.endsWith('.raw'));
    t.ok(clones.length === 1 && clones.every((c) => c.mode === 0o600), `${when}: the clone is 0600`);
    t.same(await readableByNobody(files), [], `${when}: nobody can read any of the ${files.length} files`);
    t.same(await grepFor(true, lab.dataDir, [BMC_PASSWORD, chapSecret!]), [], `${when}: grep -r as nobody finds neither secret`);
  };

  await t.test('fresh dataDir under umask 000: nothing under it is readable by another user', async (t) => {
    // The control: the secrets are in those files in clear, so the reader above would find them.
    t.ok((await grepFor(false, lab.dataDir, [BMC_PASSWORD])).length > 0, 'root finds the BMC password in the store files');
    t.ok((await grepFor(false, lab.dataDir, [chapSecret!])).length > 0, 'root finds the CHAP secret in the store files');
    await checkPrivate(t, 'fresh');
  });

  await t.test('a dataDir an older version left 0755/0644 is tightened at start, named in one warning', async (t) => {
    const planted = path.join(lab.dir, 'not-ours.txt');
    await writeFile(planted, 'someone else\'s file');
    await chmod(planted, 0o644);
    await symlink(planted, path.join(lab.dataDir, 'link-out'));
    await sh(['chmod', '-R', 'go+rX', lab.dataDir]);
    const files = (await walk(lab.dataDir)).filter((e) => e.kind === 'file').map((e) => e.path);
    t.ok((await readableByNobody(files)).length === files.length, 'the old layout: nobody reads every file');
    t.ok((await grepFor(true, lab.dataDir, [BMC_PASSWORD])).length > 0, 'and finds the BMC password');
    const shellUmask = process.umask(0o022);
    try { await lab.start(); } finally { process.umask(shellUmask); }
    const w = lab.daemon.events('files.tightened').find((l) => l.root === lab.dataDir);
    t.ok(w, 'one files.tightened warning for dataDir');
    t.equal(w?.level, 'warn', 'at warn level');
    const named = (w?.paths ?? []) as string[];
    t.ok(named.includes(`${lab.dataDir} (0755 -> 0700)`), 'names dataDir');
    t.ok(named.includes(`${path.join(lab.dataDir, 'api-token')} (0644 -> 0600)`), 'names the token file');
    t.ok(named.some((p) => p.startsWith(path.join(lab.dataDir, 'db') + path.sep) && p.endsWith('(0644 -> 0600)')), 'names LevelDB files');
    t.ok(named.some((p) => p.endsWith(`golden.raw (0444 -> 0400)`)), 'names the image');
    t.equal((await stat(planted)).mode & 0o777, 0o644, 'a file reached through a link in dataDir is not touched');
    t.equal((await lab.api('GET', `/api/v1/disks/${MAC}`)).json().exported, true, 'the daemon serves on: the disk is exported again');
    await lab.daemon.stop();
    await checkPrivate(t, 'after restart');
  });
});
