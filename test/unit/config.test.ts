import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfigFile, parseConfig, type ConfigEnv } from '../../src/config/load.js';
import { parseIpv4 as ip, parseCidr } from '../../src/net/ipv4.js';
import { DEFAULT_HTTP_LIMITS } from '../../src/config/defaults.js';
import { CommandError, type Runner } from '../../src/exec/run.js';
import { systemConfigEnv } from '../../src/config/env.js';
import { createBackend } from '../../src/storage/factory.js';

/** A host with br0 at 10.99.0.1 and eth1 without an address. */
const env: ConfigEnv = {
  interfaceExists: (n) => n === 'br0' || n === 'eth1',
  interfaceAddress: (n) => (n === 'br0' ? ip('10.99.0.1') : undefined),
};

const FULL = `
dataDir: /srv/metalboot
logLevel: debug
http: { listen: "127.0.0.1:9090", publicUrl: "http://10.99.0.1:9090/" }
dhcp:
  mode: server
  interface: br0
  serverAddress: 10.99.0.2
  offerHoldSeconds: 45
  quarantineSeconds: 0
  conflictCheck: { method: off, timeoutMs: 250 }
  bootFiles: { bios: undionly.kpxe, efiX64: snponly.efi, efiIa32: ipxe-ia32.efi, efiArm64: ipxe-arm64.efi, httpX64: /assets/ipxe.efi, httpArm64: /assets/ipxe-arm64.efi }
  subnets:
    - cidr: 10.99.0.0/24
      pool: [10.99.0.100, 10.99.0.200]
      router: 10.99.0.1
      dns: [10.99.0.1, 1.1.1.1]
      domainName: lab.example
      leaseTime: 7200
    - cidr: 10.99.1.0/24
  reservations:
    - { mac: "52:54:00:00:00:01", ip: 10.99.0.10, hostname: vm1 }
    - { mac: "52-54-00-00-00-02", ip: 10.99.0.150 }
    - { mac: "52:54:00:00:00:03", ip: 10.99.1.7 }
`;

/** The smallest valid server-mode file, to which error cases add one mistake. */
const MIN = `
http: { publicUrl: "http://10.99.0.1:8080" }
dhcp:
  interface: br0
  subnets:
    - cidr: 10.99.0.0/24
      pool: [10.99.0.100, 10.99.0.200]
`;

function errorOf(text: string, e: ConfigEnv = env): ConfigError {
  try {
    parseConfig(text, e);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, config was accepted');
}

t.test('a full example parses to typed values', async (t) => {
  const c = parseConfig(FULL, env);
  t.equal(c.dataDir, '/srv/metalboot');
  t.equal(c.logLevel, 'debug');
  t.same(c.http, { listen: { host: '127.0.0.1', port: 9090 }, publicUrl: 'http://10.99.0.1:9090', apiTokenFile: '/srv/metalboot/api-token', limits: DEFAULT_HTTP_LIMITS }, 'the token file defaults into dataDir; the connection limits to their defaults');
  t.equal(c.dhcp.mode, 'server');
  t.equal(c.dhcp.interface, 'br0');
  t.equal(c.dhcp.serverAddress, ip('10.99.0.2'));
  t.equal(c.dhcp.offerHoldSeconds, 45);
  t.equal(c.dhcp.quarantineSeconds, 0);
  t.same(c.dhcp.conflictCheck, { method: 'off', timeoutMs: 250 });
  t.equal(c.dhcp.bootFiles.efiX64, 'snponly.efi');
  t.equal(c.dhcp.bootFiles.httpArm64, '/assets/ipxe-arm64.efi');
  t.equal(c.dhcp.subnets.length, 2);
  t.strictSame(c.dhcp.subnets[0], {
    cidr: parseCidr('10.99.0.0/24'),
    pool: { first: ip('10.99.0.100'), last: ip('10.99.0.200') },
    router: ip('10.99.0.1'),
    dns: [ip('10.99.0.1'), ip('1.1.1.1')],
    domainName: 'lab.example',
    leaseTime: 7200,
  });
  // Optional subnet fields are absent, not undefined-valued.
  t.strictSame(c.dhcp.subnets[1], { cidr: parseCidr('10.99.1.0/24'), dns: [], leaseTime: 3600 });
  t.strictSame(c.dhcp.reservations, [
    { mac: '52:54:00:00:00:01', ip: ip('10.99.0.10'), hostname: 'vm1' },
    // Inside the pool is allowed; the MAC is normalised.
    { mac: '52:54:00:00:00:02', ip: ip('10.99.0.150') },
    { mac: '52:54:00:00:00:03', ip: ip('10.99.1.7') },
  ]);
  t.equal(DEFAULT_CONFIG_PATH, '/etc/metalboot/metalboot.yaml');
});

t.test('defaults fill in', async (t) => {
  const c = parseConfig(MIN, env);
  t.equal(c.dataDir, '/var/lib/metalboot');
  t.equal(c.logLevel, 'info');
  t.same(c.http.listen, { host: '0.0.0.0', port: 8080 });
  t.equal(c.dhcp.mode, 'server');
  t.equal(c.dhcp.serverAddress, ip('10.99.0.1'), 'from the interface address');
  t.equal(c.dhcp.offerHoldSeconds, 30);
  t.equal(c.dhcp.quarantineSeconds, 600);
  t.same(c.dhcp.conflictCheck, { method: 'ping', timeoutMs: 500 });
  t.same(c.dhcp.bootFiles, {
    bios: 'undionly.kpxe', efiX64: 'snponly.efi', efiIa32: 'ipxe-ia32.efi', efiArm64: 'ipxe-arm64.efi',
    efiRiscv64: 'ipxe-riscv64.efi', efiLoong64: 'ipxe-loong64.efi',
    httpX64: '/boot-assets/snponly.efi', httpArm64: '/boot-assets/ipxe-arm64.efi',
    httpRiscv64: '/boot-assets/ipxe-riscv64.efi', httpLoong64: '/boot-assets/ipxe-loong64.efi',
  });
  t.same(c.dhcp.reservations, []);
  t.equal(c.dhcp.subnets[0]!.leaseTime, 3600);
  t.same(c.dhcp.subnets[0]!.dns, []);

  const partial = parseConfig(`${MIN}  bootFiles: { bios: custom.kpxe }\n  conflictCheck: { timeoutMs: 100 }\n`, env);
  t.equal(partial.dhcp.bootFiles.bios, 'custom.kpxe');
  t.equal(partial.dhcp.bootFiles.efiX64, 'snponly.efi');
  t.same(partial.dhcp.conflictCheck, { method: 'ping', timeoutMs: 100 });
});

t.test('mode off and proxy', async (t) => {
  const off = parseConfig('dhcp: { mode: off }\n', { interfaceExists: () => false, interfaceAddress: () => undefined });
  t.equal(off.dhcp.mode, 'off');
  t.equal(off.dhcp.interface, '');
  t.equal(off.dhcp.serverAddress, undefined);
  t.same(off.dhcp.subnets, []);
  t.equal(off.http.publicUrl, 'http://127.0.0.1:8080', 'derived from listen when DHCP does not need it');

  const proxy = parseConfig('http: { publicUrl: "https://boot.lab.example/mb/" }\ndhcp: { mode: proxy, interface: br0 }\n', env);
  t.equal(proxy.dhcp.mode, 'proxy');
  t.same(proxy.dhcp.subnets, []);
  t.equal(proxy.http.publicUrl, 'https://boot.lab.example/mb');

  const v6 = parseConfig('http: { listen: "[::]:80" }\ndhcp: { mode: off }\n', env);
  t.same(v6.http.listen, { host: '::', port: 80 });
  t.equal(v6.http.publicUrl, 'http://[::1]:80');
});

t.test('empty file: defaults, then the missing interface', async (t) => {
  for (const text of ['', '\n', '# nothing here\n']) {
    t.equal(errorOf(text).message, 'config: dhcp.interface: is required when dhcp.mode is server');
  }
});

t.test('http.limits: given keys replace their defaults, the others keep them; requestTimeoutMs 0 is off', async (t) => {
  const c = parseConfig(MIN.replace('http: {', 'http: { limits: { maxConnections: 200, maxConnectionsPerAddress: 8, requestTimeoutMs: 0, idleTimeoutMs: 30000 }, '), env);
  t.same(c.http.limits, { ...DEFAULT_HTTP_LIMITS, maxConnections: 200, maxConnectionsPerAddress: 8, requestTimeoutMs: 0, idleTimeoutMs: 30000 });
  t.equal(DEFAULT_HTTP_LIMITS.idleTimeoutMs, 60_000, 'a stalled download goes within a minute by default');
});

t.test('ConfigError carries path and reason', async (t) => {
  const e = errorOf(MIN.replace('10.99.0.200]', '10.99.1.5]'));
  t.ok(e instanceof Error);
  t.equal(e.name, 'ConfigError');
  t.equal(e.path, 'dhcp.subnets[0].pool');
  t.equal(e.reason, '10.99.1.5 is outside 10.99.0.0/24');
  t.equal(e.message, 'config: dhcp.subnets[0].pool: 10.99.1.5 is outside 10.99.0.0/24');
});

/** [what, config text, exact message] */
const CASES: [string, string, string][] = [
  // unknown keys, at every level
  ['unknown top key', `${MIN}dhpc: {}\n`, 'config: dhpc: unknown key'],
  ['unknown dhcp key', MIN.replace('  subnets:', '  subnet: []\n  subnets:'), 'config: dhcp.subnet: unknown key'],
  ['unknown subnet key', `${MIN}      gateway: 10.99.0.1\n`, 'config: dhcp.subnets[0].gateway: unknown key'],
  ['unknown reservation key', `${MIN}  reservations: [{ mac: "52:54:00:00:00:01", ip: 10.99.0.9, name: x }]\n`, 'config: dhcp.reservations[0].name: unknown key'],
  ['unknown bootFiles key', `${MIN}  bootFiles: { efi: x.efi }\n`, 'config: dhcp.bootFiles.efi: unknown key'],
  ['unknown http key', MIN.replace('http: {', 'http: { port: 1, '), 'config: http.port: unknown key'],
  ['unknown http.limits key', MIN.replace('http: {', 'http: { limits: { maxConns: 5 }, '), 'config: http.limits.maxConns: unknown key'],
  ['http.limits bound', MIN.replace('http: {', 'http: { limits: { maxConnections: 8 }, '), 'config: http.limits.maxConnections: 8 is out of range 16..1000000'],
  ['idle timeout bound', MIN.replace('http: {', 'http: { limits: { idleTimeoutMs: 0 }, '), 'config: http.limits.idleTimeoutMs: 0 is out of range 1000..3600000'],
  ['per address above total', MIN.replace('http: {', 'http: { limits: { maxConnections: 100, maxConnectionsPerAddress: 200 }, '), 'config: http.limits.maxConnectionsPerAddress: 200 is above maxConnections 100'],
  ['request below headers timeout', MIN.replace('http: {', 'http: { limits: { headersTimeoutMs: 20000, requestTimeoutMs: 5000 }, '), 'config: http.limits.requestTimeoutMs: 5000 is below headersTimeoutMs 20000 (0 turns it off)'],

  // types
  ['top level is a list', '- a\n- b\n', 'config: (top level): expected a mapping, got a list'],
  ['dhcp is a string', 'dhcp: server\n', 'config: dhcp: expected a mapping, got string "server"'],
  ['bad mode', MIN.replace('  interface: br0', '  mode: relay\n  interface: br0'), 'config: dhcp.mode: expected one of server, proxy, off, got string "relay"'],
  ['bad log level', `logLevel: verbose\n${MIN}`, 'config: logLevel: expected one of fatal, error, warn, info, debug, trace, got string "verbose"'],
  ['number as string', `${MIN}  offerHoldSeconds: "30"\n`, 'config: dhcp.offerHoldSeconds: expected an integer, got string "30"'],
  ['fraction', `${MIN}  quarantineSeconds: 1.5\n`, 'config: dhcp.quarantineSeconds: expected an integer, got number 1.5'],
  ['subnets not a list', MIN.replace(/  subnets:[\s\S]*$/, '  subnets: 10.99.0.0/24\n'), 'config: dhcp.subnets: expected a list, got string "10.99.0.0/24"'],
  ['ip as number', `${MIN}  serverAddress: 10\n`, 'config: dhcp.serverAddress: expected an IPv4 address string, got number 10'],
  ['bad ip', `${MIN}      router: 10.99.0.256\n`, 'config: dhcp.subnets[0].router: "10.99.0.256" has an octet above 255'],
  ['bad dns entry', `${MIN}      dns: [10.99.0.1, ns1]\n`, 'config: dhcp.subnets[0].dns[1]: "ns1" is not a dotted-quad IPv4 address'],
  ['relative dataDir', `dataDir: var/lib\n${MIN}`, 'config: dataDir: "var/lib" must be an absolute path'],
  ['empty string', `dataDir: ""\n${MIN}`, 'config: dataDir: must not be empty'],
  ['bad domain name', `${MIN}      domainName: "lab_example"\n`, 'config: dhcp.subnets[0].domainName: "lab_example" is not a valid DNS name'],
  ['http boot path', `${MIN}  bootFiles: { httpX64: ipxe.efi }\n`, 'config: dhcp.bootFiles.httpX64: "ipxe.efi" must be a path starting with /'],
  ['tftp name with ..', `${MIN}  bootFiles: { bios: ../etc/passwd }\n`, 'config: dhcp.bootFiles.bios: "../etc/passwd" must not contain ".."'],
  ['conflict method', `${MIN}  conflictCheck: { method: arp }\n`, 'config: dhcp.conflictCheck.method: expected one of ping, off, got string "arp"'],

  // number ranges
  ['lease too short', `${MIN}      leaseTime: 59\n`, 'config: dhcp.subnets[0].leaseTime: 59 is out of range 60..31536000'],
  ['lease too long', `${MIN}      leaseTime: 31536001\n`, 'config: dhcp.subnets[0].leaseTime: 31536001 is out of range 60..31536000'],
  ['offer hold 0', `${MIN}  offerHoldSeconds: 0\n`, 'config: dhcp.offerHoldSeconds: 0 is out of range 1..3600'],
  ['timeout', `${MIN}  conflictCheck: { timeoutMs: 60000 }\n`, 'config: dhcp.conflictCheck.timeoutMs: 60000 is out of range 10..10000'],

  // CIDRs
  ['cidr host bits', MIN.replace('10.99.0.0/24', '10.99.0.1/24'), 'config: dhcp.subnets[0].cidr: "10.99.0.1/24" has host bits set (network is 10.99.0.0/24)'],
  ['cidr bad prefix', MIN.replace('10.99.0.0/24', '10.99.0.0/33'), 'config: dhcp.subnets[0].cidr: "10.99.0.0/33" has a bad prefix length'],
  ['cidr no prefix', MIN.replace('10.99.0.0/24', '10.99.0.0'), 'config: dhcp.subnets[0].cidr: "10.99.0.0" is not a CIDR (missing /prefix)'],
  ['cidr too small', MIN.replace(/cidr: 10.99.0.0\/24\n.*\n/, 'cidr: 10.99.0.4/31\n'), 'config: dhcp.subnets[0].cidr: /31 is too small to serve (at most /30)'],
  ['cidr missing', MIN.replace('    - cidr: 10.99.0.0/24\n      pool', '    - pool'), 'config: dhcp.subnets[0].cidr: is required'],

  // pools
  ['pool outside', MIN.replace('10.99.0.200]', '10.99.1.5]'), 'config: dhcp.subnets[0].pool: 10.99.1.5 is outside 10.99.0.0/24'],
  ['pool reversed', MIN.replace('[10.99.0.100, 10.99.0.200]', '[10.99.0.200, 10.99.0.100]'), 'config: dhcp.subnets[0].pool: first address 10.99.0.200 is after last address 10.99.0.100'],
  ['pool network', MIN.replace('10.99.0.100,', '10.99.0.0,'), 'config: dhcp.subnets[0].pool: 10.99.0.0 is the network address of 10.99.0.0/24'],
  ['pool broadcast', MIN.replace('10.99.0.200]', '10.99.0.255]'), 'config: dhcp.subnets[0].pool: 10.99.0.255 is the broadcast address of 10.99.0.0/24'],
  ['pool arity', MIN.replace('[10.99.0.100, 10.99.0.200]', '[10.99.0.100]'), 'config: dhcp.subnets[0].pool: expected [first, last] (two addresses), got 1'],
  ['pool has router', `${MIN}      router: 10.99.0.150\n`, 'config: dhcp.subnets[0].pool: 10.99.0.100-10.99.0.200 contains the router 10.99.0.150'],
  ['pool has server', `${MIN}  serverAddress: 10.99.0.120\n`, 'config: dhcp.subnets[0].pool: 10.99.0.100-10.99.0.200 contains the server address 10.99.0.120'],
  ['router outside', `${MIN}      router: 10.98.0.1\n`, 'config: dhcp.subnets[0].router: 10.98.0.1 is outside 10.99.0.0/24'],
  ['pools overlap across subnets',
    `${MIN}    - cidr: 10.99.0.0/16\n      pool: [10.99.0.150, 10.99.2.10]\n`,
    'config: dhcp.subnets[1].pool: 10.99.0.150-10.99.2.10 overlaps dhcp.subnets[0].pool 10.99.0.100-10.99.0.200'],
  ['subnets overlap', `${MIN}    - cidr: 10.99.0.128/25\n`, 'config: dhcp.subnets[1].cidr: 10.99.0.128/25 overlaps dhcp.subnets[0].cidr 10.99.0.0/24'],
  ['no subnets in server mode', 'http: { publicUrl: "http://x:1" }\ndhcp: { interface: br0 }\n', 'config: dhcp.subnets: at least one subnet is required when dhcp.mode is server'],

  // reservations
  ['reservation outside subnets', `${MIN}  reservations: [{ mac: "52:54:00:00:00:01", ip: 10.98.0.9 }]\n`, 'config: dhcp.reservations[0].ip: 10.98.0.9 is outside every subnet in dhcp.subnets'],
  ['reservation on broadcast', `${MIN}  reservations: [{ mac: "52:54:00:00:00:01", ip: 10.99.0.255 }]\n`, 'config: dhcp.reservations[0].ip: 10.99.0.255 is the broadcast address of 10.99.0.0/24'],
  ['reservation on server', `${MIN}  reservations: [{ mac: "52:54:00:00:00:01", ip: 10.99.0.1 }]\n`, 'config: dhcp.reservations[0].ip: 10.99.0.1 is the server address'],
  ['duplicate MAC (differently written)',
    `${MIN}  reservations:\n    - { mac: "52:54:00:00:00:01", ip: 10.99.0.9 }\n    - { mac: "52-54-00-00-00-01", ip: 10.99.0.8 }\n`,
    'config: dhcp.reservations[1].mac: 52:54:00:00:00:01 is already reserved by dhcp.reservations[0]'],
  ['duplicate IP',
    `${MIN}  reservations:\n    - { mac: "52:54:00:00:00:01", ip: 10.99.0.9 }\n    - { mac: "52:54:00:00:00:02", ip: 10.99.0.9 }\n`,
    'config: dhcp.reservations[1].ip: 10.99.0.9 is already reserved by dhcp.reservations[0]'],
  ['bad MAC', `${MIN}  reservations: [{ mac: "52:54:00:00:00", ip: 10.99.0.9 }]\n`, 'config: dhcp.reservations[0].mac: not a MAC address: "52:54:00:00:00"'],
  ['multicast MAC', `${MIN}  reservations: [{ mac: "01:00:5e:00:00:01", ip: 10.99.0.9 }]\n`, 'config: dhcp.reservations[0].mac: 01:00:5e:00:00:01 is a multicast address'],
  ['missing reservation ip', `${MIN}  reservations: [{ mac: "52:54:00:00:00:01" }]\n`, 'config: dhcp.reservations[0].ip: is required'],
  ['bad hostname', `${MIN}  reservations: [{ mac: "52:54:00:00:00:01", ip: 10.99.0.9, hostname: "-vm" }]\n`, 'config: dhcp.reservations[0].hostname: "-vm" is not a valid DNS name'],

  // interface and server address
  ['nonexistent interface', MIN.replace('interface: br0', 'interface: br9'), 'config: dhcp.interface: network interface br9 does not exist'],
  ['bad interface name', MIN.replace('interface: br0', 'interface: "../../etc"'), 'config: dhcp.interface: "../../etc" is not a valid interface name'],
  ['no address to default to', MIN.replace('interface: br0', 'interface: eth1'), 'config: dhcp.serverAddress: not set, and interface eth1 has no IPv4 address to default to'],
  ['server address not unicast', `${MIN}  serverAddress: 255.255.255.255\n`, 'config: dhcp.serverAddress: 255.255.255.255 is not a usable unicast address'],
  ['proxy needs interface', 'http: { publicUrl: "http://x:1" }\ndhcp: { mode: proxy }\n', 'config: dhcp.interface: is required when dhcp.mode is proxy'],

  // http
  ['publicUrl missing', MIN.replace('http: { publicUrl: "http://10.99.0.1:8080" }\n', ''), 'config: http.publicUrl: is required when dhcp.mode is server'],
  ['publicUrl scheme', MIN.replace('http://10.99.0.1:8080', 'tftp://10.99.0.1'), 'config: http.publicUrl: "tftp://10.99.0.1" must start with http:// or https://'],
  ['publicUrl not a URL', MIN.replace('http://10.99.0.1:8080', '10.99.0.1:8080/x'), 'config: http.publicUrl: "10.99.0.1:8080/x" must start with http:// or https://'],
  ['publicUrl garbage', MIN.replace('http://10.99.0.1:8080', 'http://'), 'config: http.publicUrl: "http://" is not a URL'],
  ['publicUrl wildcard', MIN.replace('http://10.99.0.1:8080', 'http://0.0.0.0:8080'), 'config: http.publicUrl: 0.0.0.0 is a listen address; use an address machines can reach'],
  ['publicUrl query', MIN.replace('http://10.99.0.1:8080', 'http://10.99.0.1:8080/?a=1'), 'config: http.publicUrl: must not have a query or fragment'],
  ['listen no port', MIN.replace('http: {', 'http: { listen: "0.0.0.0",'), 'config: http.listen: "0.0.0.0" is not host:port (IPv6 hosts go in brackets)'],
  ['listen port 0', MIN.replace('http: {', 'http: { listen: "0.0.0.0:0",'), 'config: http.listen: port 0 is out of range 1..65535'],
  ['listen port too big', MIN.replace('http: {', 'http: { listen: "0.0.0.0:65536",'), 'config: http.listen: port 65536 is out of range 1..65535'],
  ['listen bad ip', MIN.replace('http: {', 'http: { listen: "10.0.0.300:80",'), 'config: http.listen: "10.0.0.300" has an octet above 255'],
  ['listen bare ipv6', MIN.replace('http: {', 'http: { listen: ":::80",'), 'config: http.listen: ":::80" is not host:port (IPv6 hosts go in brackets)'],
  ['listen as number', MIN.replace('http: {', 'http: { listen: 8080,'), 'config: http.listen: expected a string, got number 8080'],

  // YAML itself
  ['duplicate key', MIN.replace('  interface: br0', '  interface: br0\n  interface: br1'), 'config: invalid YAML at line 5, column 3: Map keys must be unique'],
  ['syntax error', 'dhcp:\n  mode: [server\n  interface: br0\n', 'config: invalid YAML at line 3, column 3: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  ['two documents', `${MIN}---\nlogLevel: info\n`, 'config: invalid YAML at line 8, column 1: Source contains multiple documents; please use YAML.parseAllDocuments()'],
];

t.test('each mistake is named precisely', async (t) => {
  for (const [what, text, message] of CASES) {
    let e: ConfigError;
    try {
      e = errorOf(text);
    } catch (err) {
      t.fail(`${what}: ${(err as Error).message}`);
      continue;
    }
    t.equal(e.message, message, what);
    t.notOk(e.message.includes('\n'), `${what}: one line`);
    t.ok(e.message.startsWith(`config: ${e.path ? `${e.path}: ` : ''}`), `${what}: message starts with the path`);
  }
});

t.test('YAML errors carry the line number', async (t) => {
  const e = errorOf('a: 1\nb: [\n');
  t.equal(e.path, '');
  t.type(e.line, 'number');
  t.match(e.message, /^config: invalid YAML at line \d+, column \d+: /);
});

t.test('loadConfigFile reads a file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'metalboot-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'metalboot.yaml');
  await writeFile(file, FULL);
  const c = await loadConfigFile(file, env);
  t.equal(c.dhcp.subnets.length, 2);
  t.equal(c.http.publicUrl, 'http://10.99.0.1:9090');

  // With the real host's interfaces: mode off needs none.
  await writeFile(file, 'dhcp: { mode: off }\nlogLevel: warn\n');
  const off = await loadConfigFile(file);
  t.equal(off.logLevel, 'warn');

  // The real lookup knows the loopback interface, and that its address cannot serve DHCP.
  await writeFile(file, 'http: { publicUrl: "http://10.0.0.1:8080" }\ndhcp: { mode: proxy, interface: lo, serverAddress: 10.0.0.1 }\n');
  const proxy = await loadConfigFile(file);
  t.equal(proxy.dhcp.interface, 'lo');
  await writeFile(file, 'http: { publicUrl: "http://10.0.0.1:8080" }\ndhcp: { mode: proxy, interface: lo }\n');
  await t.rejects(loadConfigFile(file), {
    message: "config: dhcp.serverAddress: not set, and interface lo's address 127.0.0.1 is not a usable unicast address",
  });
  await writeFile(file, 'http: { publicUrl: "http://10.0.0.1:8080" }\ndhcp: { mode: proxy, interface: nosuchif0 }\n');
  await t.rejects(loadConfigFile(file), { message: 'config: dhcp.interface: network interface nosuchif0 does not exist' });

  await t.rejects(loadConfigFile(join(dir, 'missing.yaml'), env), {
    name: 'ConfigError',
    message: /^config: cannot read .*missing\.yaml: ENOENT/,
  });
});

t.test('tftp: defaults, interface from dhcp, explicit values', async (t) => {
  const c = parseConfig(MIN, env);
  t.same(c.tftp, {
    enabled: true, listen: { host: '0.0.0.0', port: 69 }, interface: 'br0',
    maxBlksize: 1468, maxWindowsize: 16, maxTransfers: 128, timeoutMs: 1000, retries: 5, maxTransfersPerClient: 4, reservedTransfers: 32,
  }, 'defaults; the interface is dhcp.interface; root absent (the daemon uses boot-assets/)');
  t.equal(c.tftp.root, undefined);
  const off = parseConfig('dhcp: { mode: off }\n', env);
  t.equal(off.tftp.interface, '', 'no DHCP interface: none');
  const full = parseConfig(`${MIN}tftp:\n  enabled: false\n  listen: "10.99.0.1:1069"\n  interface: eth1\n  root: /srv/tftp\n  maxBlksize: 8192\n  maxWindowsize: 64\n  maxTransfers: 4096\n  timeoutMs: 100\n  retries: 1\n  maxTransfersPerClient: 2\n  reservedTransfers: 100\n`, env);
  t.same(full.tftp, {
    enabled: false, listen: { host: '10.99.0.1', port: 1069 }, interface: 'eth1', root: '/srv/tftp',
    maxBlksize: 8192, maxWindowsize: 64, maxTransfers: 4096, timeoutMs: 100, retries: 1, maxTransfersPerClient: 2, reservedTransfers: 100,
  });
  t.equal(parseConfig(`${MIN}tftp: { maxTransfers: 10 }\n`, env).tftp.reservedTransfers, 5, 'the default reservation is at most half of a small maxTransfers');
  t.equal(parseConfig(`${MIN}tftp: { enabled: false, interface: nosuch0 }\n`, env).tftp.interface, 'nosuch0', 'a disabled server does not need its interface');
});

t.test('tftp: each mistake is named precisely', async (t) => {
  const cases: [string, string][] = [
    ['tftp: { listen: "boot.lab:69" }', 'config: tftp.listen: "boot.lab" is not an IPv4 address'],
    ['tftp: { listen: "0.0.0.0:0" }', 'config: tftp.listen: port 0 is out of range 1..65535'],
    ['tftp: { interface: nosuch0 }', 'config: tftp.interface: network interface nosuch0 does not exist'],
    ['tftp: { root: boot-assets }', 'config: tftp.root: "boot-assets" must be an absolute path'],
    ['tftp: { maxBlksize: 7 }', 'config: tftp.maxBlksize: 7 is out of range 8..65464'],
    ['tftp: { maxBlksize: 65465 }', 'config: tftp.maxBlksize: 65465 is out of range 8..65464'],
    ['tftp: { maxWindowsize: 0 }', 'config: tftp.maxWindowsize: 0 is out of range 1..64'],
    ['tftp: { maxWindowsize: 65 }', 'config: tftp.maxWindowsize: 65 is out of range 1..64'],
    ['tftp: { maxTransfers: 0 }', 'config: tftp.maxTransfers: 0 is out of range 1..4096'],
    ['tftp: { timeoutMs: 99 }', 'config: tftp.timeoutMs: 99 is out of range 100..255000'],
    ['tftp: { retries: 0 }', 'config: tftp.retries: 0 is out of range 1..50'],
    ['tftp: { maxTransfersPerClient: 0 }', 'config: tftp.maxTransfersPerClient: 0 is out of range 1..4096'],
    ['tftp: { maxTransfers: 8, reservedTransfers: 8 }', 'config: tftp.reservedTransfers: 8 leaves none of maxTransfers 8 for clients without a DHCP binding'],
    ['tftp: { retries: 1.5 }', 'config: tftp.retries: expected an integer, got number 1.5'],
    ['tftp: { enabled: yes }', 'config: tftp.enabled: expected true or false, got string "yes"'],
    ['tftp: { port: 69 }', 'config: tftp.port: unknown key'],
    ['tftp: []', 'config: tftp: expected a mapping, got a list'],
  ];
  for (const [yaml, message] of cases) t.equal(errorOf(`${MIN}${yaml}\n`).message, message, yaml);
});

t.test('ipmi: defaults and explicit values', async (t) => {
  t.same(parseConfig(MIN, env).ipmi, { timeoutMs: 1000, retries: 3, keepAliveMs: 20_000, maxCommandsPerSecond: 20, cipherSuite: 'auto', privilege: 'administrator' });
  const full = parseConfig(`${MIN}ipmi: { timeoutMs: 250, retries: 0, keepAliveMs: 0, maxCommandsPerSecond: 0, cipherSuite: 3, privilege: operator }\n`, env);
  t.same(full.ipmi, { timeoutMs: 250, retries: 0, keepAliveMs: 0, maxCommandsPerSecond: 0, cipherSuite: 3, privilege: 'operator' });
  t.equal(parseConfig(`${MIN}ipmi: { cipherSuite: "1.5" }\n`, env).ipmi.cipherSuite, '1.5');
  t.equal(parseConfig(`${MIN}ipmi: { cipherSuite: 1.5 }\n`, env).ipmi.cipherSuite, '1.5', 'YAML number 1.5');
  t.equal(parseConfig(`${MIN}ipmi: { cipherSuite: 17 }\n`, env).ipmi.cipherSuite, 17);
});

t.test('ipmi: each mistake is named precisely', async (t) => {
  const cases: [string, string][] = [
    ['ipmi: { timeoutMs: 49 }', 'config: ipmi.timeoutMs: 49 is out of range 50..30000'],
    ['ipmi: { retries: 11 }', 'config: ipmi.retries: 11 is out of range 0..10'],
    ['ipmi: { keepAliveMs: 60000 }', 'config: ipmi.keepAliveMs: 60000 is out of range 0..55000'],
    ['ipmi: { cipherSuite: 2 }', 'config: ipmi.cipherSuite: expected auto, 17, 3 or 1.5, got number 2'],
    ['ipmi: { privilege: user }', 'config: ipmi.privilege: expected one of administrator, operator, got string "user"'],
    ['ipmi: { password: x }', 'config: ipmi.password: unknown key'],
  ];
  for (const [yaml, message] of cases) t.equal(errorOf(`${MIN}${yaml}\n`).message, message, yaml);
});

t.test('redfish: defaults, explicit values, each mistake named', async (t) => {
  t.same(parseConfig(MIN, env).redfish, { timeoutMs: 10_000, retries: 3, maxConcurrent: 2, maxRequestsPerSecond: 20, taskTimeoutMs: 120_000 });
  const full = parseConfig(`${MIN}redfish: { timeoutMs: 2500, retries: 0, maxConcurrent: 1, maxRequestsPerSecond: 0, taskTimeoutMs: 5000 }\n`, env);
  t.same(full.redfish, { timeoutMs: 2500, retries: 0, maxConcurrent: 1, maxRequestsPerSecond: 0, taskTimeoutMs: 5000 });
  const cases: [string, string][] = [
    ['redfish: { timeoutMs: 99 }', 'config: redfish.timeoutMs: 99 is out of range 100..120000'],
    ['redfish: { maxConcurrent: 0 }', 'config: redfish.maxConcurrent: 0 is out of range 1..16'],
    ['redfish: { password: x }', 'config: redfish.password: unknown key'],
  ];
  for (const [yaml, message] of cases) t.equal(errorOf(`${MIN}${yaml}\n`).message, message, yaml);
});

t.test('storage and iscsi: defaults follow the backend, the DHCP address and dataDir', async (t) => {
  const c = parseConfig(MIN, env);
  t.same(c.storage, { backend: 'file', dir: '/var/lib/metalboot/volumes', maxPoolPercent: 90 });
  t.same(c.iscsi, {
    enabled: true, portal: { host: '10.99.0.1', port: 3260 }, iqnPrefix: 'iqn.2026-11.org.metalboot', tgtadm: '/usr/sbin/tgtadm',
    manageTgtd: false, controlPort: 0, checkIntervalMs: 2000, mutualChap: false, chapSecretsVia: 'control-socket',
  }, 'portal from dhcp.serverAddress');
  const exportOf = (cfg: typeof c) => createBackend(cfg.storage, { runner: async () => ({ stdout: '', stderr: '', code: 0 }) }).exportOf('d1');
  t.same(exportOf(c), { bstype: 'rdwr', backingStore: '/var/lib/metalboot/volumes/disks/d1.raw' }, 'rdwr for files');
  const lvm = parseConfig(`${MIN}storage: { backend: lvm, lvm: { vg: vg0, thinPool: pool0 }, maxPoolPercent: 80 }\n`, env);
  t.same(lvm.storage, { backend: 'lvm', vg: 'vg0', thinPool: 'pool0', maxPoolPercent: 80 });
  t.same(exportOf(lvm), { bstype: 'aio', backingStore: '/dev/vg0/mbd-d1' }, 'aio for block devices');
  const rbd = parseConfig(`${MIN}storage: { backend: rbd, rbd: { pool: mb-pool, cephConf: /etc/ceph/lab.conf, user: mb, keyring: /etc/ceph/mb.keyring, maxPoolPercent: 70 } }\n`, env);
  t.same(rbd.storage, { backend: 'rbd', pool: 'mb-pool', cephConf: '/etc/ceph/lab.conf', user: 'mb', keyring: '/etc/ceph/mb.keyring', maxPoolPercent: 70 });
  t.same(exportOf(rbd), { bstype: 'rbd', backingStore: 'mb-pool/mbd-d1', bsopts: 'conf=/etc/ceph/lab.conf;id=mb' }, 'rbd: pool/image, conf and id in --bsopts');
  t.same(parseConfig(`${MIN}storage: { backend: rbd, rbd: { pool: p1 } }\n`, env).storage,
    { backend: 'rbd', pool: 'p1', cephConf: '/etc/ceph/ceph.conf', user: 'metalboot', maxPoolPercent: 90 }, 'rbd defaults: Ceph\'s conf, user metalboot');
  // bstype is the backend's: storage.<backend>.bstype, and iscsi.bstype as its old spelling.
  const bs = (yaml: string) => exportOf(parseConfig(`${MIN}${yaml}\n`, env)).bstype;
  t.equal(bs('storage: { file: { bstype: aio } }'), 'aio', 'storage.file.bstype');
  t.equal(bs('storage: { backend: lvm, lvm: { vg: vg0, thinPool: pool0, bstype: rdwr } }'), 'rdwr', 'storage.lvm.bstype');
  t.equal(bs('storage: { backend: lvm, lvm: { vg: vg0, thinPool: pool0 } }\niscsi: { bstype: rdwr }'), 'rdwr', 'the old iscsi.bstype still works for lvm');
  t.equal(bs('iscsi: { bstype: aio }'), 'aio', 'the old iscsi.bstype still works for file');
  t.equal(bs('storage: { file: { bstype: aio } }\niscsi: { bstype: aio }'), 'aio', 'both, agreeing');
  // The issue's spelling, storage.lvm.maxPoolPercent: accepted, and it wins over storage.maxPoolPercent for lvm.
  const pct = (yaml: string): number => parseConfig(`${MIN}storage: ${yaml}\n`, env).storage.maxPoolPercent;
  t.equal(pct('{ backend: lvm, lvm: { vg: vg0, thinPool: pool0, maxPoolPercent: 70 } }'), 70, 'storage.lvm.maxPoolPercent alone');
  t.equal(pct('{ backend: lvm, lvm: { vg: vg0, thinPool: pool0, maxPoolPercent: 70 }, maxPoolPercent: 85 }'), 70, 'both: the lvm one wins for lvm');
  t.equal(pct('{ backend: lvm, lvm: { vg: vg0, thinPool: pool0 }, maxPoolPercent: 85 }'), 85, 'storage.maxPoolPercent still read');
  t.equal(pct('{ backend: file, lvm: { maxPoolPercent: 70 }, maxPoolPercent: 85 }'), 85, 'the file backend does not take the lvm one');
  t.equal(pct('{ backend: file, lvm: { maxPoolPercent: 70 } }'), 90, 'file backend: default');
  t.same(parseConfig(`${MIN}storage: { backend: lvm, lvm: { vg: vg0, thinPool: pool0, maxPoolPercent: 70 } }\n`, env).storage, { backend: 'lvm', vg: 'vg0', thinPool: 'pool0', maxPoolPercent: 70 });
  const off = parseConfig('http: { publicUrl: "http://192.0.2.7:8080" }\ndhcp: { mode: off }\n', env);
  t.same(off.iscsi.portal, { host: '192.0.2.7', port: 3260 }, 'without DHCP: publicUrl\'s host');
  t.equal(parseConfig('dhcp: { mode: off }\n', env).iscsi.portal.host, '127.0.0.1', 'nothing else known: the listen address on this host');
  const full = parseConfig(`${MIN}iscsi: { portal: "10.99.0.2:3261", iqnPrefix: "iqn.2020-01.lab.example:boot", bstype: aio, manageTgtd: true, controlPort: 7, checkIntervalMs: 500, mutualChap: true, tgtadm: /opt/tgtadm, chapSecretsVia: argv }\n`, env);
  t.same(full.iscsi, {
    enabled: true, portal: { host: '10.99.0.2', port: 3261 }, iqnPrefix: 'iqn.2020-01.lab.example:boot', tgtadm: '/opt/tgtadm',
    manageTgtd: true, controlPort: 7, checkIntervalMs: 500, mutualChap: true, chapSecretsVia: 'argv',
  });
  t.same(full.storage, { backend: 'file', dir: '/var/lib/metalboot/volumes', bstype: 'aio', maxPoolPercent: 90 }, 'iscsi.bstype went to the backend');
});

t.test('storage and iscsi: each mistake is named precisely', async (t) => {
  const cases: [string, string][] = [
    ['storage: { backend: zfs }', 'config: storage.backend: expected one of file, lvm, rbd, got string "zfs"'],
    ['storage: { backend: rbd }', 'config: storage.rbd.pool: is required when storage.backend is rbd'],
    ['storage: { rbd: { pool: "a/b" } }', 'config: storage.rbd.pool: "a/b" is not a valid Ceph pool name (letters, digits, "_", "." and "-", at most 100)'],
    ['storage: { rbd: { pool: p, user: "client.x;y" } }', 'config: storage.rbd.user: "client.x;y" is not a valid cephx id (letters, digits, "_", "." and "-", at most 100)'],
    ['storage: { rbd: { pool: p, cephConf: "/etc/a;b=c" } }', 'config: storage.rbd.cephConf: must not contain blanks, ";" or "=" (it goes into tgtd\'s --bsopts)'],
    ['storage: { rbd: { pool: p, cephConf: etc/ceph.conf } }', 'config: storage.rbd.cephConf: "etc/ceph.conf" must be an absolute path'],
    ['storage: { backend: rbd, rbd: { pool: p } }\niscsi: { bstype: rdwr }', 'config: iscsi.bstype: the rbd backend has no bstype choice'],
    ['storage: { backend: lvm }', 'config: storage.lvm.vg: is required when storage.backend is lvm'],
    ['storage: { backend: lvm, lvm: { vg: vg0 } }', 'config: storage.lvm.thinPool: is required when storage.backend is lvm'],
    ['storage: { lvm: { vg: "-vg" } }', 'config: storage.lvm.vg: "-vg" is not a valid LVM name'],
    ['storage: { lvm: { vg: "a b" } }', 'config: storage.lvm.vg: "a b" is not a valid LVM name'],
    ['storage: { file: { dir: volumes } }', 'config: storage.file.dir: "volumes" must be an absolute path'],
    ['storage: { maxPoolPercent: 100 }', 'config: storage.maxPoolPercent: 100 is out of range 50..99'],
    ['storage: { lvm: { maxPoolPercent: 49 } }', 'config: storage.lvm.maxPoolPercent: 49 is out of range 50..99'],
    ['storage: { lvm: { maxPoolPercnt: 80 } }', 'config: storage.lvm.maxPoolPercnt: unknown key'],
    ['iscsi: { portal: "0.0.0.0:3260" }', 'config: iscsi.portal: must be an address machines can reach, not 0.0.0.0'],
    ['iscsi: { portal: "tgt.lab:3260" }', 'config: iscsi.portal: "tgt.lab" is not an IPv4 address'],
    ['iscsi: { iqnPrefix: "IQN.2026-11.Org" }', 'config: iscsi.iqnPrefix: "IQN.2026-11.Org" is not an iqn.yyyy-mm.reversed.domain name (lower case)'],
    ['iscsi: { iqnPrefix: "iqn.2026-13.org.x" }', 'config: iscsi.iqnPrefix: "iqn.2026-13.org.x" is not an iqn.yyyy-mm.reversed.domain name (lower case)'],
    ['iscsi: { bstype: sg }', 'config: iscsi.bstype: expected one of aio, rdwr, got string "sg"'],
    ['storage: { file: { bstype: rbd } }', 'config: storage.file.bstype: expected one of aio, rdwr, got string "rbd"'],
    ['storage: { lvm: { bstype: sg } }', 'config: storage.lvm.bstype: expected one of aio, rdwr, got string "sg"'],
    ['storage: { file: { bstype: aio } }\niscsi: { bstype: rdwr }', 'config: iscsi.bstype: is the old spelling of storage.file.bstype, which says aio; keep one'],
    ['iscsi: { controlPort: 32768 }', 'config: iscsi.controlPort: 32768 is out of range 0..32767'],
    ['iscsi: { checkIntervalMs: 100 }', 'config: iscsi.checkIntervalMs: 100 is out of range 200..600000'],
    ['iscsi: { chapSecret: x }', 'config: iscsi.chapSecret: unknown key'],
  ];
  for (const [yaml, message] of cases) t.equal(errorOf(`${MIN}${yaml}\n`).message, message, yaml);
  t.equal(errorOf('http: { publicUrl: "http://boot.lab:8080" }\ndhcp: { mode: off }\n').message,
    'config: iscsi.portal: not set, and neither dhcp.serverAddress nor an IPv4 http.publicUrl gives an address machines can reach; set it, or iscsi.enabled: false');
  t.equal(parseConfig('http: { publicUrl: "http://boot.lab:8080" }\ndhcp: { mode: off }\niscsi: { enabled: false }\n', env).iscsi.enabled, false);
});

t.test('machines: defaults; mistakes named', async (t) => {
  t.same(parseConfig(MIN, env).machines, { unknown: 'ignore', discover: true, sanbootTries: 3, sanbootRetryDelaySec: 5, sanbootFallback: 'exit', netbootDir: '/var/lib/metalboot/netboot', proxyBootWindowSec: 600, agentTimeoutSec: 600, agentLldpSec: 31 });
  t.equal(parseConfig(`${MIN}machines: { unknown: menu }\n`, env).machines.unknown, 'menu');
  t.equal(errorOf(`${MIN}machines: { unknown: pxe }\n`).message, 'config: machines.unknown: expected one of ignore, menu, local, inspect, got string "pxe"');
  t.equal(errorOf(`${MIN}machines: { sanbootTries: 0 }\n`).message, 'config: machines.sanbootTries: 0 is out of range 1..100');
  t.equal(parseConfig(MIN.replace('http: { publicUrl: "http://10.99.0.1:8080" }', 'http: { publicUrl: "http://10.99.0.1:8080", readOnlyTokenFile: /etc/metalboot/ro-token }'), env).http.readOnlyTokenFile, '/etc/metalboot/ro-token');
});

t.test('syslog and status: defaults, values, mistakes named', async (t) => {
  const c = parseConfig(MIN, env);
  t.same(c.syslog, { enabled: false, listen: { host: '0.0.0.0', port: 514 }, maxPerSecondPerSource: 20, burst: 100, acceptFrom: 'served', maxPerSecondTotal: 200, burstTotal: 1000 });
  t.same(c.status, { public: false }, 'the status page needs the token unless made public');
  const s = parseConfig(`${MIN}syslog: { enabled: true, listen: "10.99.0.1:5514", maxPerSecondPerSource: 5, burst: 50 }\nstatus: { public: true }\n`, env);
  t.same(s.syslog, { enabled: true, listen: { host: '10.99.0.1', port: 5514 }, maxPerSecondPerSource: 5, burst: 50, acceptFrom: 'served', maxPerSecondTotal: 200, burstTotal: 1000 });
  const s2 = parseConfig(`${MIN}syslog: { acceptFrom: [10.99.0.0/24, 192.168.0.0/16], maxPerSecondTotal: 50, burstTotal: 60 }\n`, env);
  t.same(s2.syslog.acceptFrom, [parseCidr('10.99.0.0/24'), parseCidr('192.168.0.0/16')]);
  t.match(s2.syslog, { maxPerSecondTotal: 50, burstTotal: 60 });
  t.equal(parseConfig(`${MIN}syslog: { acceptFrom: any }\n`, env).syslog.acceptFrom, 'any');
  t.equal(s.status.public, true);
  const cases: [string, string][] = [
    ['syslog: { enabled: yes }', 'config: syslog.enabled: expected true or false, got string "yes"'],
    ['syslog: { listen: "loghost:514" }', 'config: syslog.listen: "loghost" is not an IPv4 address'],
    ['syslog: { listen: "10.99.0.1" }', 'config: syslog.listen: "10.99.0.1" is not host:port (IPv6 hosts go in brackets)'],
    ['syslog: { maxPerSecondPerSource: 0 }', 'config: syslog.maxPerSecondPerSource: 0 is out of range 1..10000'],
    ['syslog: { burst: 1000001 }', 'config: syslog.burst: 1000001 is out of range 1..100000'],
    ['syslog: { maxPerSecondPerSource: 50, burst: 10 }', 'config: syslog.burst: 10 is below maxPerSecondPerSource 50 (a bucket smaller than one second of messages)'],
    ['syslog: { port: 514 }', 'config: syslog.port: unknown key'],
    ['syslog: { acceptFrom: all }', 'config: syslog.acceptFrom: expected "served", "any" or a list of CIDRs, got string "all"'],
    ['syslog: { acceptFrom: [] }', 'config: syslog.acceptFrom: an empty list accepts nothing; disable syslog instead'],
    ['syslog: { acceptFrom: [10.0.0.1/24] }', 'config: syslog.acceptFrom[0]: "10.0.0.1/24" has host bits set (network is 10.0.0.0/24)'],
    ['syslog: { maxPerSecondTotal: 0 }', 'config: syslog.maxPerSecondTotal: 0 is out of range 1..100000'],
    ['syslog: { maxPerSecondTotal: 500, burstTotal: 100 }', 'config: syslog.burstTotal: 100 is below maxPerSecondTotal 500 (a bucket smaller than one second of messages)'],
    ['status: { public: 1 }', 'config: status.public: expected true or false, got number 1'],
    ['status: { theme: dark }', 'config: status.theme: unknown key'],
  ];
  for (const [yaml, message] of cases) t.equal(errorOf(`${MIN}${yaml}\n`).message, message, yaml);
});

t.test('images.importDir: defaults into dataDir; relative or / refused', async (t) => {
  t.same(parseConfig(MIN, env).images, { importDir: '/var/lib/metalboot/import' });
  t.equal(parseConfig(`dataDir: /srv/mb/\n${MIN}`, env).images.importDir, '/srv/mb/import', 'follows dataDir');
  t.equal(parseConfig(`${MIN}images: { importDir: /srv/golden }\n`, env).images.importDir, '/srv/golden');
  t.equal(errorOf(`${MIN}images: { importDir: golden }\n`).message, 'config: images.importDir: "golden" must be an absolute path');
  t.equal(errorOf(`${MIN}images: { importDir: /. }\n`).message, 'config: images.importDir: must not be /');
  t.equal(errorOf(`${MIN}images: { dir: /srv }\n`).message, 'config: images.dir: unknown key');
});

t.test('systemConfigEnv asks the kernel through the command runner, once', async (t) => {
  const calls: (readonly string[])[] = [];
  // Stands in for `ip` on a host with an interface this one does not have (a bridge with no carrier yet).
  const run: Runner = async (argv) => {
    calls.push(argv);
    return { code: 0, stderr: '', stdout: JSON.stringify([
      { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1' }] },
      { ifname: 'mbtest-br9', addr_info: [{ family: 'inet', local: '10.98.0.1' }, { family: 'inet', local: '10.98.0.2' }] },
      { ifname: 'mbtest-bad', addr_info: [{ family: 'inet', local: 'not-an-address' }] },
    ]) };
  };
  const e = await systemConfigEnv(run);
  t.same(calls, [['ip', '-j', '-4', 'addr', 'show']]);
  t.equal(e.interfaceAddress('mbtest-br9'), ip('10.98.0.1'), 'the first IPv4 address of an interface os.networkInterfaces() does not list');
  t.equal(e.interfaceAddress('mbtest-bad'), undefined);
  t.equal(e.interfaceAddress('lo'), ip('127.0.0.1'));
  t.equal(e.interfaceExists('lo'), true);
  t.equal(e.interfaceExists('nosuchif0'), false);
  t.equal(calls.length, 1, 'lookups after the snapshot run nothing');

  const failing = await systemConfigEnv(async (argv) => { throw new CommandError(argv, 'spawn', undefined, 'ENOENT'); });
  t.equal(failing.interfaceAddress('mbtest-br9'), undefined, 'no ip: no kernel addresses, no error');
  t.equal(failing.interfaceAddress('lo'), ip('127.0.0.1'), 'networkInterfaces() still answers');
});
