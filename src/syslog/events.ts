/**
 * What an accepted syslog line tells the event bus and the log: one `syslog` event and one
 * `syslog.message` line, attributed to the machine at the source address when one is known.
 */
import type { EventBody, EventBus } from '../events/bus.js';
import type { Mac } from '../net/mac.js';
import type { SyslogMessage } from './message.js';
import type { SyslogSource } from './server.js';

export function syslogEvent(msg: SyslogMessage, ip: string, mac: Mac | undefined): Extract<EventBody, { readonly type: 'syslog' }> {
  return { type: 'syslog', ip, severity: msg.severity, text: msg.text, ...(mac ? { mac } : {}) };
}

/** The syslog server's onMessage: publishes the line and logs it. */
export function syslogPublisher(bus: EventBus, log: { info(obj: object, msg: string): void }, macAt: (ip: string) => Mac | undefined): (msg: SyslogMessage, from: SyslogSource) => void {
  return (msg, from) => {
    const mac = macAt(from.address);
    bus.publish(syslogEvent(msg, from.address, mac));
    log.info({ event: 'syslog.message', mac, from: from.address, severity: msg.severity, app: msg.app, text: msg.text }, 'syslog');
  };
}
