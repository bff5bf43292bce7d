// bench/lib/redfish-status-loop.mjs — N `power status` calls through metalboot's Redfish driver,
// one session reused, one at a time. Prints one JSON line.
// usage: node redfish-status-loop.mjs DIST_ROOT PORT USER PASSWORD_ENV CERT_SHA256 CALLS
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, port, user, pwEnv, fp, calls] = process.argv.slice(2);
const { RedfishDriver } = await import(pathToFileURL(path.join(dist, 'src/power/redfish.js')).href);
// maxRequestsPerSecond 0: measure the driver, not the daemon's politeness limit per BMC.
const d = new RedfishDriver({ host: '127.0.0.1', port: Number(port), user, password: Buffer.from(process.env[pwEnv] ?? ''), trust: { certSha256: fp }, maxRequestsPerSecond: 0 });
const t0 = process.hrtime.bigint();
await d.powerState(); // session, service root, system found
const t1 = process.hrtime.bigint();
let answered = 0;
for (let i = 0; i < Number(calls); i++) if ((await d.powerState()) !== undefined) answered++;
const t2 = process.hrtime.bigint();
const { sessionsCreated } = d.stats;
await d.close();
console.log(JSON.stringify({ calls: Number(calls), setupMs: Number(t1 - t0) / 1e6, loopMs: Number(t2 - t1) / 1e6, sessions: sessionsCreated, answered }));
