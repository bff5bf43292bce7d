/**
 * Smoke test of the virtual lab (scripts/lab/): a lab namespace, a golden
 * boot disk and a stamped clone of it, exported by a private tgtd (LUN 1, bound
 * to the VM's iPXE initiator name), a stand-in boot server (dnsmasq: DHCP +
 * TFTP + per-VM iPXE scripts; the real daemon replaces it in the e2e tests),
 * and a VM switched on and off through its ipmi_sim BMC with ipmitool. The
 * clone's id on the serial console proves the VM booted that very disk over
 * iSCSI. BIOS first, then UEFI (OVMF PXE -> snponly.efi -> iPXE -> sanboot ->
 * the disk's ESP app), one VM at a time.
 */
import t, { type Test } from 'tap';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { runCommand } from '../../src/exec/run.js';
import { LAB_BRIDGE, LAB_V4, Lab, ipxeInitiatorIqn, labUnavailable, pidAlive, type Firmware } from '../helpers/lab.js';
import { LineCollector } from '../helpers/netns.js';
import { freeControlPort, removeControlSocket } from '../helpers/tgtd.js';

const skip = labUnavailable('bios')
  || (['/usr/sbin/tgtd', '/usr/sbin/tgtadm', '/usr/sbin/dnsmasq'].find((f) => !existsSync(f)) ?? false);
const skipUefi = skip || labUnavailable('uefi') || (existsSync('/usr/lib/ipxe/snponly.efi') ? false : 'ipxe missing (/usr/lib/ipxe/snponly.efi)');

const MARKER = 'lab-smoke';
const IQN_PREFIX = 'iqn.2026-01.lab.metalboot';
/** The firmware or iPXE stopped trying: no point waiting for the marker. */
const GAVE_UP = /No more network devices|Nothing to boot|Could not open SAN device|Could not boot|METALBOOT-DISK-ERR|No bootable device/;

interface Machine { readonly name: string; readonly mac: string; readonly fw: Firmware; readonly tid: number; readonly bmcPort: number }
const MACHINES: Record<Firmware, Machine> = {
  bios: { name: 'smoke-bios', mac: '52:54:00:77:00:01', fw: 'bios', tid: 1, bmcPort: 623 },
  uefi: { name: 'smoke-uefi', mac: '52:54:00:77:00:02', fw: 'uefi', tid: 2, bmcPort: 624 },
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('virtual lab: IPMI power-on network-boots a stamped clone over iSCSI', { skip, timeout: 420_000 }, async (t) => {
  let lab: Lab | undefined;
  let tgtPort: number | undefined;
  const tgtadm = (args: readonly string[], okCodes: readonly number[] = [0]) =>
    runCommand(['tgtadm', '-C', String(tgtPort), '--lld', 'iscsi', ...args], { timeoutMs: 10_000, okCodes });
  const stopTgtd = async (): Promise<void> => {
    if (tgtPort === undefined) return;
    // tgtd ignores SIGTERM: offline, drop the targets, then ask it to exit.
    await tgtadm(['--op', 'update', '--mode', 'sys', '--name', 'State', '-v', 'offline'], [0, 1, 22, 107]).catch(() => undefined);
    for (const m of Object.values(MACHINES)) await tgtadm(['--op', 'delete', '--mode', 'target', '--tid', String(m.tid), '--force'], [0, 1, 22, 107]).catch(() => undefined);
    await runCommand(['tgtadm', '-C', String(tgtPort), '--op', 'delete', '--mode', 'system'], { timeoutMs: 5000, okCodes: [0, 1, 22, 107] }).catch(() => undefined);
  };
  t.teardown(async () => {
    await stopTgtd();
    await lab?.destroy();             // also SIGKILLs a tgtd that did not exit
    if (tgtPort !== undefined) await removeControlSocket(tgtPort);
  });

  const t0 = Date.now();
  lab = await Lab.up('mblab-smoke');
  const L = lab;
  t.ok(L.exists(), `lab namespace ${L.ns} is up`);
  const routes = await L.exec(['ip', '-4', 'route']);
  t.notMatch(routes.stdout, /default/, 'the lab has no route out');

  // Golden disk, and one stamped clone per machine.
  const golden = L.path('golden.img');
  await L.makeBootDisk(golden, MARKER);
  const ids: Record<Firmware, string> = {
    bios: `clone-bios-${process.pid.toString(36)}`,
    uefi: `clone-uefi-${process.pid.toString(36)}`,
  };
  for (const fw of ['bios', 'uefi'] as const) {
    await copyFile(golden, L.path(`${fw}.img`));
    await L.stampDisk(L.path(`${fw}.img`), ids[fw]);
  }

  // Private tgtd in the lab: one target per machine, LUN 1 (LUN 0 is tgtd's controller), ACL = that VM's initiator name.
  tgtPort = freeControlPort();
  const tgtd = L.spawn(['tgtd', '-f', '-C', String(tgtPort), '--iscsi', `portal=${LAB_V4}:3260`], 400);
  tgtd.stdout?.resume();
  tgtd.stderr?.resume();
  for (let i = 0; ; i++) {
    if (await tgtadm(['--op', 'show', '--mode', 'sys'], [0]).then(() => true, () => false)) break;
    if (i > 50 || tgtd.exitCode !== null) throw new Error('private tgtd did not start');
    await sleep(100);
  }
  for (const m of Object.values(MACHINES)) {
    const tid = String(m.tid);
    await tgtadm(['--op', 'new', '--mode', 'target', '--tid', tid, '-T', `${IQN_PREFIX}:${m.name}`]);
    await tgtadm(['--op', 'new', '--mode', 'logicalunit', '--tid', tid, '--lun', '1', '--backing-store', L.path(`${m.fw}.img`)]);
    await tgtadm(['--op', 'bind', '--mode', 'target', '--tid', tid, '--initiator-name', ipxeInitiatorIqn(m.mac)]);
  }

  // Stand-in boot server: dnsmasq DHCP + TFTP (iPXE binaries and per-VM iPXE scripts).
  const tftp = L.path('tftp');
  await mkdir(tftp);
  await copyFile('/usr/lib/ipxe/snponly.efi', `${tftp}/snponly.efi`).catch(() => undefined);
  const hostArgs: string[] = [];
  for (const m of Object.values(MACHINES)) {
    await writeFile(`${tftp}/${m.name}.ipxe`, `#!ipxe
echo SMOKE-IPXE-SCRIPT mac=\${mac} ip=\${ip} uuid=\${uuid} platform=\${platform}
sanboot iscsi:${LAB_V4}:::1:${IQN_PREFIX}:${m.name}
`);
    hostArgs.push(`--dhcp-host=${m.mac},set:${m.name}`, `--dhcp-boot=tag:ipxe,tag:${m.name},${m.name}.ipxe,,${LAB_V4}`);
  }
  const dnsmasq = L.spawn(['dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--user=root', '--group=root',
    '--pid-file=', '--log-facility=-', '--log-dhcp', `--interface=${LAB_BRIDGE}`, '--bind-interfaces',
    // --no-ping: dnsmasq otherwise pings every address it is about to offer a new client and waits ~3 s (measured).
    '--dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,10m', '--no-ping', '--dhcp-authoritative', `--dhcp-leasefile=${L.path('leases')}`,
    '--enable-tftp', `--tftp-root=${tftp}`,
    '--dhcp-userclass=set:ipxe,iPXE',
    '--dhcp-match=set:efi64,option:client-arch,7', '--dhcp-match=set:efi64,option:client-arch,9',
    ...hostArgs,
    // iPXE option 175.176 = 1: do not wait ~3 s for ProxyDHCP offers.
    '--dhcp-option=tag:ipxe,encap:175,176,1b',
    `--dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi,,${LAB_V4}`,
  ], 400);
  const dlog = new LineCollector(dnsmasq.stderr);
  dnsmasq.stdout?.resume();
  await dlog.waitFor((l) => /started, version/.test(l), 10_000, 'dnsmasq start');
  t.comment(`lab, disks, tgtd and dnsmasq ready in ${Date.now() - t0} ms`);

  // One VM at a time (TCG on 2 CPUs): whatever happens, this machine is off and its BMC gone when boot() returns.
  const boot = async (t: Test, m: Machine, markerTimeoutMs: number): Promise<void> => {
    try {
      await bootAndPowerOff(t, m, markerTimeoutMs);
    } finally {
      await L.script('lab-bmc', ['stop', m.name]).catch(() => undefined);
    }
  };
  const bootAndPowerOff = async (t: Test, m: Machine, markerTimeoutMs: number): Promise<void> => {
    const bmc = await L.startBmc(m.name, m.mac, m.fw, m.bmcPort);
    t.match((await L.ipmitool(bmc, ['chassis', 'power', 'status'])).stdout, /Chassis Power is off/, 'BMC: power is off');
    t.match((await L.ipmitool(bmc, ['chassis', 'bootdev', 'pxe'])).stdout, /Set Boot Device to pxe/, 'BMC: bootdev pxe');

    const on0 = Date.now();
    t.match((await L.ipmitool(bmc, ['chassis', 'power', 'on'])).stdout, /Up\/On/, 'BMC: power on');
    const re = new RegExp(`METALBOOT-DISK-OK ${MARKER} (\\S+) ${m.fw === 'bios' ? 'bios' : 'efi'}`);
    const hit = await L.waitSerial(m.name, re, markerTimeoutMs, GAVE_UP);
    const ms = Date.now() - on0;
    t.equal(hit[1], ids[m.fw], `the VM booted its own stamped clone (${hit[0]})`);
    t.comment(`${m.fw}: IPMI power on -> marker on serial: ${ms} ms`);
    const serial = await L.serial(m.name);
    t.match(serial, new RegExp(`SMOKE-IPXE-SCRIPT mac=${m.mac}`), 'the iPXE script ran');

    const shown = (await tgtadm(['--op', 'show', '--mode', 'target'])).stdout;
    t.ok(shown.includes(`Initiator: ${ipxeInitiatorIqn(m.mac)}`), 'tgtd saw the VM log in with its own UUID-based initiator name');
    t.match((await L.ipmitool(bmc, ['chassis', 'power', 'status'])).stdout, /Chassis Power is on/, 'BMC: power is on');

    const qemu = await L.qemuPid(m.name);
    t.ok(qemu, 'QEMU is running');
    const off0 = Date.now();
    t.match((await L.ipmitool(bmc, ['chassis', 'power', 'off'])).stdout, /Down\/Off/, 'BMC: power off');
    while (qemu !== undefined && pidAlive(qemu) && Date.now() - off0 < 10_000) await sleep(50);
    t.notOk(qemu !== undefined && pidAlive(qemu), `QEMU is gone ${Date.now() - off0} ms after power off`);
    t.match((await L.ipmitool(bmc, ['chassis', 'power', 'status'])).stdout, /Chassis Power is off/, 'BMC: power is off again');
    const hooks = await L.hookLog(m.name);
    t.match(hooks, /set boot pxe[\s\S]*set power 1[\s\S]*set power 0/, 'the BMC hook saw bootdev, power on, power off');
  };

  await t.test('BIOS: SeaBIOS + iPXE ROM -> DHCP -> TFTP script -> sanboot LUN 1 -> MBR marker', async (t) => {
    await boot(t, MACHINES.bios, 60_000);
  });

  await t.test('UEFI: OVMF PXE -> snponly.efi -> iPXE -> sanboot LUN 1 -> ESP app marker', { skip: skipUefi }, async (t) => {
    await boot(t, MACHINES.uefi, 120_000);
  });

  await t.test('teardown leaves nothing behind', async (t) => {
    const tgtdPid = tgtd.pid;
    await stopTgtd();
    await L.destroy();
    t.notOk(L.exists(), 'lab namespace deleted');
    t.notOk(existsSync(L.run), 'run directory removed');
    t.ok(tgtd.exitCode !== null || tgtd.signalCode !== null || (tgtdPid !== undefined && !pidAlive(tgtdPid)), 'tgtd ended');
    t.ok(dnsmasq.exitCode !== null || dnsmasq.signalCode !== null, 'dnsmasq ended');
  });
});
