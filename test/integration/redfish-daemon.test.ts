/**
 * The daemon powers a lab VM through its Redfish BMC (scripts/lab/lab-redfish): the machine is
 * enrolled through the API with `power: {driver: 'redfish', …}` and no pin, provisioned (bootdev
 * PXE + power on over Redfish, the BMC's certificate pinned on that first use and stored in the
 * machine's record), powered off and on again with POST …/power, and each time it reaches its
 * disk's marker. Then the BMC comes back with another certificate: every command is refused with
 * an error naming both fingerprints, nothing is powered, until the admin accepts the new one with
 * POST …/power/certificate; then it boots again. The password never appears in an API answer.
 */
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { E2e, GOLDEN_ID, e2eUnavailable, type E2eMachine } from '../helpers/e2e.js';
import { toolMissing } from '../helpers/tools.js';

const skip = e2eUnavailable(['bios']) || toolMissing('openssl');
const PW = 'rf-daemon-Pw1';
const m: E2eMachine = { name: 'rfd-bios', mac: '52:54:00:77:21:01', fw: 'bios', bmcPort: 7451 };

t.test('metalbootd powers a lab VM through its Redfish BMC: pinned on first use, a changed certificate refused until accepted', { skip, timeout: 900_000 }, async (t) => {
  const e = await E2e.up(t, { prefix: 'rfd' });
  await e.start();
  await e.uploadGolden();
  const bmc = (...args: string[]) => e.lab.script('lab-redfish', args, 60_000, { LAB_BMC_PASS: PW });
  t.match((await bmc('start', m.name, m.mac, m.fw, String(m.bmcPort), 'dell')).stdout, /redfish rfd-bios/, 'lab Redfish BMC (dell profile) up');
  t.teardown(async () => { await bmc('stop', m.name).catch(() => undefined); });
  const certDir = e.lab.path(`redfish-${m.name}`);
  const fingerprint = () => new X509Certificate(readFileSync(`${certDir}/cert.pem`)).fingerprint256;
  const first = fingerprint();
  const noPassword = (body: string, what: string) => t.notOk(body.includes(PW), `${what}: no password in the answer`);

  const power = { driver: 'redfish', host: '127.0.0.1', port: m.bmcPort, user: 'admin', password: PW };
  const enrolled = await e.enrol(m, { power });
  t.same(enrolled.json().power, { driver: 'redfish', host: '127.0.0.1', port: m.bmcPort, user: 'admin', passwordSet: true, certSha256: null }, 'enrolled: nothing pinned yet');
  noPassword(enrolled.body, 'PUT machine');

  // Provision: disk, target, then bootdev PXE and power on through Redfish (the first use: the pin).
  const op = await e.provision(m);
  t.equal(op.status, 'succeeded', `provisioned ${op.error ?? ''}`);
  t.ok(op.steps.some((s) => s.step === 'power'), `the provision powered the machine (${op.steps.map((s) => s.step).join(', ')})`);
  const hit = await e.waitMarker(m, 90_000);
  t.equal(hit.id, GOLDEN_ID, `booted its provisioned disk after the provision's power on: ${hit.line}`);
  const view = await e.api('GET', `/api/v1/machines/${m.mac}`);
  t.equal(view.json().power.certSha256, first, 'the BMC\'s certificate is pinned in the machine\'s record, shown');
  noPassword(view.body, 'GET machine');
  t.equal(e.events('machines.power-learned', m.mac).length, 1, 'pinned once (logged as machines.power-learned)');

  // Off and on again with POST …/power: the VM reaches its marker.
  await e.powerOff(m);
  t.same((await e.api('GET', `/api/v1/machines/${m.mac}/power`)).json(), { power: 'off' }, 'off through Redfish');
  const bd = await e.api('POST', `/api/v1/machines/${m.mac}/bootdev`, { device: 'pxe' });
  t.equal(bd.status, 200, bd.body);
  t.match(bd.json(), { device: 'pxe', persistent: false }, 'next boot PXE once, as the BMC reads it back');
  const t0 = await e.power(m, 'on');
  const again = await e.waitMarker(m, 90_000);
  t.equal(again.id, GOLDEN_ID, `POST …/power {action: on} → its marker: ${again.line} (${again.at - t0} ms)`);

  // The BMC comes back with another certificate.
  await bmc('stop', m.name);
  await rm(`${certDir}/cert.pem`, { force: true });
  await rm(`${certDir}/key.pem`, { force: true });
  await bmc('start', m.name, m.mac, m.fw, String(m.bmcPort), 'dell');
  const second = fingerprint();
  t.not(second, first, 'the BMC presents a new certificate');
  const refused = await e.api('GET', `/api/v1/machines/${m.mac}/power`);
  t.equal(refused.status, 502, 'refused (the BMC is the gateway)');
  t.match(refused.json().error, `its certificate (SHA-256 ${second}) is not the pinned one (${first}); refused until an admin accepts the new certificate`);
  t.match(refused.json().error, /^redfish BMC 127\.0\.0\.1:7451: /, 'names the driver and the BMC');
  await rm(e.lab.path(`${m.name}.serial.log`), { force: true });
  const on = await e.api('POST', `/api/v1/machines/${m.mac}/power`, { action: 'on' });
  t.equal(on.status, 502, 'power on refused too');
  t.equal(await e.lab.qemuPid(m.name), undefined, 'nothing was powered on');
  t.equal((await e.api('GET', `/api/v1/machines/${m.mac}`)).json().power.certSha256, first, 'the pin is unchanged by a refusal');

  const accepted = await e.api('POST', `/api/v1/machines/${m.mac}/power/certificate`, { sha256: second });
  t.equal(accepted.status, 200, accepted.body);
  t.equal(accepted.json().power.certSha256, second, 'the new certificate accepted through the API');
  noPassword(accepted.body, 'POST …/power/certificate');
  t.same((await e.api('GET', `/api/v1/machines/${m.mac}/power`)).json(), { power: 'off' }, 'trusted now');
  t.equal((await e.api('POST', `/api/v1/machines/${m.mac}/bootdev`, { device: 'pxe' })).status, 200);
  const t1 = await e.power(m, 'on');
  const third = await e.waitMarker(m, 90_000);
  t.equal(third.id, GOLDEN_ID, `boots again after the certificate was accepted: ${third.line} (${third.at - t1} ms)`);
  await e.powerOff(m);

  const sessions = await e.lab.exec(['curl', '-sS', '--cacert', `${certDir}/cert.pem`, '-u', `admin:${PW}`, `https://127.0.0.1:${m.bmcPort}/redfish/v1/SessionService/Sessions`]);
  const held = (JSON.parse(sessions.stdout) as { Members: unknown[] }).Members.length;
  t.ok(held <= 1, `sessions of ours on the BMC: ${held} (the daemon's one, reused)`);
});
