/**
 * What one DHCP outcome tells the event bus (pure): the handler's outcome plus what the client
 * said about itself, as a `dhcp.*` event. This runs for every packet of a boot storm, so the
 * event is built field by field on one object, no spreads and no intermediate objects.
 */
import type { EventBody, DhcpEventType } from '../events/bus.js';
import { formatIpv4 } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';
import type { ClientInfo } from './classify.js';
import type { Outcome } from './handler.js';
import { messageTypeName } from './options.js';

export type DhcpEvent = Extract<EventBody, { readonly type: DhcpEventType }>;
type Building = { -readonly [K in keyof DhcpEvent]: DhcpEvent[K] };

export function dhcpEvent(o: Outcome, c: ClientInfo): DhcpEvent {
  const ip = o.ip ?? c.requestedIp ?? (c.ciaddr !== 0 ? c.ciaddr : undefined);
  const e: Building = { type: o.event, arch: c.arch, ipxe: c.isIpxe };
  if (o.mac) e.mac = o.mac;
  if (ip !== undefined) e.ip = formatIpv4(ip);
  if (c.messageType !== undefined) e.message = messageTypeName(c.messageType);
  if (c.vendorClass) e.vendorClass = c.vendorClass;
  if (c.uuid) e.uuid = c.uuid;
  if (c.hostname) e.hostname = c.hostname;
  if (o.boot && o.boot.kind !== 'none') e.bootFile = 'file' in o.boot ? o.boot.file : o.boot.url;
  if (o.reason) e.reason = o.reason;
  if (o.exhaustedSubnet) e.exhaustedSubnet = o.exhaustedSubnet;
  return e;
}

/**
 * The MAC a ProxyDHCP reply of ours (offer or ACK) was sent for, if this outcome is one: in proxy
 * mode such a reply opens that machine's script window (boot/script-access.ts).
 */
export function proxyReplyMac(o: Outcome): Mac | undefined {
  return (o.event === 'dhcp.proxy-offer' || o.event === 'dhcp.proxy-ack') && o.reply ? o.mac : undefined;
}
