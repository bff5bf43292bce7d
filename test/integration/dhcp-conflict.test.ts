/**
 * Address conflicts on the served segment (a bridge in the server namespace
 * with a client and "squatters" on it):
 *  - conflictCheck ping: a squatter already using the first pool address
 *    answers the daemon's ICMP probe, so that address is never offered; the
 *    client gets the next one and the API lists the squatted one as declined.
 *  - DHCPDECLINE: a squatter that ignores ping but answers ARP slips through
 *    the probe; busybox udhcpc -a finds it by ARP after the ACK, declines,
 *    and the daemon quarantines the address and gives the client another.
 */
import t from 'tap';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { startDaemon } from '../helpers/daemon.js';
import { apiLeases, removeDaemonDir, udhcpc } from '../helpers/dhcp-tools.js';

const skip = netnsUnavailable();

async function lan(t: { teardown(fn: () => unknown): void }, name: string, third: number, squatters: { name: string; ip: string; noPing?: boolean }[]) {
  const net = new TestNet(name);
  t.teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const br = `${net.tag}br`;
  await net.bridge(srv, br, `10.97.${third}.1/24`);
  const cdev = `${net.tag}c`;
  await net.veth(srv, `${net.tag}pc`, cli, cdev);
  await net.ip(srv, ['link', 'set', `${net.tag}pc`, 'master', br]);
  for (const [i, s] of squatters.entries()) {
    const ns = await net.addNamespace(s.name);
    await net.veth(srv, `${net.tag}p${i}`, ns, `${net.tag}q${i}`, undefined, `${s.ip}/24`);
    await net.ip(srv, ['link', 'set', `${net.tag}p${i}`, 'master', br]);
    // Ignores ICMP echo (per namespace), still answers ARP.
    if (s.noPing) await net.exec(ns, ['sysctl', '-qw', 'net.ipv4.icmp_echo_ignore_all=1']);
  }
  return { net, srv, cli, br, cdev };
}

const config = (br: string, third: number, timeoutMs: number) => `
dataDir: "{{dataDir}}"
http: { listen: "10.97.${third}.1:8080", publicUrl: "http://10.97.${third}.1:8080" }
dhcp:
  mode: server
  interface: ${br}
  conflictCheck: { method: ping, timeoutMs: ${timeoutMs} }
  quarantineSeconds: 600
  subnets:
    - cidr: 10.97.${third}.0/24
      pool: [10.97.${third}.100, 10.97.${third}.150]
      leaseTime: 600
`;

t.test('ping conflict check: a squatted address is not offered and is listed as declined', { skip, timeout: 60_000 }, async (t) => {
  const { net, srv, cli, br, cdev } = await lan(t, 'cfp', 1, [{ name: 'sq', ip: '10.97.1.100' }]);
  await net.ip(cli, ['link', 'set', cdev, 'address', '52:54:00:97:01:01']);
  // Sanity: the squatter really answers ping from the server namespace.
  await net.exec(srv, ['ping', '-n', '-q', '-c', '1', '-W', '2', '10.97.1.100'], 10_000);

  const d = await startDaemon(net, srv, config(br, 1, 300));
  t.teardown(async () => { await d.stop(); await removeDaemonDir(d); });
  const r = await udhcpc(net, cli, cdev);
  t.equal(r.ip, '10.97.1.101', `client gets the next address, not the squatted one (${r.ip})`);
  const c = d.events('dhcp.conflict');
  t.same(c.map((l) => l.ip), ['10.97.1.100'], 'dhcp.conflict logged for the squatted address');
  t.equal(d.events('dhcp.offer').filter((l) => l.ip === '10.97.1.100').length, 0, 'never offered');
  const leases = await apiLeases(net, srv, 'http://10.97.1.1:8080', d.dataDir);
  const byIp = new Map(leases.map((l) => [l.ip, l]));
  t.equal(byIp.get('10.97.1.100')?.state, 'declined', 'API lists the squatted address as declined');
  t.equal(byIp.get('10.97.1.100')?.mac, null, 'with no client MAC');
  t.equal(byIp.get('10.97.1.101')?.state, 'bound', 'and the client lease as bound');
  t.equal(byIp.get('10.97.1.101')?.mac, '52:54:00:97:01:01');

  // The next client is not probed into the squatter again (quarantine holds).
  await net.ip(cli, ['link', 'set', cdev, 'address', '52:54:00:97:01:02']);
  const r2 = await udhcpc(net, cli, cdev);
  t.equal(r2.ip, '10.97.1.102', `second client gets 10.97.1.102 (${r2.ip})`);
  t.equal(d.events('dhcp.conflict').length, 1, 'no second probe hit');
});

t.test('an address coming out of quarantine is probed again before it is offered', { skip, timeout: 60_000 }, async (t) => {
  const { net, srv, cli, br, cdev } = await lan(t, 'cfq', 3, [{ name: 'sq', ip: '10.97.3.100' }]);
  // Two addresses, one squatted; quarantine of 1 s.
  const d = await startDaemon(net, srv, config(br, 3, 300)
    .replace('quarantineSeconds: 600', 'quarantineSeconds: 1')
    .replace('pool: [10.97.3.100, 10.97.3.150]', 'pool: [10.97.3.100, 10.97.3.101]'));
  t.teardown(async () => { await d.stop(); await removeDaemonDir(d); });
  await net.ip(cli, ['link', 'set', cdev, 'address', '52:54:00:97:03:01']);
  const r1 = await udhcpc(net, cli, cdev);
  t.equal(r1.ip, '10.97.3.101', 'first client gets the free address');
  await new Promise((r) => setTimeout(r, 1500));
  // The only candidate left is the squatted one, now out of quarantine: it must be probed (and refused) again.
  await net.ip(cli, ['link', 'set', cdev, 'address', '52:54:00:97:03:02']);
  const r2 = await udhcpc(net, cli, cdev, { tries: 2 });
  t.not(r2.ip, '10.97.3.100', `the squatted address is not handed out after its quarantine (${r2.ip ?? 'no lease'})`);
  t.ok(d.events('dhcp.conflict').filter((l) => l.ip === '10.97.3.100').length >= 2, 'probed and caught again');
  t.equal(d.events('dhcp.offer').filter((l) => l.ip === '10.97.3.100').length, 0, 'never offered');
});

t.test('DHCPDECLINE: udhcpc -a declines an address in use (ARP) and gets another', { skip, timeout: 60_000 }, async (t) => {
  // .100 answers ping (caught by the probe); .101 ignores ping but answers ARP (caught only by the client).
  const { net, srv, cli, br, cdev } = await lan(t, 'cfd', 2, [{ name: 'sq0', ip: '10.97.2.100' }, { name: 'sq1', ip: '10.97.2.101', noPing: true }]);
  const mac = '52:54:00:97:02:01';
  await net.ip(cli, ['link', 'set', cdev, 'address', mac]);
  const d = await startDaemon(net, srv, config(br, 2, 300));
  t.teardown(async () => { await d.stop(); await removeDaemonDir(d); });

  // -a500: ARP-probe the offered address for 500 ms after the ACK.
  const r = await udhcpc(net, cli, cdev, { tries: 6, extra: ['-a500'] });
  t.match(r.output, /10\.97\.2\.101 is in use|declin/i, `udhcpc saw 10.97.2.101 in use: ${r.output.replace(/\n/g, ' | ')}`);
  t.equal(r.ip, '10.97.2.102', `and ended with 10.97.2.102 (${r.ip})`);
  const dec = await d.waitForEvent('dhcp.decline', 5000);
  t.equal(dec.ip, '10.97.2.101', 'dhcp.decline logged for 10.97.2.101');
  t.equal(dec.mac, mac, 'with the client MAC');
  t.same(d.events('dhcp.conflict').map((l) => l.ip), ['10.97.2.100'], 'the probe caught only the ping-answering squatter');

  const leases = await apiLeases(net, srv, 'http://10.97.2.1:8080', d.dataDir);
  const state = Object.fromEntries(leases.map((l) => [l.ip, [l.state, l.mac]]));
  t.same(state, {
    '10.97.2.100': ['declined', null],
    '10.97.2.101': ['declined', null],
    '10.97.2.102': ['bound', mac],
  }, 'both squatted addresses declined, the client bound to the third');

  // A declined address is not handed out again while quarantined, not even when asked for.
  await net.ip(cli, ['link', 'set', cdev, 'address', '52:54:00:97:02:02']);
  const r2 = await udhcpc(net, cli, cdev, { extra: ['-r', '10.97.2.101'] });
  t.equal(r2.ip, '10.97.2.103', `a client asking for 10.97.2.101 gets 10.97.2.103 instead (${r2.ip})`);
});
