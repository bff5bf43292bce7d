/**
 * busybox udhcpc against the real daemon across a veth pair: obtain, renew,
 * release; the lease is visible through the API.
 */
import t from 'tap';
import { TestNet, netnsUnavailable } from '../helpers/netns.js';
import { startDaemon } from '../helpers/daemon.js';
import { apiToken } from '../helpers/dhcp-tools.js';

const skip = netnsUnavailable();

t.test('udhcpc obtains, renews and releases a lease', { skip, timeout: 120_000 }, async (t) => {
  const net = new TestNet('udh');
  t.teardown(() => net.destroy());
  const srv = await net.addNamespace('srv');
  const cli = await net.addNamespace('cli');
  const sdev = `${net.tag}s`, cdev = `${net.tag}c`;
  await net.veth(srv, sdev, cli, cdev, '10.91.0.1/24');
  await net.ip(cli, ['link', 'set', cdev, 'address', '52:54:00:91:00:01']);

  const d = await startDaemon(net, srv, `
dataDir: "{{dataDir}}"
http: { listen: "10.91.0.1:8080", publicUrl: "http://10.91.0.1:8080" }
dhcp:
  mode: server
  interface: ${sdev}
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.91.0.0/24
      pool: [10.91.0.100, 10.91.0.150]
      router: 10.91.0.1
      dns: [10.91.0.1]
      leaseTime: 120
`);
  t.teardown(() => d.stop());

  // Obtain: -q quits after the lease, -n fails instead of retrying forever.
  const got = await net.exec(cli, ['udhcpc', '-i', cdev, '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', '/bin/true'], 30_000);
  const m = /lease of (\S+) obtained from 10\.91\.0\.1, lease time 120/.exec(got.stdout + got.stderr);
  t.ok(m, `udhcpc got a lease: ${got.stderr}`);
  const ip = m![1]!;
  t.match(ip, /^10\.91\.0\.1([0-4][0-9]|50)$/, 'from the pool');

  const res = await net.exec(srv, ['curl', '-sf', '-H', `Authorization: Bearer ${apiToken(d.dataDir)}`, 'http://10.91.0.1:8080/api/v1/leases']);
  const leases = (JSON.parse(res.stdout) as { leases: { mac: string; ip: string; state: string; vendorClass: string }[] }).leases;
  t.same(leases.map((l) => [l.mac, l.ip, l.state]), [['52:54:00:91:00:01', ip, 'bound']], 'API lists the lease');

  // Renew: give the client its address, then udhcpc in the foreground renews on SIGUSR1 (unicast to the server).
  await net.ip(cli, ['addr', 'add', `${ip}/24`, 'dev', cdev]);
  const renewer = net.spawn(cli, ['udhcpc', '-i', cdev, '-f', '-r', ip, '-t', '5', '-T', '1', '-s', '/bin/true', '-R'], 60);
  let out = '';
  renewer.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  renewer.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  await d.waitForEvent('dhcp.ack', 20_000, (l) => l.ip === ip && l.mac === '52:54:00:91:00:01' && (l.type === 'request'));
  const acksBefore = d.events('dhcp.ack').length;
  // SIGUSR1 makes udhcpc renew now.
  for (let i = 0; i < 50 && !/obtained/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
  const pids = (await net.exec(cli, ['pidof', 'udhcpc'], 5000, [0, 1])).stdout.trim().split(/\s+/).filter(Boolean);
  t.ok(pids.length > 0, 'udhcpc running');
  for (const p of pids) process.kill(Number(p), 'SIGUSR1');
  await d.waitForEvent('dhcp.ack', 20_000, () => d.events('dhcp.ack').length > acksBefore);
  const renewAck = d.events('dhcp.ack').at(-1)!;
  t.equal(renewAck.ip, ip, 'renewal keeps the address');

  // Release: -R releases on exit (SIGTERM).
  for (const p of pids) process.kill(Number(p), 'SIGTERM');
  await d.waitForEvent('dhcp.release', 20_000, (l) => l.ip === ip);
  const after = JSON.parse((await net.exec(srv, ['curl', '-sf', '-H', `Authorization: Bearer ${apiToken(d.dataDir)}`, 'http://10.91.0.1:8080/api/v1/leases'])).stdout) as { leases: { ip: string; state: string }[] };
  t.same(after.leases.map((l) => [l.ip, l.state]), [[ip, 'released']], 'lease released');
});
