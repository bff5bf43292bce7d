/**
 * Lab VMs behind the lab's Redfish BMC (scripts/lab/lab-redfish), booted end to end: metalbootd
 * in the lab namespace provisions each machine (its iSCSI clone, DHCP, TFTP, iPXE script), then
 * the machine is powered through Redfish only: `metalboot redfish bootdev pxe` + `power on` (the
 * one-shot CLI, in the namespace), its marker on the serial console, BIOS and UEFI. redfishtool
 * powers it off (QEMU gone) and python3-sushy on again (it boots again). No session is left.
 */
import t from 'tap';
import { writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { E2e, e2eUnavailable, sleep, type E2eMachine } from '../helpers/e2e.js';
import { REPO, pidAlive } from '../helpers/lab.js';
import { toolMissing } from '../helpers/tools.js';

const skip = e2eUnavailable(['bios', 'uefi']) || toolMissing('redfishtool', 'sushy', 'openssl');
const CLI = path.join(REPO, 'dist', 'src', 'cli', 'metalboot.js');
const PW = 'rf-lab-Pw1';
const MACHINES: Array<E2eMachine & { profile: string }> = [
  { name: 'rf-bios', mac: '52:54:00:77:20:01', fw: 'bios', bmcPort: 7443, profile: 'dell' },
  { name: 'rf-uefi', mac: '52:54:00:77:20:02', fw: 'uefi', bmcPort: 7444, profile: 'hpe' },
];

t.test('Redfish-powered lab VMs boot their provisioned disks end to end (BIOS and UEFI)', { skip, timeout: 900_000 }, async (t) => {
  const e = await E2e.up(t, { prefix: 'rfl' });
  await e.start();
  await e.uploadGolden();
  const pwFile = e.lab.path('redfish-pw');
  await writeFile(pwFile, `${PW}\n`, { mode: 0o600 });
  t.teardown(() => rm(pwFile, { force: true }));

  for (const m of MACHINES) {
    await e.enrol(m);
    const op = await e.provision(m);
    t.equal(op.status, 'succeeded', `${m.name}: provisioned ${op.error ?? ''}`);
    await e.stamp(m, `id-${m.name}`);
    const started = await e.lab.script('lab-redfish', ['start', m.name, m.mac, m.fw, String(m.bmcPort), m.profile], 60_000, { LAB_BMC_PASS: PW });
    t.match(started.stdout, /redfish rf-/, `${m.name}: lab Redfish BMC (${m.profile}) up`);
    const certFile = e.lab.path(`redfish-${m.name}/cert.pem`);
    const fp = new X509Certificate(readFileSync(certFile)).fingerprint256;
    const rf = (...args: string[]) => e.lab.exec([process.execPath, CLI, 'redfish', '--host', '127.0.0.1', '--port', String(m.bmcPort), '--user', 'admin',
      '--password-file', pwFile, '--cert-sha256', fp, ...args], 60_000, [0, 1, 2]);

    t.match((await rf('power', 'status')).stdout, /Chassis Power is off/, `${m.name}: off`);
    const bd = await rf('bootdev', 'pxe', ...(m.fw === 'uefi' ? ['--efi'] : []));
    t.match(bd.stdout, /the BMC reports pxe/, `${m.name}: next boot PXE once: ${bd.stdout.trim()} ${bd.stderr}`);
    t.match(readFileSync(e.lab.path(`${m.name}.bootdev`), 'utf8'), /^pxe/, `${m.name}: the lab VM's boot device is pxe`);
    await rm(e.lab.path(`${m.name}.serial.log`), { force: true });
    const t0 = Date.now();
    const on = await rf('power', 'on');
    t.equal(on.code, 0, `${m.name}: power on over Redfish (Reset On, 202, task followed) ${on.stderr}`);
    const qemu = await e.lab.qemuPid(m.name);
    t.ok(qemu, `${m.name}: its QEMU runs (pid ${qemu}) when the CLI returns`);
    const hit = await e.waitMarker(m, m.fw === 'bios' ? 60_000 : 120_000);
    t.equal(hit.id, `id-${m.name}`, `${m.name}: booted its own clone over PXE + iSCSI: ${hit.line} (${hit.at - t0} ms after power on)`);
    t.ok(await e.waitState(m, 'active', 20_000), `${m.name}: metalboot saw the machine active`);

    const rt = (args: string[]) => e.lab.exec(['redfishtool', '-r', `127.0.0.1:${m.bmcPort}`, '-u', 'admin', '-p', PW, '-S', 'Always', ...args], 60_000, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const off = await rt(['-A', 'Session', 'Systems', 'reset', 'ForceOff']);
    t.equal(off.code, 0, `${m.name}: redfishtool ForceOff ${off.stderr}`);
    for (let i = 0; i < 100 && qemu && pidAlive(qemu); i++) await sleep(100);
    t.notOk(qemu && pidAlive(qemu), `${m.name}: QEMU gone after redfishtool's ForceOff`);
    t.match((await rf('power', 'status')).stdout, /Chassis Power is off/, `${m.name}: metalboot reads off`);

    await rm(e.lab.path(`${m.name}.serial.log`), { force: true });
    const py = `import sushy
s = sushy.Sushy('https://127.0.0.1:${m.bmcPort}/redfish/v1', username='admin', password='${PW}', verify='${certFile}')
s.get_system().reset_system(sushy.RESET_ON)`;
    const sushy = await e.lab.exec(['env', '-u', 'REQUESTS_CA_BUNDLE', '-u', 'CURL_CA_BUNDLE', '/usr/bin/python3', '-c', py], 60_000, [0, 1]);
    t.equal(sushy.code, 0, `${m.name}: sushy Reset On ${sushy.stderr.slice(-300)}`);
    const again = await e.waitMarker(m, m.fw === 'bios' ? 60_000 : 120_000);
    t.equal(again.id, `id-${m.name}`, `${m.name}: boots again after sushy's power on: ${again.line}`);
    t.equal((await rf('power', 'off')).code, 0, `${m.name}: metalboot redfish power off`);

    const sessions = await e.lab.exec(['curl', '-sS', '--cacert', certFile, '-u', `admin:${PW}`, `https://127.0.0.1:${m.bmcPort}/redfish/v1/SessionService/Sessions`]);
    const ids = (JSON.parse(sessions.stdout) as { Members: unknown[] }).Members.length;
    // redfishtool -A Session and sushy end without deleting their sessions; metalboot's one-shot calls left none.
    t.ok(ids <= 2, `sessions left on the BMC: ${ids} (redfishtool's and sushy's, none of metalboot's)`);
  }
});
