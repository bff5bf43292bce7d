/**
 * Boot storm, end to end: eight BIOS machines (each with its ipmi_sim BMC on its own port),
 * provisioned by metalboot from the lab's golden disk, each clone stamped with its own id, then
 * powered on through metalboot's API all at once. Every machine must boot its own clone; the
 * test records, per machine, the time from its power-on POST to the marker line on its serial
 * console, and prints the figures. TCG on a shared 2-CPU host: the bound is several minutes.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { E2e, e2eUnavailable, summarize, sleep, type E2eMachine } from '../helpers/e2e.js';

const skip = e2eUnavailable(['bios']);
const N = 8;
const MACHINES: E2eMachine[] = Array.from({ length: N }, (_, i) => ({
  name: `storm-${i + 1}`, mac: `52:54:00:77:20:${(i + 1).toString(16).padStart(2, '0')}`, fw: 'bios', bmcPort: 7700 + i,
}));

/** MemAvailable in MiB. */
async function memAvailableMiB(): Promise<number> {
  const m = /MemAvailable:\s+(\d+) kB/.exec(await readFile('/proc/meminfo', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

t.test(`e2e storm: ${N} BIOS machines powered on at once each boot their own clone`, { skip, timeout: 900_000 }, async (t) => {
  const memBefore = await memAvailableMiB();
  t.ok(memBefore > N * 256 + 1024, `memory: ${memBefore} MiB available for ${N} × 256 MiB guests`);
  const e = await E2e.up(t, { prefix: 'e2es' });
  const d = await e.start();
  await e.uploadGolden();
  const ids: Record<string, string> = {};
  for (const m of MACHINES) {
    await e.enrol(m);
    const op = await e.provision(m);
    t.equal(op.status, 'succeeded', `${m.name}: provisioned ${op.error ?? ''}`);
    ids[m.mac] = `${m.name}-${process.pid.toString(36)}`;
    await e.stamp(m, ids[m.mac]!);
    await e.attachBmc(m);
  }

  // All at once: the POSTs go out together; each machine's clock starts at its own POST.
  const on: Record<string, number> = {};
  await Promise.all(MACHINES.map(async (m) => { on[m.mac] = await e.power(m, 'on'); }));
  const spread = Math.max(...Object.values(on)) - Math.min(...Object.values(on));
  t.comment(`${N} power-on POSTs sent within ${spread} ms`);

  // Poll every serial log until each shows its marker (or the bound passes).
  let memLow = Infinity;
  const memPoll = setInterval(() => { void memAvailableMiB().then((v) => { memLow = Math.min(memLow, v); }); }, 1000);
  const results = await Promise.allSettled(MACHINES.map((m) => e.waitMarker(m, 300_000)));
  clearInterval(memPoll);
  const times: Record<string, number> = {};
  results.forEach((r, i) => {
    const m = MACHINES[i]!;
    if (r.status === 'fulfilled') {
      times[m.name] = r.value.at - on[m.mac]!;
      t.equal(r.value.id, ids[m.mac], `${m.name} booted its own clone (${times[m.name]} ms)`);
    } else {
      t.fail(`${m.name}: ${(r.reason as Error).message}`);
    }
  });
  t.comment(`power-on -> marker: ${summarize(times)}`);
  t.comment(`memory: ${memBefore} MiB available before, lowest ${memLow} MiB during the storm`);

  // The daemon saw every machine through the chain.
  for (const m of MACHINES) {
    const ack = e.events('dhcp.ack', m.mac).at(-1);
    t.ok(ack && e.events('http.boot-script', m.mac).some((l) => l.action === 'sanboot' && l.from === ack.ip), `${m.name}: dhcp.ack ${ack?.ip} and its sanboot script`);
  }
  const ips = new Set(MACHINES.map((m) => String(e.events('dhcp.ack', m.mac).at(-1)?.ip)));
  t.equal(ips.size, N, 'eight different addresses');
  for (const m of MACHINES) t.ok(await e.waitState(m, 'active', 15_000), `${m.name}: active`);
  t.equal(d.events('dhcp.error').length, 0, 'no DHCP errors');

  await Promise.all(MACHINES.map((m) => e.powerOff(m)));
  await e.destroy();
  t.notOk(e.lab.exists(), 'lab namespace deleted');
  await sleep(0);
});
