/**
 * Prometheus metrics (prom-client), read from the event bus and from the counters the protocol
 * servers already keep. Nothing here is updated on a packet's hot path: counters the servers keep
 * are read when /metrics is scraped; bus events (IPMI, operations, iSCSI) are counted as they come.
 *
 * Names and labels are stable (documented for the README):
 *   metalboot_dhcp_received_total                      datagrams received on the DHCP sockets
 *   metalboot_dhcp_packets_total{type}                 outcomes by kind: offer ack nak decline release inform
 *                                                      proxy_offer proxy_ack ignored no_address (other)
 *   metalboot_dhcp_malformed_total                     dropped: undecodable or unclassifiable
 *   metalboot_dhcp_replies_total                       replies sent
 *   metalboot_dhcp_errors_total                        handler or send failures
 *   metalboot_dhcp_leases{pool,state}                  state active|free; pool = the subnet CIDR (config-bounded)
 *   metalboot_dhcp_pool_exhausted_total{subnet}        DISCOVERs left without an offer because the subnet's pool ran out
 *   metalboot_tftp_requests_total                      read/write requests received
 *   metalboot_tftp_transfers_total{result}             result completed|failed|declined (options declined at the OACK: a size query)
 *   metalboot_tftp_errors_total{kind}                  kind malformed|refused|not_found|busy|busy_client|busy_unknown|wrong_tid
 *   metalboot_tftp_bytes_total                         data bytes acknowledged by clients
 *   metalboot_tftp_retransmits_total                   DATA/OACK packets resent
 *   metalboot_tftp_active_transfers                    transfers in progress
 *   metalboot_ipmi_command_duration_seconds{bmc}       histogram of command latency per BMC address
 *   metalboot_ipmi_commands_total{command,result}      result ok|error
 *   metalboot_ipmi_command_errors_total{bmc}           failed commands per BMC address
 *   metalboot_iscsi_sessions                           open iSCSI sessions (tgtd, last look)
 *   metalboot_iscsi_logins_total, metalboot_iscsi_logouts_total
 *   metalboot_storage_pool_data_percent{backend}       thin pool data% (lvm) or filesystem use% (file); absent without storage
 *   metalboot_storage_pool_metadata_percent{backend}   thin pool metadata% (lvm only)
 *   metalboot_operations_total{kind,result}            finished operations, result succeeded|failed
 *   metalboot_machines{state}                          machines by state
 *   metalboot_http_request_duration_seconds{method,route,status}
 *                                                      route = the route pattern ("/api/v1/disks/:mac"),
 *                                                      "unmatched" for 404s; status = 2xx..5xx
 *   metalboot_http_connections                        HTTP connections open (counted by the connection guard)
 *   metalboot_http_connections_refused_total{reason}   reason per_address|total (http.limits caps)
 *   metalboot_syslog_messages_total{result}            accepted|malformed|oversized|rate_limited|not_served|rate_limited_total
 *   metalboot_syslog_dropped_total{reason}             not_served (syslog.acceptFrom) | rate_source | rate_total | malformed | oversized
 *   metalboot_syslog_handler_errors_total
 *   metalboot_events_published_total, metalboot_event_subscriber_errors_total
 *   metalboot_sse_clients, metalboot_sse_dropped_total  event stream clients; clients dropped for not reading
 *   metalboot_process_* / metalboot_nodejs_*           prom-client's default process metrics (optional)
 *
 * Label values never come from a packet: BMC addresses, commands, operation kinds and machine
 * states pass through a BoundedLabel (sanitised, at most N distinct values, the rest "other").
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventBus, MetalbootEvent } from '../events/bus.js';
import type { Lease } from '../leases/lease.js';
import type { SubnetConfig } from '../config/types.js';
import { cidrContains, formatCidr } from '../net/ipv4.js';
import type { Usage } from '../storage/backend.js';
import type { DaemonProbes } from '../status/types.js';

/** Sanitised label values with a cap on how many distinct ones are ever emitted. */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}

  value(raw: string): string {
    const v = raw.replace(/[^A-Za-z0-9_.:/-]/g, '_').slice(0, 64) || 'unknown';
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(v);
    return v;
  }
}

export interface PoolLeaseCount {
  readonly pool: string;
  readonly active: number;
  readonly free: number;
}

/** Active (bound, unexpired) and free addresses of each subnet's pool; quarantined ones are neither. */
export function poolLeaseCounts(subnets: readonly SubnetConfig[], leases: readonly Lease[], now: number): PoolLeaseCount[] {
  return subnets.filter((s) => s.pool !== undefined).map((s) => {
    const { first, last } = s.pool!;
    let active = 0, held = 0;
    for (const l of leases) {
      if (l.ip < first || l.ip > last || !cidrContains(s.cidr, l.ip) || l.expiresAt <= now) continue;
      if (l.state === 'bound') active++;
      else if (l.state === 'declined') held++;
    }
    return { pool: formatCidr(s.cidr), active, free: Math.max(0, last - first + 1 - active - held) };
  });
}

export interface MetricsOptions {
  readonly bus?: EventBus;
  readonly probes?: DaemonProbes;
  readonly leasePools?: () => readonly PoolLeaseCount[];
  readonly iscsiSessions?: () => number;
  readonly poolUsage?: () => Promise<Usage | undefined>;
  /** prom-client's process metrics (CPU, memory, event loop lag); the daemon turns them on. */
  readonly processMetrics?: boolean;
  /** How long a pool usage reading is reused (it may run lvs); default 5 s. */
  readonly poolCacheMs?: number;
  readonly clock?: () => number;
  /** The HTTP connection guard's counts (http/limits.ts); undefined until the server is built. */
  readonly httpConnections?: () => { open: number; refusedPerAddress: number; refusedTotal: number } | undefined;
}

const DHCP_TYPES = new Set(['offer', 'ack', 'nak', 'decline', 'release', 'inform', 'proxy_offer', 'proxy_ack', 'ignored', 'no_address']);
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

export class Metrics {
  readonly registry = new Registry();
  private readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  private readonly routes = new BoundedLabel(200);
  private readonly unsubscribe: (() => void) | undefined;
  private sse: () => { clients: number; dropped: number } = () => ({ clients: 0, dropped: 0 });

  constructor(o: MetricsOptions = {}) {
    const r = this.registry;
    const probes = o.probes ?? {};
    const clock = o.clock ?? Date.now;
    /** A counter whose values are read from elsewhere at scrape time. */
    const mirrored = <L extends string>(name: string, help: string, labelNames: readonly L[], read: () => [Partial<Record<L, string>>, number][] | undefined) =>
      new Counter<L>({
        name, help, labelNames, registers: [r],
        collect() {
          const rows = read();
          this.reset();
          for (const [labels, v] of rows ?? []) this.inc(labels as Record<L, string>, Math.max(0, v));
        },
      });
    const scalar = (name: string, help: string, read: () => number | undefined) => mirrored(name, help, [], () => { const v = read(); return v === undefined ? undefined : [[{}, v]]; });

    // DHCP
    const dhcp = () => probes.dhcp?.counters;
    scalar('metalboot_dhcp_received_total', 'DHCP datagrams received.', () => dhcp()?.received);
    scalar('metalboot_dhcp_malformed_total', 'DHCP datagrams dropped as malformed.', () => dhcp()?.malformed);
    scalar('metalboot_dhcp_replies_total', 'DHCP replies sent.', () => dhcp()?.replies);
    scalar('metalboot_dhcp_errors_total', 'DHCP requests that failed in the handler or on send.', () => dhcp()?.errors);
    mirrored('metalboot_dhcp_packets_total', 'DHCP requests by outcome.', ['type'], () => {
      const c = dhcp();
      if (!c) return undefined;
      const by = new Map<string, number>();
      for (const [ev, n] of c.byEvent) {
        const t = ev.replace(/^dhcp\./, '').replace(/-/g, '_');
        const k = DHCP_TYPES.has(t) ? t : 'other';
        by.set(k, (by.get(k) ?? 0) + n);
      }
      return [...by].map(([type, n]) => [{ type }, n]);
    });
    new Gauge({
      name: 'metalboot_dhcp_leases', help: 'Addresses of each DHCP pool by state (active = bound and unexpired).', labelNames: ['pool', 'state'], registers: [r],
      collect() {
        this.reset();
        for (const p of o.leasePools?.() ?? []) { this.set({ pool: p.pool, state: 'active' }, p.active); this.set({ pool: p.pool, state: 'free' }, p.free); }
      },
    });

    // TFTP
    const tftp = () => probes.tftp?.counters;
    scalar('metalboot_tftp_requests_total', 'TFTP requests received.', () => tftp()?.requests);
    scalar('metalboot_tftp_bytes_total', 'TFTP data bytes acknowledged by clients.', () => tftp()?.bytes);
    scalar('metalboot_tftp_retransmits_total', 'TFTP packets sent again after a timeout.', () => tftp()?.retransmits);
    mirrored('metalboot_tftp_transfers_total', 'TFTP transfers finished, by result.', ['result'], () => {
      const c = tftp();
      return c && [[{ result: 'completed' }, c.completed], [{ result: 'failed' }, c.failed], [{ result: 'declined' }, c.declined]];
    });
    mirrored('metalboot_tftp_errors_total', 'TFTP requests and packets refused or dropped, by kind.', ['kind'], () => {
      const c = tftp();
      return c && ([['malformed', 'malformed'], ['refused', 'refused'], ['not_found', 'notFound'], ['busy', 'busy'], ['busy_client', 'busyClient'], ['busy_unknown', 'busyUnknown'], ['wrong_tid', 'wrongTid']] as const)
        .map(([kind, k]) => [{ kind }, c[k]]);
    });
    new Gauge({
      name: 'metalboot_tftp_active_transfers', help: 'TFTP transfers in progress.', registers: [r],
      collect() { this.set(probes.tftp?.transfersInProgress().length ?? 0); },
    });

    // IPMI, operations and iSCSI from the bus
    const bmcs = new BoundedLabel(1024);
    const commands = new BoundedLabel(64);
    const kinds = new BoundedLabel(64);
    const states = new BoundedLabel(64);
    const ipmiDuration = new Histogram({
      name: 'metalboot_ipmi_command_duration_seconds', help: 'IPMI command latency per BMC.', labelNames: ['bmc'], registers: [r],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    const ipmiCommands = new Counter({ name: 'metalboot_ipmi_commands_total', help: 'IPMI commands by command and result.', labelNames: ['command', 'result'], registers: [r] });
    const ipmiErrors = new Counter({ name: 'metalboot_ipmi_command_errors_total', help: 'Failed IPMI commands per BMC.', labelNames: ['bmc'], registers: [r] });
    const operations = new Counter({ name: 'metalboot_operations_total', help: 'Finished operations by kind and result.', labelNames: ['kind', 'result'], registers: [r] });
    const logins = new Counter({ name: 'metalboot_iscsi_logins_total', help: 'iSCSI session logins seen.', registers: [r] });
    const logouts = new Counter({ name: 'metalboot_iscsi_logouts_total', help: 'iSCSI session logouts seen.', registers: [r] });
    // From the bus, not the DHCP counters: only the event knows the subnet. Subnets are config-bounded; the cap is a guard.
    const exhaustedSubnets = new BoundedLabel(256);
    const poolExhausted = new Counter({ name: 'metalboot_dhcp_pool_exhausted_total', help: 'DISCOVERs left without an offer because the pool ran out, by subnet.', labelNames: ['subnet'], registers: [r] });
    const onEvent = (e: MetalbootEvent): void => {
      switch (e.type) {
        case 'ipmi.command': {
          const bmc = bmcs.value(e.bmc);
          ipmiDuration.observe({ bmc }, Math.max(0, e.ms) / 1000);
          ipmiCommands.inc({ command: commands.value(e.command), result: e.ok ? 'ok' : 'error' });
          if (!e.ok) ipmiErrors.inc({ bmc });
          break;
        }
        case 'operation':
          if (e.status !== 'running') operations.inc({ kind: kinds.value(e.kind), result: e.status });
          break;
        case 'dhcp.no-address':
          if (e.exhaustedSubnet) poolExhausted.inc({ subnet: exhaustedSubnets.value(e.exhaustedSubnet) });
          break;
        case 'iscsi.login': logins.inc(); break;
        case 'iscsi.logout': logouts.inc(); break;
        default: break;
      }
    };
    this.unsubscribe = o.bus?.subscribe(onEvent);
    new Gauge({
      name: 'metalboot_iscsi_sessions', help: 'Open iSCSI sessions as of the last look at tgtd.', registers: [r],
      collect() { this.set(o.iscsiSessions?.() ?? 0); },
    });
    new Gauge({
      name: 'metalboot_machines', help: 'Machines by state.', labelNames: ['state'], registers: [r],
      collect() {
        this.reset();
        const rows = probes.machines?.rows();
        if (!rows) return;
        const by = new Map<string, number>();
        for (const m of rows) { const s = states.value(m.state); by.set(s, (by.get(s) ?? 0) + 1); }
        for (const [state, n] of by) this.set({ state }, n);
      },
    });

    // Storage pool (usage() may run a command: reuse a reading for a few seconds)
    let poolAt = -Infinity;
    let pool: Promise<Usage | undefined> | undefined;
    const usage = (): Promise<Usage | undefined> => {
      if (!o.poolUsage) return Promise.resolve(undefined);
      if (!pool || clock() - poolAt > (o.poolCacheMs ?? 5000)) {
        poolAt = clock();
        pool = o.poolUsage().catch(() => undefined);
      }
      return pool;
    };
    new Gauge({
      name: 'metalboot_storage_pool_data_percent', help: 'Storage pool data use in percent (thin pool data%, or filesystem use).', labelNames: ['backend'], registers: [r],
      async collect() { const u = await usage(); this.reset(); if (u) this.set({ backend: u.backend }, u.dataPercent); },
    });
    new Gauge({
      name: 'metalboot_storage_pool_metadata_percent', help: 'Thin pool metadata use in percent (lvm only).', labelNames: ['backend'], registers: [r],
      async collect() { const u = await usage(); this.reset(); if (u?.metadataPercent !== undefined) this.set({ backend: u.backend }, u.metadataPercent); },
    });

    // Syslog, bus, SSE
    const sys = () => probes.syslog?.counters;
    mirrored('metalboot_syslog_messages_total', 'Syslog datagrams by result.', ['result'], () => {
      const c = sys();
      return c && ([['accepted', 'accepted'], ['malformed', 'malformed'], ['oversized', 'oversized'], ['rate_limited', 'rateLimited'], ['not_served', 'notServed'], ['rate_limited_total', 'rateLimitedTotal']] as const)
        .map(([result, k]) => [{ result }, c[k]]);
    });
    // The same drops by reason, in one family an alert can sum (a flood shows as not_served or rate_*).
    mirrored('metalboot_syslog_dropped_total', 'Syslog datagrams dropped, by reason.', ['reason'], () => {
      const c = sys();
      return c && ([['not_served', 'notServed'], ['rate_source', 'rateLimited'], ['rate_total', 'rateLimitedTotal'], ['malformed', 'malformed'], ['oversized', 'oversized']] as const)
        .map(([reason, k]) => [{ reason }, c[k]]);
    });
    scalar('metalboot_syslog_handler_errors_total', 'Accepted syslog messages whose handler failed.', () => sys()?.handlerErrors);
    scalar('metalboot_events_published_total', 'Events published on the internal bus.', () => o.bus?.counters.published);
    scalar('metalboot_event_subscriber_errors_total', 'Bus subscribers that threw.', () => o.bus?.counters.subscriberErrors);
    const self = this;
    new Gauge({ name: 'metalboot_sse_clients', help: 'Event stream (SSE) clients connected.', registers: [r], collect() { this.set(self.sse().clients); } });
    scalar('metalboot_sse_dropped_total', 'Event stream clients dropped because they did not read fast enough.', () => self.sse().dropped);

    // HTTP
    new Gauge({ name: 'metalboot_http_connections', help: 'HTTP connections open.', registers: [r], collect() { this.set(o.httpConnections?.()?.open ?? 0); } });
    mirrored('metalboot_http_connections_refused_total', 'HTTP connections closed at once by a connection limit, by reason.', ['reason'], () => {
      const c = o.httpConnections?.();
      return c && [[{ reason: 'per_address' }, c.refusedPerAddress], [{ reason: 'total' }, c.refusedTotal]];
    });
    this.httpDuration = new Histogram({
      name: 'metalboot_http_request_duration_seconds', help: 'HTTP request duration by method, route pattern and status class.',
      labelNames: ['method', 'route', 'status'], registers: [r], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    });

    if (o.processMetrics) collectDefaultMetrics({ register: r, prefix: 'metalboot_' });
  }

  /** One finished HTTP request; `route` is the route pattern (undefined when nothing matched). */
  observeHttp(method: string, route: string | undefined, statusCode: number, seconds: number): void {
    const status = statusCode >= 100 && statusCode < 600 ? `${Math.floor(statusCode / 100)}xx` : 'other';
    this.httpDuration.observe({
      method: HTTP_METHODS.has(method) ? method : 'OTHER',
      route: route === undefined ? 'unmatched' : this.routes.value(route),
      status,
    }, Math.max(0, seconds));
  }

  /** Where the event stream's client count and drops are read from. */
  observeSse(read: () => { clients: number; dropped: number }): void {
    this.sse = read;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    this.unsubscribe?.();
  }
}
