/**
 * /metrics against real traffic, read with the strict exposition-format parser (and promtool
 * when Debian's prometheus package happens to be installed): N busybox udhcpc exchanges from N
 * MACs, a curl tftp:// fetch of a known file and of a missing one, K IPMI power status calls
 * through the API against an ipmi_sim BMC. Each counter must move by exactly what was sent.
 *
 * Then syslog over UDP into the daemon: logger --udp in RFC 3164 and RFC 5424, a paced batch of
 * malformed and oversized datagrams (counted exactly), and a flood from another address that the
 * per-source limit cuts down while /healthz keeps answering; every datagram that reached the
 * socket is counted once (accepted + malformed + oversized + rate_limited, plus what the kernel
 * dropped for a full receive buffer = what was sent).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TestNet, netnsUnavailable, sh } from '../helpers/netns.js';
import { startDaemon } from '../helpers/daemon.js';
import { apiToken } from '../helpers/dhcp-tools.js';
import { ipmiSimUnavailable, startIpmiSim } from '../helpers/ipmi-sim.js';
import { parsePromText, sampleValue, type Sample } from '../helpers/prom-text.js';

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((f) => existsSync(f));
const skip = netnsUnavailable() || ipmiSimUnavailable() || (existsSync('/usr/bin/logger') ? false : 'util-linux logger is not installed');
const SRV_IP = '10.96.0.1';
const BASE = `http://${SRV_IP}:8080`;
const POOL = '10.96.0.0/24';

t.test('metrics move by exactly the real DHCP, TFTP and IPMI traffic; syslog floods are counted and the daemon stays responsive', { skip, timeout: 300_000 }, async (t) => {
  const net = new TestNet('mtr');
  t.teardown(() => net.destroy());
  const dir = await mkdtemp(path.join(tmpdir(), 'mbt-mtr-'));
  net.removeOnDestroy(dir);
  const root = path.join(dir, 'tftp');
  await mkdir(root);
  const FILE_SIZE = 300_001; // not a multiple of 512: the last block is short
  await writeFile(path.join(root, 'known.bin'), randomBytes(FILE_SIZE));

  const srv = await net.addNamespace('s');
  const cli = await net.addNamespace('c');
  const sdev = `${net.tag}s`, cdev = `${net.tag}c`;
  await net.veth(srv, sdev, cli, cdev, `${SRV_IP}/24`);
  const sim = await startIpmiSim(t, { netns: srv, password: 'metrics-Pw-1' });
  const d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "${SRV_IP}:8080", publicUrl: "${BASE}" }
iscsi: { enabled: false }
status: { public: true }
syslog: { enabled: true, listen: "${SRV_IP}:514", maxPerSecondPerSource: 100, burst: 200 }
tftp: { enabled: true, root: ${root} }
dhcp:
  mode: server
  interface: ${sdev}
  conflictCheck: { method: off }
  subnets:
    - cidr: ${POOL}
      pool: [10.96.0.100, 10.96.0.199]
      leaseTime: 600
`);
  t.teardown(() => d.stop());
  const token = apiToken(d.dataDir);
  const curl = async (url: string, extra: string[] = []) => (await net.exec(srv, ['curl', '-sS', '-f', '--max-time', '10', ...extra, url], 15_000)).stdout;
  const scrape = async (): Promise<Sample[]> => {
    const text = await curl(`${BASE}/metrics`);
    if (PROMTOOL) {
      const file = path.join(dir, 'metrics.txt');
      await writeFile(file, text);
      // promtool check metrics reads stdin; lint warnings (exit 3) are style, not format errors.
      const r = await sh(['sh', '-c', `${PROMTOOL} check metrics < ${file}`], 15_000, [0, 3]);
      if (/error/i.test(r.stderr + r.stdout)) throw new Error(`promtool: ${r.stderr}${r.stdout}`);
    }
    return parsePromText(text).samples; // throws on anything not Prometheus text
  };
  const v = (s: Sample[], name: string, labels: Record<string, string> = {}) => sampleValue(s, name, labels) ?? 0;
  const delta = (a: Sample[], b: Sample[], name: string, labels: Record<string, string> = {}) => v(b, name, labels) - v(a, name, labels);
  /** Scrapes until pred holds (counters read at scrape time may trail the client by a packet). */
  const scrapeUntil = async (pred: (s: Sample[]) => boolean, ms = 5000): Promise<Sample[]> => {
    const end = Date.now() + ms;
    for (;;) {
      const s = await scrape();
      if (pred(s) || Date.now() > end) return s;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  if (PROMTOOL) t.pass(`promtool ${PROMTOOL} checks every scrape too`);

  // ---------------------------------------------------------------- DHCP: N exchanges from N MACs
  const N = 4;
  const before = await scrape();
  t.equal(v(before, 'metalboot_dhcp_leases', { pool: POOL, state: 'free' }), 100, 'a pool of 100 free addresses');
  for (let i = 0; i < N; i++) {
    await net.ip(cli, ['link', 'set', cdev, 'address', `52:54:00:96:00:${(16 + i).toString(16)}`]);
    const r = await net.exec(cli, ['udhcpc', '-i', cdev, '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', '/bin/true'], 30_000);
    t.match(r.stdout + r.stderr, /lease of 10\.96\.0\.\d+ obtained/, `exchange ${i + 1} got a lease`);
  }
  const afterDhcp = await scrapeUntil((s) => delta(before, s, 'metalboot_dhcp_packets_total', { type: 'ack' }) >= N);
  t.equal(delta(before, afterDhcp, 'metalboot_dhcp_packets_total', { type: 'ack' }), N, `packets_total{type="ack"} +${N}`);
  t.equal(delta(before, afterDhcp, 'metalboot_dhcp_packets_total', { type: 'offer' }), N, `packets_total{type="offer"} +${N}`);
  t.equal(delta(before, afterDhcp, 'metalboot_dhcp_packets_total', { type: 'nak' }), 0, 'no NAK');
  t.equal(delta(before, afterDhcp, 'metalboot_dhcp_received_total'), 2 * N, `received +${2 * N} (DISCOVER + REQUEST each)`);
  t.equal(delta(before, afterDhcp, 'metalboot_dhcp_replies_total'), 2 * N, `replies +${2 * N}`);
  t.equal(delta(before, afterDhcp, 'metalboot_dhcp_malformed_total'), 0, 'nothing malformed');
  t.equal(v(afterDhcp, 'metalboot_dhcp_leases', { pool: POOL, state: 'active' }), N, `leases{state="active"} = ${N}`);
  t.equal(v(afterDhcp, 'metalboot_dhcp_leases', { pool: POOL, state: 'free' }), 100 - N, `leases{state="free"} = ${100 - N}`);

  // ---------------------------------------------------------------- TFTP: one known file, one missing
  await net.ip(cli, ['addr', 'add', '10.96.0.2/24', 'dev', cdev]);
  const out = path.join(dir, 'got.bin');
  await net.exec(cli, ['curl', '-sS', '--max-time', '60', '-o', out, `tftp://${SRV_IP}/known.bin`], 70_000);
  t.equal((await sh(['stat', '-c', '%s', out])).stdout.trim(), String(FILE_SIZE), 'curl fetched the whole file');
  const missing = await net.exec(cli, ['curl', '-sS', '--max-time', '20', '-o', '/dev/null', `tftp://${SRV_IP}/no-such-file`], 30_000, [0, 68, 69, 71]);
  t.not(missing.code, 0, 'the missing file is refused');
  const afterTftp = await scrapeUntil((s) => delta(afterDhcp, s, 'metalboot_tftp_transfers_total', { result: 'completed' }) >= 1);
  t.equal(delta(afterDhcp, afterTftp, 'metalboot_tftp_bytes_total'), FILE_SIZE, `tftp bytes_total +${FILE_SIZE}`);
  t.equal(delta(afterDhcp, afterTftp, 'metalboot_tftp_transfers_total', { result: 'completed' }), 1, 'transfers_total{result="completed"} +1');
  t.equal(delta(afterDhcp, afterTftp, 'metalboot_tftp_transfers_total', { result: 'failed' }), 0, 'none failed');
  t.equal(delta(afterDhcp, afterTftp, 'metalboot_tftp_requests_total'), 2, 'requests +2');
  t.equal(delta(afterDhcp, afterTftp, 'metalboot_tftp_errors_total', { kind: 'not_found' }), 1, 'errors_total{kind="not_found"} +1');
  t.equal(delta(afterDhcp, afterTftp, 'metalboot_tftp_retransmits_total'), 0, 'no retransmits on a clean link');
  t.equal(v(afterTftp, 'metalboot_tftp_active_transfers'), 0, 'no transfer left open');

  // ---------------------------------------------------------------- IPMI: K power status calls through the API
  const MAC = '52:54:00:96:00:7f';
  const api = async (method: string, url: string, body?: unknown) => {
    const argv = ['curl', '-sS', '-m', '30', '-X', method, '-o', '-', '-w', '\n%{http_code}', '-H', `Authorization: Bearer ${token}`, `${BASE}${url}`];
    if (body !== undefined) argv.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
    const r = await net.exec(srv, argv, 40_000);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), text: r.stdout.slice(0, i) };
  };
  const enrol = await api('PUT', `/api/v1/machines/${MAC}`, { name: 'metrics-bmc', power: { driver: 'ipmi', host: '127.0.0.1', port: sim.port, user: sim.user, password: 'metrics-Pw-1' } });
  t.equal(enrol.status, 201, 'machine with a BMC enrolled');
  const bmc = { driver: 'ipmi', target: `127.0.0.1:${sim.port}` };
  const durCount = (s: Sample[]) => v(s, 'metalboot_power_command_duration_seconds_count', bmc);
  const beforeIpmi = await scrape();
  const K = 5;
  for (let i = 0; i < K; i++) {
    const r = await api('GET', `/api/v1/machines/${MAC}/power`);
    t.equal(r.status, 200, `power status ${i + 1}: ${r.text}`);
  }
  const afterIpmi = await scrape();
  const ipmiEvents = (JSON.parse(await curl(`${BASE}/status/api/v1/events?type=power.command&mac=${MAC}`)) as { events: { command: string; ok: boolean }[] }).events;
  t.same(ipmiEvents.map((e) => [e.command, e.ok]), Array(K).fill(['power status', true]), 'one power.command event per call');
  const command = 'power_status'; // label values are sanitised: [A-Za-z0-9_.:/-]
  t.equal(delta(beforeIpmi, afterIpmi, 'metalboot_power_commands_total', { driver: 'ipmi', command, result: 'ok' }), K, `power_commands_total{driver="ipmi",command="${command}",result="ok"} +${K}`);
  t.equal(delta(beforeIpmi, afterIpmi, 'metalboot_power_commands_total', { driver: 'ipmi', command, result: 'error' }), 0, 'no errors');
  t.equal(durCount(afterIpmi) - durCount(beforeIpmi), K, `duration histogram count{target="${bmc.target}"} +${K}`);
  const sum = v(afterIpmi, 'metalboot_power_command_duration_seconds_sum', bmc) - v(beforeIpmi, 'metalboot_power_command_duration_seconds_sum', bmc);
  t.ok(sum > 0 && sum < K * 5, `latency sum ${sum.toFixed(4)} s`);
  const inf = v(afterIpmi, 'metalboot_power_command_duration_seconds_bucket', { ...bmc, le: '+Inf' });
  t.equal(inf, durCount(afterIpmi), 'the +Inf bucket equals the count');
  t.equal(afterIpmi.filter((x) => x.name === 'metalboot_power_command_errors_total' && x.labels['target'] === bmc.target).reduce((n, x) => n + x.value, 0), 0, 'no errors for the BMC (any kind)');

  // ---------------------------------------------------------------- syslog: both formats, malformed, oversized, a flood
  const sys = (s: Sample[], result: string) => v(s, 'metalboot_syslog_messages_total', { result });
  const rcvbufErrors = async () => {
    const snmp = (await net.exec(srv, ['cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
    const [h, vals] = snmp.map((l) => l.split(/\s+/));
    return Number(vals![h!.indexOf('RcvbufErrors')]);
  };
  const s0 = await scrape();
  await net.exec(cli, ['logger', '-n', SRV_IP, '-P', '514', '--udp', '--rfc3164', '-t', 'ipxe', 'net0: open ok']);
  await net.exec(cli, ['logger', '-n', SRV_IP, '-P', '514', '--udp', '--rfc5424', '-t', 'ipxe', '--msgid', 'BOOT', 'sanboot 5424']);
  // 40 malformed and 40 oversized from 10.96.0.2, paced under the per-source limit: counted exactly.
  const py = (code: string, ...args: string[]) => net.exec(cli, ['python3', '-c', code, ...args], 60_000);
  await py(`
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('10.96.0.2', 0))
for i in range(40):
    s.sendto(b'\\x00\\xff not <syslog ' + str(i).encode(), (sys.argv[1], 514))
    s.sendto(b'<14>' + b'x' * 4000, (sys.argv[1], 514))
    time.sleep(0.02)
`, SRV_IP);
  const s1 = await scrapeUntil((s) => sys(s, 'accepted') - sys(s0, 'accepted') >= 2 && sys(s, 'malformed') - sys(s0, 'malformed') >= 40 && sys(s, 'oversized') - sys(s0, 'oversized') >= 40);
  t.equal(sys(s1, 'accepted') - sys(s0, 'accepted'), 2, 'logger --rfc3164 and --rfc5424: accepted +2');
  t.equal(sys(s1, 'malformed') - sys(s0, 'malformed'), 40, 'malformed +40');
  t.equal(sys(s1, 'oversized') - sys(s0, 'oversized'), 40, 'oversized +40');
  t.equal(sys(s1, 'rate_limited') - sys(s0, 'rate_limited'), 0, 'nothing rate-limited so far');
  const got = (JSON.parse(await curl(`${BASE}/status/api/v1/events?type=syslog`)) as { events: { text: string }[] }).events.map((e) => e.text);
  t.same(got, ['net0: open ok', 'sanboot 5424'], 'only the two good messages became events');

  // The flood: 3 s of garbage, oversized and valid datagrams as fast as one socket sends, from 10.96.0.3.
  await net.ip(cli, ['addr', 'add', '10.96.0.3/24', 'dev', cdev]);
  const drops0 = await rcvbufErrors();
  const floodStart = Date.now();
  const flood = py(`
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('10.96.0.3', 0))
dst = (sys.argv[1], 514)
msgs = [b'\\x01garbage', b'<13>' + b'y' * 3000, b'<13>Nov 22 08:00:00 lab ipxe: flood line']
n = 0
end = time.time() + 3
while time.time() < end:
    for m in msgs:
        try:
            s.sendto(m, dst); n += 1
        except OSError:
            pass
print(n)
`, SRV_IP);
  const health: number[] = [];
  const codes: string[] = [];
  let floodDone = false;
  void flood.finally(() => { floodDone = true; });
  await new Promise((r) => setTimeout(r, 200));
  while (!floodDone) {
    const r = await net.exec(srv, ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', '--max-time', '5', `${BASE}/healthz`], 10_000, [0, 28]);
    const [code, secs] = r.stdout.split(' ');
    codes.push(code ?? '');
    health.push(Number(secs));
    await new Promise((r) => setTimeout(r, 100));
  }
  const sent = Number((await flood).stdout.trim());
  t.ok(health.length >= 5, `${health.length} healthz checks during the flood, slowest ${Math.max(...health).toFixed(3)} s`);
  t.ok(codes.every((c) => c === '200'), `each answered 200: ${[...new Set(codes)].join(',')}`);
  t.ok(Math.max(...health) < 1, 'each within a second');
  // UDP has no end: wait until the counters stop moving.
  let last = -1, s3 = s1;
  for (let i = 0; i < 50; i++) {
    s3 = await scrape();
    const total = ['accepted', 'malformed', 'oversized', 'rate_limited'].reduce((n, r) => n + sys(s3, r), 0);
    if (total === last) break;
    last = total;
    await new Promise((r) => setTimeout(r, 300));
  }
  const drops = (await rcvbufErrors()) - drops0;
  const counted = ['accepted', 'malformed', 'oversized', 'rate_limited'].reduce((n, r) => n + sys(s3, r) - sys(s1, r), 0);
  t.ok(sent > 1000, `the flood sent ${sent} datagrams in 3 s`);
  t.equal(counted + drops, sent, `every datagram counted once: ${counted} by the daemon + ${drops} dropped by the kernel (receive buffer full) = ${sent} sent`);
  const limited = sys(s3, 'rate_limited') - sys(s1, 'rate_limited');
  const passed = counted - limited;
  t.ok(limited > 0, `rate-limited: ${limited}`);
  const secs = (Date.now() - floodStart) / 1000;
  t.ok(passed <= 200 + Math.ceil(100 * secs), `at most burst + rate × time (${secs.toFixed(1)} s) got past the limit: ${passed}`);
  t.equal(v(s3, 'metalboot_syslog_handler_errors_total'), 0, 'no handler errors');
  const healthz = await net.exec(srv, ['curl', '-sS', '-f', '--max-time', '2', `${BASE}/healthz`], 5000);
  t.match(healthz.stdout, /"ok"/, 'healthy after the flood');
  t.ok(d.events('syslog.rate-limited').length >= 1, 'the rate limit is logged');
  t.ok(d.events('syslog.rate-limited').length < 50, `but not per datagram (${d.events('syslog.rate-limited').length} lines)`);
});
