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
import { buildBootMedium } from './boot/media-build.js';
import { renderMediaScript } from './boot/media.js';
import { DhcpServer } from './dhcp/server.js';
import { dhcpEvent, proxyReplyMac } from './dhcp/events.js';
import { buildHttpApp, listen } from './http/server.js';
import { deriveConnectionCap, guardConnections, readNofileLimit, sseHeartbeatMs, type ConnectionGuard } from './http/limits.js';
import { formatIpv4, parseIpv4, type Ipv4 } from './net/ipv4.js';
import { DirectoryProvider } from './tftp/provider.js';
import { TftpServer } from './tftp/server.js';
import { createBackend } from './storage/factory.js';
import { Tgtd } from './iscsi/tgtd.js';
import { IscsiReconciler } from './reconcile.js';
import { DiskService } from './disks/service.js';
import { CHAP_USER_PREFIX } from './disks/record.js';
import { ImageService } from './images/service.js';
import type { HttpDeps } from './http/server.js';
import { TokenAuth, writeTokenFile } from './http/auth.js';
import { Operations } from './machines/operations.js';
import { PowerPool } from './power/pool.js';
import { createPowerDriver } from './power/drivers.js';
import { MachineService } from './machines/service.js';
import type { Mac } from './net/mac.js';
import { EventBus } from './events/bus.js';
import { AddressBook } from './events/addresses.js';
import { attribution } from './events/attribution.js';
import { ProxyReplies, scriptAccessPolicy } from './boot/script-access.js';
import { readNeighbour } from './net/neighbours.js';
import { warnOnPoolExhaustion } from './dhcp/pool-exhausted.js';
import { logBusEvents } from './events/log.js';
import { interfaceSubnets } from './net/interfaces.js';
import { Metrics, poolLeaseCounts } from './metrics/registry.js';
import { MacHistory } from './status/history.js';
import { StatusModel, storageSources } from './status/snapshot.js';
import type { DaemonProbes } from './status/types.js';
import { EventStreams } from './http/routes/events.js';
import { SyslogServer } from './syslog/server.js';
import { syslogPublisher } from './syslog/events.js';
import { securePrivateDirs } from './store/private-files.js';
import { servedSubnets, sourceClassifier } from './syslog/accept.js';
import { tftpEvent } from './tftp/events.js';
import { sessionEvent } from './iscsi/events.js';
import { AgentSessions } from './agent/sessions.js';
import { Inventories } from './machines/inventory.js';
import { inspect } from './machines/inspect.js';
import { claimAgentStates, settleInterruptedAgentStates } from './machines/agent-operation.js';
import { deploy } from './machines/deploy.js';
import { erase } from './machines/erase.js';
import { capture } from './machines/capture.js';

/** boot-assets/ beside dist/ (dist/src/daemon.js -> <root>/boot-assets). */
const BOOT_ASSETS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../boot-assets');
/** agent-assets/ beside dist/: the agent ramdisk per architecture (scripts/agent-ramdisk.sh). */
const AGENT_ASSETS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../agent-assets');

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

/** What the HTTP edge gets of storage, and the reconciler the root stops and the metrics read. */
type StorageServices = NonNullable<HttpDeps['storage']> & { readonly reconciler: IscsiReconciler };

/**
 * Storage, tgtd and the disk service. tgtd is left running when the daemon stops: machines
 * booted from their iSCSI disks keep them across a metalboot restart or upgrade.
 */
async function startStorage(config: Config, store: RecordStore, bus: EventBus, log: Logger, clock: () => number, crashPoint: ((step: string) => void) | undefined): Promise<StorageServices> {
  const backend = createBackend(config.storage, { runner: runCommand });
  await backend.init();
  const about = backend.describe();
  log.info({ event: 'storage.ready', backend: backend.kind, ...about.fields }, about.note ? `storage ready; ${about.note}` : 'storage ready');
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
    onSession: (kind, target, sess) => bus.publish(sessionEvent(kind, target, sess, disks?.macOfTarget(target))),
    ...(backend.health ? { storageHealth: backend.health } : {}),
  });
  disks = new DiskService({
    backend, store, reconciler, iqnPrefix: i.iqnPrefix, mutualChap: i.mutualChap, log: ilog, clock,
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
  return { images, disks, reconciler, portal: i.portal };
}

export async function startDaemon(config: Config, log: Logger): Promise<RunningDaemon> {
  const clock = () => Date.now();
  // dataDir holds secrets in clear, the file backend the machines' disks: made root's alone first.
  await securePrivateDirs(config.dataDir, config.storage.backend === 'file' && config.iscsi.enabled ? config.storage.dir : undefined, log);
  const store: Store & RecordStore = await openStore(config.dataDir, {
    onCorrupt: (key, reason) => log.warn({ event: 'store.corrupt-record', key, reason }, 'corrupt record skipped'),
    onMigrated: (to, what, records) => log.info({ event: 'store.migrated', to, what, records }, `store migrated to schema ${to}`),
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
  // One log line for each event no module logs itself (iSCSI logins, power commands, operations, ...).
  logBusEvents(bus, log);
  // A pool that ran out is an operator's problem: a warning, at most one per subnet per minute.
  warnOnPoolExhaustion(bus, log, clock, 60_000);

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

    let storage: StorageServices | undefined;
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
    const plog = log.child({ module: 'power' });
    // Settings a driver learns (a pinned BMC certificate) go to the machine's record (machines is made below).
    const power = new PowerPool((s, keep) => createPowerDriver(s, { defaults: config, log: plog, keep }), bus, clock, (mac, prev, next): Promise<void> => machines.keepLearnedPower(mac, prev, next));
    stops.push(() => power.closeAll());
    const machines: MachineService = new MachineService({
      store, bus, power, operations, clock, log: mlog, discover: config.machines.discover,
      ...(storage ? { disks: storage.disks } : {}), ...(leases ? { leases } : {}),
      ...(crashPoint ? { crashPoint } : {}),
    });
    await machines.load();
    log.info({ event: 'machines.loaded', count: machines.list().length }, 'machines loaded');
    // Agent operations: the sessions (one-time tokens, memory only) and the inventories (stored).
    const sessions = new AgentSessions(clock);
    const inventories = new Inventories(store);
    await inventories.load();
    const parts = machines.operationParts();
    claimAgentStates(parts.claims);
    const agentDeps = { ...parts, operations, sessions, inventories, clock, log: mlog, timeoutMs: config.machines.agentTimeoutSec * 1000 };
    await settleInterruptedAgentStates(agentDeps);
    const disks = storage?.disks;
    // Proxy mode: when metalboot last sent a ProxyDHCP reply per MAC (filled by the DHCP outcome hook below).
    const proxyReplies = new ProxyReplies(config.machines.proxyBootWindowSec * 1000);
    // Which machine is at which address: the lease table (server mode), else the address book.
    const who = attribution(leases, addresses, clock);
    const boot: HttpDeps['boot'] = {
      publicUrl: config.http.publicUrl, unknown: config.machines.unknown, netbootDir: config.machines.netbootDir,
      sanboot: { tries: config.machines.sanbootTries, retryDelaySec: config.machines.sanbootRetryDelaySec, fallback: config.machines.sanbootFallback },
      machine: (mac) => machines.get(mac),
      agent: {
        sessions, dir: config.machines.agentDir ?? AGENT_ASSETS_DIR, lldpSec: config.machines.agentLldpSec,
        inventoried: (mac) => inventories.get(mac) !== undefined,
        // The DHCP observer records a PXE client as discovered before its iPXE asks for a script.
        autoInspect: (mac) => {
          if (!machines.get(mac)) throw new Error('not recorded as discovered (machines.discover is off)');
          inspect(agentDeps, mac, 'machines.unknown', { powerOn: false });
        },
      },
      ...(disks ? { disk: (mac: Mac) => disks.get(mac), portal: config.iscsi.portal } : {}),
      ipOf: who.ipOf,
      // Who may have a machine's CHAP secrets: the lease table (server) or the proxy ACK (proxy),
      // plus the neighbour table; never the address book.
      scriptAccess: scriptAccessPolicy({
        mode: config.dhcp.mode, clock, proxyReplies, neighbour: readNeighbour,
        ...(leases ? { leases } : {}), ...(config.dhcp.serverAddress !== undefined ? { serverAddress: config.dhcp.serverAddress } : {}),
      }),
    };
    // Status page, metrics and per-machine event history; the servers started below fill in `probes`.
    const probes: DaemonProbes = {
      machines: {
        rows: () => machines.list().map((m) => {
          const ip = who.ipOf(m.mac) ?? m.ip;
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
      ...(storageSvc ? { iscsiSessions: () => storageSvc.reconciler.lastShow().reduce((n, t) => n + t.sessions.length, 0), poolUsage: () => storageSvc.disks.usage() } : {}),
    });
    stops.push(async () => metrics.close());
    // The status page's model and its event streams (SSE heartbeat within the HTTP idle timeout).
    const streams = new EventStreams({ bus, history, heartbeatMs: sseHeartbeatMs(config.http.limits.idleTimeoutMs) });
    metrics.observeSse(() => streams.stats);
    const model = new StatusModel({
      bus, history, probes, clock, addresses,
      ...(leaseSvc ? { leases: () => leaseSvc.list() } : {}), ...(storageSvc ? storageSources(storageSvc, clock) : {}),
    });
    const app = buildHttpApp({
      status: { public: config.status.public, model, streams, metrics },
      log, clock, auth, bootAssetsDir: BOOT_ASSETS_DIR,
      bootMedia: (r) => buildBootMedium({ run: runCommand, assetsDir: BOOT_ASSETS_DIR }, renderMediaScript(config.http.publicUrl, r.network)),
      ...(leases ? { leases } : {}), ...(storage ? { storage } : {}), bus, boot,
      machines: { service: machines, operations, timeline: (mac: Mac) => model.timeline(mac) },
      agent: {
        sessions, inspect: (mac, actor) => inspect(agentDeps, mac, actor), inventory: (mac) => inventories.get(mac),
        deploy: async (mac, spec, actor) => {
          if (!storage) throw new Error('deploy needs the image store (iscsi.enabled: false)');
          return deploy({ ...agentDeps, images: storage.images }, mac, spec, actor);
        },
        erase: (mac, spec, actor) => erase(agentDeps, mac, spec, actor),
        capture: async (mac, spec, actor) => {
          if (!storage) throw new Error('capture needs the image store (iscsi.enabled: false)');
          return capture({ ...agentDeps, images: storage.images }, mac, spec, actor);
        },
        ...(storage ? { imageSource: (id: string) => storage!.images.source(id) } : {}),
      },
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
        classify: sourceClassifier(sl.acceptFrom, { subnets: servedSubnets(config.dhcp, interfaceSubnets, clock), hasBinding: who.hasBinding }),
        total: { maxPerSecond: sl.maxPerSecondTotal, burst: sl.burstTotal },
        onMessage: syslogPublisher(bus, slog, who.macAt),
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
          const replied = proxyReplyMac(o);
          if (replied) proxyReplies.record(replied, clock());
          bus.publish(dhcpEvent(o, c));
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
        ...(config.dhcp.mode === 'server' ? { isKnownClient: who.hasBinding } : {}),
        onTransfer: (e) => bus.publish(tftpEvent(e, who.macAt(e.client))),
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
