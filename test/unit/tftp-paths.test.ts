import t from 'tap';
import { mkdtemp, mkdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkName } from '../../src/tftp/paths.js';
import { DirectoryProvider, bufferFile, netasciiFile } from '../../src/tftp/provider.js';

/** Names a hostile or broken client might send; every one must be refused. */
export const HOSTILE_NAMES: readonly string[] = [
  '../etc/passwd', '../../../../etc/shadow', 'a/../../etc/passwd', 'sub/../../outside.txt', '..', '.', './inside.txt',
  '/etc/passwd', '//etc/passwd', '\\etc\\passwd', '..\\..\\etc\\passwd', 'sub\\..\\..\\x',
  'inside.txt\0.png', '\0', '%2e%2e/etc/passwd', '%2E%2E%2Fetc%2Fpasswd', '..%2fetc%2fpasswd', '%252e%252e/etc/passwd',
  'inside.txt%00', '%c0%ae%c0%ae/etc/passwd', 'sub//inside.txt', 'sub/', 'a'.repeat(256), `${'a/'.repeat(128)}x`,
  'link-out', 'link-out-dir/passwd', 'sub/link-up', 'inside\n.txt', 'inside\x7f', '\xc0\xae\xc0\xae/etc/passwd', '',
];

t.test('checkName refuses every lexical attack and accepts plain names', async (t) => {
  for (const n of HOSTILE_NAMES.filter((x) => !x.startsWith('link') && !x.startsWith('sub/link'))) {
    t.notOk(checkName(n).ok, `refused: ${JSON.stringify(n)}`);
  }
  for (const ok of ['ipxe.efi', 'sub/inside.txt', 'a-b_c.1', 'x86_64/grub.efi', 'name with space', '..hidden', 'a..b']) {
    t.ok(checkName(ok).ok, `accepted: ${ok}`);
  }
});

t.test('DirectoryProvider: symlinks out are refused, inside are followed', async (t) => {
  const base = await realpath(await mkdtemp(join(tmpdir(), 'mbt-tftp-paths-')));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  await mkdir(join(root, 'sub'), { recursive: true });
  await writeFile(join(base, 'outside.txt'), 'secret');
  await writeFile(join(root, 'inside.txt'), 'hello');
  await writeFile(join(root, 'sub', 'inside.txt'), 'hello2');
  await symlink(join(base, 'outside.txt'), join(root, 'link-out'));
  await symlink(base, join(root, 'link-out-dir'));
  await symlink('..', join(root, 'sub', 'link-up'));
  await symlink('inside.txt', join(root, 'link-in'));

  const p = new DirectoryProvider(root);
  for (const n of HOSTILE_NAMES) t.notOk((await p.open(n)).ok, `provider refuses ${JSON.stringify(n.slice(0, 40))}`);
  t.match(await p.open('sub'), { ok: false, kind: 'refused', reason: 'not a regular file' }, 'directories are not served');
  const inLink = await p.open('link-in');
  t.ok(inLink.ok, 'a symlink inside the root is followed');
  if (inLink.ok) await inLink.file.close();
  t.match(await p.open('missing'), { ok: false, kind: 'not-found' });
  const f = await p.open('sub/inside.txt');
  t.ok(f.ok);
  if (f.ok) {
    const a = Buffer.alloc(3), b = Buffer.alloc(10);
    t.equal(await f.file.read([a, b], 1), 5, 'reads into several buffers, short at EOF');
    t.equal(Buffer.concat([a, b.subarray(0, 2)]).toString(), 'ello2');
    await f.file.close();
  }
});

t.test('netascii: LF → CR LF, CR → CR NUL, reads at any offset', async (t) => {
  const raw = Buffer.from('ab\ncd\r\nef\rg\n\n');
  const expected = Buffer.from('ab\r\ncd\r\0\r\nef\r\0g\r\n\r\n');
  const f = await netasciiFile(bufferFile(raw));
  t.equal(f.size, expected.length, 'converted size counted up front');
  for (let at = 0; at <= expected.length; at++) {
    for (const len of [1, 2, 3, 7, 64]) {
      const out = Buffer.alloc(len);
      const n = await f.read([out], at);
      t.same(out.subarray(0, n), expected.subarray(at, at + len), `read ${len} at ${at}`);
    }
  }
});
