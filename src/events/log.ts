/**
 * Log lines for the bus events that no module logs itself, so every event has one pino line with
 * a stable `event` name (the bus type) and the event's fields. The other events keep the richer
 * lines their modules write where they happen (dhcp.ack, tftp.transfer / tftp.declined /
 * tftp.transfer-failed, http.boot-script, machines.state, syslog.message, ...); logging them here
 * too would double them, and DHCP offers stay at debug there (a storm is tens of thousands a
 * second).
 *
 * Nothing secret rides on these events (addresses, file names, IQNs, BMC host:port, command
 * names, error kinds, operation steps; CHAP secrets are scrubbed from errors in iscsi/tgtd.ts,
 * BMC passwords stay in the power drivers); the logger redacts secret key names anyway.
 */
import type { EventBus, EventType, MetalbootEvent } from './bus.js';

/** The bus types this subscriber writes a line for, with the line's human message. */
export const LOGGED_EVENTS: Readonly<Partial<Record<EventType, string>>> = {
  'tftp.start': 'TFTP transfer started',
  'iscsi.login': 'iSCSI login',
  'iscsi.logout': 'iSCSI logout',
  'power.command': 'power command',
  'operation': 'operation progress',
  'machine.changed': 'machine changed',
};

/** The logger surface used (a pino Logger fits). */
export interface EventLogger {
  info(obj: object, msg: string): void;
}

/** Subscribes; returns the unsubscribe. */
export function logBusEvents(bus: EventBus, log: EventLogger): () => void {
  return bus.subscribe((e) => {
    const msg = LOGGED_EVENTS[e.type];
    if (msg !== undefined) log.info(eventLogFields(e), msg);
  });
}

/** `event` = the bus type, then the event's own fields; `at` dropped (the line has its time). */
export function eventLogFields(e: MetalbootEvent): Record<string, unknown> {
  const { type, at: _at, ...fields } = e;
  return { event: type, ...fields };
}
