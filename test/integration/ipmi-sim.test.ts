/**
 * metalboot's IPMI client against a real BMC simulator (OpenIPMI ipmi_sim 2.0.33) on loopback,
 * cross-checked with ipmitool as an independent client in both directions; then the failure
 * cases (wrong password, wrong user, closed port, silent host, IPMI over LAN off, privilege),
 * a lossy link and a byte-flipping link made by a UDP proxy in front of the real simulator.
 */
import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import { IpmiClient, type IpmiClientOptions, type IpmiLog } from '../../src/ipmi/client.js';
import { IpmiAuthError, IpmiError, IpmiNegotiationError, IpmiPortClosedError, IpmiTimeoutError } from '../../src/ipmi/errors.js';
import { decodeAsf, encodeAsfPong } from '../../src/ipmi/rmcp.js';
import { freeUdpPort, ipmiSimUnavailable, startIpmiSim, type Sim } from '../helpers/ipmi-sim.js';
import { startUdpProxy } from '../helpers/udp-proxy.js';

const skip = ipmiSimUnavailable();

interface Logged { level: string; obj: object; msg: string }

function client(t: Test, sim: Sim, o: Partial<IpmiClientOptions> = {}, logs: Logged[] = []): IpmiClient {
  const log: IpmiLog = {
    debug: (obj, msg) => logs.push({ level: 'debug', obj, msg }),
    warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }),
  };
  const c = new IpmiClient({
    host: sim.host, port: sim.port, username: sim.user, password: Buffer.from(sim.password),
    timeoutMs: 200, retries: 2, maxCommandsPerSecond: 0, ...o,
  }, { log });
  t.teardown(() => c.close());
  return c;
}

async function rejects(t: Test, p: Promise<unknown>, check: (e: unknown) => boolean, what: string, withinMs: number): Promise<IpmiError | undefined> {
  const started = Date.now();
  try {
    await p;
    t.fail(`${what}: expected an error`);
    return undefined;
  } catch (e) {
    const ms = Date.now() - started;
    t.ok(check(e), `${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    t.ok(ms <= withinMs, `${what}: failed within the bound (${ms} ms ≤ ${withinMs} ms)`);
    return e instanceof IpmiError ? e : undefined;
  }
}

async function roundTrips(t: Test, sim: Sim, c: IpmiClient, lan15: boolean): Promise<void> {
  const id = await c.deviceId();
  t.equal(id.manufacturerId, 0x1291, 'Get Device ID: manufacturer from bmc.emu');
  t.equal(id.productId, 0x0f02, 'Get Device ID: product from bmc.emu');
  t.equal(await c.powerState(), 'off', 'Get Chassis Status: off');
  await c.power('on');
  t.equal(sim.power(), 1, 'Chassis Control on reached the BMC');
  t.equal(await c.powerState(), 'on', 'metalboot reads on');
  t.match(sim.ipmitool(['chassis', 'power', 'status'], { lan15 }), /Chassis Power is on/, 'ipmitool sees metalboot\'s power on');
  sim.ipmitool(['chassis', 'power', 'off'], { lan15 });
  t.equal(await c.powerState(), 'off', 'metalboot sees ipmitool\'s power off');
  sim.ipmitool(['chassis', 'power', 'on'], { lan15 });
  t.equal(await c.powerState(), 'on', 'metalboot sees ipmitool\'s power on');
  await c.power('reset');
  await c.power('soft');
  await c.power('cycle');
  await c.power('off');
  t.equal(sim.power(), 0, 'off after reset, soft and cycle');
  t.match(sim.hookLog(), /set reset/, 'hard reset reached the BMC');
  t.match(sim.hookLog(), /set shutdown/, 'soft off (ACPI) reached the BMC');
  for (const [device, hook] of [['pxe', 'pxe'], ['disk', 'default'], ['bios', 'bios'], ['cdrom', 'cdrom']] as const) {
    const back = await c.setBootDevice({ device, persistent: device === 'disk', efi: device === 'pxe' });
    t.equal(back.device, device, `boot device ${device} read back`);
    t.equal(sim.bootDevice(), hook, `the BMC stored ${hook}`);
    t.match(sim.ipmitool(['chassis', 'bootparam', 'get', '5'], { lan15 }), new RegExp(`Boot Device Selector : Force ${{ pxe: 'PXE', disk: 'Boot from default Hard-Drive', bios: 'Boot into BIOS Setup', cdrom: 'Boot from CD/DVD' }[device]}`), `ipmitool reads ${device}`);
  }
  sim.ipmitool(['chassis', 'bootdev', 'pxe'], { lan15 });
  t.equal((await c.bootFlags()).device, 'pxe', 'metalboot reads ipmitool\'s bootdev pxe');
  sim.ipmitool(['chassis', 'bootdev', 'disk'], { lan15 });
  t.equal((await c.bootFlags()).device, 'disk', 'metalboot reads ipmitool\'s bootdev disk');
}

t.test('cipher suite auto against ipmi_sim: 17 refused, 3 chosen at once; every command round-trips; one session', { skip }, async (t) => {
  const sim = await startIpmiSim(t);
  const logs: Logged[] = [];
  const c = client(t, sim, {}, logs);
  const started = Date.now();
  t.same(await c.sessionInfo(), { version: '2.0', suite: 3 });
  t.ok(Date.now() - started < 1000, `fallback from suite 17 to 3 without a stall (${Date.now() - started} ms)`);
  await roundTrips(t, sim, c, false);
  t.equal(c.stats().sessionsOpened, 1, 'one session reused for every command');
  t.equal(c.stats().retransmits, 0, 'no retransmits on a clean link');
  const suites = await c.cipherSuites();
  t.ok(suites === null || suites.some((s) => s.id === 3), 'Get Channel Cipher Suites: unanswered, or lists suite 3');
  const all = JSON.stringify(logs);
  t.notMatch(all, sim.password, 'the password never appears in a log line');
});

t.test('pinned suites: 3 works, 17 is refused with a clear error', { skip }, async (t) => {
  const sim = await startIpmiSim(t);
  t.same(await client(t, sim, { cipherSuite: 3 }).sessionInfo(), { version: '2.0', suite: 3 });
  await rejects(t, client(t, sim, { cipherSuite: 17 }).powerState(), (e) => e instanceof IpmiNegotiationError && /cipher suite 17 refused/.test(e.message), 'suite 17 pinned', 1000);
});

t.test('IPMI 1.5 (MD5) session: every command round-trips, with a warning', { skip }, async (t) => {
  const sim = await startIpmiSim(t);
  const logs: Logged[] = [];
  const c = client(t, sim, { cipherSuite: '1.5' }, logs);
  t.same(await c.sessionInfo(), { version: '1.5', suite: 2 });
  t.ok(logs.some((l) => l.level === 'warn' && (l.obj as { event?: string }).event === 'ipmi.session.v15'), 'a warning names the weaker session');
  await roundTrips(t, sim, c, true);
  t.equal(c.stats().sessionsOpened, 1);
  t.notMatch(JSON.stringify(logs), sim.password, 'the password never appears in a log line');
});

t.test('distinct errors within the bound: wrong password, wrong user, privilege, closed port, silent host, IPMI over LAN off', { skip }, async (t) => {
  const sim = await startIpmiSim(t);
  // timeoutMs 200, retries 2: one exchange gives up after 200 + 400 + 800 ms.
  const bound = 200 + 400 + 800 + 500;
  for (const cipherSuite of ['auto', '1.5'] as const) {
    const e = await rejects(t, client(t, sim, { password: Buffer.from('not-the-password'), cipherSuite }).powerState(),
      (e) => e instanceof IpmiAuthError && e.failure === 'wrong-password', `wrong password (${cipherSuite})`, 2 * bound);
    t.notMatch(e?.message ?? '', /not-the-password|simpass/, 'the error does not carry a password');
    await rejects(t, client(t, sim, { username: 'nobody', cipherSuite }).powerState(),
      (e) => e instanceof IpmiAuthError && e.failure === 'wrong-user', `wrong user (${cipherSuite})`, bound);
  }
  const closed = await freeUdpPort();
  await rejects(t, client(t, { ...sim, port: closed }).powerState(), (e) => e instanceof IpmiPortClosedError, 'closed port', bound);

  // A host that swallows every datagram: a bound socket that never answers.
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  await rejects(t, client(t, { ...sim, port: silent.address().port }).powerState(),
    (e) => e instanceof IpmiTimeoutError && /Get Channel Authentication Capabilities/.test(e.message), 'silent host', bound + 200 + 500);

  // Stand-in (not a BMC simulator): a BMC with IPMI over LAN disabled still answers RMCP presence
  // pings; ipmi_sim has no switch for that, so a socket answers pings only.
  const pongOnly = dgram.createSocket('udp4');
  await new Promise<void>((r) => pongOnly.bind(0, '127.0.0.1', r));
  t.teardown(() => pongOnly.close());
  pongOnly.on('message', (b, r) => {
    const a = decodeAsf(b);
    if (a.ok && a.value.type === 'ping') pongOnly.send(encodeAsfPong({ tag: a.value.tag }), r.port, r.address);
  });
  await rejects(t, client(t, { ...sim, port: pongOnly.address().port }).powerState(),
    (e) => e instanceof IpmiAuthError && e.failure === 'no-lan-access', 'IPMI over LAN off', bound + 200 + 500);
});

t.test('a user limited to USER privilege is refused ADMINISTRATOR (IPMI 1.5 enforces it in ipmi_sim)', { skip }, async (t) => {
  const sim = await startIpmiSim(t, { userPrivilege: 'user' });
  await rejects(t, client(t, sim, { cipherSuite: '1.5' }).powerState(), (e) => e instanceof IpmiAuthError && e.failure === 'privilege', 'privilege', 2000);
});

t.test('a BMC that drops every second datagram: every command succeeds by retry', { skip }, async (t) => {
  const sim = await startIpmiSim(t);
  const proxy = await startUdpProxy(t, sim.port, (b, dir, i) => (dir === 'to-upstream' && i % 2 === 1 ? null : b));
  const c = client(t, { ...sim, port: proxy.port });
  for (let i = 0; i < 10; i++) {
    await c.power(i % 2 ? 'off' : 'on');
    t.equal(await c.powerState(), i % 2 ? 'off' : 'on', `command ${i} through the lossy link`);
  }
  t.equal((await c.setBootDevice({ device: 'pxe' })).device, 'pxe');
  t.ok(proxy.counts.dropped > 10, `${proxy.counts.dropped} datagrams dropped by the proxy`);
  t.ok(c.stats().retransmits > 0, `${c.stats().retransmits} retransmits`);
});

t.test('flipped bytes in BMC replies: no crash, a clear error, the next command succeeds', { skip, timeout: 120_000 }, async (t) => {
  const sim = await startIpmiSim(t);
  let corrupt: 'half' | 'all' | 'none' = 'none';
  let x = 0x9e3779b9; // xorshift32: reproducible, and its low bits are as random as its high ones
  const rand = (n: number) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) % n; };
  const proxy = await startUdpProxy(t, sim.port, (b, dir) => {
    if (dir === 'to-upstream' || corrupt === 'none' || (corrupt === 'half' && rand(2) === 0)) return b;
    // Past the 4-byte RMCP header: its reserved and sequence bytes carry nothing for IPMI
    // (§13.1.3, sequence FFh = no RMCP ACK) and are ignored by design.
    const out = Buffer.from(b);
    const at = 4 + rand(out.length - 4);
    out[at] = out[at]! ^ (1 << rand(8));
    return out;
  });
  const c = client(t, { ...sim, port: proxy.port }, { retries: 3 });
  t.equal(await c.powerState(), 'off', 'clean first');
  corrupt = 'half';
  let ok = 0;
  const errors: string[] = [];
  for (let i = 0; i < 40; i++) {
    try {
      if ((await c.powerState()) === 'off') ok++;
    } catch (e) {
      // Every reply in an RMCP+ session is authenticated, so a flipped bit is dropped and the
      // request resent; only four corrupted replies in a row end in an error, and a typed one.
      if (!(e instanceof IpmiError)) throw e;
      errors.push(e.message);
    }
  }
  t.ok(ok >= 30, `${ok} of 40 commands answered through a link corrupting half the replies (${errors.length} typed errors${errors.length ? `, e.g. ${errors[0]}` : ''})`);
  t.ok(c.stats().dropped >= 10, `${c.stats().dropped} corrupted replies dropped`);
  corrupt = 'all';
  // Bound: the command's 4 tries, then one session re-open whose first exchange also gives up.
  await rejects(t, c.powerState(), (e) => e instanceof IpmiError, 'every reply corrupted', 2 * 2200 + 3000);
  corrupt = 'none';
  t.equal(await c.powerState(), 'off', 'the next command succeeds');
  t.ok(proxy.counts.modified > 20, `${proxy.counts.modified} replies corrupted by the proxy`);
});

t.test('session reuse: keep-alive keeps it, a restarted BMC gets a new one, concurrent callers are serialised', { skip }, async (t) => {
  const sim = await startIpmiSim(t);
  const c = client(t, sim, { keepAliveMs: 150 });
  await c.powerState();
  const before = c.stats().commands;
  await new Promise((r) => setTimeout(r, 800));
  t.ok(c.stats().commands > before, `keep-alives sent while idle (${c.stats().commands - before})`);
  t.equal(c.stats().sessionsOpened, 1, 'still the first session');
  const states = await Promise.all(Array.from({ length: 20 }, () => c.powerState()));
  t.same(new Set(states), new Set(['off']), '20 concurrent callers, all answered');
  t.equal(c.stats().sessionsOpened, 1);

  // ipmi_sim restarted on the same port forgets every session: the client must notice and re-open.
  const sim2Port = sim.port;
  await sim.stop();
  const sim2 = await startIpmiSim(t, { port: sim2Port });
  const c2 = client(t, sim2, { keepAliveMs: 0 });
  await c2.powerState();
  t.equal(c2.stats().sessionsOpened, 1);
  await sim2.stop();
  const sim3 = await startIpmiSim(t, { port: sim2Port });
  t.equal(await c2.powerState(), 'off', 'command after the BMC restart succeeds');
  t.equal(c2.stats().sessionsOpened, 2, 'by opening a new session');
  t.equal(sim3.port, sim2Port);
});

t.test('the admin CLI: metalboot ipmi power/bootdev/info against ipmi_sim, without a daemon', { skip }, async (t) => {
  const sim = await startIpmiSim(t);
  const { spawnSync } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { REPO_ROOT } = await import('../helpers/daemon.js');
  const pwFile = `${sim.dir}/pw`;
  writeFileSync(pwFile, `${sim.password}\n`, { mode: 0o600 });
  const cli = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [`${REPO_ROOT}/dist/src/cli/metalboot.js`, 'ipmi', '--host', '127.0.0.1', '--port', String(sim.port), '--user', sim.user, ...args],
      { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env['PATH'] ?? '', ...env } });
    t.notMatch(r.stdout + r.stderr, sim.password, `${args.join(' ')}: no password in the output`);
    return r;
  };
  const env = { BMC_PW: sim.password };
  let r = cli(['--password-env', 'BMC_PW', 'power', 'on'], env);
  t.equal(r.status, 0, r.stderr);
  t.equal(sim.power(), 1, 'power on reached the BMC');
  r = cli(['--password-file', pwFile, 'power', 'status']);
  t.equal(r.stdout, 'Chassis Power is on\n', 'power status, password from a file');
  r = cli(['--password-env', 'BMC_PW', 'bootdev', 'pxe', '--persistent', '--efi'], env);
  t.equal(r.status, 0, r.stderr);
  t.equal(sim.bootDevice(), 'pxe');
  r = cli(['--password-env', 'BMC_PW', 'info'], env);
  t.match(r.stdout, /Manufacturer ID\s+: 4753\n[^]*Session\s+: RMCP\+ cipher suite 3/, 'info: device id and session');
  r = cli(['--password-env', 'BMC_PW', '--cipher-suite', '1.5', 'power', 'off'], env);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /warning: using an IPMI 1\.5 session/, 'IPMI 1.5 warns');
  t.equal(sim.power(), 0);
  r = cli(['--password-env', 'BMC_PW', 'power', 'status'], { BMC_PW: 'wrong' });
  t.equal(r.status, 1, 'an IPMI failure exits 1');
  t.match(r.stderr, /wrong password/);
  r = cli(['power', 'status']);
  t.equal(r.status, 2, 'no password source: usage error, exit 2');
  r = cli(['--password-env', 'BMC_PW', 'power', 'explode'], env);
  t.equal(r.status, 2, 'unknown power action: exit 2');
});
