/**
 * What the network tells the machine service: an unknown PXE client becomes a `discovered`
 * machine (when discovery is on, up to a cap), and a known machine's iSCSI login and logout move
 * it between `ready` and `active`. The bus calls in for every event of a DHCP storm, so which
 * events matter is decided once, cheaply, in `interest`.
 */
import type { DhcpEventType, EventBus, MetalbootEvent } from '../events/bus.js';
import type { Logger } from '../log.js';
import type { Mac } from '../net/mac.js';
import type { Firmware, Machine } from './model.js';
import type { MachineRecords } from './records.js';

type DhcpSighting = Extract<MetalbootEvent, { type: DhcpEventType }>;
type SessionEvent = Extract<MetalbootEvent, { type: 'iscsi.login' | 'iscsi.logout' }>;

const SIGHTINGS: ReadonlySet<string> = new Set(['dhcp.offer', 'dhcp.ack', 'dhcp.proxy-offer', 'dhcp.proxy-ack']);

/** The one filter: a known machine's iSCSI session, or an unknown network-boot client seen by DHCP. */
export function interest(e: MetalbootEvent, known: boolean, discover: boolean): { session: SessionEvent } | { sighting: DhcpSighting } | undefined {
  if (known) return e.type === 'iscsi.login' || e.type === 'iscsi.logout' ? { session: e } : undefined;
  if (!discover || !SIGHTINGS.has(e.type)) return undefined;
  const d = e as DhcpSighting;
  return d.ipxe || d.vendorClass?.startsWith('PXEClient') || d.vendorClass?.startsWith('HTTPClient') ? { sighting: d } : undefined;
}

/** The record of a network-boot client nobody enrolled, from what its DHCP request said. */
export function discoveredMachine(mac: Mac, e: DhcpSighting, now: number): Machine {
  const firmware: Firmware = e.arch === 'bios' ? 'bios' : e.arch && e.arch !== 'unknown' ? 'uefi' : 'unknown';
  return {
    mac, name: `m-${mac.replaceAll(':', '')}`, bootMode: 'sanboot', firmware, state: 'discovered', createdAt: now, updatedAt: now,
    discovered: { at: now, ...(e.arch ? { arch: e.arch } : {}), ...(e.vendorClass ? { vendorClass: e.vendorClass } : {}), ...(e.uuid ? { uuid: e.uuid } : {}), ...(e.hostname ? { hostname: e.hostname } : {}) },
  };
}

export interface DiscoveryOptions {
  readonly bus: EventBus;
  readonly records: MachineRecords;
  readonly clock: () => number;
  readonly log: Logger;
  /** Record unknown PXE clients as `discovered`. */
  readonly discover: boolean;
  /** Upper bound on discovered machines kept (a MAC flood must not fill the store). */
  readonly maxDiscovered?: number;
}

/** Subscribes; returns the unsubscribe. */
export function watchNetwork(o: DiscoveryOptions): () => void {
  const { records } = o;
  const observe = async (mac: Mac, what: NonNullable<ReturnType<typeof interest>>): Promise<void> => {
    if ('session' in what) {
      const m = records.get(mac);
      const e = what.session;
      if (e.type === 'iscsi.login' && m?.state === 'ready') await records.setState(mac, 'active', `iSCSI login from ${e.address ?? e.initiator}`, 'tgtd');
      else if (e.type === 'iscsi.logout' && m?.state === 'active') await records.setState(mac, 'ready', 'iSCSI session ended', 'tgtd');
      return;
    }
    let discovered = 0;
    for (const x of records.all()) if (x.state === 'discovered') discovered++;
    if (discovered >= (o.maxDiscovered ?? 1000) || records.has(mac)) return;
    const now = o.clock();
    const e = what.sighting;
    await records.write(discoveredMachine(mac, e, now), { mac, at: now, actor: 'dhcp', from: null, to: 'discovered', reason: `PXE boot seen (${e.vendorClass ?? 'iPXE'})` });
    o.log.info({ event: 'machines.discovered', mac, arch: e.arch }, 'unknown PXE client recorded as discovered');
  };
  return o.bus.subscribe((e) => {
    if (!e.mac) return;
    const what = interest(e, records.has(e.mac), o.discover);
    if (what) void observe(e.mac, what).catch((err: unknown) => o.log.error({ event: 'machines.observe-error', err: String(err) }, 'event handling failed'));
  });
}
