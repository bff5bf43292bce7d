// bench/lib/api-provision.mjs — fires `POST /api/v1/machines/:mac/provision {image}` for every
// machine at once (one fetch each, all started in the same tick), then polls each machine's
// operation (`GET /api/v1/operations/:id`) every POLL_MS until it is no longer `running`.
//
// Per machine it records:
//   client ms  from just before its POST was sent to the poll response that said `succeeded`
//              (so it includes up to POLL_MS of polling granularity);
//   server ms  the operation's own finishedAt - startedAt (the daemon's clock, no polling);
//   post ms    the POST's round trip (until the 202 arrived);
//   per step   the gaps between the operation's step timestamps (queued, disk, boot-mode,
//              bootdev, power; the last one ends at finishedAt).
// Prints a small report and writes everything as JSON to OUT_JSON (per machine: OUT_JSON.tsv).
// Exit 1 when any machine did not end `succeeded`.
// usage: node api-provision.mjs BASE_URL TOKEN_FILE MAC_FILE IMAGE POLL_MS TIMEOUT_S OUT_JSON
import { readFileSync, writeFileSync } from 'node:fs';

const [base, tokenFile, macFile, image, pollMsArg, timeoutArg, out] = process.argv.slice(2);
const token = readFileSync(tokenFile, 'utf8').trim();
const macs = readFileSync(macFile, 'utf8').split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
const pollMs = Number(pollMsArg);
const deadline = performance.now() + Number(timeoutArg) * 1000;
const auth = { authorization: `Bearer ${token}` };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let polls = 0;
let pollErrors = 0;

async function one(mac) {
  const r = { mac, ok: false };
  const t0 = performance.now();
  try {
    const res = await fetch(`${base}/api/v1/machines/${mac}/provision`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ image }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    r.postMs = performance.now() - t0;
    if (res.status !== 202) return { ...r, error: `POST: HTTP ${res.status} ${text.slice(0, 200)}` };
    const id = JSON.parse(text).operation.id;
    r.op = id;
    for (;;) {
      if (performance.now() > deadline) return { ...r, error: `still running after ${timeoutArg} s` };
      await sleep(pollMs);
      polls++;
      let op;
      try {
        const p = await fetch(`${base}/api/v1/operations/${encodeURIComponent(id)}`, { headers: auth, signal: AbortSignal.timeout(30_000) });
        if (p.status !== 200) { pollErrors++; continue; }
        op = await p.json();
      } catch {
        pollErrors++;
        continue;
      }
      if (op.status === 'running') continue;
      r.clientMs = performance.now() - t0;
      r.serverMs = op.finishedAt - op.startedAt;
      r.steps = op.steps.map((s, i) => ({ step: s.step, ms: (op.steps[i + 1]?.at ?? op.finishedAt) - s.at }));
      r.ok = op.status === 'succeeded';
      if (!r.ok) r.error = `operation ${op.status} at step ${op.step}: ${op.error ?? ''}`;
      return r;
    }
  } catch (e) {
    return { ...r, error: e instanceof Error ? e.message : String(e) };
  }
}

const wall0 = performance.now();
const results = await Promise.all(macs.map(one));
const wallMs = performance.now() - wall0;

/** Nearest-rank percentile of a list of numbers. */
function pct(xs, p) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length))) - 1];
}
const stats = (xs) => ({ n: xs.length, min: Math.min(...xs), p50: pct(xs, 50), p95: pct(xs, 95), max: Math.max(...xs) });
const done = results.filter((r) => r.ok);
const failed = results.filter((r) => !r.ok);
const stepNames = [...new Set(done.flatMap((r) => r.steps.map((s) => s.step)))];
const summary = {
  machines: macs.length, succeeded: done.length, failed: failed.length, wallMs, pollMs, polls, pollErrors,
  client: stats(done.map((r) => r.clientMs)), server: stats(done.map((r) => r.serverMs)), post: stats(results.filter((r) => r.postMs !== undefined).map((r) => r.postMs)),
  steps: Object.fromEntries(stepNames.map((n) => [n, stats(done.flatMap((r) => r.steps.filter((s) => s.step === n).map((s) => s.ms)))])),
  failures: failed.map((r) => `${r.mac}: ${r.error}`),
};
writeFileSync(out, `${JSON.stringify(summary)}\n`);
writeFileSync(`${out}.tsv`, ['mac\tok\tpost_ms\tclient_ms\tserver_ms\tsteps\terror',
  ...results.map((r) => [r.mac, r.ok, r.postMs?.toFixed(1) ?? '', r.clientMs?.toFixed(1) ?? '', r.serverMs ?? '', (r.steps ?? []).map((s) => `${s.step}=${s.ms}`).join(','), r.error ?? ''].join('\t'))].join('\n') + '\n');

const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const line = (label, s) => console.log(`${label.padEnd(44)} ${f(s.min).padStart(7)} ${f(s.p50).padStart(7)} ${f(s.p95).padStart(7)} ${f(s.max).padStart(7)}`);
console.log(`${macs.length} provision requests fired at once; ${done.length} succeeded, ${failed.length} failed; wall time ${(wallMs / 1000).toFixed(2)} s (first POST sent → last operation seen finished)`);
console.log(`${'ms per machine'.padEnd(44)} ${'min'.padStart(7)} ${'p50'.padStart(7)} ${'p95'.padStart(7)} ${'max'.padStart(7)}`);
line(`request → succeeded (client, ${pollMs} ms polls)`, summary.client);
line('operation startedAt → finishedAt (daemon)', summary.server);
line('POST round trip (→ 202)', summary.post);
for (const n of stepNames) line(`  step ${n}`, summary.steps[n]);
console.log(`polls: ${polls} (${pollErrors} failed)`);
for (const x of summary.failures.slice(0, 10)) console.log(`FAILED ${x}`);
process.exit(failed.length === 0 ? 0 : 1);
