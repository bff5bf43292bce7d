/**
 * End to end, metalboot in the lab's boot-server seat (the smoke test's dnsmasq stand-in gone):
 * metalbootd in a lab namespace serves DHCP (server mode) and TFTP on labbr, iPXE scripts over
 * HTTP, and the machines' iSCSI disks through the tgtd it manages; it powers the VMs through
 * their ipmi_sim BMCs. Two machines, one BIOS (SeaBIOS + iPXE ROM) and one UEFI (OVMF PXE →
 * TFTP snponly.efi → iPXE), each provisioned from the lab's golden disk and given its own id:
 *  - both boot their own clone (their own id on the serial console), and the daemon's log shows
 *    the chain: dhcp.ack, tftp.transfer (UEFI), http.boot-script (sanboot), state `active`;
 *  - a changed disk is pristine again after POST .../reset (the golden id boots);
 *  - each booted machine's timeline, from the API and as the status page draws it in Chromium
 *    (screenshots in test-artifacts/): BIOS dhcp → script → iscsi → active, UEFI with tftp;
 *  - machine B's initiator name and CHAP do not open machine A's target.
 */
import t from 'tap';
import path from 'node:path';
import { runCommand } from '../../src/exec/run.js';
import { ARTIFACTS, chromiumUnavailable, drawnBoxes, drawnSteps, launchChromiumInNs } from '../helpers/browser.js';
import { apiToken } from '../helpers/dhcp-tools.js';
import { LAB_V4 } from '../helpers/lab.js';
import { E2e, GOLDEN_ID, HTTP, e2eUnavailable, macHex, sleep, type E2eMachine } from '../helpers/e2e.js';

const skip = e2eUnavailable(['bios', 'uefi']);
const A: E2eMachine = { name: 'e2e-bios', mac: '52:54:00:77:10:01', fw: 'bios', bmcPort: 7623 };
const B: E2eMachine = { name: 'e2e-uefi', mac: '52:54:00:77:10:02', fw: 'uefi', bmcPort: 7624 };
const ids = { [A.mac]: `id-bios-${process.pid.toString(36)}`, [B.mac]: `id-uefi-${process.pid.toString(36)}` };

t.test('e2e: metalboot boots a BIOS and a UEFI machine from their own iSCSI clones; reset; disks locked to their machine', { skip, timeout: 900_000 }, async (t) => {
  const e = await E2e.up(t, { prefix: 'e2eb' });
  const d = await e.start();
  t.match(d.events('storage.ready')[0], { backend: 'file' }, 'file storage');
  await e.uploadGolden();

  // Enrol and provision both with no BMC yet: nothing powers on.
  for (const m of [A, B]) {
    await e.enrol(m);
    const op = await e.provision(m);
    t.equal(op.status, 'succeeded', `${m.name}: provision operation ${op.error ?? ''}`);
    t.same(op.steps.map((s) => s.step), ['queued', 'disk', 'boot-mode'], `${m.name}: no BMC, so no bootdev or power step`);
    t.equal((await e.machine(m)).state, 'ready', `${m.name}: ready`);
    await e.stamp(m, ids[m.mac]!);
    t.equal(await e.diskId(e.diskFile(m)), ids[m.mac], `${m.name}: its clone carries its own id`);
  }

  // BMCs, then power on both through metalboot.
  for (const m of [A, B]) await e.attachBmc(m);
  for (const m of [A, B]) t.same((await e.api('GET', `/api/v1/machines/${m.mac}/power`)).json(), { power: 'off' }, `${m.name}: off`);
  const on: Record<string, number> = {};
  for (const m of [A, B]) on[m.mac] = await e.power(m, 'on');
  const [hitA, hitB] = await Promise.all([e.waitMarker(A, 60_000), e.waitMarker(B, 120_000)]);
  t.equal(hitA.id, ids[A.mac], `BIOS machine booted its own clone: ${hitA.line}`);
  t.equal(hitB.id, ids[B.mac], `UEFI machine booted its own clone: ${hitB.line}`);
  t.comment(`power-on (POST) -> marker: bios ${hitA.at - on[A.mac]!} ms, uefi ${hitB.at - on[B.mac]!} ms`);

  // The chain, from the daemon's log.
  const leased: Record<string, string> = {};
  for (const m of [A, B]) {
    const acks = e.events('dhcp.ack', m.mac);
    t.ok(acks.length >= 1, `${m.name}: dhcp.ack (${acks.length})`);
    leased[m.mac] = String(acks[acks.length - 1]?.ip);
    t.match(leased[m.mac], /^10\.77\.0\.1\d\d$/, `${m.name}: leased ${leased[m.mac]} from the pool`);
    const scripts = e.events('http.boot-script', m.mac);
    t.ok(scripts.some((l) => l.action === 'sanboot' && l.from === leased[m.mac]), `${m.name}: sanboot script served to its leased address`);
    t.equal(e.events('http.boot-script-refused', m.mac).length, 0, `${m.name}: no script refused`);
  }
  const tftpB = d.events('tftp.transfer').filter((l) => String(l.client).startsWith(`${leased[B.mac]}:`));
  t.ok(tftpB.some((l) => l.file === 'snponly.efi'), `UEFI: snponly.efi over TFTP to ${leased[B.mac]} (${tftpB.map((l) => `${l.file} ${l.bytes} B ${l.durationMs} ms`).join(', ')})`);
  const tftpA = d.events('tftp.transfer').filter((l) => String(l.client).startsWith(`${leased[A.mac]}:`));
  t.equal(tftpA.length, 0, 'BIOS: the iPXE ROM needs no TFTP (straight to its script)');
  // OVMF asks for the file's size first and ends that transfer at the OACK (ERROR 8): a size query, not a failure.
  const declined = d.events('tftp.declined').filter((l) => String(l.client).startsWith(`${leased[B.mac]}:`));
  t.ok(declined.length >= 1, `UEFI: the firmware's size query logged as tftp.declined (${declined.map((l) => `${l.file}: ${l.error}`).join(', ')})`);
  t.same(d.events('tftp.transfer-failed'), [], 'no TFTP transfer failed');
  for (const m of [A, B]) {
    t.ok(await e.waitState(m, 'active', 15_000), `${m.name}: state active (iSCSI session seen)`);
    const st = e.events('machines.state', m.mac).find((l) => l.to === 'active');
    t.match(String(st?.reason), /iSCSI login/, `${m.name}: ${st?.reason}`);
  }
  for (const m of [A, B]) {
    const dk = (await e.api('GET', `/api/v1/disks/${m.mac}`)).json() as { initiatorIqn: string; sessions: { initiator: string; addresses: string[] }[] };
    t.ok(dk.sessions.some((s) => s.initiator === dk.initiatorIqn && s.addresses.includes(leased[m.mac]!)),
      `${m.name}: its disk has a session from its own initiator name and address (${JSON.stringify(dk.sessions)})`);
  }

  // The timelines of the booted machines: from the API, and drawn by the status page in Chromium.
  const expected: Record<string, string[]> = { [A.mac]: ['dhcp', 'script', 'iscsi', 'active'], [B.mac]: ['dhcp', 'tftp', 'script', 'iscsi', 'active'] };
  for (const m of [A, B]) {
    const boots = (await e.api('GET', `/api/v1/machines/${m.mac}/timeline`)).json().boots as { state: string; steps: { name: string; state: string }[] }[];
    const last = boots[boots.length - 1];
    t.same({ state: last?.state, steps: last?.steps.map((s) => s.name) }, { state: 'active', steps: expected[m.mac] }, `${m.name}: timeline API, last boot ${JSON.stringify(last?.steps.map((s) => [s.name, s.state]))}`);
  }
  await t.test('the status page in Chromium draws each booted machine\'s timeline', { skip: chromiumUnavailable() }, async (t) => {
    const browser = await launchChromiumInNs(e.lab.ns);
    t.teardown(() => browser.close().catch(() => undefined));
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${HTTP}/`);
    await page.locator('#tokendlg[open]').waitFor({ timeout: 15_000 });
    await page.fill('#token', apiToken(e.dataDir));
    await page.click('#tokenok');
    for (const m of [A, B]) {
      const state = page.locator(`tr[data-mac="${m.mac}"] td[data-label="State"]`);
      await state.waitFor({ timeout: 15_000 });
      t.equal((await state.textContent())?.trim(), 'active', `status page: ${m.name} listed active`);
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'e2e-status-page.png'), fullPage: true });
    for (const m of [A, B]) {
      await page.click(`tr[data-mac="${m.mac}"] a[data-nav]`);
      await page.waitForURL(`${HTTP}/machines/${encodeURIComponent(m.mac)}`);
      await page.locator('.attempt .timeline').first().waitFor({ timeout: 15_000 });
      const attempts = await drawnSteps(page);
      // Newest boot first.
      t.same(attempts[0], expected[m.mac], `status page: ${m.name}'s boot drawn ${expected[m.mac]!.join(' → ')} (${attempts.length} attempt(s))`);
      const boxes = (await drawnBoxes(page)).slice(0, expected[m.mac]!.length);
      t.ok(boxes.every((b, i) => i === 0 || b.x >= boxes[i - 1]!.x + boxes[i - 1]!.w - 1), `${m.name}: steps laid out left to right`);
      t.ok(boxes.every((b) => b.cls === 's-done'), `${m.name}: every step done (${boxes.map((b) => b.cls).join(' ')})`);
      await page.screenshot({ path: path.join(ARTIFACTS, `e2e-timeline-${m.fw}.png`), fullPage: true });
      await page.goBack();
    }
    t.same(pageErrors, [], 'no script errors on the page');
    await browser.close();
  });

  // Reset: power off, dirty the clone, reset, power on: the golden id boots.
  const offMs = await e.powerOff(A);
  t.comment(`BIOS power off (POST) -> QEMU gone: ${offMs} ms`);
  // metalboot closes the dead VM's iSCSI connection after the BMC's power off (tgtd never would).
  const readyAgain = await e.waitState(A, 'ready', 20_000);
  t.ok(readyAgain, `powered off, the BIOS machine is ready again: its session is gone (state ${(await e.machine(A)).state})`);
  t.ok(d.logs().some((l) => l.event === 'disks.sessions-closed' && l.mac === A.mac), 'metalboot closed the stale session itself');
  await e.stamp(A, 'dirty');
  t.equal(await e.diskId(e.diskFile(A)), 'dirty', 'the clone was changed');
  const reset = await e.api('POST', `/api/v1/machines/${A.mac}/reset`);
  t.equal(reset.status, 200, `reset: ${reset.body}`);
  t.equal(await e.diskId(e.diskFile(A)), GOLDEN_ID, 'the disk file is the image again');
  const on2 = await e.power(A, 'on');
  const hit2 = await e.waitMarker(A, 60_000);
  t.equal(hit2.id, GOLDEN_ID, `after reset the BIOS machine boots a pristine disk: ${hit2.line} (${hit2.at - on2} ms)`);
  t.equal(await e.diskId(e.diskFile(B)), ids[B.mac], 'the other machine\'s disk is untouched');
  for (const m of [A, B]) await e.powerOff(m);

  // Disks are locked to their machine: B's initiator name and CHAP do not open A's target.
  await d.stop();
  const recs = await e.records();
  const ra = recs.find((r) => r.mac === A.mac)!;
  const rb = recs.find((r) => r.mac === B.mac)!;
  t.ok(ra && rb, 'both disk records in the store');
  t.equal(ra.targetIqn.endsWith(`mac-${macHex(A.mac)}`), true, `A's target ${ra.targetIqn}`);
  const inq = (initiator: string, chap: { user: string; secret: string }, target: string) =>
    e.lab.exec(['iscsi-inq', '-i', initiator, `iscsi://${chap.user}%${chap.secret}@${LAB_V4}:3260/${target}/1`], 30_000, [0, 1, 2, 10, 255]);
  const own = await inq(rb.initiatorIqn, rb.chap, rb.targetIqn);
  t.equal(own.code, 0, `control: B's initiator and CHAP open B's own target (tgtd is still up after the daemon stopped) ${own.stderr}`);
  const cross = await inq(rb.initiatorIqn, rb.chap, ra.targetIqn);
  t.not(cross.code, 0, `B's initiator name and CHAP against A's target: refused (${cross.stderr.trim().split('\n')[0]})`);
  const wrongChap = await inq(ra.initiatorIqn, rb.chap, ra.targetIqn);
  t.not(wrongChap.code, 0, `A's initiator name with B's CHAP: refused (${wrongChap.stderr.trim().split('\n')[0]})`);
  const noChap = await e.lab.exec(['iscsi-inq', '-i', ra.initiatorIqn, `iscsi://${LAB_V4}:3260/${ra.targetIqn}/1`], 30_000, [0, 1, 2, 10, 255]);
  t.not(noChap.code, 0, 'A\'s initiator name without CHAP: refused');

  // Teardown leaves nothing of this lab.
  await e.destroy();
  t.notOk(e.lab.exists(), 'lab namespace deleted');
  const left = await runCommand(['pgrep', '-af', e.lab.run], { timeoutMs: 5000, okCodes: [0, 1] });
  t.equal(left.stdout.trim(), '', 'no process of this lab left');
  await sleep(0);
});
