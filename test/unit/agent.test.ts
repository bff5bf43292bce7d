/**
 * The agent's protocol on the server side: the inventory parser (bounds, types, what it keeps),
 * disk choice, the one-time tokens (bound to machine and operation, replaced on a new script,
 * gone with the operation), the task lines, and one inspection through the real HTTP app: the
 * agent's calls made with the token from the machine's iPXE script (a machine without a BMC:
 * someone else powers it on), a silent agent timing out, and no token in any log line.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildHttpApp } from '../../src/http/server.js';
import { staticAuth } from '../../src/http/auth.js';
import { openStore } from '../../src/store/db.js';
import { EventBus } from '../../src/events/bus.js';
import { MachineService } from '../../src/machines/service.js';
import { Operations } from '../../src/machines/operations.js';
import { PowerPool } from '../../src/power/pool.js';
import { createPowerDriver } from '../../src/power/drivers.js';
import { DEFAULT_IPMI, DEFAULT_REDFISH } from '../../src/config/defaults.js';
import { parseMac } from '../../src/net/mac.js';
import { AgentSessions, renderTask } from '../../src/agent/sessions.js';
import { InventoryError, chooseDisk, parseInventory } from '../../src/agent/inventory.js';
import { Inventories } from '../../src/machines/inventory.js';
import { inspect } from '../../src/machines/inspect.js';
import { bootActionFor } from '../../src/boot/policy.js';
import { renderAgentScript } from '../../src/boot/ipxe.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { FileBackend } from '../../src/storage/files.js';
import { guarded } from '../../src/storage/guarded.js';
import { LvmBackend } from '../../src/storage/lvm.js';
import { InvalidNameError } from '../../src/storage/backend.js';
import { ImageService } from '../../src/images/service.js';
import { runCommand } from '../../src/exec/run.js';
import { deploy } from '../../src/machines/deploy.js';
import { erase } from '../../src/machines/erase.js';
import { capture } from '../../src/machines/capture.js';
import { claimAgentStates, settleInterruptedAgentStates } from '../../src/machines/agent-operation.js';

const MAC = parseMac('52:54:00:00:ab:01');
const OTHER = parseMac('52:54:00:00:ab:02');
/** What the agent posted from a QEMU VM (src/agent/agent.sh), trimmed. */
const SAMPLE = {
  firmware: 'bios', system: { manufacturer: 'Acme', product: 'Box9', serial: 'SN123', uuid: '4d424c41-4200-4000-8000-525400123456' },
  cpu: { arch: 'x86_64', model: 'QEMU Virtual CPU version 2.5+', cores: 2, threads: 2 }, memoryBytes: 536870912,
  disks: [{ name: 'sda', sizeBytes: 33554432, model: 'QEMU HARDDISK', serial: 'SATASER2', wwn: '', rotational: true },
    { name: 'vda', sizeBytes: 67108864, model: '', serial: 'VSER1', wwn: '', rotational: true }],
  nics: [{ mac: '52:54:00:12:34:56', name: 'eth0', driver: 'virtio_net', speedMbps: null, link: true, lldp: { chassisId: '02:00:5e:10:20:30', portId: 'swp7', systemName: 'sw1' } }],
};

t.test('inventory: parsed at the boundary; mistakes named', async (t) => {
  const inv = parseInventory(SAMPLE, 1234);
  t.equal(inv.collectedAt, 1234);
  t.same(inv.disks.map((d) => d.serial), ['SATASER2', 'VSER1']);
  t.equal(inv.nics[0]!.lldp?.portId, 'swp7');
  t.equal(parseInventory({ ...SAMPLE, system: { ...SAMPLE.system, product: `a\x01b${'x'.repeat(400)}`, extra: 1 } }, 0).system.product.length, 256, 'strings cut at 256, control characters dropped');
  const bad: [unknown, RegExp][] = [
    [{ ...SAMPLE, firmware: 'coreboot' }, /inventory\.firmware/],
    [{ ...SAMPLE, memoryBytes: -1 }, /inventory\.memoryBytes/],
    [{ ...SAMPLE, memoryBytes: 1.5 }, /inventory\.memoryBytes/],
    [{ ...SAMPLE, disks: {} }, /inventory\.disks: not a list/],
    [{ ...SAMPLE, disks: Array(129).fill(SAMPLE.disks[0]) }, /more than 128/],
    [{ ...SAMPLE, disks: [{ ...SAMPLE.disks[0], name: '../etc' }] }, /disks\[0\]\.name/],
    [{ ...SAMPLE, disks: [{ ...SAMPLE.disks[0], sizeBytes: '1' }] }, /disks\[0\]\.sizeBytes/],
    [{ ...SAMPLE, nics: [{ ...SAMPLE.nics[0], mac: 'nope' }] }, /nics\[0\]\.mac/],
    [{ ...SAMPLE, nics: [{ ...SAMPLE.nics[0], link: 'yes' }] }, /nics\[0\]\.link/],
    [{ ...SAMPLE, cpu: null }, /inventory\.cpu: not an object/],
    ['[]', /inventory\.\(root\)/],
  ];
  for (const [raw, re] of bad) t.throws(() => parseInventory(raw, 0), re, `refused: ${re}`);
  t.throws(() => parseInventory({ ...SAMPLE, firmware: 'x' }, 0), InventoryError);
});

t.test('disk choice: by name or serial, else the smallest that fits', async (t) => {
  const inv = parseInventory(SAMPLE, 0);
  t.equal(chooseDisk(inv, undefined, 1)?.name, 'sda', 'smallest');
  t.equal(chooseDisk(inv, undefined, 40 << 20)?.name, 'vda', 'the smallest that holds 40 MiB');
  t.equal(chooseDisk(inv, undefined, 1 << 30), undefined, 'none holds 1 GiB');
  t.equal(chooseDisk(inv, 'VSER1', 0)?.name, 'vda', 'by serial');
  t.equal(chooseDisk(inv, 'sda', 0)?.name, 'sda', 'by name');
  t.equal(chooseDisk(inv, 'nvme0n1', 0), undefined, 'unknown disk');
});

t.test('an image\'s source for a deploy, through the storage guard: the file backend has it, lvm does not (yet)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-agent-src-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = guarded(new FileBackend({ root: dir, runner: runCommand }));
  await files.init();
  const bytes = randomBytes(4096);
  await files.importImage('golden', Readable.from([bytes]), { sizeBytes: bytes.length });
  t.equal(await files.imageSource?.('golden'), path.join(dir, 'images', 'golden.raw'), 'files: the image file');
  t.equal(await files.imageSource?.('missing'), undefined, 'files: no such image');
  await t.rejects(async () => files.imageSource?.('../etc/passwd'), InvalidNameError, 'a bad name never reaches the core');
  const lvm = guarded(new LvmBackend({ vg: 'vg0', pool: 'pool', runner: async () => { throw new Error('no command expected'); } }));
  t.equal(await lvm.imageSource?.('golden'), undefined, 'lvm: cannot say, so a deploy from it is refused before it starts');
});

t.test('sessions: one-time tokens bound to machine and operation', async (t) => {
  const s = new AgentSessions(() => 1000);
  const h = { step() {}, async inventory() {}, progress() {}, done() {}, failed() {} };
  t.equal(s.mintToken(MAC), undefined, 'no token without a running operation');
  s.open(MAC, 'op-1', { kind: 'inspect', then: 'poweroff' }, h);
  t.throws(() => s.open(MAC, 'op-2', { kind: 'inspect', then: 'poweroff' }, h), /already running \(op-1\)/);
  const tok = s.mintToken(MAC)!;
  t.match(tok, /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
  t.ok(s.check(`Bearer ${tok}`, MAC).ok, 'its machine: accepted');
  t.same(s.check(`Bearer ${tok}`, OTHER), { ok: false, reason: 'other-machine' }, 'another MAC: refused');
  t.same(s.check(undefined, MAC), { ok: false, reason: 'no-token' });
  t.same(s.check(`Bearer ${'A'.repeat(43)}`, MAC), { ok: false, reason: 'unknown-token' }, 'a guess: refused');
  t.notOk(JSON.stringify(s.of(MAC)).includes(tok), 'only the hash is kept');
  const tok2 = s.mintToken(MAC)!;
  t.same(s.check(`Bearer ${tok}`, MAC), { ok: false, reason: 'unknown-token' }, 'a new script replaces the token');
  t.ok(s.check(`Bearer ${tok2}`, MAC).ok);
  s.end(MAC, 'op-other');
  t.ok(s.check(`Bearer ${tok2}`, MAC).ok, 'ending another operation leaves it');
  s.end(MAC, 'op-1');
  t.same(s.check(`Bearer ${tok2}`, MAC), { ok: false, reason: 'unknown-token' }, 'refused once its operation ended');
});

t.test('task lines and the agent script', async (t) => {
  t.equal(renderTask(MAC, { operationId: 'inspect-x1', task: { kind: 'inspect', then: 'poweroff' } }), 'operation=inspect-x1\nkind=inspect\nthen=poweroff\n');
  t.match(renderTask(MAC, { operationId: 'deploy-1', task: { kind: 'deploy', then: 'reboot', image: { id: 'golden', sizeBytes: 10, sha256: 'ab' }, disk: 'VSER1' } }),
    `imageUrl=/agent/v1/${MAC}/image\nimageSize=10\nimageSha256=ab\ndisk=VSER1\n`);
  t.throws(() => renderTask(MAC, { operationId: 'x', task: { kind: 'deploy', then: 'reboot', disk: 'a b\nkind=erase' } }), /unsafe/);
  const s = renderAgentScript({ mac: MAC, publicUrl: 'http://10.0.0.1:8080', kernelUrl: 'http://10.0.0.1:8080/boot/agent/x86_64/vmlinuz', initrdUrl: 'http://10.0.0.1:8080/boot/agent/x86_64/initrd.img', token: 'tok_-123', console: 'ttyS0', lldpSec: 31 });
  t.match(s, /^kernel http:\/\/10\.0\.0\.1:8080\/boot\/agent\/x86_64\/vmlinuz quiet .*mb\.url=http:\/\/10\.0\.0\.1:8080 mb\.mac=52:54:00:00:ab:01 mb\.token=tok_-123 mb\.lldp=31 \|\| goto mbfail$/m);
  t.match(s, /^initrd http:\/\/10\.0\.0\.1:8080\/boot\/agent\/x86_64\/initrd\.img/m);
  t.throws(() => renderAgentScript({ mac: MAC, publicUrl: 'http://x', kernelUrl: 'k', initrdUrl: 'i', token: 'a\nshell', console: 'ttyS0', lldpSec: 1 }), /cmdline/);
  t.same(bootActionFor(undefined, undefined, 'inspect'), { kind: 'inspect' }, 'unknown + inspect policy: inspect it');
  t.same(bootActionFor(undefined, undefined, 'inspect', { running: false, inventoried: true }), { kind: 'none' }, 'already inventoried: not again');
});

/** The HTTP app as the daemon wires it for agent operations (no BMC, file image store), on a real store. */
async function setup(t: Test, unknown: 'ignore' | 'inspect' = 'ignore') {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mb-agent-'));
  const store = await openStore(dir);
  const bus = new EventBus();
  const { log, lines } = memoryLogger('debug');
  const operations = new Operations(store, bus, Date.now);
  const bmcs = new PowerPool((s, keep) => createPowerDriver(s, { defaults: { ipmi: { ...DEFAULT_IPMI, timeoutMs: 100, retries: 0 }, redfish: { ...DEFAULT_REDFISH, timeoutMs: 500, retries: 0 } }, log: { debug() {}, warn() {} }, keep }), bus);
  const machines = new MachineService({ store, bus, power: bmcs, operations, clock: Date.now, log, discover: true });
  await machines.load();
  const parts = machines.operationParts();
  claimAgentStates(parts.claims);
  const sessions = new AgentSessions(Date.now);
  const inventories = new Inventories(store);
  const timeout = { ms: 60_000 };
  const deps = () => ({ ...parts, operations, sessions, inventories, clock: Date.now, log, timeoutMs: timeout.ms });
  const backend = guarded(new FileBackend({ root: path.join(dir, 'volumes'), runner: runCommand }));
  await backend.init();
  const images = new ImageService({ backend, imageUsers: () => [], runner: runCommand, tmpDir: path.join(dir, 'tmp'), importDir: dir, log });
  const app = buildHttpApp({
    log, clock: Date.now, auth: staticAuth('rw-token-0123456789abcdef'), bootAssetsDir: dir, bus,
    machines: { service: machines, operations },
    boot: {
      publicUrl: 'http://127.0.0.1:8080', unknown, sanboot: { tries: 3, retryDelaySec: 5, fallback: 'exit' }, machine: (m) => machines.get(m),
      scriptAccess: async (mac, from) => (mac === MAC && from === '127.0.0.1' ? { ok: true as const, via: 'lease' as const } : { ok: false as const, reason: 'not the machine' }),
      agent: { sessions, dir, lldpSec: 5, inventoried: (m) => inventories.get(m) !== undefined, autoInspect: (mac) => { inspect(deps(), mac, 'machines.unknown', { powerOn: false }); } },
    },
    agent: {
      sessions, inspect: (mac, actor) => inspect(deps(), mac, actor), inventory: (mac) => inventories.get(mac),
      deploy: (mac, spec, actor) => deploy({ ...deps(), images }, mac, spec, actor), erase: (mac, spec, actor) => erase(deps(), mac, spec, actor),
      capture: (mac, spec, actor) => capture({ ...deps(), images }, mac, spec, actor),
      imageSource: (id) => images.source(id),
    },
  });
  t.teardown(async () => { await app.close(); await bmcs.closeAll(); await store.close(); await rm(dir, { recursive: true, force: true }); });
  const api = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) => app.inject({ method, url, ...(payload ? { payload } : {}), headers: { authorization: 'Bearer rw-token-0123456789abcdef' } });
  const agent = (method: 'GET' | 'POST', what: string, token: string, payload?: string | object, mac: string = MAC) => app.inject({
    method, url: `/agent/v1/${mac}/${what}`, headers: { authorization: `Bearer ${token}`, ...(typeof payload === 'string' ? { 'content-type': 'text/plain' } : {}) }, ...(payload !== undefined ? { payload } : {}),
  });
  const waitOp = async (id: string) => { for (let i = 0; i < 200 && operations.get(id)?.status === 'running'; i++) await new Promise((r) => setTimeout(r, 20)); return operations.get(id)!; };

  return { app, api, agent, waitOp, machines, operations, sessions, inventories, images, bus, lines, timeout, store, log, bmcs };
}

t.test('an inspection through the HTTP app: the agent\'s calls with the script\'s token; replay, other MAC, timeout', async (t) => {
  const { app, api, agent, waitOp, machines, operations, sessions, images, lines, timeout } = await setup(t);
  t.equal((await api('PUT', `/api/v1/machines/${MAC}`, { name: 'box' })).statusCode, 201);
  t.equal((await api('GET', `/api/v1/machines/${MAC}/inventory`)).statusCode, 404, 'no inventory before an inspection');
  t.match((await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body, /boots from its local disk/, 'no agent operation: the usual script');
  const started = await api('POST', `/api/v1/machines/${MAC}/inspect`);
  t.equal(started.statusCode, 202);
  const id = started.json().operation.id as string;
  await new Promise((r) => setTimeout(r, 50));
  t.equal(machines.get(MAC)?.state, 'inspecting');
  t.equal((await api('POST', `/api/v1/machines/${MAC}/inspect`)).statusCode, 409, 'one agent operation at a time');
  const del = await app.inject({ method: 'DELETE', url: `/api/v1/machines/${MAC}?force=true`, headers: { authorization: 'Bearer rw-token-0123456789abcdef' } });
  t.equal(del.statusCode, 409, 'the inspection holds the machine (claims.ts): delete refused, even forced');
  t.match(del.json().error, /cannot delete while inspecting \(operation inspect-\S+ is running\)/);

  const refusedScript = await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe`, remoteAddress: '10.9.9.9' });
  t.equal(refusedScript.statusCode, 403, 'the agent script (it carries the token) only for the machine');
  const script = (await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body;
  const token = /mb\.token=(\S+)/.exec(script)?.[1] ?? '';
  t.match(script, /boots the metalboot agent/);
  t.ok(token.length >= 40, 'the script carries a token');

  t.equal((await agent('GET', 'task', 'rw-token-0123456789abcdef')).statusCode, 401, 'the API token opens no agent route');
  t.equal((await agent('GET', 'task', token, undefined, OTHER)).statusCode, 401, 'the token for another MAC: 401');
  const task = await agent('GET', 'task', token);
  t.equal(task.body, `operation=${id}\nkind=inspect\nthen=poweroff\n`, 'the task');
  t.equal((await agent('POST', 'step?name=agent-booted', token)).statusCode, 204);
  t.equal((await agent('POST', 'step?name=Bad%20Step', token)).statusCode, 400, 'step names are checked');
  const badInv = await agent('POST', 'inventory', token, { ...SAMPLE, firmware: 'x' });
  t.equal(badInv.statusCode, 400);
  t.match(badInv.json().error, /inventory\.firmware/, 'a bad inventory is refused naming the field');
  t.equal((await agent('POST', 'inventory', token, SAMPLE)).statusCode, 204);
  const done = await agent('POST', 'done', token, {});
  t.equal(done.body, 'then=poweroff\n', 'told to power off');
  const op = await waitOp(id);
  t.equal(op.status, 'succeeded', `operation ${op.error ?? ''}`);
  t.same(op.steps.map((s) => s.step), ['queued', 'agent-boot', 'agent-booted'], 'no BMC: no bootdev or power step');
  t.same(op.result, { firmware: 'bios', cpus: 2, memoryBytes: 536870912, disks: 2, nics: 1 });
  t.equal(machines.get(MAC)?.state, 'enrolled', 'back to enrolled');
  t.match((await api('GET', `/api/v1/machines/${MAC}/inventory`)).json(), { firmware: 'bios', system: { serial: 'SN123' }, disks: [{ serial: 'SATASER2' }, { serial: 'VSER1' }] });
  t.equal((await agent('GET', 'task', token)).statusCode, 401, 'the token replayed after its operation: 401');
  t.equal((await agent('POST', 'done', token, {})).statusCode, 401);
  t.match((await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body, /boots from its local disk/, 'operation over: no agent script');

  // The agent fails: the operation fails naming its step; then a silent agent times out.
  const second = (await api('POST', `/api/v1/machines/${MAC}/inspect`)).json().operation.id as string;
  await new Promise((r) => setTimeout(r, 50));
  const tok2 = /mb\.token=(\S+)/.exec((await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body)?.[1] ?? '';
  await agent('POST', 'step?name=inventory', tok2);
  t.equal((await agent('POST', 'fail', tok2, 'dmidecode: no SMBIOS')).body, 'then=poweroff\n');
  const failed = await waitOp(second);
  t.equal(failed.status, 'failed');
  t.equal(failed.error, 'inspect failed at step inventory: the agent failed: dmidecode: no SMBIOS', 'the error names the step');
  t.equal(machines.get(MAC)?.state, 'error', 'machine in error');
  timeout.ms = 300;
  const third = (await api('POST', `/api/v1/machines/${MAC}/inspect`)).json().operation.id as string;
  const silent = await waitOp(third);
  t.match(silent.error, /^inspect failed at step agent-boot: the agent was silent for \d+ s$/, `a silent agent: ${silent.error}`);
  t.equal(sessions.of(MAC), undefined, 'its session is gone');

  // Deploy: refused before power-on when the inventory says it cannot fit; the agent downloads with Range.
  t.equal((await api('POST', `/api/v1/machines/${MAC}/maintenance`, { on: false })).statusCode, 200, 'out of error');
  const bytes = randomBytes(3 << 20);
  await images.importStream('golden', Readable.from([bytes]), 'raw', bytes.length);
  const sum = createHash('sha256').update(bytes).digest('hex');
  const nodisk = await api('POST', `/api/v1/machines/${MAC}/deploy`, { image: 'golden', disk: 'nvme0n1' });
  t.equal(nodisk.statusCode, 400);
  t.match(nodisk.json().error, /disk nvme0n1: not among its disks \(sda 33554432 bytes, vda 67108864 bytes\)/, 'an unknown disk: refused, naming the disks');
  t.equal((await api('POST', `/api/v1/machines/${MAC}/deploy`, { image: 'nope' })).statusCode, 404, 'an unknown image: 404');
  t.equal(machines.get(MAC)?.state, 'enrolled', 'nothing started');
  const dep = await api('POST', `/api/v1/machines/${MAC}/deploy`, { image: 'golden', disk: 'VSER1' });
  t.equal(dep.statusCode, 202, dep.body);
  const depId = dep.json().operation.id as string;
  await new Promise((r) => setTimeout(r, 50));
  const tok3 = /mb\.token=(\S+)/.exec((await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body)?.[1] ?? '';
  t.equal((await agent('GET', 'task', tok3)).body,
    `operation=${depId}\nkind=deploy\nthen=reboot\nimage=golden\nimageUrl=/agent/v1/${MAC}/image\nimageSize=${bytes.length}\nimageSha256=${sum}\ndisk=VSER1\n`, 'the deploy task (no BMC: the agent reboots)');
  const part = await app.inject({ method: 'GET', url: `/agent/v1/${MAC}/image`, headers: { authorization: `Bearer ${tok3}`, range: 'bytes=1048576-' } });
  t.equal(part.statusCode, 206, 'a resumed download: 206');
  t.ok(part.rawPayload.equals(bytes.subarray(1 << 20)), 'the bytes from the offset on');
  t.equal((await app.inject({ method: 'GET', url: `/agent/v1/${MAC}/image`, headers: { authorization: `Bearer ${tok2}` } })).statusCode, 401, 'an old token gets no image');
  t.equal((await agent('POST', 'done', tok3, { disk: 'vda', bytes: bytes.length, sha256: sum, sparse: true })).body, 'then=reboot\n');
  const depOp = await waitOp(depId);
  t.equal(depOp.status, 'succeeded', `deploy ${depOp.error ?? ''}`);
  t.same(depOp.result, { image: 'golden', disk: 'vda', bytes: bytes.length, sha256: sum, sparse: true });
  t.equal(machines.get(MAC)?.state, 'deployed');
  t.match((await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body, /boots from its local disk/, 'a deployed machine that PXE boots goes to its local disk');

  // Erase: every disk zeroed, what each got reported; then enrolled.
  const er = await api('POST', `/api/v1/machines/${MAC}/erase`, { method: 'zero' });
  t.equal(er.statusCode, 202, er.body);
  await new Promise((r) => setTimeout(r, 50));
  const tok4 = /mb\.token=(\S+)/.exec((await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body)?.[1] ?? '';
  t.match((await agent('GET', 'task', tok4)).body, /kind=erase\nthen=poweroff\ndisks=all\nmethod=zero\n$/, 'the erase task');
  await agent('POST', 'done', tok4, { disks: [{ name: 'vda', sizeBytes: 67108864, result: 'zeroed' }] });
  const erOp = await waitOp(er.json().operation.id);
  t.same(erOp.result, { disks: [{ name: 'vda', sizeBytes: 67108864, result: 'zeroed' }] }, 'what each disk got');
  t.equal(machines.get(MAC)?.state, 'enrolled');

  // Capture: the disk uploaded into a new image; the agent's sha256 of the disk must match the store's.
  t.equal((await api('POST', `/api/v1/machines/${MAC}/capture`, { image: 'golden' })).statusCode, 409, 'capture into an existing image: 409');
  t.equal((await api('POST', `/api/v1/machines/${MAC}/capture`, { image: '../x' })).statusCode, 400, 'a bad image name: 400');
  const cap = await api('POST', `/api/v1/machines/${MAC}/capture`, { image: 'backup-1', disk: 'vda' });
  t.equal(cap.statusCode, 202, cap.body);
  await new Promise((r) => setTimeout(r, 50));
  const tok5 = /mb\.token=(\S+)/.exec((await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body)?.[1] ?? '';
  t.match((await agent('GET', 'task', tok5)).body, new RegExp(`kind=capture\nthen=poweroff\ndisk=vda\nimage=backup-1\ncaptureUrl=/agent/v1/${MAC}/capture\n$`), 'the capture task');
  const diskBytes = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(2 << 20)]);
  const up = await app.inject({ method: 'PUT', url: `/agent/v1/${MAC}/capture`, headers: { authorization: `Bearer ${tok5}`, 'content-type': 'application/octet-stream' }, payload: diskBytes });
  t.equal(up.statusCode, 201, up.body);
  const diskSum = createHash('sha256').update(diskBytes).digest('hex');
  t.same(up.json(), { sizeBytes: diskBytes.length, sha256: diskSum }, 'the store recorded the disk\'s sha256');
  t.equal((await app.inject({ method: 'PUT', url: `/agent/v1/${MAC}/capture`, headers: { authorization: `Bearer ${tok5}`, 'content-type': 'application/octet-stream' }, payload: diskBytes })).statusCode, 409, 'one upload per capture');
  await agent('POST', 'done', tok5, { disk: 'vda', bytes: diskBytes.length, sha256: diskSum });
  const capOp = await waitOp(cap.json().operation.id);
  t.equal(capOp.status, 'succeeded', capOp.error ?? '');
  t.match(capOp.result, { image: 'backup-1', sha256: diskSum, sizeBytes: diskBytes.length });
  t.match(await images.get('backup-1'), { sha256: diskSum }, 'a new image, deployable like any other');
  t.equal(machines.get(MAC)?.state, 'enrolled', 'back where it started');
  // A disk that reads back other bytes than were stored: the capture fails.
  const cap2 = (await api('POST', `/api/v1/machines/${MAC}/capture`, { image: 'backup-2' })).json().operation.id as string;
  await new Promise((r) => setTimeout(r, 50));
  const tok6 = /mb\.token=(\S+)/.exec((await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body)?.[1] ?? '';
  await app.inject({ method: 'PUT', url: `/agent/v1/${MAC}/capture`, headers: { authorization: `Bearer ${tok6}`, 'content-type': 'application/octet-stream' }, payload: diskBytes });
  await agent('POST', 'done', tok6, { disk: 'vda', sha256: '0'.repeat(64) });
  t.match((await waitOp(cap2)).error, /image backup-2 has sha256 \w+, the disk read 0{64}/, 'sha256 mismatch: failed, naming both');

  const all = JSON.stringify(lines());
  t.notOk([token, tok2, tok3, tok4, tok5, tok6].some((x) => all.includes(x)), 'no token in any log line');
  t.ok(lines().some((l) => l['event'] === 'agent.refused' && l['reason'] === 'other-machine'), 'refusals logged with the reason');
});

t.test('machines.unknown: inspect: a discovered PXE client is inspected on the boot that found it, once', async (t) => {
  const { app, agent, waitOp, machines, operations, inventories, bus } = await setup(t, 'inspect');
  bus.publish({ type: 'dhcp.ack', mac: MAC, arch: 'bios', ipxe: true, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' });
  for (let i = 0; i < 50 && !machines.get(MAC); i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(machines.get(MAC)?.state, 'discovered', 'recorded as discovered from its DHCP request');
  const script = (await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body;
  t.match(script, /boots the metalboot agent/, 'its first script boots the agent');
  const op = operations.list({ mac: MAC })[0]!;
  t.equal(op.kind, 'inspect');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(machines.get(MAC)?.state, 'inspecting');
  const token = /mb\.token=(\S+)/.exec(script)?.[1] ?? '';
  t.equal((await agent('POST', 'inventory', token, SAMPLE)).statusCode, 204);
  await agent('POST', 'done', token, {});
  const done = await waitOp(op.id);
  t.equal(done.status, 'succeeded', done.error ?? '');
  t.same(done.steps.map((s) => s.step), ['queued', 'agent-boot'], 'no BMC steps: it was booting already');
  t.equal(machines.get(MAC)?.state, 'discovered', 'still discovered, now with its inventory');
  t.equal(inventories.get(MAC)?.system.serial, 'SN123');
  t.match((await app.inject({ method: 'GET', url: `/boot/${MAC}.ipxe` })).body, /no boot configuration/, 'inspected once: its next boot goes on to the next device');
  t.equal(operations.list({ mac: MAC }).length, 1, 'no second inspection');
});

t.test('a restart under a deploy: the operation is failed and journalled, the machine in error and deployable again', async (t) => {
  const { api, machines, store, log, bmcs, images, timeout } = await setup(t);
  // Short: the operations of the "dead" process and the new one end on their own soon after.
  timeout.ms = 400;
  t.equal((await api('PUT', `/api/v1/machines/${MAC}`, { name: 'box' })).statusCode, 201);
  const bytes = randomBytes(1 << 20);
  await images.importStream('golden', Readable.from([bytes]), 'raw', bytes.length);
  const dep = await api('POST', `/api/v1/machines/${MAC}/deploy`, { image: 'golden' });
  t.equal(dep.statusCode, 202);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(machines.get(MAC)?.state, 'deploying');
  // What a kill -9 leaves in the store, read by a new process: the same store, new services.
  const bus2 = new EventBus();
  const ops2 = new Operations(store, bus2, Date.now);
  await ops2.load();
  const machines2 = new MachineService({ store, bus: bus2, power: bmcs, operations: ops2, clock: Date.now, log, discover: false });
  await machines2.load();
  const parts2 = machines2.operationParts();
  claimAgentStates(parts2.claims);
  t.equal(machines2.get(MAC)?.state, 'deploying', 'the store says deploying');
  t.equal(await settleInterruptedAgentStates({ ...parts2, operations: ops2, log }), 1);
  const op = ops2.get(dep.json().operation.id)!;
  t.equal(op.status, 'failed');
  t.match(op.error, /interrupted by a daemon restart at step agent-boot/, 'the operation: failed at its step');
  t.equal(machines2.get(MAC)?.state, 'error');
  t.match(machines2.get(MAC)?.stateReason, /deploy interrupted by a daemon restart \(operation deploy-\S+ at step agent-boot\)/);
  const again = await deploy({ ...parts2, operations: ops2, sessions: new AgentSessions(Date.now), inventories: new Inventories(store), clock: Date.now, log, timeoutMs: 400, images }, MAC, { image: 'golden' }, 'test');
  t.equal(again.kind, 'deploy', 'deployable again');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(machines2.get(MAC)?.state, 'deploying');
  await new Promise((r) => setTimeout(r, 1500));
});
