/**
 * tgtd killed during a run, end to end: a BIOS machine boots its clone through metalboot; while
 * it runs, the tgtd metalboot manages is SIGKILLed (its pid from <dataDir>/tgtd.pid). metalboot
 * (iscsi.checkIntervalMs 500) starts a new tgtd and puts the machine's target, LUN, initiator
 * rule and CHAP account back; the next boot succeeds. Then once more with no wait at all:
 * tgtd killed right before the power-on, so the boot races the repair.
 */
import t from 'tap';
import { E2e, e2eUnavailable, macHex, sleep, type E2eMachine } from '../helpers/e2e.js';
import { pidAlive } from '../helpers/lab.js';

const skip = e2eUnavailable(['bios']);
const M: E2eMachine = { name: 'crash-bios', mac: '52:54:00:77:40:01', fw: 'bios', bmcPort: 7901 };
/** sanboot failures are retried by the script; only give up on its final word or a wrong disk. */
const FINAL = /did not boot after|METALBOOT-DISK-ERR|No more network devices|Nothing to boot/;

t.test('e2e tgtd crash: metalboot restores the targets and the next boot succeeds', { skip, timeout: 600_000 }, async (t) => {
  const e = await E2e.up(t, { prefix: 'e2ec', checkIntervalMs: 500 });
  const d = await e.start();
  await e.uploadGolden();
  await e.enrol(M);
  t.equal((await e.provision(M)).status, 'succeeded', 'provisioned');
  const id = `crash-${process.pid.toString(36)}`;
  await e.stamp(M, id);
  await e.attachBmc(M);

  const target = async () => (await e.tgtd.show()).find((x) => x.iqn.endsWith(`:mac-${macHex(M.mac)}`));
  const before = await target();
  t.ok(before, `target ${before?.iqn} exported`);

  let on = await e.power(M, 'on');
  let hit = await e.waitMarker(M, 60_000);
  t.equal(hit.id, id, `first boot: ${hit.line} (${hit.at - on} ms)`);
  t.ok(await e.waitState(M, 'active', 15_000), 'active');

  // kill -9 while the machine runs.
  const killAndWait = async (what: string): Promise<void> => {
    const pid = await e.tgtdPid();
    t.ok(pid, `${what}: tgtd pid ${pid} from <dataDir>/tgtd.pid`);
    const startsBefore = e.events('iscsi.tgtd-started').length;
    const t0 = Date.now();
    process.kill(pid!, 'SIGKILL');
    while (pidAlive(pid!)) await sleep(10);
    await d.out.waitFor((l) => l.includes('"iscsi.tgtd-started"') && e.events('iscsi.tgtd-started').length > startsBefore, 15_000, 'iscsi.tgtd-started');
    for (;;) {
      const x = await target().catch(() => undefined);
      if (x && x.luns.some((l) => l.lun === 1) && x.accounts.length > 0) break;
      if (Date.now() - t0 > 15_000) throw new Error(`${what}: target not restored within 15 s`);
      await sleep(50);
    }
    const newPid = await e.tgtdPid();
    t.ok(newPid && newPid !== pid, `${what}: a new tgtd (pid ${newPid}) with the target, LUN 1 and CHAP account back ${Date.now() - t0} ms after the kill`);
  };
  await killAndWait('during the run');
  const after = await target();
  t.same(after?.initiatorNames, before?.initiatorNames, 'the same initiator-name rule');
  t.same(after?.accounts, before?.accounts, 'the same CHAP account binding');
  const repaired = d.logs().filter((l) => l.event === 'iscsi.drift-repaired' || l.event === 'iscsi.reconciled');
  t.ok(repaired.length >= 1, `the daemon logged the repair (${repaired.map((l) => `${l.event} ${l.operations} ops`).join(', ')})`);
  t.comment(`iSCSI log after the kill: ${d.logs().filter((l) => String(l.event).startsWith('iscsi.')).map((l) => `${l.time} ${l.event} ${l.reason ?? ''} ${l.operations ?? ''}`).join(' | ')}`);

  await e.powerOff(M);
  on = await e.power(M, 'on');
  hit = await e.waitMarker(M, 60_000, FINAL);
  t.equal(hit.id, id, `boot after the crash: ${hit.line} (${hit.at - on} ms)`);
  t.ok(await e.waitState(M, 'active', 15_000) || (await e.machine(M)).state === 'active', 'active again');

  // No wait: kill, then power on at once; the script's sanboot retries cover the repair.
  await e.powerOff(M);
  const pid = await e.tgtdPid();
  process.kill(pid!, 'SIGKILL');
  on = await e.power(M, 'on');
  hit = await e.waitMarker(M, 90_000, FINAL);
  t.equal(hit.id, id, `boot racing the repair: ${hit.line} (${hit.at - on} ms)`);
  const serial = await e.lab.serial(M.name);
  const retries = (serial.match(/sanboot failed/g) ?? []).length;
  t.comment(`sanboot retries on the console during that boot: ${retries}`);

  await e.powerOff(M);
  await e.destroy();
  t.notOk(e.lab.exists(), 'lab namespace deleted');
});
