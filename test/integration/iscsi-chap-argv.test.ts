/**
 * Issue 13 ("Also:"): tgtadm took the CHAP secret on its argv, so another local user read live
 * secrets in /proc/<pid>/cmdline while the daemon rebuilt tgtd. The real daemon runs with a real
 * tgtd in a test namespace, its `iscsi.tgtadm` set to a wrapper that records each argv (exactly
 * what /proc/<pid>/cmdline shows) and then runs the real /usr/sbin/tgtadm. Disks are provisioned,
 * tgtd is emptied by hand while the daemon is down (tgtd restarted), and the daemon rebuilds it at
 * start. No argv ever carries a secret, yet tgtd has every account, and the machines' initiators
 * log in with their CHAP secrets (and not with a wrong one).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseMac } from '../../src/net/mac.js';
import { tgtdUnavailable } from '../helpers/tgtd.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { buildDiskLab, qemuIscsiOpts } from '../helpers/disks.js';
import { runCommand } from '../../src/exec/run.js';
import { Tgtd, TgtadmError } from '../../src/iscsi/tgtd.js';
import { freeControlPort } from '../helpers/tgtd.js';

const skip = netnsUnavailable() || tgtdUnavailable();
const MACS = [parseMac('52:54:00:ce:00:01'), parseMac('52:54:00:ce:00:02')];

t.test('CHAP secrets never on tgtadm\'s argv: provisioning and a tgtd rebuild at start', { skip, timeout: 600_000 }, async (t) => {
  const lab = await buildDiskLab(t, 'chp');
  const argvLog = path.join(lab.dir, 'tgtadm-argv.log');
  const wrapper = path.join(lab.dir, 'recording-tgtadm');
  await writeFile(wrapper, `#!/bin/sh\n# Records its argv (what /proc/<pid>/cmdline shows any local user), then runs the real tgtadm.\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec /usr/sbin/tgtadm "$@"\n`, { mode: 0o755 });
  await writeFile(argvLog, '');
  await lab.start({}, { tgtadm: wrapper });
  const img = path.join(lab.dir, 'golden.raw');
  await writeFile(img, randomBytes(2 << 20));
  t.equal((await lab.upload('/api/v1/images/golden', img)).status, 201, 'image uploaded');
  for (const mac of MACS) t.equal((await lab.api('PUT', `/api/v1/disks/${mac}`, { image: 'golden' })).status, 201, `${mac} provisioned`);

  // tgtd loses everything while metalboot is down (as after a tgtd restart); metalboot rebuilds it.
  await lab.daemon.stop();
  const records = await lab.records();
  t.equal(records.length, 2, 'two disk records');
  for (const x of await lab.tgtd.show()) await lab.tgtd.run({ op: 'delete-target', tid: x.tid, force: true });
  for (const user of await lab.tgtd.accounts()) await lab.tgtd.run({ op: 'delete-account', user });
  t.same(await lab.tgtd.accounts(), [], 'tgtd emptied by hand');
  await lab.start({}, { tgtadm: wrapper });
  const want = records.map((r) => r.chap.user).sort();
  let accounts: string[] = [];
  for (let i = 0; i < 40; i++) {
    accounts = (await lab.tgtd.accounts()).sort();
    if (accounts.join() === want.join()) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  t.same(accounts, want, 'every account is back in tgtd');

  const log = await readFile(argvLog, 'utf8');
  t.match(log, /--mode account --op bind/, 'the wrapper ran the rest of tgtd\'s set-up (bindings)');
  t.ok(log.split('\n').filter((l) => / --op (new|bind) /.test(l)).length >= 4, `${log.split('\n').length - 1} tgtadm calls recorded`);
  for (const r of records) t.notOk(log.includes(r.chap.secret), `${r.chap.user}: the secret is on no tgtadm argv`);
  t.notMatch(log, /--password/, 'no --password argument at all');

  // The machines' initiators still log in with CHAP: the accounts hold the right secrets.
  for (const r of records) {
    const out = path.join(lab.dir, `read-${r.mac.replaceAll(':', '')}.raw`);
    const ok = await lab.exec(['qemu-img', 'convert', ...(await qemuIscsiOpts(lab.dir, r)), '-O', 'raw', out], 60_000, [0, 1]);
    t.equal(ok.code, 0, `${r.mac}: logs in with its CHAP secret`);
  }
  const wrong = await lab.exec(['qemu-img', 'convert', ...(await qemuIscsiOpts(lab.dir, records[0]!, { secret: 'WrongSecret-0000' })), '-O', 'raw', path.join(lab.dir, 'wrong.raw')], 60_000, [0, 1]);
  t.equal(wrong.code, 1, 'a wrong secret is refused (CHAP is enforced)');

  // tgtd's refusals on the socket read as tgtadm's did: kinds, and never the secret.
  const dup = await lab.tgtd.run({ op: 'new-account', user: records[0]!.chap.user, secret: records[0]!.chap.secret }).catch((e: unknown) => e);
  t.ok(dup instanceof TgtadmError && dup.kind === 'exists', `an existing account: ${dup instanceof Error ? dup.message : String(dup)}`);
  t.notMatch(JSON.stringify({ m: (dup as Error).message, all: Object.entries(dup as object) }), records[0]!.chap.secret, 'the error holds no secret');
  const nobody = new Tgtd({ runner: runCommand, controlPort: freeControlPort(), timeoutMs: 3000 });
  const down = await nobody.run({ op: 'new-account', user: 'mb-nobody', secret: 'SecretSecret-1234' }).catch((e: unknown) => e);
  t.ok(down instanceof TgtadmError && down.kind === 'not-running', `no tgtd on that control port: ${down instanceof Error ? down.message : String(down)}`);
});
