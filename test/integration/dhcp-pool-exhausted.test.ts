/**
 * A pool that runs out is reported: busybox udhcpc clients with four different MACs against the
 * real daemon with a two-address pool. The two that get no address leave exactly one
 * `dhcp.pool-exhausted` warning (rate-limited per subnet per minute) and are all counted in
 * metalboot_dhcp_pool_exhausted_total{subnet}; the two with leases keep them.
 */
import t from 'tap';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { startDaemon } from '../helpers/daemon.js';
import { udhcpc } from '../helpers/dhcp-tools.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';

const skip = netnsUnavailable();

t.test('pool exhaustion: one warning per subnet per minute, every exhausted DISCOVER counted', { skip, timeout: 120_000 }, async (t) => {
  const net = new TestNet('pex');
  t.teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const sdev = `${net.tag}s`, cdev = `${net.tag}c`;
  await net.veth(srv, sdev, cli, cdev, '10.92.0.1/24');
  const d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.92.0.1:8080", publicUrl: "http://10.92.0.1:8080" }
status: { public: true }
dhcp:
  mode: server
  interface: ${sdev}
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.92.0.0/24
      pool: [10.92.0.100, 10.92.0.101]
      leaseTime: 600
`);
  t.teardown(() => d.stop());

  const got: (string | undefined)[] = [];
  for (let i = 1; i <= 4; i++) {
    await net.ip(cli, ['link', 'set', cdev, 'down']);
    await net.ip(cli, ['link', 'set', cdev, 'address', `52:54:00:92:00:0${i}`]);
    await net.ip(cli, ['link', 'set', cdev, 'up']);
    got.push((await udhcpc(net, cli, cdev, { tries: 2 })).ip);
  }
  t.same(got.slice(0, 2).sort(), ['10.92.0.100', '10.92.0.101'], 'the first two clients get the pool');
  t.same(got.slice(2), [undefined, undefined], 'the next two get nothing');

  const noAddress = d.events('dhcp.no-address');
  t.ok(noAddress.length >= 2, `their DISCOVERs were left without an offer (${noAddress.length})`);
  const warnings = d.events('dhcp.pool-exhausted');
  t.equal(warnings.length, 1, 'one warning for the minute, however many DISCOVERs');
  t.match(warnings[0], { level: 'warn', subnet: '10.92.0.0/24', suppressed: 0, mac: '52:54:00:92:00:03' }, 'a warning naming the subnet and the first client turned away');

  const m = await net.exec(srv, ['curl', '-sS', '-m', '10', 'http://10.92.0.1:8080/metrics'], 15_000);
  const { samples } = parsePromText(m.stdout);
  t.equal(sampleValue(samples, 'metalboot_dhcp_pool_exhausted_total', { subnet: '10.92.0.0/24' }), noAddress.length, 'the metric counts every exhausted DISCOVER');
});
