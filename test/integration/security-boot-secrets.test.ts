/**
 * Issue 13.1: a host on the lab segment must not get a provisioned machine's sanboot script (its
 * CHAP secret), and so its disk. The real daemon in server mode with a provisioned machine (file
 * storage, the tgtd it manages); on its bridge a legitimate client namespace with the machine's
 * MAC (udhcpc, curl, iscsi-inq) and a third, attacker namespace with its own MAC and address.
 *
 * The attacks, each of which got the script (200 with `set password`) before the fix:
 *  (a) one DHCPINFORM with chaddr = the victim, ciaddr = the attacker's address, then curl;
 *  (b) for a booted machine, a DHCPRELEASE (chaddr = the victim, ciaddr = its address) from the
 *      attacker's address to free the lease first, then (a);
 *  (c) INFORM with the subnet's broadcast / network address as ciaddr;
 *  (d) the machine goes away with its lease still bound and the attacker puts the machine's
 *      address on its own interface (its own MAC), then curl.
 * Now each gets 403, the attacker's iscsi-inq is refused, and the legitimate client still gets
 * its script and reads its LUN with the credentials in it.
 */
import t from 'tap';
import path from 'node:path';
import { LAB_BRIDGE, LAB_V4 } from '../helpers/lab.js';
import { E2e, e2eUnavailable, type E2eMachine } from '../helpers/e2e.js';
import { udhcpc } from '../helpers/dhcp-tools.js';
import { END, opt, rawPacket } from '../helpers/dhcp.js';
import { REPO_ROOT } from '../helpers/daemon.js';

const skip = e2eUnavailable(['bios']) || (process.getuid?.() === 0 ? false : 'needs root');
const VICTIM: E2eMachine = { name: 'victim', mac: '52:54:00:77:13:01', fw: 'bios', bmcPort: 7831 };
const ATTACKER_MAC = '52:54:00:66:66:66';
const ATTACKER_IP = '10.77.0.66';
const UDP_ASK = path.join(REPO_ROOT, 'dist/test/helpers/udp-ask.js');
const SCRIPT_URL = `http://${LAB_V4}:8080/boot/${VICTIM.mac}.ipxe`;
const macBytes = (m: string) => m.split(':').map((h) => parseInt(h, 16));

/** A DHCP message of `type` (53) with chaddr = the victim's MAC. */
function dhcp(type: number, ciaddr: string, xid: number, extra: Buffer[] = []): string {
  return rawPacket({ xid, chaddr: macBytes(VICTIM.mac), ciaddr, options: Buffer.concat([opt(53, [type]), ...extra, END]) }).toString('hex');
}

t.test('boot secrets: spoofed INFORM/RELEASE and a borrowed address from a third host get 403; the machine still gets its script', { skip, timeout: 300_000 }, async (t) => {
  const e = await E2e.up(t, { prefix: 'secb', dhcpMode: 'server', conflictCheck: 'off' });
  const d = await e.start();
  await e.uploadGolden();
  await e.enrol(VICTIM);
  const op = await e.provision(VICTIM);
  t.equal(op.status, 'succeeded', `victim provisioned ${op.error ?? ''}`);

  // Two more hosts on the lab bridge: the machine (its own MAC) and the attacker (its own MAC and address).
  const vic = await e.net.addNamespace('vic');
  const atk = await e.net.addNamespace('atk');
  const vDev = `${e.net.tag}v`, vPort = `${e.net.tag}V`, aDev = `${e.net.tag}a`, aPort = `${e.net.tag}A`;
  await e.net.veth(vic, vDev, e.lab.ns, vPort);
  await e.net.veth(atk, aDev, e.lab.ns, aPort);
  await e.net.ip(vic, ['link', 'set', vDev, 'address', VICTIM.mac]);
  await e.net.ip(atk, ['link', 'set', aDev, 'address', ATTACKER_MAC]);
  await e.net.ip(atk, ['addr', 'add', `${ATTACKER_IP}/24`, 'dev', aDev]);
  for (const p of [vPort, aPort]) await e.net.ip(e.lab.ns, ['link', 'set', p, 'master', LAB_BRIDGE]);

  const curl = async (ns: string, url = SCRIPT_URL) => {
    const r = await e.net.exec(ns, ['curl', '-sS', '-m', '10', '-o', '-', '-w', '\n%{http_code}', url], 15_000, [0, 7, 28]);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  };
  const send = (hex: string) => e.net.exec(atk, ['node', UDP_ASK, '--from-port', '68', '--to', LAB_V4, '--port', '67', '--hex', hex, '--timeout-ms', '1500'], 10_000);
  /** Waits (bounded) until the daemon has logged `n` outcomes of this kind for the victim. */
  const outcomes = async (event: string, n: number) => {
    for (let i = 0; i < 50 && e.events(event, VICTIM.mac).length < n; i++) await new Promise((r) => setTimeout(r, 100));
    return e.events(event, VICTIM.mac);
  };
  const iscsiInq = (ns: string, initiator: string, creds: string, target: string) =>
    e.net.exec(ns, ['iscsi-inq', '-i', initiator, `iscsi://${creds}${LAB_V4}:3260/${target}/1`], 30_000, [0, 1, 2, 10, 255]);

  await t.test('(a) INFORM chaddr=victim ciaddr=attacker, then curl: 403, and INFORM teaches nothing', async (t) => {
    await send(dhcp(8, ATTACKER_IP, 0x13a));
    const acks = await outcomes('dhcp.inform', 1);
    t.equal(acks.length, 1, 'the INFORM itself is answered (configuration only, RFC 2131 §4.3.5)');
    const r = await curl(atk);
    t.equal(r.status, 403, 'the attacker is refused the script');
    t.notMatch(r.body, /set password/, 'no secret in the body');
    t.ok(e.events('http.boot-script-refused', VICTIM.mac).some((l) => l.from === ATTACKER_IP && /no bound lease/.test(String(l.reason))), 'refusal logged with its reason');
  });

  await t.test('(c) INFORM with the broadcast or network address as ciaddr is ignored', async (t) => {
    await send(dhcp(8, '10.77.0.255', 0x13c));
    await send(dhcp(8, '10.77.0.0', 0x13d));
    const ignored = await outcomes('dhcp.ignored', 2);
    t.equal(ignored.filter((l) => /network or broadcast/.test(String(l.reason))).length, 2, `both ignored with the reason (${ignored.map((l) => l.reason).join('; ')})`);
    t.equal(e.events('dhcp.inform', VICTIM.mac).length, 1, 'no INFORM ACK for them');
  });

  let leased = '';
  let initiator = '', target = '', user = '', secret = '';
  await t.test('the machine takes its lease (udhcpc) and gets its script', async (t) => {
    const got = await udhcpc(e.net, vic, vDev);
    t.ok(got.ip, `udhcpc got a lease: ${got.output.split('\n').slice(-3).join(' | ')}`);
    leased = got.ip!;
    await e.net.ip(vic, ['addr', 'add', `${leased}/24`, 'dev', vDev]);
    const r = await curl(vic);
    t.equal(r.status, 200, 'script served to the machine');
    t.match(r.body, /sanboot iscsi:/);
    initiator = /set initiator-iqn (\S+)/.exec(r.body)?.[1] ?? '';
    user = /set username (\S+)/.exec(r.body)?.[1] ?? '';
    secret = /set password (\S+)/.exec(r.body)?.[1] ?? '';
    target = /sanboot iscsi:[^:]*::\d+:1:(\S+)/.exec(r.body)?.[1] ?? '';
    t.ok(initiator && user && secret && target, 'it carries the CHAP user and secret');
    const inq = await iscsiInq(vic, initiator, `${user}%${secret}@`, target);
    t.equal(inq.code, 0, `the machine reads its LUN with them (iscsi-inq: ${inq.stderr.trim().slice(0, 120)})`);
  });

  await t.test('(b) RELEASE from the attacker for the machine\'s address, then INFORM and curl: lease kept, 403', async (t) => {
    await send(dhcp(7, leased, 0x13b, [opt(54, LAB_V4.split('.').map(Number))]));
    const ignored = await outcomes('dhcp.ignored', 3);
    t.ok(ignored.some((l) => /RELEASE not sent from the address/.test(String(l.reason))), 'the RELEASE is ignored, with its reason');
    t.equal(e.events('dhcp.release', VICTIM.mac).length, 0, 'no lease released');
    const leases = (await e.api('GET', '/api/v1/leases')).json().leases as { mac: string; ip: string; state: string }[];
    t.ok(leases.some((l) => l.mac === VICTIM.mac && l.ip === leased && l.state === 'bound'), 'the machine\'s lease is still bound');
    await send(dhcp(8, ATTACKER_IP, 0x13e));
    const r = await curl(atk);
    t.equal(r.status, 403, 'the attacker is refused the script');
    t.notMatch(r.body, /set password/);
  });

  await t.test('(d) the machine goes away, the attacker takes its address on its own MAC: 403', async (t) => {
    await e.net.ip(vic, ['link', 'set', vDev, 'down']);
    await e.net.ip(atk, ['addr', 'add', `${leased}/24`, 'dev', aDev]);
    // As an attacker would: forget the server's MAC, so the next connection starts with an ARP
    // request from the borrowed address, which points the daemon's entry for it at the attacker.
    await e.net.ip(atk, ['neigh', 'flush', 'dev', aDev]);
    let r = { stdout: '' };
    let status = 0;
    // Bounded: a connection attempt may race the daemon's entry still pointing at the machine.
    for (let i = 0; i < 3 && status === 0; i++) {
      r = await e.net.exec(atk, ['curl', '-sS', '-m', '10', '--interface', leased, '-o', '-', '-w', '\n%{http_code}', SCRIPT_URL], 15_000, [0, 7, 28]);
      status = Number(r.stdout.slice(r.stdout.lastIndexOf('\n') + 1));
    }
    t.equal(status, 403, 'refused: the address answers ARP with another MAC');
    t.notMatch(r.stdout, /set password/);
    t.ok(e.events('http.boot-script-refused', VICTIM.mac).some((l) => l.from === leased && /another MAC/.test(String(l.reason))), 'refusal names the neighbour mismatch');
    await e.net.ip(atk, ['addr', 'del', `${leased}/24`, 'dev', aDev]);
    await e.net.ip(vic, ['link', 'set', vDev, 'up']);
    // The machine forgets the server's MAC, so its next connection starts with an ARP request,
    // which updates the daemon's entry for its address back to its own MAC (as a rebooting machine does).
    await e.net.ip(vic, ['neigh', 'flush', 'dev', vDev]);
  });

  await t.test('the attacker cannot read the LUN with anything it could get', async (t) => {
    t.not(secret, '', 'the real secret is known to the test (from the machine\'s script)');
    for (const [what, creds] of [['no CHAP', ''], ['the CHAP user, a guessed secret', `${user}%not-the-secret-123@`]] as const) {
      const r = await iscsiInq(atk, initiator, creds, target);
      t.not(r.code, 0, `${what}: refused (exit ${r.code})`);
    }
  });

  await t.test('the machine still gets its script and reads its LUN after all that', async (t) => {
    // Bounded: the bridge and the daemon's neighbour entry follow the machine back within a second or two.
    let r = { status: 0, body: '' };
    for (let i = 0; i < 10 && r.status !== 200; i++) {
      r = await curl(vic);
      if (r.status !== 200) await new Promise((res) => setTimeout(res, 500));
    }
    t.equal(r.status, 200, 'script served to the machine');
    t.match(r.body, new RegExp(`set username ${user}`), 'with its CHAP user');
    const inq = await iscsiInq(vic, initiator, `${user}%${secret}@`, target);
    t.equal(inq.code, 0, 'iscsi-inq with its credentials reads the LUN');
    t.ok(e.events('http.boot-script', VICTIM.mac).filter((l) => l.action === 'sanboot').every((l) => l.from === leased), 'every sanboot script went to the machine\'s address');
  });
  t.ok(d.events('http.boot-script').length >= 2, 'scripts were served');
});
