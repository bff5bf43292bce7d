#!/usr/bin/env node
// bench/events: N status-page-like clients in one process (one process so that 10 clients do not
// cost 10 V8 instances on the machine under test). Each does what an open status page does
// (status/app.js): reads /api/v1/events/stream (every event, no filter) with the API token, and
// after an event that changes the tables (dhcp.ack/release/decline, tftp.*, iscsi.*,
// machine.state) fetches the /api/v1/status snapshot again, at most once a second. For each
// dhcp.ack it measures now - event.at (ms; the daemon's clock is this host's clock). It prints
// "ready N" on stderr once all N streams are open; after SECONDS it prints one JSON line per
// client on stdout: {"id":..,"events":N,"acks":N,"snapshots":N,"lat":[ms,...]}.
//   usage: events-sse-client.mjs URL TOKENFILE SECONDS N
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [url, tokenFile, secs, n] = process.argv.slice(2);
const token = readFileSync(tokenFile, 'utf8').trim();
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const snapshotAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const statusUrl = url.replace(/\/events\/stream$/, '/status');
const refreshing = (e) => e.type === 'dhcp.ack' || e.type === 'dhcp.release' || e.type === 'dhcp.decline'
  || e.type.startsWith('tftp.') || e.type.startsWith('iscsi.') || e.type === 'machine.state';
/** The page's refreshSoon(1000): one snapshot fetch a second at most, however many events come. */
function refreshSoon(c) {
  if (c.timer) return;
  c.timer = setTimeout(() => {
    c.timer = null;
    http.get(statusUrl, { agent: snapshotAgent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => { if (res.statusCode === 200) c.snapshots++; else c.snapshotErrors++; });
    }).on('error', () => { c.snapshotErrors++; });
  }, 1000);
}
const clients = [];
let open = 0;
for (let id = 0; id < Number(n); id++) {
  const c = { id, events: 0, acks: 0, snapshots: 0, snapshotErrors: 0, lat: [], timer: null };
  clients.push(c);
  let buf = '';
  const req = http.get(url, { agent, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) { console.error(`client ${id}: HTTP ${res.statusCode}`); process.exit(1); }
    if (++open === Number(n)) console.error(`ready ${open}`);
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const msg = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of msg.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const e = JSON.parse(line.slice(6));
          c.events++;
          if (e.type === 'dhcp.ack') { c.acks++; c.lat.push(Date.now() - e.at); }
          if (refreshing(e)) refreshSoon(c);
        }
      }
    });
  });
  req.on('error', (e) => { console.error(`client ${id}: ${e.message}`); process.exit(1); });
}
setTimeout(() => {
  process.stdout.write(clients.map(({ timer, ...c }) => JSON.stringify(c)).join('\n') + '\n', () => process.exit(0));
}, Number(secs) * 1000);
