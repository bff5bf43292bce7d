/**
 * Issue 13 item 4: one host locked every machine out of TFTP by sending read
 * requests it never acknowledges (each holds a slot for timeout × (retries+1)).
 * Against the real daemon (DHCP server, TFTP from boot-assets/) on a bridge:
 *
 *   1. the attacker floods RRQs from its one address at 40/s for 10 s; during
 *      the flood the leased machine (atftp with tsize/blksize, as UEFI asks)
 *      and a host without a lease (curl) both fetch ipxe.efi with the right
 *      sha256; the attacker is refused per address (ERROR "... from your
 *      address"), counted in metalboot_tftp_errors_total{kind="busy_client"},
 *      and the warning is logged at most once per 10 s;
 *   2. the attacker floods from 40 unleased addresses of the subnet (each under
 *      the per-address cap, together over the total): the leased machine still
 *      fetches, since tftp.reservedTransfers are kept for addresses with a
 *      binding; refusals counted as busy_unknown.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/daemon.js';
import { netnsUnavailable } from '../helpers/netns.js';
import { sha256File } from '../helpers/tftp.js';
import { addAttackerAddresses, buildFloodLab, metrics, runFlood, type FloodLab } from '../helpers/flood-lab.js';

const MISSING = ['/usr/bin/curl', '/usr/bin/atftp', '/usr/sbin/udhcpc'].find((f) => !existsSync(f));
const skip = netnsUnavailable() || (MISSING ? `${MISSING} is not installed` : false);

const ASSET = 'ipxe.efi';
const ASSET_PATH = path.join(REPO_ROOT, 'boot-assets', ASSET);

/** Waits (bounded) until `cond` holds. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A real client's fetch: its exit code and the sha256 of what it wrote (undefined: nothing). */
async function fetch(lab: FloodLab, name: string, argv: (out: string) => string[]): Promise<{ code: number; sha?: string; output: string }> {
  const out = path.join(lab.out, `${name}-${Date.now()}`);
  // Any exit code: a refused client is a result to assert on, not a crash of the test.
  const r = await lab.net.exec(lab.cli, argv(out), 60_000, Array.from({ length: 256 }, (_, i) => i));
  return { code: r.code, output: (r.stdout + r.stderr).slice(-400), ...(existsSync(out) ? { sha: await sha256File(out) } : {}) };
}

t.test('an RRQ flood from one address, then from 40, does not lock the machines out', { skip, timeout: 300_000 }, async (t) => {
  const lab = await buildFloodLab(t, 'stf', 73);
  const want = await sha256File(ASSET_PATH);
  const busy = async (): Promise<Record<string, number>> => {
    const m = await metrics(lab);
    return Object.fromEntries(['busy', 'busy_client', 'busy_unknown'].map((k) => [k, m.value('metalboot_tftp_errors_total', { kind: k }) ?? 0]));
  };
  // A host on the segment whose address metalboot never leased (a static one): an unknown client.
  const staticIp = '10.73.0.77';
  await lab.net.ip(lab.cli, ['addr', 'add', `${staticIp}/32`, 'dev', lab.cliDev]);

  await t.test('one address, 40 RRQs/s never acknowledged', async (t) => {
    const flood = runFlood(lab, 'rrq', { port: 69, rate: 40, durationMs: 10_000, sources: [lab.atkIp], file: ASSET });
    t.teardown(() => flood.then(() => undefined, () => undefined));
    // Past the point where the flood alone held more than maxTransfers (128) slots before the fix: 3.2 s at 40/s.
    const started = Date.now();
    await until('the flood to be refused', async () => (await busy()).busy_client! > 0 || (await busy()).busy! > 0, 8000);
    await new Promise((r) => setTimeout(r, Math.max(0, 4000 - (Date.now() - started))));
    const leased = await fetch(lab, 'atftp', (o) => ['atftp', '--option', 'tsize 0', '--option', 'blksize 1468', '-g', '-r', ASSET, '-l', o, lab.serverIp]);
    const unleased = await fetch(lab, 'curl', (o) => ['curl', '-sS', '--max-time', '30', '--interface', staticIp, '-o', o, `tftp://${lab.serverIp}/${ASSET}`]);
    const during = Date.now() - started;
    const r = await flood;
    t.ok(during < r.elapsedMs, `both fetches ran during the flood (${during} ms of ${r.elapsedMs} ms)`);
    t.equal(leased.sha, want, `the leased machine (atftp, ${lab.clientIp}) got ${ASSET} intact: exit ${leased.code} ${leased.output}`);
    t.equal(unleased.sha, want, `a host without a lease (curl, ${staticIp}) got ${ASSET} intact: exit ${unleased.code} ${unleased.output}`);

    const c = await busy();
    const refused = Object.entries(r.errors).filter(([m]) => /from your address/.test(m)).reduce((n, [, k]) => n + k, 0);
    t.comment(`flood: ${r.sent} RRQs in ${r.elapsedMs} ms; replies ${JSON.stringify(r.replies)}; errors ${JSON.stringify(r.errors)}; daemon ${JSON.stringify(c)}`);
    t.ok(r.sent >= 380, `the flood was real: ${r.sent} requests`);
    // Each held slot lasts at most 1 s × (5 + 1): in 10 s the address holds 4 slots at a time, so at most ~4 × 3 requests started.
    t.ok(refused >= r.sent - 4 * 3, `the attacker was refused per address: ${refused} of ${r.sent}`);
    t.equal(c.busy_client, refused, 'each refusal counted in metalboot_tftp_errors_total{kind="busy_client"}');
    t.equal(c.busy, 0, 'the total was never reached');
    const warned = lab.daemon.events('tftp.busy-client');
    t.ok(warned.length >= 1 && warned.length <= 2, `refusals logged, at most once per 10 s (${warned.length} lines)`);
    t.equal(warned[0]?.client?.toString().split(':')[0], lab.atkIp, 'the warning names the attacker');
  });

  await t.test('40 spoofed unleased addresses of the subnet, 50 RRQs/s together', async (t) => {
    const sources = await addAttackerAddresses(lab, '10.73.0.200', 40);
    const before = await busy();
    const flood = runFlood(lab, 'rrq', { port: 69, rate: 50, durationMs: 10_000, sources, file: ASSET });
    t.teardown(() => flood.then(() => undefined, () => undefined));
    const started = Date.now();
    // 40 × 4 = 160 would fill the 128 slots; the unknown share is 128 − 32 = 96.
    await until('the flood to be refused', async () => { const b = await busy(); return b.busy_unknown! > before.busy_unknown! || b.busy! > before.busy!; }, 9000);
    const leased = await fetch(lab, 'atftp', (o) => ['atftp', '--option', 'tsize 0', '--option', 'blksize 1468', '-g', '-r', ASSET, '-l', o, lab.serverIp]);
    const during = Date.now() - started;
    const r = await flood;
    const c = await busy();
    t.comment(`flood: ${r.sent} RRQs from ${sources.length} addresses in ${r.elapsedMs} ms; errors ${JSON.stringify(r.errors)}; daemon ${JSON.stringify(c)}`);
    t.ok(during < r.elapsedMs, `the fetch ran during the flood (${during} ms of ${r.elapsedMs} ms)`);
    t.equal(leased.sha, want, `the leased machine got ${ASSET} intact from a reserved slot: exit ${leased.code} ${leased.output}`);
    t.ok(c.busy_unknown! > 0, `unleased addresses refused once their share was used: ${c.busy_unknown}`);
    const reserved = Object.entries(r.errors).filter(([m]) => /reserved/.test(m)).reduce((n, [, k]) => n + k, 0);
    t.equal(c.busy_unknown! - before.busy_unknown!, reserved, 'each refusal counted in metalboot_tftp_errors_total{kind="busy_unknown"}');
    t.equal(c.busy, before.busy, 'the total was never reached by the attacker');
  });
});
