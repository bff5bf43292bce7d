/**
 * The lvm backend against real dm-thin, in the test guest (the host kernel
 * has no device-mapper): one boot runs test/guest/lvm-scenario.ts on a
 * scratch /dev/vdb and reports every check in results.json on a --rw share.
 */
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { guestUnavailable, REPO, runInGuest } from '../helpers/guest.js';

// Longer than tap's 30 s default file limit (a guest boot under TCG, or a 1 GiB image).
t.setTimeout(600_000);
const skip = await guestUnavailable();

interface Check { name: string; ok: boolean; detail?: unknown; ms: number }

t.test('lvm backend in the guest: thin pool, import, clone, checkpoint/merge, reset, pool-full, export by the disks service with IQN + CHAP, crash mid-restore', { skip, timeout: 580_000 }, async (t) => {
  // Not under /tmp: the guest's /tmp is its own tmpfs (the --rw share would still work, but keep it plain).
  const out = await mkdtemp('/var/tmp/mb-lvm-scenario-');
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const r = await runInGuest([process.execPath, `${REPO}dist/test/guest/lvm-scenario.js`, out], { timeoutSec: 500, disks: ['1G', '2G'], rw: [out] });
  t.comment(`guest run: ${r.wallMs} ms, exit ${r.code}`);
  let report: { results: Check[]; facts: Record<string, unknown> } | undefined;
  try {
    report = JSON.parse(await readFile(`${out}/results.json`, 'utf8')) as typeof report;
  } catch {
    t.fail(`no results.json from the guest (exit ${r.code}); console:\n${r.output.slice(-4000)}`);
    return;
  }
  for (const c of report?.results ?? []) t.ok(c.ok, `${c.name} (${c.ms} ms)`, c.ok ? {} : { detail: c.detail });
  t.ok((report?.results.length ?? 0) >= 17, 'every scenario step ran');
  t.equal(r.code, 0, 'scenario exit status');
  t.comment(`facts: ${JSON.stringify(report?.facts)}`);
});
