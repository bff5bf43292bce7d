#!/usr/bin/env node
// bench/events: merges the SSE clients' JSON lines (stdin) into delivery and latency figures.
//   usage: events-report.mjs EXPECTED_ACKS < clients.jsonl
import { readFileSync } from 'node:fs';

const expected = Number(process.argv[2]);
const rows = readFileSync(0, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const lat = rows.flatMap((r) => r.lat).sort((a, b) => a - b);
const pct = (p) => (lat.length ? lat[Math.max(0, Math.ceil((p / 100) * lat.length) - 1)] : NaN);
const per = rows.map((r) => r.acks);
console.log(`clients reporting: ${rows.length}`);
console.log(`dhcp.ack delivered per client: min ${Math.min(...per)} max ${Math.max(...per)} of ${expected} expected (daemon's ACK counter); all events per client: ${Math.min(...rows.map((r) => r.events))}..${Math.max(...rows.map((r) => r.events))}`);
console.log(`delivered total: ${lat.length} of ${expected * rows.length} expected (${((100 * lat.length) / Math.max(1, expected * rows.length)).toFixed(2)} %)`);
console.log(`latency event.at -> SSE client (ms, ${lat.length} samples): p50 ${pct(50)}  p99 ${pct(99)}  max ${lat.at(-1)}`);
const snaps = rows.reduce((n, r) => n + (r.snapshots ?? 0), 0);
console.log(`status snapshots fetched again (as an open page does, at most 1/s per client): ${snaps}, failed ${rows.reduce((n, r) => n + (r.snapshotErrors ?? 0), 0)}`);
