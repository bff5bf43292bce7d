// bench/lib/ipmi-status-loop.mjs — N `power status` calls through metalboot's IPMI client, one
// session, one at a time (as the daemon issues them). Prints one JSON line.
// usage: node ipmi-status-loop.mjs DIST_ROOT PORT USER PASSWORD_ENV CALLS
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, port, user, pwEnv, calls] = process.argv.slice(2);
const { IpmiClient } = await import(pathToFileURL(path.join(dist, 'src/ipmi/client.js')).href);
// maxCommandsPerSecond 0: measure the client, not the daemon's politeness limit (20/s per BMC).
const c = new IpmiClient({ host: '127.0.0.1', port: Number(port), username: user, password: Buffer.from(process.env[pwEnv] ?? ''), maxCommandsPerSecond: 0, keepAliveMs: 0 });
const t0 = process.hrtime.bigint();
await c.sessionInfo();
const t1 = process.hrtime.bigint();
let answered = 0;
for (let i = 0; i < Number(calls); i++) if ((await c.powerState()) !== undefined) answered++;
const t2 = process.hrtime.bigint();
const s = c.stats();
await c.close();
console.log(JSON.stringify({ calls: Number(calls), sessionMs: Number(t1 - t0) / 1e6, loopMs: Number(t2 - t1) / 1e6, totalMs: Number(t2 - t0) / 1e6, sessions: s.sessionsOpened, retransmits: s.retransmits, answered }));
