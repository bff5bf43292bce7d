// bench/lib/api-enroll.mjs — enrols machines through the REST API (PUT /api/v1/machines/:mac),
// CONCURRENCY requests in flight. LIST_FILE has one machine a line: `MAC NAME [BMC_PORT]`; with a
// port the machine gets a BMC on 127.0.0.1:PORT, user admin, password from $MB_BENCH_BMC_PW.
// Prints one JSON line: {n, ok, failed, ms, perSecond, errors}. Exit 1 when any PUT failed.
// usage: node api-enroll.mjs BASE_URL TOKEN_FILE LIST_FILE CONCURRENCY
import { readFileSync } from 'node:fs';

const [base, tokenFile, listFile, conc] = process.argv.slice(2);
const token = readFileSync(tokenFile, 'utf8').trim();
const password = process.env.MB_BENCH_BMC_PW ?? '';
const todo = readFileSync(listFile, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [mac, name, port] = l.trim().split(/\s+/);
  return { mac, name, port: port ? Number(port) : undefined };
});

let ok = 0;
const errors = [];
let next = 0;
async function worker() {
  while (next < todo.length) {
    const m = todo[next++];
    const body = { name: m.name, firmware: 'bios', ...(m.port ? { bmc: { host: '127.0.0.1', port: m.port, user: 'admin', password } } : {}) };
    try {
      const r = await fetch(`${base}/api/v1/machines/${m.mac}`, {
        method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body), signal: AbortSignal.timeout(30_000),
      });
      const text = await r.text();
      if (r.status === 201 || r.status === 200) ok++;
      else errors.push(`${m.mac}: HTTP ${r.status} ${text.slice(0, 200)}`);
    } catch (e) {
      errors.push(`${m.mac}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
const t0 = performance.now();
await Promise.all(Array.from({ length: Math.max(1, Number(conc)) }, worker));
const ms = performance.now() - t0;
console.log(JSON.stringify({ n: todo.length, ok, failed: todo.length - ok, ms: Math.round(ms), perSecond: Math.round(todo.length / (ms / 1000)), errors: errors.slice(0, 5) }));
process.exit(ok === todo.length ? 0 : 1);
