/**
 * Inspect end to end with the real agent ramdisk (scripts/agent-ramdisk.sh) in a lab VM: metalbootd
 * in the lab namespace, a BIOS VM behind its ipmi_sim BMC with two local disks (virtio and SATA,
 * each with a serial; the SATA one with a WWN), SMBIOS strings, 768 MiB and 2 CPUs, and LLDP
 * frames sent on the lab bridge once a second. POST .../inspect powers it on to PXE through the
 * BMC; iPXE gets the agent script and boots the ramdisk over HTTP; the agent posts the inventory
 * and powers the machine off. Checked against what QEMU was given: every inventory field, the
 * operation's steps, the machine back in `enrolled`, QEMU gone. The one-time token (read off the
 * wire with tcpdump, as an attacker on the boot network could) is refused after its operation and
 * for another MAC, and appears in no daemon log line and not on the serial console.
 * Then deploy: the lab's golden disk onto the virtio disk (chosen by its serial): the agent writes
 * and reads it back, metalboot sets boot device disk and powers on, and the VM boots its local disk
 * (the golden marker on the serial console; no iSCSI disk exists for it); the disk file on the host
 * holds the image's bytes. Then capture of that disk into a new image (its sha256 is the disk
 * file's), and erase (zero) of it: the file reads back all zeros.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { runCommand } from '../../src/exec/run.js';
import { E2e, HTTP, e2eUnavailable, sleep, type E2eMachine } from '../helpers/e2e.js';
import { LAB_BRIDGE, REPO, labUuid } from '../helpers/lab.js';
import { toolMissing } from '../helpers/tools.js';

const AGENT = path.join(REPO, 'agent-assets', 'x86_64');
const skip = e2eUnavailable(['bios']) || toolMissing('tcpdump')
  || (!existsSync(path.join(AGENT, 'initrd.img')) ? 'agent-assets/x86_64 missing (scripts/agent-ramdisk.sh)' : false);
const M: E2eMachine = { name: 'agent-bios', mac: '52:54:00:77:20:01', fw: 'bios', bmcPort: 7633 };
const MEM_MIB = 768;
const DISKS = { virtio: { serial: 'MBVIRTIO01', mib: 96 }, sata: { serial: 'MBSATA0002', mib: 48, wwn: '0x5000c500a1b2c3d4' } };
const LLDP = { chassis: '02:00:5e:10:20:30', port: 'swp7', system: 'lab-switch-1' };

t.test('inspect: the agent ramdisk boots over iPXE HTTP and reports what QEMU was given', { skip, timeout: 900_000 }, async (t) => {
  // The agent files of the checkout; a short LLDP wait (frames come every second) keeps it quick.
  const e = await E2e.up(t, { prefix: 'agin', extraYaml: `machines: { agentDir: ${path.join(REPO, 'agent-assets')}, agentLldpSec: 6, agentTimeoutSec: 300 }\n` });
  const daemon = await e.start();

  const vd = path.join(e.dir, 'virtio.img');
  const sd = path.join(e.dir, 'sata.img');
  await runCommand(['truncate', '-s', `${DISKS.virtio.mib}M`, vd], { timeoutMs: 5000 });
  await runCommand(['truncate', '-s', `${DISKS.sata.mib}M`, sd], { timeoutMs: 5000 });
  const qemuExtra = [
    '-smp', '2', '-smbios', 'type=1,manufacturer=MetalLab,product=InspectBox-9',
    // bootindex=2: SeaBIOS makes it drive 0x80, which the local-disk script boots after a deploy.
    '-drive', `file=${vd},format=raw,if=none,id=dv`, '-device', `virtio-blk-pci,drive=dv,serial=${DISKS.virtio.serial},bootindex=2`,
    '-device', 'ahci,id=ahci0', '-drive', `file=${sd},format=raw,if=none,id=ds`,
    '-device', `ide-hd,drive=ds,bus=ahci0.0,serial=${DISKS.sata.serial},wwn=${DISKS.sata.wwn},rotation_rate=1`,
  ].join(' ');
  await e.enrol(M);
  await e.attachBmc(M, { LAB_MEM: String(MEM_MIB), LAB_QEMU_EXTRA: qemuExtra });

  // Switch-side LLDP on the bridge, and a capture of the HTTP traffic (the script carries the token).
  e.lab.spawn(['python3', path.join(REPO, 'test/fixtures/lldp-send.py'), LAB_BRIDGE, LLDP.chassis, LLDP.port, LLDP.system, '600'], 700);
  // Only the first segment of each HTTP response (it starts "HTTP"): the scripts, not the ramdisk's megabytes.
  const cap = e.lab.spawn(['tcpdump', '-i', LAB_BRIDGE, '-l', '-A', '-s', '0', '-nn', 'tcp src port 8080 and tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x48545450'], 700);
  let wire = '';
  cap.stdout!.setEncoding('latin1');
  cap.stdout!.on('data', (s: string) => { wire = (wire + s).slice(-4_000_000); });
  await sleep(1000);

  const r = await e.api('POST', `/api/v1/machines/${M.mac}/inspect`);
  t.equal(r.status, 202, `inspect accepted: ${r.body}`);
  const id = r.json().operation.id as string;
  t.equal((await e.machine(M)).state, 'inspecting', 'machine inspecting');
  const second = await e.api('POST', `/api/v1/machines/${M.mac}/inspect`);
  t.equal(second.status, 409, `a second inspect while one runs: 409 (${second.body})`);

  // The token on the wire (the agent script), used for another MAC while the operation runs.
  const agentCall = async (mac: string, token: string) => (await e.lab.exec(['curl', '-sS', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}',
    '-H', `Authorization: Bearer ${token}`, `${HTTP}/agent/v1/${mac}/task`])).stdout;
  let tok: string | undefined;
  for (let i = 0; i < 240 && !(tok = /mb\.token=([A-Za-z0-9_-]+)/.exec(wire)?.[1]); i++) await sleep(500);
  t.ok(tok && tok.length >= 40, 'the agent script carried a token (captured on the boot network)');
  if (tok) t.equal(await agentCall('52:54:00:77:20:99', tok), '401', 'the running operation\'s token for another MAC: refused');

  const op = await e.waitOperation(id, 420_000);
  const serial = await e.lab.serial(M.name);
  t.equal(op.status, 'succeeded', `operation succeeded ${op.error ?? ''}${op.status !== 'succeeded' ? `\n${serial.split('\n').slice(-40).join('\n')}` : ''}`);
  const steps = op.steps.map((s) => s.step);
  t.same(steps.filter((s) => ['bootdev', 'power', 'agent-boot', 'agent-booted', 'inventory'].includes(s)), ['bootdev', 'power', 'agent-boot', 'agent-booted', 'inventory'], `steps in order: ${steps.join(' → ')}`);
  t.match(serial, /metalboot-agent: task: inspect/, 'the agent ran (serial console)');
  t.ok(await e.waitState(M, 'enrolled', 10_000), 'machine back to enrolled');

  const inv = (await e.api('GET', `/api/v1/machines/${M.mac}/inventory`)).json();
  t.equal(inv.firmware, 'bios', 'firmware');
  t.same(inv.system, { manufacturer: 'MetalLab', product: 'InspectBox-9', serial: M.name, uuid: labUuid(M.mac) }, 'SMBIOS system strings and UUID');
  t.equal(inv.cpu.arch, 'x86_64', 'cpu arch');
  t.equal(inv.cpu.threads, 2, 'cpu threads (-smp 2)');
  t.equal(inv.cpu.cores, 2, 'cpu cores (-smp 2: two sockets of one core)');
  t.equal(inv.memoryBytes, MEM_MIB * 1024 * 1024, 'memory (-m 768)');
  const vdisk = inv.disks.find((x: any) => x.serial === DISKS.virtio.serial);
  const sdisk = inv.disks.find((x: any) => x.serial === DISKS.sata.serial);
  t.match(vdisk, { name: 'vda', sizeBytes: DISKS.virtio.mib << 20 }, `virtio disk: ${JSON.stringify(vdisk)}`);
  t.match(sdisk, { name: 'sda', sizeBytes: DISKS.sata.mib << 20, model: 'QEMU HARDDISK', wwn: DISKS.sata.wwn, rotational: false }, `SATA disk: ${JSON.stringify(sdisk)}`);
  t.equal(inv.disks.length, 2, 'two disks');
  t.equal(inv.nics.length, 1, 'one NIC');
  t.match(inv.nics[0], { mac: M.mac, name: 'eth0', driver: 'virtio_net', link: true }, `NIC: ${JSON.stringify(inv.nics[0])}`);
  t.same(inv.nics[0].lldp, { chassisId: LLDP.chassis, portId: LLDP.port, systemName: LLDP.system }, 'LLDP from the bridge');
  t.ok(Date.now() - inv.collectedAt < 600_000, 'collectedAt is recent');
  for (let i = 0; i < 60 && await e.lab.qemuPid(M.name) !== undefined; i++) await sleep(500);
  t.equal(await e.lab.qemuPid(M.name), undefined, 'the agent powered the machine off');

  // The token after its operation, and a guess.
  if (tok) {
    t.equal(await agentCall(M.mac, tok), '401', 'the token replayed after its operation: refused');
    t.equal(await agentCall(M.mac, 'A'.repeat(43)), '401', 'a guessed token: refused');
    const leaked = daemon.logs().filter((l) => JSON.stringify(l).includes(tok));
    t.same(leaked, [], 'no daemon log line carries the token');
    t.notOk(serial.includes(tok), 'the serial console does not show the token');
    const refused = e.events('agent.refused');
    t.same(refused.map((l) => l.reason), ['other-machine', 'unknown-token', 'unknown-token'], 'each refusal logged with its reason');
  }
  const again = await e.api('GET', `/api/v1/operations?mac=${M.mac}`);
  t.equal(again.json().operations.filter((o: any) => o.kind === 'inspect').length, 1, 'one inspect operation listed for the machine');

  // Deploy the golden disk onto the virtio disk; the machine then boots it.
  const golden = await readFile(await e.uploadGolden());
  const goldenSum = createHash('sha256').update(golden).digest('hex');
  const tooBig = await e.api('POST', `/api/v1/machines/${M.mac}/deploy`, { image: 'golden', disk: 'nvme0n1' });
  t.equal(tooBig.status, 400, `a disk it does not have: refused before power-on (${tooBig.body})`);
  const dep = await e.api('POST', `/api/v1/machines/${M.mac}/deploy`, { image: 'golden', disk: DISKS.virtio.serial });
  t.equal(dep.status, 202, `deploy accepted: ${dep.body}`);
  const depOp = await e.waitOperation(dep.json().operation.id, 420_000);
  const serial2 = await e.lab.serial(M.name);
  t.equal(depOp.status, 'succeeded', `deploy succeeded ${depOp.error ?? ''}${depOp.status !== 'succeeded' ? `\n${serial2.split('\n').slice(-40).join('\n')}` : ''}`);
  t.same(depOp.steps.map((s) => s.step).filter((s) => ['discard', 'write', 'flush', 'verify', 'bootdev-disk', 'power-on-disk'].includes(s)),
    ['discard', 'write', 'flush', 'verify', 'bootdev-disk', 'power-on-disk'], `deploy steps: ${depOp.steps.map((s) => s.step).join(' → ')}`);
  t.match(depOp.result, { image: 'golden', disk: 'vda', bytes: golden.length, sha256: goldenSum }, 'the agent read the disk back: the image\'s sha256');
  t.equal((await e.machine(M)).state, 'deployed', 'state deployed');
  const hit = await e.waitMarker(M, 240_000);
  t.equal(hit.id, 'golden', `the machine booted its local disk: ${hit.line}`);
  t.ok(e.events('http.boot-script', M.mac).some((l) => l.action === 'local'), 'its PXE boot got the local-disk script');
  t.equal((await e.api('GET', `/api/v1/disks/${M.mac}`)).status, 404, 'no iSCSI disk exists for it');
  const onDisk = await readFile(vd);
  t.equal(createHash('sha256').update(onDisk.subarray(0, golden.length)).digest('hex'), goldenSum, 'the disk file on the host holds the image\'s bytes');

  // Capture that disk back into a new image: its sha256 is the disk file's.
  const diskSum = createHash('sha256').update(await readFile(vd)).digest('hex');
  const capt = await e.api('POST', `/api/v1/machines/${M.mac}/capture`, { image: 'captured', disk: 'vda' });
  t.equal(capt.status, 202, `capture accepted: ${capt.body}`);
  const capOp = await e.waitOperation(capt.json().operation.id, 420_000);
  t.equal(capOp.status, 'succeeded', `capture succeeded ${capOp.error ?? ''}`);
  const img = (await e.api('GET', '/api/v1/images/captured')).json();
  t.equal(img.sha256, diskSum, 'the captured image\'s sha256 is the disk\'s');
  t.equal(img.sizeBytes, DISKS.virtio.mib << 20, 'the whole disk');
  t.equal((await e.machine(M)).state, 'deployed', 'back to deployed after the capture');

  // Erase (zero) that disk: it reads back zeros.
  const er = await e.api('POST', `/api/v1/machines/${M.mac}/erase`, { method: 'zero', disks: ['vda'] });
  t.equal(er.status, 202, `erase accepted: ${er.body}`);
  const erOp = await e.waitOperation(er.json().operation.id, 420_000);
  t.equal(erOp.status, 'succeeded', `erase succeeded ${erOp.error ?? ''}`);
  t.same(erOp.result, { disks: [{ name: 'vda', sizeBytes: DISKS.virtio.mib << 20, result: 'zeroed' }] }, 'what the disk got');
  t.equal((await e.machine(M)).state, 'enrolled', 'state enrolled after erase');
  const zeroed = await readFile(vd);
  t.ok(zeroed.every((b) => b === 0), 'the virtio disk file reads back all zeros');
  t.ok((await readFile(sd)).length === DISKS.sata.mib << 20, 'the SATA disk was not listed and is untouched in size');
});
