/**
 * The composition root: builds every service from the config, starts the
 * edges, and stops them in reverse order. Nothing else constructs services.
 */
import { errorMessage } from './errors/message.js';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import { openStore, type RecordStore, type Store } from './store/db.js';
import { LeaseTable } from './leases/table.js';
import { LeaseService } from './leases/service.js';
import { PingProber, assertPingAvailable, noConflictCheck } from './net/ping.js';
import { runCommand } from './exec/run.js';
import { DhcpServer } from './dhcp/server.js';
import { messageTypeName } from './dhcp/options.js';
import { buildHttpApp, listen } from './http/server.js';
import { deriveConnectionCap, guardConnections, readNofileLimit, type ConnectionGuard } from './http/limits.js';
import { formatIpv4 } from './net/ipv4.js';
import { DirectoryProvider } from './tftp/provider.js';
import { TftpServer } from './tftp/server.js';
import type { VolumeBackend } from './storage/backend.js';
import { FileBackend } from './storage/files.js';
import { LvmBackend } from './storage/lvm.js';
import { Tgtd } from './iscsi/tgtd.js';
import { IscsiReconciler } from './reconcile.js';
import { DiskService } from './disks/service.js';
import { CHAP_USER_PREFIX } from './disks/record.js';
import { ImageService } from './images/service.js';
import type { HttpDeps } from './http/server.js';
import { TokenAuth, writeTokenFile } from './http/auth.js';
import { Operations } from './machines/operations.js';
import { BmcPool } from './machines/bmc.js';
import { MachineService } from './machines/service.js';
import type { Mac } from './net/mac.js';
import { buildTimeline } from './status/timeline.js';
import { EventBus, type DhcpEventType, type EventBody } from './events/bus.js';
import { AddressBook } from './events/addresses.js';
import { ProxyReplies, scriptAccess } from './boot/script-access.js';
import { readNeighbour } from './net/neighbours.js';
import { PoolExhaustionWarnings } from './dhcp/pool-exhausted.js';
import { logBusEvents } from './events/log.js';
import { parseIpv4, prefixToMask, tryParseIpv4, type Ipv4 } from './net/ipv4.js';
import { Metrics, poolLeaseCounts } from './metrics/registry.js';
import { MacHistory } from './status/history.js';
import type { DaemonProbes } from './status/types.js';
import { SyslogServer } from './syslog/server.js';
import { tightenTree } from './store/private-files.js';
import { isInside } from './images/import-dir.js';
import { RereadSubnets, sourceClassifier, type SubnetSource } from './syslog/accept.js';
import { networkInterfaces } from 'node:os';
import type { Cidr } from './net/ipv4.js';

/** boot-assets/ beside dist/ (dist/src/daemon.js -> <root>/boot-assets). */
const BOOT_ASSETS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../boot-assets');

/**
 * The subnets metalboot serves, for syslog.acceptFrom `served`: the configured DHCP subnets in
 * server mode (a relay's subnet is one of them); in proxy mode the DHCP interface's own IPv4
 * subnets, where the clients whose PXE requests it answers live.
 */
function servedSubnets(config: Config, clock: () => number): readonly Cidr[] | SubnetSource {
  if (config.dhcp.mode === 'server') return config.dhcp.subnets.map((s) => s.cidr);
  if (config.dhcp.mode === 'off') return [];
  // The interface may get (or change) its address after the start: read again on a miss.
  return new RereadSubnets(() => interfaceSubnets(config.dhcp.interface), clock);
}

function interfaceSubnets(iface: string): Cidr[] {
  return (networkInterfaces()[iface] ?? []).filter((a) => a.family === 'IPv4' && a.cidr).map((a) => {
    const prefix = Number(a.cidr!.split('/')[1]);
    return { network: ((parseIpv4(a.address) & prefixToMask(prefix)) >>> 0) as Ipv4, prefix };
  });
}

export interface RunningDaemon {
  stop(): Promise<void>;
}

/**
 * Test hook for the crash-safety tests: METALBOOT_TEST_CRASH_AT=<op>:<step> makes the daemon
 * SIGKILL itself right after that step of a disk operation, or as a machine provision enters a
 * step (`machine-provision:<step>`). Unset in production.
 */
function crashPointFromEnv(log: Logger): ((step: string) => void) | undefined {
  const at = process.env['METALBOOT_TEST_CRASH_AT'];
  if (!at) return undefined;
  log.warn({ event: 'daemon.test-crash-armed', at }, 'test crash point armed');
  return (step) => { if (step === at) process.kill(process.pid, 'SIGKILL'); };
}

/**
 * Storage, tgtd and the disk service. tgtd is left running when the daemon stops: machines
 * booted from their iSCSI disks keep them across a metalboot restart or upgrade.
 */
async function startStorage(config: Config, store: RecordStore, bus: EventBus, log: Logger, clock: () => number, crashPoint: ((step: string) => void) | undefined): Promise<NonNullable<HttpDeps['storage']>> {
  const s = config.storage;
  const backend: VolumeBackend = s.backend === 'lvm'
    ? new LvmBackend({ vg: s.lvm!.vg, pool: s.lvm!.thinPool, runner: runCommand, thresholdPercent: s.maxPoolPercent })
    : new FileBackend({ root: s.fileDir, runner: runCommand, thresholdPercent: s.maxPoolPercent });
  await backend.init();
  log.info({ event: 'storage.ready', backend: backend.kind, ...(backend instanceof FileBackend ? { dir: s.fileDir, cloneMode: backend.cloneMode } : { vg: s.lvm!.vg, pool: s.lvm!.thinPool }) },
    backend instanceof FileBackend && backend.cloneMode === 'copy' ? 'storage ready; this filesystem cannot reflink, so clones are full (sparse) copies' : 'storage ready');
  const i = config.iscsi;
  const tgtd = new Tgtd({
    runner: runCommand, controlPort: i.controlPort, tgtadmPath: i.tgtadm, manageTgtd: i.manageTgtd, chapSecretsVia: i.chapSecretsVia,
    portal: { address: i.portal.host, port: i.portal.port }, pidFile: path.join(config.dataDir, 'tgtd.pid'),
  });
  const ilog = log.child({ module: 'iscsi' });
  let disks: DiskService | undefined;
  const reconciler = new IscsiReconciler({
    tgtd, manageTgtd: i.manageTgtd, iqnPrefix: i.iqnPrefix, userPrefix: CHAP_USER_PREFIX,
    desired: () => disks!.desired(), intervalMs: i.checkIntervalMs, log: ilog,
    onSession: (kind, target, sess) => {
      const mac = disks?.list().find((r) => r.targetIqn === target)?.mac;
      const address = sess.connections[0]?.address;
      bus.publish({ type: kind === 'login' ? 'iscsi.login' : 'iscsi.logout', iqn: target, initiator: sess.initiator, ...(address ? { address } : {}), ...(mac ? { mac } : {}) });
    },
  });
  disks = new DiskService({
    backend, store, reconciler, iqnPrefix: i.iqnPrefix, bstype: i.bstype, mutualChap: i.mutualChap, log: ilog, clock,
    ...(crashPoint ? { crashPoint } : {}),
  });
  const recovered = await disks.recover();
  log.info({ event: 'disks.loaded', disks: disks.list().length, ...recovered }, 'disks loaded');
  // Not fatal: DHCP and TFTP still serve while tgtd is down; the periodic check keeps trying.
  await reconciler.reconcile('start').catch(() => undefined);
  reconciler.start();
  // Created private; an existing directory's mode is the admin's (files are only read from it).
  await mkdir(config.images.importDir, { recursive: true, mode: 0o700 });
  const images = new ImageService({ backend, imageUsers: (id) => disks!.imageUsers(id), runner: runCommand, tmpDir: path.join(config.dataDir, 'tmp'), importDir: config.images.importDir, log });
  return { images, disks, backend, reconciler, portal: i.portal };
}

/**
 * dataDir holds BMC passwords, CHAP secrets and the API token in clear, and the file backend the
 * machines' disks: whatever an older version or another umask left readable to group or other
 * is made root's alone before anything is opened, one warning naming what was changed.
 */
async function securePrivateDirs(config: Config, log: Logger): Promise<void> {
  const walked = [await tightenTree(config.dataDir)];
  // A storage directory elsewhere, or mounted below dataDir (not walked with it), is walked as its own tree.
  const fileDir = config.storage.backend === 'file' && config.iscsi.enabled ? config.storage.fileDir : undefined;
  if (fileDir !== undefined && (!isInside(config.dataDir, fileDir) || walked[0]!.otherFs.some((p) => p === fileDir || isInside(p, fileDir)))) {
    walked.push(await tightenTree(fileDir));
  }
  for (const r of walked) {
    const fields = { root: r.root, ...(r.truncated ? { truncated: true } : {}) };
    if (r.tightened.length > 0) {
      log.warn({ event: 'files.tightened', ...fields, count: r.tightened.length, paths: r.tightened.slice(0, 50).map((x) => `${x.path} (${x.from.toString(8).padStart(4, '0')} -> ${x.to.toString(8).padStart(4, '0')})`) },
        'files readable by other users were made private to root');
    }
    if (r.failed.length > 0) log.warn({ event: 'files.tighten-failed', ...fields, count: r.failed.length, paths: r.failed.slice(0, 20).map((x) => `${x.path}: ${x.error}`) }, 'could not make these private');
    if (r.otherFs.length > 0) log.info({ event: 'files.other-fs', ...fields, paths: r.otherFs.slice(0, 20) }, 'other file systems below the data directory were not walked');
  }
}

export async function startDaemon(config: Config, log: Logger): Promise<RunningDaemon> {
  const clock = () => Date.now();
  await securePrivateDirs(config, log);
  const store: Store & RecordStore = await openStore(config.dataDir, {
    onCorrupt: (key, reason) => log.warn({ event: 'store.corrupt-record', key, reason }, 'corrupt record skipped'),
  });
  const stops: (() => Promise<void>)[] = [() => store.close()];
  const stopAll = async () => {
    for (const s of stops.splice(0).reverse()) {
      try { await s(); } catch (e) { log.error({ event: 'daemon.stop-error', err: errorMessage(e) }, 'error while stopping'); }
    }
  };

  // One test crash point for the disk operations and the machine provisions (armed and logged once).
  const crashPoint = crashPointFromEnv(log);
  const bus = new EventBus(clock);
  // Server mode learns addresses from its own ACKs only (events/addresses.ts).
  const addresses = new AddressBook(undefined, config.dhcp.mode !== 'server');
  bus.subscribe((e) => addresses.learn(e));
  // One log line for each event no module logs itself (iSCSI logins, IPMI commands, operations, ...).
  logBusEvents(bus, log);
  // A pool that ran out is an operator's problem: a warning, at most one per subnet per minute.
  const exhausted = new PoolExhaustionWarnings(60_000);
  bus.subscribe((e) => {
    if (e.type !== 'dhcp.no-address' || !e.exhaustedSubnet) return;
    const w = exhausted.note(e.exhaustedSubnet, clock());
    if (w) log.warn({ event: 'dhcp.pool-exhausted', subnet: w.subnet, mac: e.mac, suppressed: w.suppressed }, `DHCP pool of ${w.subnet} exhausted: no address to offer`);
  });

  try {
    let leases: LeaseService | undefined;
    if (config.dhcp.mode === 'server') {
      const saved = await store.loadLeases();
      const table = new LeaseTable({
        subnets: config.dhcp.subnets,
        reservations: config.dhcp.reservations,
        offerHoldMs: config.dhcp.offerHoldSeconds * 1000,
        quarantineMs: config.dhcp.quarantineSeconds * 1000,
      }, saved);
      let prober = noConflictCheck;
      if (config.dhcp.conflictCheck.method === 'ping') {
        await assertPingAvailable(runCommand);
        let lastSkipLog = 0;
        prober = new PingProber(runCommand, config.dhcp.interface, config.dhcp.conflictCheck.timeoutMs, 64, (ip) => {
          // At most one line per 10 s: a flood of new clients must not flood the log.
          if (clock() - lastSkipLog < 10_000) return;
          lastSkipLog = clock();
          log.warn({ event: 'dhcp.conflict-check-skipped', ip: formatIpv4(ip) }, 'too many conflict checks at once; offering without one');
        });
      }
      leases = new LeaseService(table, store, prober, clock, {
        conflict: (ip, mac) => log.warn({ event: 'dhcp.conflict', ip: formatIpv4(ip), mac }, 'address answered the conflict check; quarantined'),
      });
      // Syslog and TFTP from machines still holding a lease from before a restart are attributed
      // at once, not only after their next DHCP packet.
      const seeded = addresses.seed(leases.list(), clock());
      log.info({ event: 'leases.loaded', count: saved.length, active: seeded }, 'leases loaded');
      for (const r of await store.loadReservations()) {
        const res = await leases.reserve(r);
        if (!res.ok) log.warn({ event: 'dhcp.reservation-skipped', mac: r.mac, ip: formatIpv4(r.ip), reason: res.reason }, 'stored reservation conflicts with the config; skipped');
      }
      const sweeper = setInterval(() => leases?.sweep(), 10_000);
      sweeper.unref();
      stops.push(async () => clearInterval(sweeper));
    }

    let storage: HttpDeps['storage'];
    if (config.iscsi.enabled) {
      storage = await startStorage(config, store, bus, log, clock, crashPoint);
      const { reconciler } = storage;
      stops.push(() => reconciler.stop());
    }

    const tokenFile = config.http.apiTokenFile;
    if (!existsSync(tokenFile)) {
      await writeTokenFile(tokenFile);
      log.info({ event: 'http.token-created', file: tokenFile }, 'API token created (read it from this file; rotate with `metalboot token rotate`)');
    }
    const auth = new TokenAuth(tokenFile, config.http.readOnlyTokenFile);
    const operations = new Operations(store, bus, clock);
    await operations.load();
    const mlog = log.child({ module: 'machines' });
    const bmcs = new BmcPool(config.ipmi, bus, { debug: (o, m) => mlog.debug(o, m), warn: (o, m) => mlog.warn(o, m) });
    stops.push(() => bmcs.closeAll());
    const machines = new MachineService({
      store, bus, bmcs, operations, clock, log: mlog, discover: config.machines.discover,
      ...(storage ? { disks: storage.disks } : {}), ...(leases ? { leases } : {}),
      ...(crashPoint ? { crashPoint } : {}),
    });
    await machines.load();
    log.info({ event: 'machines.loaded', count: machines.list().length }, 'machines loaded');
    const disks = storage?.disks;
    // Proxy mode: when metalboot last sent a ProxyDHCP reply per MAC (filled by the DHCP outcome hook below).
    const proxyReplies = new ProxyReplies(config.machines.proxyBootWindowSec * 1000);
    const ifaceSubnet = leases && config.dhcp.serverAddress !== undefined ? leases.subnetOf(config.dhcp.serverAddress) : undefined;
    const boot: HttpDeps['boot'] = {
      publicUrl: config.http.publicUrl, unknown: config.machines.unknown, netbootDir: config.machines.netbootDir,
      sanboot: { tries: config.machines.sanbootTries, retryDelaySec: config.machines.sanbootRetryDelaySec, fallback: config.machines.sanbootFallback },
      machine: (mac) => machines.get(mac),
      ...(disks ? { disk: (mac: Mac) => disks.get(mac), portal: config.iscsi.portal } : {}),
      // Server mode: the lease is authoritative; proxy mode: what the client asked the real server for.
      ipOf: (mac) => { const l = leases?.leaseOf(mac); return l && l.state === 'bound' && l.expiresAt > clock() ? formatIpv4(l.ip) : addresses.ipOf(mac); },
      // Who may have a machine's CHAP secrets: the lease table (server) or the proxy ACK (proxy),
      // plus the neighbour table; never the address book.
      scriptAccess: async (mac, from) => {
        const now = clock();
        const l = leases?.leaseOf(mac);
        const fromIp = tryParseIpv4(from);
        const pr = proxyReplies.of(mac, now);
        return scriptAccess(mac, from, {
          mode: config.dhcp.mode, now, neighbour: await readNeighbour(from),
          relayed: !!leases && fromIp !== undefined && leases.subnetOf(fromIp) !== undefined && leases.subnetOf(fromIp) !== ifaceSubnet,
          ...(l ? { lease: { ip: formatIpv4(l.ip), bound: l.state === 'bound', expiresAt: l.expiresAt } } : {}),
          ...(pr !== undefined ? { proxyReplyUntil: pr } : {}),
        });
      },
    };
    // Whether an address holds a DHCP binding metalboot made: a bound, unexpired lease of its own
    // on that address (the lease table, never the address book, which any sender can teach). In
    // proxy mode metalboot binds nothing, so no address counts (syslog share, TFTP reserved slots).
    const hasBinding = (ip: string): boolean => leases?.leaseAtAddress(ip) !== undefined;
    // Which MAC a source address is: its lease holder in server mode, else the address book.
    const macAt = (ip: string): Mac | undefined => leases?.leaseAtAddress(ip)?.mac ?? addresses.macOf(ip);
    // Status page, metrics and per-machine event history; the servers started below fill in `probes`.
    const probes: DaemonProbes = {
      machines: {
        rows: () => machines.list().map((m) => {
          const ip = boot.ipOf?.(m.mac) ?? m.ip;
          return { mac: m.mac, name: m.name, state: m.state, power: machines.powerOf(m.mac), ...(ip ? { ip } : {}), ...(m.image ? { image: m.image } : {}) };
        }),
      },
    };
    const history = new MacHistory();
    const detachHistory = history.attach(bus);
    stops.push(async () => detachHistory());
    const leaseSvc = leases, storageSvc = storage;
    let httpGuard: ConnectionGuard | undefined;
    const metrics = new Metrics({
      httpConnections: () => httpGuard && { open: httpGuard.open(), ...httpGuard.counters },
      bus, probes, clock, processMetrics: true,
      ...(leaseSvc ? { leasePools: () => poolLeaseCounts(config.dhcp.subnets, leaseSvc.list(), clock()) } : {}),
      ...(storageSvc ? { iscsiSessions: () => storageSvc.reconciler.lastShow().reduce((n, t) => n + t.sessions.length, 0), poolUsage: () => storageSvc.backend.usage() } : {}),
    });
    stops.push(async () => metrics.close());
    const app = buildHttpApp({
      status: { public: config.status.public, probes, history, metrics },
      log, clock, auth, bootAssetsDir: BOOT_ASSETS_DIR, ...(leases ? { leases } : {}), ...(storage ? { storage } : {}), bus, addresses, boot,
      machines: { service: machines, operations, timeline: (mac: Mac) => buildTimeline(history.of(mac), { now: clock() }) },
      limits: config.http.limits,
    });
    // HTTP connections may never take the fds TFTP (two sockets and a file per transfer), the store
    // and the tgtadm children need: the cap stays below (RLIMIT_NOFILE minus that reserve) / 2,
    // since a connection serving a file holds two.
    const lim = config.http.limits;
    const nofile = await readNofileLimit();
    const reserve = lim.fdReserve + 3 * (config.tftp.enabled ? config.tftp.maxTransfers : 0); // a transfer: its connected socket, the strangers socket, the file
    const cap = deriveConnectionCap(lim.maxConnections, nofile, reserve);
    httpGuard = guardConnections(app.server, { maxConnections: cap.maxConnections, perAddress: Math.min(lim.maxConnectionsPerAddress, cap.maxConnections), log, clock });
    log[cap.limitedBy === 'config' ? 'info' : 'warn']({
      event: 'http.limits', maxConnections: cap.maxConnections, limitedBy: cap.limitedBy, configuredMaxConnections: lim.maxConnections,
      maxConnectionsPerAddress: lim.maxConnectionsPerAddress, fdReserve: reserve, nofileSoft: nofile?.soft ?? null, nofileHard: nofile?.hard ?? null,
      headersTimeoutMs: lim.headersTimeoutMs, requestTimeoutMs: lim.requestTimeoutMs, keepAliveTimeoutMs: lim.keepAliveTimeoutMs, idleTimeoutMs: lim.idleTimeoutMs,
    }, cap.limitedBy === 'config' ? 'HTTP connection limits'
      : `HTTP connections capped at ${cap.maxConnections} by (RLIMIT_NOFILE ${nofile?.soft} minus ${reserve} reserved fds) / 2 (raise LimitNOFILE= or lower http.limits)`);
    await listen(app, config.http.listen);
    stops.push(() => app.close());
    log.info({ event: 'http.listening', host: config.http.listen.host, port: config.http.listen.port }, 'HTTP listening');

    // iPXE's syslog (RFC 3164 over UDP), attributed to machines by source address; advertised as DHCP option 7.
    let logServer: Ipv4 | undefined;
    if (config.syslog.enabled) {
      const sl = config.syslog;
      const slog = log.child({ module: 'syslog' });
      const syslog = new SyslogServer({
        listen: sl.listen, maxPerSecondPerSource: sl.maxPerSecondPerSource, burst: sl.burst, log: slog,
        classify: sourceClassifier(sl.acceptFrom, { subnets: servedSubnets(config, clock), hasBinding }),
        total: { maxPerSecond: sl.maxPerSecondTotal, burst: sl.burstTotal },
        onMessage: (msg, from) => {
          const mac = macAt(from.address);
          bus.publish({ type: 'syslog', ip: from.address, severity: msg.severity, text: msg.text, ...(mac ? { mac } : {}) });
          slog.info({ event: 'syslog.message', mac, from: from.address, severity: msg.severity, app: msg.app, text: msg.text }, 'syslog');
        },
      });
      await syslog.start();
      if (sl.acceptFrom === 'served' && config.dhcp.mode === 'off') slog.warn({ event: 'syslog.nothing-served', acceptFrom: sl.acceptFrom }, 'dhcp.mode is off: no address is served, so syslog.acceptFrom "served" takes nothing; list CIDRs or "any"');
      probes.syslog = syslog;
      stops.push(async () => { await syslog.stop(); slog.info({ event: 'syslog.stopped', ...syslog.counters }, 'syslog stopped'); });
      logServer = sl.listen.host !== '0.0.0.0' ? parseIpv4(sl.listen.host) : config.dhcp.serverAddress;
      if (sl.listen.port !== 514) slog.warn({ event: 'syslog.nonstandard-port', port: sl.listen.port }, 'iPXE sends syslog to port 514 of the DHCP option 7 address; it will not reach this port');
    }

    if (config.dhcp.mode !== 'off') {
      const serverId = config.dhcp.serverAddress;
      if (serverId === undefined) throw new Error('dhcp.serverAddress is not known');
      const dhcp = new DhcpServer({
        config: config.dhcp, serverId, publicUrl: config.http.publicUrl, log, ...(leases ? { leases } : {}), ...(logServer !== undefined ? { logServer } : {}),
        onOutcome: (o, c) => {
          // Proxy mode: a reply of ours for this MAC opens its script window (boot/script-access.ts).
          if ((o.event === 'dhcp.proxy-offer' || o.event === 'dhcp.proxy-ack') && o.mac && o.reply) proxyReplies.record(o.mac, clock());
          // Built field by field (no spreads): this runs for every DHCP packet of a storm.
          const ip = o.ip ?? c.requestedIp ?? (c.ciaddr !== 0 ? c.ciaddr : undefined);
          const e: { -readonly [K in keyof Extract<EventBody, { type: DhcpEventType }>]: Extract<EventBody, { type: DhcpEventType }>[K] } = { type: o.event as DhcpEventType, arch: c.arch, ipxe: c.isIpxe };
          if (o.mac) e.mac = o.mac;
          if (ip !== undefined) e.ip = formatIpv4(ip);
          if (c.messageType !== undefined) e.message = messageTypeName(c.messageType);
          if (c.vendorClass) e.vendorClass = c.vendorClass;
          if (c.uuid) e.uuid = c.uuid;
          if (c.hostname) e.hostname = c.hostname;
          if (o.boot && o.boot.kind !== 'none') e.bootFile = 'file' in o.boot ? o.boot.file : o.boot.url;
          if (o.reason) e.reason = o.reason;
          if (o.exhaustedSubnet) e.exhaustedSubnet = o.exhaustedSubnet;
          bus.publish(e);
        },
      });
      await dhcp.start();
      probes.dhcp = dhcp;
      stops.push(async () => {
        await dhcp.stop();
        const c = dhcp.counters;
        log.info({ event: 'dhcp.stopped', received: c.received, malformed: c.malformed, replies: c.replies, ignored: c.ignored, errors: c.errors }, 'DHCP stopped');
      });
    }

    if (config.tftp.enabled) {
      const root = config.tftp.root ?? BOOT_ASSETS_DIR;
      const provider = new DirectoryProvider(root);
      try {
        await provider.check();
      } catch (e) {
        throw new Error(`tftp.root ${root}: ${errorMessage(e)}`);
      }
      const tftp = new TftpServer({
        config: config.tftp, provider, log: log.child({ module: 'tftp' }),
        // Known = holds a bound, unexpired lease of ours; tftp.reservedTransfers are theirs alone.
        // Server mode only: in proxy mode nothing proves a binding (the address a client asked the
        // lab's server for is anyone's to claim), so every client is treated alike.
        ...(config.dhcp.mode === 'server' ? { isKnownClient: (ip: string) => hasBinding(ip) } : {}),
        onTransfer: (e) => {
          const mac = macAt(e.client);
          if (e.phase === 'start') bus.publish({ type: 'tftp.start', client: e.client, file: e.file, size: e.size, ...(mac ? { mac } : {}) });
          else {
            const { phase: _p, ...rest } = e;
            bus.publish({ type: 'tftp.end', ...rest, ...(mac ? { mac } : {}) });
          }
        },
      });
      await tftp.start();
      probes.tftp = tftp;
      stops.push(async () => {
        await tftp.stop();
        const c = tftp.counters;
        log.info({ event: 'tftp.stopped', requests: c.requests, completed: c.completed, failed: c.failed, declined: c.declined, refused: c.refused, busy: c.busy, busyClient: c.busyClient, busyUnknown: c.busyUnknown, bytes: c.bytes, retransmits: c.retransmits }, 'TFTP stopped');
      });
    }
  } catch (e) {
    await stopAll();
    throw e;
  }

  log.info({ event: 'daemon.ready', dataDir: config.dataDir, dhcpMode: config.dhcp.mode, tftp: config.tftp.enabled }, 'metalboot ready');
  return { stop: stopAll };
}
