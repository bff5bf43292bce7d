/**
 * The status edge against the real daemon: a busybox udhcpc client in its own namespace gets a
 * lease with the syslog server in it (option 7); /metrics counts the exchange, the SSE stream
 * delivers the dhcp.ack live, the page and its JSON load, and `logger` lines from the client's
 * address arrive as syslog events attributed to the client's MAC and in its boot timeline,
 * also right after a daemon restart (the address book is seeded from the stored leases).
 */
import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { startDaemon } from '../helpers/daemon.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';

const skip = netnsUnavailable();
const MAC = '52:54:00:92:00:01';
const BASE = 'http://10.92.0.1:8080';

t.test('status page, metrics, live events and syslog from a real DHCP client', { skip, timeout: 120_000 }, async (t) => {
  const net = new TestNet('stp');
  t.teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const sdev = `${net.tag}s`, cdev = `${net.tag}c`;
  await net.veth(srv, sdev, cli, cdev, '10.92.0.1/24');
  await net.ip(cli, ['link', 'set', cdev, 'address', MAC]);

  const d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.92.0.1:8080", publicUrl: "${BASE}" }
iscsi: { enabled: false }
syslog: { enabled: true, listen: "10.92.0.1:514", maxPerSecondPerSource: 50, burst: 100 }
status: { public: true }
dhcp:
  mode: server
  interface: ${sdev}
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.92.0.0/24
      pool: [10.92.0.100, 10.92.0.150]
      leaseTime: 120
`);
  t.teardown(() => d.stop());
  const curl = async (url: string, extra: string[] = []) => (await net.exec(srv, ['curl', '-sS', '-f', '--max-time', '10', ...extra, url])).stdout;

  // The page and its files load, with no data in them.
  const page = await curl(`${BASE}/`);
  t.match(page, /<script type="module" src="\/status\/app.js">/);
  t.match(await curl(`${BASE}/status/app.js`), /SseParser/);
  t.match(await curl(`${BASE}/machines/${MAC}`), /<title>metalboot<\/title>/);
  const before = parsePromText(await curl(`${BASE}/metrics`)).samples;
  t.equal(sampleValue(before, 'metalboot_dhcp_packets_total', { type: 'ack' }), undefined, 'no ACK yet');

  // Follow the stream (public prefix) before the client asks.
  const stream = net.spawn(srv, ['curl', '-sN', `${BASE}/status/api/v1/events/stream?type=dhcp.ack,syslog`], 60);
  let sse = '';
  stream.stdout?.on('data', (b: Buffer) => { sse += b.toString(); });
  t.teardown(() => { stream.kill(); });
  const waitSse = async (pred: (s: string) => boolean, ms: number, what: string) => {
    const end = Date.now() + ms;
    while (!pred(sse)) {
      if (Date.now() > end) throw new Error(`SSE: no ${what} within ${ms} ms; got ${sse.slice(-500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitSse((s) => s.includes(': metalboot events'), 10_000, 'stream start');

  // The client's script records the options udhcpc got, as the environment it runs the script with.
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mbt-stp-'));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  const envFile = path.join(tmp, 'env'), script = path.join(tmp, 'script.sh');
  await writeFile(script, `#!/bin/sh\n[ "$1" = bound ] && env > ${envFile}\nexit 0\n`, { mode: 0o755 });
  // -O 7: ask for the log server as iPXE does (its DHCP parameter request list has option 7).
  const got = await net.exec(cli, ['udhcpc', '-i', cdev, '-n', '-q', '-f', '-t', '5', '-T', '1', '-O', '7', '-s', script], 30_000);
  const m = /lease of (\S+) obtained/.exec(got.stdout + got.stderr);
  t.ok(m, `udhcpc got a lease: ${got.stderr}`);
  const ip = m![1]!;
  const vars = Object.fromEntries((await readFile(envFile, 'utf8')).split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  t.equal(vars['ip'], ip, 'the script ran for the bound lease');
  // Busybox 1.35 has no name for option 7: it exports options it cannot name as opt<code>=<hex>.
  const opt7 = vars['opt7'] ?? vars['logsrv'] ?? '';
  const logsrv = /^[0-9a-f]{8}$/i.test(opt7) ? (opt7.match(/../g) ?? []).map((h) => parseInt(h, 16)).join('.') : opt7.trim();
  t.equal(logsrv, '10.92.0.1', `DHCP option 7 (log server) is the syslog listener's address (opt7=${opt7})`);
  const ackLogged = Date.now();
  await waitSse((s) => s.includes('"type":"dhcp.ack"'), 2000, 'dhcp.ack');
  t.ok(Date.now() - ackLogged < 2000, 'the ACK reached the stream live');
  const ackEvent = JSON.parse(sse.split('\n').find((l) => l.startsWith('data: ') && l.includes('dhcp.ack'))!.slice(6)) as { mac: string; ip: string; seq: number };
  t.same([ackEvent.mac, ackEvent.ip], [MAC, ip]);
  t.match(sse, new RegExp(`id: ${ackEvent.seq}\\n`));

  // /metrics counted the exchange: one DISCOVER → OFFER, one REQUEST → ACK.
  const text = await curl(`${BASE}/metrics`);
  const { samples } = parsePromText(text);
  t.equal(sampleValue(samples, 'metalboot_dhcp_packets_total', { type: 'offer' }), 1);
  t.equal(sampleValue(samples, 'metalboot_dhcp_packets_total', { type: 'ack' }), 1);
  t.ok((sampleValue(samples, 'metalboot_dhcp_received_total') ?? 0) >= 2);
  t.ok((sampleValue(samples, 'metalboot_dhcp_replies_total') ?? 0) >= 2);
  t.equal(sampleValue(samples, 'metalboot_dhcp_leases', { pool: '10.92.0.0/24', state: 'active' }), 1);
  t.equal(sampleValue(samples, 'metalboot_dhcp_leases', { pool: '10.92.0.0/24', state: 'free' }), 50);
  t.equal(sampleValue(samples, 'metalboot_sse_clients'), 1);
  t.ok(samples.some((s) => s.name === 'metalboot_http_request_duration_seconds_count' && s.labels['route'] === '/metrics'), 'HTTP timed by route');
  t.ok(samples.some((s) => s.name.startsWith('metalboot_process_')), 'process metrics');

  // The status JSON lists the machine (from DHCP events) and its lease.
  const status = JSON.parse(await curl(`${BASE}/status/api/v1/status`)) as { machines: { mac: string; ip: string; lastStep: string }[]; leases: { mac: string; ip: string }[]; access: unknown };
  t.match(status.machines.find((x) => x.mac === MAC), { ip, lastStep: 'dhcp' });
  t.same(status.leases.map((l) => [l.mac, l.ip]), [[MAC, ip]]);
  t.equal(status.access, null);
  // The same under /api with the token the daemon wrote; without it, 401.
  const token = (await readFile(path.join(d.dataDir, 'api-token'), 'utf8')).trim();
  t.equal(JSON.parse(await curl(`${BASE}/api/v1/status`, ['-H', `Authorization: Bearer ${token}`])).access, 'rw');
  const noTok = await net.exec(srv, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${BASE}/api/v1/events`], 10_000);
  t.equal(noTok.stdout, '401');

  // Syslog from the client's leased address, both formats: events carry the client's MAC.
  await net.ip(cli, ['addr', 'add', `${ip}/24`, 'dev', cdev]);
  await net.exec(cli, ['logger', '-n', '10.92.0.1', '-P', '514', '--udp', '--rfc3164', '-t', 'ipxe', 'net0: <b>open</b> ok']);
  await net.exec(cli, ['logger', '-n', '10.92.0.1', '-P', '514', '--udp', '--rfc5424', '-t', 'ipxe', 'sanboot from 5424']);
  await waitSse((s) => s.includes('sanboot from 5424') && s.includes('net0: <b>open</b> ok'), 5000, 'syslog events');
  const sys = sse.split('\n').filter((l) => l.startsWith('data: ') && l.includes('"syslog"')).map((l) => JSON.parse(l.slice(6)) as { mac: string; ip: string; text: string });
  t.same(sys.map((e) => [e.mac, e.ip]), [[MAC, ip], [MAC, ip]], 'attributed by source address → lease → MAC');
  const machine = JSON.parse(await curl(`${BASE}/status/api/v1/status/machines/${MAC}`)) as { events: { type: string }[]; timeline: { steps: { name: string }[]; messages: { at: number; text: string; severity: number }[] }[] };
  t.same(machine.events.map((e) => e.type).filter((x) => x === 'syslog').length, 2, 'in the machine history');
  t.equal(machine.timeline.length, 1);
  t.same(machine.timeline[0]!.messages.map((x) => x.text), ['net0: <b>open</b> ok', 'sanboot from 5424'], "in the machine's timeline, with its boot attempt");
  t.same(machine.timeline[0]!.steps.map((x) => x.name), ['dhcp'], 'steps unchanged by them');
  t.ok(machine.timeline[0]!.messages.every((x) => x.severity === 5 && x.at > 0), 'with time and severity (logger default: notice)');
  const after = parsePromText(await curl(`${BASE}/metrics`)).samples;
  t.equal(sampleValue(after, 'metalboot_syslog_messages_total', { result: 'accepted' }), 2);
  t.ok(d.events('syslog.message').some((l) => l.mac === MAC), 'one log line per syslog message, with the MAC');

  // A restart: the client keeps its lease and sends no DHCP; its syslog is still attributed.
  stream.kill();
  t.equal((await d.stop()).code, 0, 'clean stop');
  const d2 = await startDaemon(net, srv, await readFile(d.configPath, 'utf8'), { dataDir: d.dataDir });
  t.teardown(() => d2.stop());
  t.match(d2.events('leases.loaded')[0], { count: 1, active: 1 }, 'the stored lease seeds the address book');
  await net.exec(cli, ['logger', '-n', '10.92.0.1', '-P', '514', '--udp', '--rfc3164', '-t', 'ipxe', 'after the restart']);
  const line = await d2.waitForEvent('syslog.message', 5000, (l) => l.text === 'after the restart');
  t.equal(line.mac, MAC, 'attributed to the MAC without a new DHCP exchange');
  t.equal(d2.events('dhcp.ack').length, 0, 'no DHCP since the restart');
});
