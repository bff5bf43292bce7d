/**
 * The admin CLI's API commands against a stand-in for the daemon (test/helpers/cli-standin.ts: a
 * small fastify server with responses shaped like the real routes, recording every request):
 * argv parsing, tables and --json, exit codes, what goes over the wire, and that neither the API
 * token nor a BMC password ever appears in the CLI's output.
 */
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { startStandIn, type StandIn } from '../helpers/cli-standin.js';
import type { CliIo } from '../../src/cli/api-client.js';
import { runMachinesCommand } from '../../src/cli/machines-command.js';
import { runImagesCommand } from '../../src/cli/images-command.js';
import { runActionCommand } from '../../src/cli/actions-command.js';
import { runOperationsCommand } from '../../src/cli/operations-command.js';
import { runLeasesCommand } from '../../src/cli/leases-command.js';
import { runTokenCommand } from '../../src/cli/token-command.js';

const TOKEN = 'cli-test-token-0123456789abcdef';
const BMC_PW = 'bmc-Secret-4711';
const MAC = '52:54:00:00:00:0a';

/** Everything any command printed, to check that no secret is in it. */
const printed: string[] = [];

interface Run { code: number; out: string; err: string }

async function setup(t: Test): Promise<{ s: StandIn; dir: string; tokenFile: string; run: (fn: (argv: string[], io: CliIo) => Promise<number>, argv: string[], env?: NodeJS.ProcessEnv, configFiles?: string[]) => Promise<Run> }> {
  const s = await startStandIn(t, TOKEN);
  const dir = await mkdtemp(path.join(tmpdir(), 'mb-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = path.join(dir, 'api-token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const run = async (fn: (argv: string[], io: CliIo) => Promise<number>, argv: string[], env: NodeJS.ProcessEnv = { METALBOOT_API: s.api, METALBOOT_TOKEN_FILE: tokenFile }, configFiles: string[] = []) => {
    let out = '';
    let err = '';
    const code = await fn(argv, { out: (x) => { out += x; }, err: (x) => { err += x; }, env, configFiles, pollIntervalMs: 5 });
    printed.push(out, err);
    return { code, out, err };
  };
  return { s, dir, tokenFile, run };
}

t.teardown(() => {
  // Checked once everything ran: the token and the BMC password were sent, never printed.
  const all = printed.join('\n');
  if (all.includes(TOKEN) || all.includes(BMC_PW)) throw new Error('a secret appeared in the CLI output');
});

t.test('machines: add, list (table, --state, --json), show, set, events, rm; exit codes', async (t) => {
  const { s, run } = await setup(t);
  let r = await run(runMachinesCommand, ['list']);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'MAC  NAME  STATE  IP  IMAGE  BOOT  FIRMWARE  BMC\n', 'empty table: the header');

  r = await run(runMachinesCommand, ['add', '52-54-00-00-00-0A', '--name', 'web-1', '--ip', '10.0.0.5', '--firmware', 'uefi', '--image', 'golden',
    '--bmc-host', '10.0.1.5', '--bmc-user', 'admin', '--bmc-password-env', 'PW'], { METALBOOT_API: s.api, METALBOOT_TOKEN_FILE: (await setupTokenPath(s)), PW: BMC_PW });
  t.equal(r.code, 0, r.err);
  t.equal(r.out, `enrolled ${MAC} as web-1 (state enrolled)\n`);
  const put = s.requests.find((q) => q.method === 'PUT')!;
  t.equal(put.url, `/api/v1/machines/${MAC}`, 'the MAC normalised in the URL');
  t.same(put.body, { name: 'web-1', ip: '10.0.0.5', image: 'golden', firmware: 'uefi', power: { driver: 'ipmi', host: '10.0.1.5', port: 623, user: 'admin', password: BMC_PW } }, 'the spec as the API takes it');
  t.equal(put.headers.authorization, `Bearer ${TOKEN}`);

  r = await run(runMachinesCommand, ['add', MAC, '--name', 'again']);
  t.equal(r.code, 1, 'add of an enrolled machine: refused');
  t.match(r.err, /already enrolled as web-1.*machines set/);

  r = await run(runMachinesCommand, []);
  t.equal(r.code, 0, r.err);
  const rows = r.out.trimEnd().split('\n');
  t.match(rows[0], /^MAC\s+NAME\s+STATE\s+IP\s+IMAGE\s+BOOT\s+FIRMWARE\s+BMC$/);
  t.match(rows[1], /^52:54:00:00:00:0a\s+web-1\s+enrolled\s+10\.0\.0\.5\s+golden\s+sanboot\s+uefi\s+10\.0\.1\.5:623$/);

  r = await run(runMachinesCommand, ['list', '--state', 'ready']);
  t.equal(r.out.trimEnd().split('\n').length, 1, '--state ready: none');
  t.match(s.requests.at(-1)!.url, '/api/v1/machines?state=ready');
  r = await run(runMachinesCommand, ['list', '--state', 'bogus']);
  t.equal(r.code, 2, 'unknown state: usage');
  t.match(r.err, /--state must be one of discovered, enrolled/);

  r = await run(runMachinesCommand, ['list', '--json']);
  const list = JSON.parse(r.out);
  t.match(list, [{ mac: MAC, name: 'web-1', power: { driver: 'ipmi', host: '10.0.1.5', passwordSet: true } }]);
  t.notOk('password' in list[0].power, 'no password in the JSON either');

  r = await run(runMachinesCommand, ['show', MAC]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^MAC:\s+52:54:00:00:00:0a\nName:\s+web-1\nState:\s+enrolled\n/);
  t.match(r.out, /BMC:\s+admin@10\.0\.1\.5:623 \(password set\)/);

  r = await run(runMachinesCommand, ['set', MAC, '--ip', 'none', '--boot-mode', 'local', '--name', 'web-2']);
  t.equal(r.code, 0, r.err);
  t.same(s.requests.filter((q) => q.method === 'PUT').at(-1)!.body, { name: 'web-2', ip: null, bootMode: 'local' }, 'set sends only what changes; none clears');
  r = await run(runMachinesCommand, ['set', '52:54:00:00:00:99', '--name', 'x']);
  t.equal(r.code, 1);
  t.match(r.err, /not known; enrol it with machines add/);
  r = await run(runMachinesCommand, ['set', MAC]);
  t.equal(r.code, 2, 'set with nothing to change');

  r = await run(runMachinesCommand, ['set', MAC, '--name', 'bad_name']);
  t.equal(r.code, 1, 'the API\'s 400');
  t.match(r.err, /^metalboot machines: machine 52:54: name: must be a host name label \(HTTP 400 from PUT http:\/\/127\.0\.0\.1:\d+\/api\/v1\/machines\/52:54:00:00:00:0a\)\n$/, 'prints the API\'s error');

  r = await run(runMachinesCommand, ['events', MAC]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^TIME\s+ACTOR\s+FROM\s+TO\s+REASON\n2026-11-22T08:00:00Z\s+api@127\.0\.0\.1\s+-\s+enrolled\s+enrolled\n/);
  t.match(r.out, /iSCSI login from 10\.0\.0\.5\?\[31m\n$/, 'a control character in a reason is not printed');
  t.notMatch(r.out, /\u001b/);

  s.machines.get(MAC)!.state = 'ready';
  r = await run(runMachinesCommand, ['rm', MAC]);
  t.equal(r.code, 1, 'rm of a provisioned machine: the API says 409');
  t.match(r.err, /has a provisioned disk \(state ready\); delete with force \(HTTP 409/);
  r = await run(runMachinesCommand, ['rm', MAC, '--force']);
  t.equal(r.code, 0, r.err);
  t.equal(s.requests.at(-1)!.url, `/api/v1/machines/${MAC}?force=true`);
  t.equal(r.out, `deleted ${MAC}\n`);
  r = await run(runMachinesCommand, ['show', MAC]);
  t.equal(r.code, 1);
  t.match(r.err, /machine 52:54:00:00:00:0a: not known \(HTTP 404/);

  for (const [argv, why] of [
    [['show'], 'no MAC'], [['show', 'nope'], 'bad MAC'], [['frobnicate'], 'unknown verb'], [['list', '--force'], '--force on list'],
    [['add', MAC], 'add without --name'], [['add', MAC, '--name', 'x', '--ip', '300.1.1.1'], 'bad IP'],
    [['add', MAC, '--name', 'x', '--bmc-host', 'h', '--bmc-user', 'u'], 'BMC without a password source'],
    [['add', MAC, '--name', 'x', '--bmc-host', 'h', '--bmc-user', 'u', '--bmc-password-env', 'NOPE'], 'password variable not set'],
    [['add', MAC, '--name', 'x', '--bmc-password-env', 'PW'], 'BMC password without host'],
    [['add', MAC, '--name', 'x', '--remove-bmc'], '--remove-bmc on add'],
    [['list', '--token', TOKEN], 'a token on the command line'], [['list', `--token=${TOKEN}`], 'a token on the command line (=)'],
  ] as const) {
    r = await run(runMachinesCommand, [...argv]);
    t.equal(r.code, 2, `${why}: exit 2`);
    t.match(r.err, /usage:/, `${why}: usage printed`);
  }
  t.match(r.err, /--token is not accepted: the command line is visible/, 'says why there is no --token');
});

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((res) => srv.close(res));
  return port;
}

/** The token file of the current test's setup (the default env's), for calls that pass their own env. */
async function setupTokenPath(s: StandIn): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mb-cli-tok-'));
  const f = path.join(dir, 'token');
  await writeFile(f, `${s.token}\n`, { mode: 0o600 });
  return f;
}

t.test('machines add with the BMC password from a file (one trailing newline dropped), set --remove-bmc', async (t) => {
  const { s, dir, run } = await setup(t);
  const pwFile = path.join(dir, 'bmc.pw');
  await writeFile(pwFile, `${BMC_PW}\n`);
  let r = await run(runMachinesCommand, ['add', MAC, '--name', 'db-1', '--bmc-host', 'bmc1', '--bmc-port', '6230', '--bmc-user', 'root', '--bmc-password-file', pwFile, '--bmc-cipher-suite', '17', '--bmc-privilege', 'operator', '--json']);
  t.equal(r.code, 0, r.err);
  t.same(s.requests.find((q) => q.method === 'PUT')!.body, { name: 'db-1', power: { driver: 'ipmi', host: 'bmc1', port: 6230, user: 'root', password: BMC_PW, cipherSuite: 17, privilege: 'operator' } });
  t.match(JSON.parse(r.out), { mac: MAC, power: { passwordSet: true } });
  r = await run(runMachinesCommand, ['set', MAC, '--remove-bmc']);
  t.equal(r.code, 0, r.err);
  t.same(s.requests.filter((q) => q.method === 'PUT').at(-1)!.body, { power: null });
});

t.test('API address and token: flags > env > config file > defaults; clear errors', async (t) => {
  const { s, dir, tokenFile, run } = await setup(t);
  const other = path.join(dir, 'other-token');
  await writeFile(other, 'some-other-token-0123456789\n');
  const cfg = path.join(dir, 'cli.yaml');
  await writeFile(cfg, `api: ${s.api}/\ntokenFile: ${tokenFile}\n`);
  const auth = () => s.requests.at(-1)!.headers.authorization;

  // Config file alone: api and tokenFile from it.
  let r = await run(runLeasesCommand, [], {}, [path.join(dir, 'missing.yaml'), cfg]);
  t.equal(r.code, 0, `config file: ${r.err}`);
  t.equal(auth(), `Bearer ${TOKEN}`);
  // Env beats the config file: $METALBOOT_TOKEN_FILE points at a wrong token.
  r = await run(runLeasesCommand, [], { METALBOOT_TOKEN_FILE: other }, [cfg]);
  t.equal(r.code, 1, 'env token file wins over the config file');
  t.equal(auth(), 'Bearer some-other-token-0123456789');
  t.match(r.err, new RegExp(`refused the token \\(HTTP 401\\); it came from token file ${other} \\(\\$METALBOOT_TOKEN_FILE\\)`), '401 names the token file');
  // $METALBOOT_TOKEN beats $METALBOOT_TOKEN_FILE.
  r = await run(runLeasesCommand, [], { METALBOOT_TOKEN_FILE: other, METALBOOT_TOKEN: TOKEN }, [cfg]);
  t.equal(r.code, 0, `$METALBOOT_TOKEN wins: ${r.err}`);
  // --token-file beats $METALBOOT_TOKEN.
  r = await run(runLeasesCommand, ['--token-file', other], { METALBOOT_TOKEN: TOKEN }, [cfg]);
  t.equal(r.code, 1);
  t.match(r.err, /it came from token file .*other-token \(--token-file\)/);
  r = await run(runLeasesCommand, [], { METALBOOT_TOKEN: 'wrong-token-but-long-enough' }, [cfg]);
  t.match(r.err, /it came from \$METALBOOT_TOKEN/, '401 with the env token says so');
  // --api beats $METALBOOT_API beats the config file.
  const closed = `http://127.0.0.1:${await closedPort()}`;
  r = await run(runLeasesCommand, [], { METALBOOT_API: closed }, [cfg]);
  t.equal(r.code, 1);
  t.equal(r.err, `metalboot leases: cannot reach ${closed}/api/v1/leases: ECONNREFUSED (is metalbootd running there? set --api or $METALBOOT_API)\n`, 'env API wins, unreachable names the URL');
  r = await run(runLeasesCommand, [], { METALBOOT_API: 'http://127.0.0.1:9' }, []);
  t.equal(r.code, 1, 'unreachable is reported before a missing token');
  t.match(r.err, /cannot reach http:\/\/127\.0\.0\.1:9\/api\/v1\/leases: bad port \(fetch refuses this port\)/);
  r = await run(runLeasesCommand, ['--api', s.api], { METALBOOT_API: closed }, [cfg]);
  t.equal(r.code, 0, '--api wins');
  // Defaults: /var/lib/metalboot/api-token and 127.0.0.1:8080 (nothing listens there in the test, or it is not us).
  r = await run(runLeasesCommand, ['--api', s.api], {}, []);
  t.equal(r.code, 1, 'no token anywhere');
  t.match(r.err, /cannot read token file \/var\/lib\/metalboot\/api-token \(the default\): E(NOENT|ACCES)/, 'after a 401, says why there was no token');

  // Bad config files and URLs: exit 2.
  const bad = path.join(dir, 'bad.yaml');
  for (const [text, msg] of [['api: [1\n', /not valid YAML/], ['apiUrl: x\n', /unknown key "apiUrl"/], ['tokenFile: relative/t\n', /absolute path/], ['api: ftp://x\n', /ftp: URLs are not supported/], ['- a\n', /must be a mapping/]] as const) {
    await writeFile(bad, text);
    r = await run(runLeasesCommand, [], {}, [bad]);
    t.equal(r.code, 2, `config ${JSON.stringify(text)}: exit 2`);
    t.match(r.err, msg);
  }
  r = await run(runLeasesCommand, ['--api', 'not a url']);
  t.equal(r.code, 2);
  t.match(r.err, /--api: "not a url" is not a URL/);
  r = await run(runLeasesCommand, ['--api', `http://user:${TOKEN}@127.0.0.1:8080`]);
  t.equal(r.code, 2, 'credentials in the URL refused');
  t.notMatch(r.err, TOKEN);
});

t.test('leases: the same table as before, --json, with the token', async (t) => {
  const { s, run } = await setup(t);
  let r = await run(runLeasesCommand, []);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, [
    'IP          MAC                STATE     EXPIRES                   HOSTNAME  ARCH  VENDOR CLASS',
    '10.0.0.100  52:54:00:00:00:0a  bound     2026-11-22T09:00:00.000Z  web-1     7     PXEClient:Arch:00007',
    '10.0.0.101  -                  declined  2026-11-22T09:10:00.000Z  -         -     -',
    ''].join('\n'));
  t.equal(s.requests.at(-1)!.headers.authorization, `Bearer ${TOKEN}`);
  r = await run(runLeasesCommand, ['--json']);
  t.same(JSON.parse(r.out).map((l: { ip: string }) => l.ip), ['10.0.0.100', '10.0.0.101']);
  r = await run(runLeasesCommand, ['extra']);
  t.equal(r.code, 2);
});

t.test('images: streamed upload with Content-Length, server-path import, list, show, rm', async (t) => {
  const { s, dir, run } = await setup(t);
  const data = randomBytes(3 * (1 << 20) + 17);
  const file = path.join(dir, 'golden.raw');
  await writeFile(file, data);
  let r = await run(runImagesCommand, ['import', 'golden', '--file', file]);
  t.equal(r.code, 0, r.err);
  const sha = createHash('sha256').update(data).digest('hex');
  t.equal(r.out, `imported golden: 3.0 MiB (${data.length} bytes), sha256 ${sha}\n`);
  const up = s.requests.find((q) => q.method === 'PUT')!;
  t.equal(up.url, '/api/v1/images/golden');
  t.equal(up.headers['content-length'], String(data.length), 'Content-Length is the file size');
  t.equal(up.headers['transfer-encoding'], undefined, 'not chunked');
  t.equal(up.headers['content-type'], 'application/octet-stream');
  t.equal(up.uploadBytes, data.length, 'every byte arrived');

  r = await run(runImagesCommand, ['import', 'golden-q', '--server-path', '/srv/golden.qcow2', '--format', 'qcow2', '--json']);
  t.equal(r.code, 0, r.err);
  t.same(s.requests.at(-1)!.body, { path: '/srv/golden.qcow2', format: 'qcow2' });
  t.match(JSON.parse(r.out), { id: 'golden-q', sizeBytes: 4096 });
  r = await run(runImagesCommand, ['import', 'x', '--file', file, '--format', 'qcow2']);
  t.equal(s.requests.at(-1)!.url, '/api/v1/images/x?format=qcow2', 'upload with a format');

  r = await run(runImagesCommand, []);
  const rows = r.out.trimEnd().split('\n');
  t.match(rows[0], /^ID\s+SIZE\s+BYTES\s+SHA256\s+READ-ONLY$/);
  t.match(rows[1], new RegExp(`^golden\\s+3\\.0 MiB\\s+${data.length}\\s+${sha}\\s+yes$`));
  r = await run(runImagesCommand, ['show', 'golden']);
  t.match(r.out, /^ID:\s+golden\nSize:\s+3\.0 MiB \(3145745 bytes\)\nSHA256:\s+[0-9a-f]{64}\nRead-only:\s+yes\n$/);

  s.machines.set(MAC, { mac: MAC, name: 'a', image: 'golden', bootMode: 'sanboot', firmware: 'bios', state: 'ready', createdAt: 0, updatedAt: 0 });
  r = await run(runImagesCommand, ['rm', 'golden']);
  t.equal(r.code, 1);
  t.match(r.err, /image golden is in use by a disk \(HTTP 409/);
  r = await run(runImagesCommand, ['rm', 'golden-q']);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'deleted image golden-q\n');

  for (const argv of [['import', 'x'], ['import', 'x', '--file', file, '--server-path', '/a'], ['import', 'x', '--file', file, '--format', 'vmdk'], ['list', '--file', file], ['show'], ['show', 'a/b']]) {
    r = await run(runImagesCommand, argv);
    t.equal(r.code, 2, `${argv.join(' ')}: exit 2`);
  }
  r = await run(runImagesCommand, ['import', 'x', '--file', path.join(dir, 'missing.raw')]);
  t.equal(r.code, 2, 'a missing local file: usage');
  t.match(r.err, /cannot read .*missing\.raw: ENOENT/);
  r = await run(runImagesCommand, ['import', 'x', '--file', file], { METALBOOT_API: s.api, METALBOOT_TOKEN: 'wrong-token-but-long-enough' });
  t.equal(r.code, 1, 'upload with a wrong token: 401');
  t.match(r.err, /refused the token \(HTTP 401\)/);
});

t.test('provision: 202 → operation id; --wait prints the steps, bounded by --timeout; failures exit 1', async (t) => {
  const { s, run } = await setup(t);
  s.machines.set(MAC, { mac: MAC, name: 'a', image: 'golden', bootMode: 'sanboot', firmware: 'bios', state: 'enrolled', createdAt: 0, updatedAt: 0 });
  let r = await run((a, io) => runActionCommand('provision', a, io), [MAC]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^provisioning 52:54:00:00:00:0a: operation provision-[0-9a-z]+-abc123\n$/);
  t.same(s.requests.at(-1)!.body, {}, 'no image: the machine\'s own');

  s.machines.get(MAC)!.state = 'enrolled';
  r = await run((a, io) => runActionCommand('provision', a, io), [MAC, '--image', 'golden', '--wait']);
  t.equal(r.code, 0, r.err);
  t.same(s.requests.find((q) => q.url.endsWith('/provision') && q.body && (q.body as { image?: string }).image)!.body, { image: 'golden' });
  const lines = r.out.trimEnd().split('\n');
  t.match(lines[0], /^provisioning 52:54:00:00:00:0a: operation provision-/);
  t.same(lines.slice(1, -1).map((l) => l.trim().split(/\s+/)[1]), ['queued', 'disk', 'boot-mode', 'bootdev', 'power'], 'each step once, in order');
  t.match(lines.at(-1), /provisioned \(operation provision-.* succeeded\)/);

  s.provisionOutcome = 'failed';
  r = await run((a, io) => runActionCommand('provision', a, io), [MAC, '--wait', '--json']);
  t.equal(r.code, 1, 'a failed operation: exit 1');
  t.match(JSON.parse(r.out), { status: 'failed', error: /no answer after 3 tries/ }, '--json: the final operation on stdout');
  t.match(r.err, /  queued\n(.|\n)*operation provision-\S+ failed: BMC 10\.0\.1\.5:623: no answer after 3 tries/, 'steps and the reason on stderr');

  s.provisionOutcome = 'never';
  const t0 = Date.now();
  r = await run((a, io) => runActionCommand('provision', a, io), [MAC, '--wait', '--timeout', '0.3']);
  t.equal(r.code, 1, 'still running at the timeout: exit 1');
  t.ok(Date.now() - t0 < 5000, 'bounded');
  t.match(r.err, /still running \(step power\) after 0 s; the daemon carries on — follow it with metalboot operations show provision-/);

  r = await run(runOperationsCommand, ['--mac', '52-54-00-00-00-0a']);
  t.equal(r.code, 0, r.err);
  t.match(s.requests.at(-1)!.url, '/api/v1/operations?mac=52%3A54%3A00%3A00%3A00%3A0a');
  const ops = r.out.trimEnd().split('\n');
  t.match(ops[0], /^ID\s+KIND\s+MAC\s+STATUS\s+STEP\s+STARTED\s+FINISHED\s+ERROR$/);
  t.equal(ops.length, 5, 'four operations');
  t.ok(ops.some((l) => /provision\s+52:54:00:00:00:0a\s+failed\s+power\s+\S+\s+\S+\s+BMC 10\.0\.1\.5:623: no answer/.test(l)), 'the failed one with its error');
  r = await run(runOperationsCommand, ['--status', 'running', '--json']);
  t.ok(JSON.parse(r.out).every((o: { status: string }) => o.status === 'running'));
  const id = JSON.parse(r.out)[0].id as string;
  r = await run(runOperationsCommand, ['show', id]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /\n  \S+Z  queued\n/);

  for (const argv of [[], [MAC, '--timeout', '5'], [MAC, '--wait', '--timeout', 'x'], [MAC, '--persistent'], [MAC, 'extra']]) {
    r = await run((a, io) => runActionCommand('provision', a, io), argv);
    t.equal(r.code, 2, `provision ${argv.join(' ')}: exit 2`);
  }
});

t.test('power, bootdev, reset, deprovision, checkpoint, restore, maintenance', async (t) => {
  const { s, run } = await setup(t);
  s.machines.set(MAC, { mac: MAC, name: 'a', image: 'golden', bootMode: 'sanboot', firmware: 'bios', state: 'ready', createdAt: 0, updatedAt: 0 });
  const act = (cmd: Parameters<typeof runActionCommand>[0]) => (a: string[], io: CliIo) => runActionCommand(cmd, a, io);

  let r = await run(act('power'), [MAC]);
  t.equal(r.code, 1, 'no BMC: the API\'s 409');
  t.match(r.err, /has no BMC configured \(HTTP 409/);
  s.machines.get(MAC)!.power = { driver: 'ipmi', host: '10.0.1.5', port: 623, user: 'admin', password: BMC_PW };
  r = await run(act('power'), [MAC, 'status']);
  t.equal(r.out, `${MAC}: power on\n`);
  r = await run(act('power'), [MAC, 'cycle']);
  t.same(s.requests.at(-1)!.body, { action: 'cycle' });
  t.equal(r.out, `${MAC}: power cycle sent\n`);
  r = await run(act('power'), [MAC, 'explode']);
  t.equal(r.code, 2);
  r = await run(act('power'), [MAC, 'accept-certificate', 'ab:cd']);
  t.equal(r.code, 0, r.err);
  t.equal(s.requests.at(-1)!.url, `/api/v1/machines/${MAC}/power/certificate`);
  t.same(s.requests.at(-1)!.body, { sha256: 'ab:cd' });
  t.equal(r.out, `${MAC}: BMC certificate AB:CD accepted\n`, 'prints the pin the daemon stored');
  r = await run(act('power'), [MAC, 'accept-certificate']);
  t.equal(r.code, 2, 'accept-certificate needs the fingerprint');
  r = await run(act('power'), [MAC, 'accept-certificate', 'ab', 'extra']);
  t.equal(r.code, 2);

  r = await run(act('bootdev'), [MAC, 'pxe', '--persistent', '--efi']);
  t.equal(r.code, 0, r.err);
  t.same(s.requests.at(-1)!.body, { device: 'pxe', persistent: true, efi: true });
  t.equal(r.out, `${MAC}: boot device pxe (persistent) (EFI)\n`);
  r = await run(act('bootdev'), [MAC, 'floppy']);
  t.equal(r.code, 2);
  r = await run(act('power'), [MAC, 'on', '--efi']);
  t.equal(r.code, 2, '--efi goes with bootdev');

  r = await run(act('reset'), [MAC]);
  t.equal(r.out, `${MAC}: disk reset to image golden (state ready)\n`);
  t.equal(s.requests.at(-1)!.url, `/api/v1/machines/${MAC}/reset`);
  r = await run(act('checkpoint'), [MAC, 'before-upgrade']);
  t.same(s.requests.at(-1)!.body, { name: 'before-upgrade' });
  t.equal(r.out, `${MAC}: checkpoint before-upgrade taken\n`);
  r = await run(act('restore'), [MAC, 'before-upgrade', '--json']);
  t.same(s.requests.at(-1)!.body, { checkpoint: 'before-upgrade' });
  t.same(JSON.parse(r.out), { method: 'copy' });
  r = await run(act('restore'), [MAC]);
  t.equal(r.code, 2, 'restore without a name');
  r = await run(act('maintenance'), [MAC, 'on']);
  t.equal(r.out, `${MAC}: state maintenance\n`);
  t.same(s.requests.at(-1)!.body, { on: true });
  r = await run(act('deprovision'), [MAC]);
  t.equal(r.out, `${MAC}: disk removed (state enrolled)\n`);
  r = await run(act('reset'), ['52:54:00:00:00:77']);
  t.equal(r.code, 1);
  t.match(r.err, /not known \(HTTP 404/);
});

t.test('token rotate writes a new token (0600) and prints none; show-path follows the same order', async (t) => {
  const { dir, tokenFile, run } = await setup(t);
  const before = await readFile(tokenFile, 'utf8');
  let r = await run(runTokenCommand, ['rotate'], { METALBOOT_TOKEN_FILE: tokenFile });
  t.equal(r.code, 0, r.err);
  const after = await readFile(tokenFile, 'utf8');
  t.not(after, before, 'a new token');
  t.match(after, /^[A-Za-z0-9_-]{32}\n$/);
  t.equal((await stat(tokenFile)).mode & 0o777, 0o600);
  t.equal(r.out, `wrote a new API token to ${tokenFile} (mode 0600); metalbootd picks it up within a second, and the old token is refused from then on\n`);
  t.notMatch(r.out + r.err, after.trim(), 'the new token is not printed');
  t.equal(r.err, '');

  const fresh = path.join(dir, 'sub', 'new-token');
  r = await run(runTokenCommand, ['rotate', '--file', fresh], { METALBOOT_TOKEN: 'x'.repeat(20) });
  t.equal(r.code, 0, r.err);
  t.match(await readFile(fresh, 'utf8'), /^\S{32}\n$/);
  t.match(r.err, /did not exist before/);
  t.match(r.err, /\$METALBOOT_TOKEN is set and now holds the old token/);

  const cfg = path.join(dir, 'cli.yaml');
  await writeFile(cfg, 'tokenFile: /etc/metalboot/from-config\n');
  r = await run(runTokenCommand, ['show-path'], {}, [cfg]);
  t.equal(r.out, '/etc/metalboot/from-config\n');
  r = await run(runTokenCommand, ['show-path'], { METALBOOT_TOKEN_FILE: '/x/env' }, [cfg]);
  t.equal(r.out, '/x/env\n');
  r = await run(runTokenCommand, ['show-path', '--token-file', '/x/flag'], { METALBOOT_TOKEN_FILE: '/x/env' }, [cfg]);
  t.equal(r.out, '/x/flag\n');
  r = await run(runTokenCommand, ['show-path'], {}, []);
  t.equal(r.out, '/var/lib/metalboot/api-token\n');
  r = await run(runTokenCommand, ['show-path', '--json'], { METALBOOT_TOKEN: 'y'.repeat(20) }, []);
  t.same(JSON.parse(r.out), { file: '/var/lib/metalboot/api-token', source: 'token file /var/lib/metalboot/api-token (the default)', overriddenBy: 'METALBOOT_TOKEN' });
  t.notMatch(r.out, 'yyyy');
  r = await run(runTokenCommand, []);
  t.equal(r.code, 2);
  r = await run(runTokenCommand, ['rotate', '--file', path.join(dir, 'no', 'such', '\0bad')]);
  t.equal(r.code, 1, 'an unwritable file: exit 1');
});

t.test('inspect, deploy, erase: 202 → operation; --wait follows the steps; machines show prints the inventory; usage mistakes exit 2', async (t) => {
  const { s, run } = await setup(t);
  s.machines.set(MAC, { mac: MAC, name: 'box', bootMode: 'sanboot', firmware: 'bios', state: 'enrolled', createdAt: 0, updatedAt: 0 });
  s.nextInventory = {
    collectedAt: Date.UTC(2026, 10, 22, 9, 0, 0), firmware: 'bios', system: { manufacturer: 'Acme', product: 'Box9', serial: 'SN1', uuid: 'u-1' },
    cpu: { arch: 'x86_64', model: 'Xeon', cores: 4, threads: 8 }, memoryBytes: 8 * 2 ** 30,
    disks: [{ name: 'sda', sizeBytes: 480 * 1e9, model: 'SSD\u001b[31m', serial: 'S1', wwn: '0x5000c500a1b2c3d4', rotational: false }],
    nics: [{ mac: MAC, name: 'eth0', driver: 'igb', speedMbps: 1000, link: true, lldp: { chassisId: '02:00:5e:10:20:30', portId: 'swp7', systemName: 'sw1' } }],
  };
  let r = await run(runMachinesCommand, ['show', MAC]);
  t.equal(r.code, 0, r.err);
  t.notMatch(r.out, /Inventory/, 'not inspected: no inventory section');
  r = await run((a, io) => runActionCommand('inspect', a, io), [MAC, '--wait']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^inspecting 52:54:00:00:00:0a: operation inspect-\S+\n(.*\n)*.*agent-booted\n(.*\n)*52:54:00:00:00:0a: inspected \(operation inspect-\S+ succeeded\)\n$/);
  t.same(s.requests.find((q) => q.url.endsWith('/inspect'))!.body, {}, 'inspect sends no options');
  r = await run(runMachinesCommand, ['show', MAC]);
  t.match(r.out, /Inventory \(/);
  t.match(r.out, /CPU:\s+x86_64, Xeon, 4 cores, 8 threads/);
  t.match(r.out, /Memory:\s+8.0 GiB/);
  t.match(r.out, /sda\s+\S+.*S1\s+0x5000c500a1b2c3d4\s+no/);
  t.match(r.out, /eth0\s+52:54:00:00:00:0a\s+igb\s+1000 Mb\/s\s+up\s+sw1 swp7 \(02:00:5e:10:20:30\)/);
  t.notMatch(r.out, /\u001b/, 'no terminal escapes from what the machine reported');
  r = await run(runMachinesCommand, ['show', MAC, '--json']);
  t.equal(JSON.parse(r.out).inventory.system.serial, 'SN1', '--json carries the inventory');

  r = await run((a, io) => runActionCommand('deploy', a, io), [MAC, '--image', 'golden', '--disk', 'S1']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^deploying to 52:54:00:00:00:0a: operation deploy-/);
  t.same(s.requests.find((q) => q.url.endsWith('/deploy'))!.body, { image: 'golden', disk: 'S1' });
  r = await run((a, io) => runActionCommand('erase', a, io), [MAC, '--method', 'zero', '--disks', 'sda,sdb', '--wait']);
  t.equal(r.code, 0, r.err);
  t.same(s.requests.find((q) => q.url.endsWith('/erase'))!.body, { method: 'zero', disks: ['sda', 'sdb'] });
  t.match(r.out, /erased \(operation erase-\S+ succeeded\)/);
  r = await run((a, io) => runActionCommand('capture', a, io), [MAC, '--image', 'backup-1', '--disk', 'sda', '--wait']);
  t.equal(r.code, 0, r.err);
  t.same(s.requests.find((q) => q.url.endsWith('/capture'))!.body, { image: 'backup-1', disk: 'sda' });
  t.match(r.out, /^capturing 52:54:00:00:00:0a: operation capture-\S+\n(.*\n)*.*upload\n(.*\n)*52:54:00:00:00:0a: captured \(operation capture-\S+ succeeded\)\n$/);
  for (const [cmd, argv, why] of [
    ['deploy', [MAC], /deploy needs --image/], ['erase', [MAC], /erase needs --method/], ['erase', [MAC, '--method', 'shred'], /erase needs --method/],
    ['inspect', [MAC, '--image', 'x'], /--image goes with provision, deploy and capture/], ['capture', [MAC], /capture needs --image/], ['power', [MAC, 'on', '--wait'], /--wait goes with/],
    ['inspect', [MAC, '--disk', 'sda'], /--disk goes with deploy and capture/],
  ] as const) {
    r = await run((a, io) => runActionCommand(cmd, a, io), [...argv]);
    t.equal(r.code, 2, `${cmd} ${argv.join(' ')}: exit 2`);
    t.match(r.err, why);
  }
});
