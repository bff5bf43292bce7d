/**
 * The DHCP protocol decisions: one decoded request in, at most one reply out,
 * plus an outcome for logs and counters. Server mode follows RFC 2131 §4.3;
 * ProxyDHCP follows PXE 2.1 §2.2. No sockets here: dhcp/server.ts sends.
 */
import type { BootFilesConfig } from '../config/types.js';
import { cidrBroadcast, cidrContains, formatCidr, IPV4_ZERO, type Ipv4 } from '../net/ipv4.js';
import { nonUnicastMacReason, type Mac } from '../net/mac.js';
import type { LeaseService } from '../leases/service.js';
import type { DhcpEventType } from '../events/bus.js';
import { selectBoot, type BootTarget } from './bootfile.js';
import type { ClientInfo } from './classify.js';
import { MessageType, messageTypeName } from './options.js';
import { BOOTREQUEST, type DhcpPacket } from './packet.js';
import { buildInformAck, buildLeaseReply, buildNak, buildProxyReply, PROXY_PORT, type Destination, type Reply } from './reply.js';

export interface HandlerContext {
  readonly serverId: Ipv4;
  readonly bootFiles: BootFilesConfig;
  readonly publicUrl: string;
  /** Syslog receiver advertised as option 7 (iPXE logs there), when enabled. */
  readonly logServer?: Ipv4;
}

export interface Outcome {
  readonly reply?: Reply;
  /** Stable event name for logs, metrics and the event bus, e.g. "dhcp.ack", "dhcp.ignored". */
  readonly event: DhcpEventType;
  readonly mac?: Mac;
  readonly ip?: Ipv4;
  readonly reason?: string;
  readonly boot?: BootTarget;
  /** dhcp.no-address because the pool ran out: the subnet (CIDR) whose pool it is. */
  readonly exhaustedSubnet?: string;
}

/** How long after an ACK the client may still DECLINE the address (its ARP probe takes ~1-2 s; RFC 5227 §2.1.1). */
export const DECLINE_WINDOW_MS = 60_000;

const ignore = (c: ClientInfo, reason: string): Outcome => ({ event: 'dhcp.ignored', mac: c.mac, reason });

function bootFor(c: ClientInfo, ctx: HandlerContext): BootTarget {
  return selectBoot(c, ctx.bootFiles, ctx.publicUrl);
}

/**
 * Server mode: leases and, for network-boot clients, boot information. `source` is the UDP
 * source of the request: RELEASE and INFORM are honoured only from the address they name.
 */
export async function handleServer(req: DhcpPacket, c: ClientInfo, ctx: HandlerContext, leases: LeaseService, source: Destination): Promise<Outcome> {
  if (req.op !== BOOTREQUEST) return ignore(c, 'not a BOOTREQUEST');
  if (c.messageType === undefined) return ignore(c, 'no message type (BOOTP is not served)');
  const mac = c.mac;
  if (!mac) return ignore(c, 'not an Ethernet client');
  const notUnicast = nonUnicastMacReason(mac);
  if (notUnicast) return ignore(c, `chaddr is ${notUnicast}`);
  // The client's network: the relay's subnet, else ours (RFC 2131 §4.3.1).
  const netAddr = c.relayed ? c.giaddr : ctx.serverId;
  const subnet = leases.subnetOf(netAddr);
  const details = {
    hostname: leases.hostnameFor(mac, c.hostname),
    clientArch: c.archCode,
    vendorClass: c.vendorClass,
    clientId: c.clientId,
  };
  const boot = bootFor(c, ctx);
  const ours = (sid: Ipv4 | undefined) => sid === ctx.serverId;

  switch (c.messageType) {
    case MessageType.Discover: {
      if (!subnet) return ignore(c, `no subnet for ${c.relayed ? 'relay' : 'interface'} address`);
      const choice = await leases.offer(mac, subnet, c.requestedIp);
      if (!choice.ok) return { event: 'dhcp.no-address', mac, reason: choice.reason, ...(choice.exhausted ? { exhaustedSubnet: formatCidr(subnet.cidr) } : {}) };
      const reply = buildLeaseReply(req, c, MessageType.Offer, { ip: choice.ip, subnet, leaseTime: subnet.leaseTime, hostname: details.hostname }, boot, ctx.serverId, ctx.logServer);
      return { event: 'dhcp.offer', mac, ip: choice.ip, reply, boot };
    }
    case MessageType.Request: {
      let ip: Ipv4;
      // The subnet the client must be on, when we can tell.
      let clientNet = subnet;
      if (c.serverId !== undefined) {
        // SELECTING: the client picked a server.
        if (!ours(c.serverId)) {
          leases.forgetOffer(mac);
          return ignore(c, 'client selected another server');
        }
        if (c.requestedIp === undefined) return ignore(c, 'SELECTING request without requested address');
        ip = c.requestedIp;
      } else if (c.requestedIp !== undefined && c.ciaddr === IPV4_ZERO) {
        // INIT-REBOOT: verify the remembered address; we answer only for our subnets.
        ip = c.requestedIp;
        if (!subnet) return ignore(c, 'INIT-REBOOT on a network we do not serve');
        if (!cidrContains(subnet.cidr, ip)) {
          if (leases.subnetOf(ip)) return { event: 'dhcp.nak', mac, ip, reason: 'wrong network', reply: buildNak(req, ctx.serverId, 'wrong network') };
          return ignore(c, 'INIT-REBOOT for an address we do not own');
        }
      } else if (c.ciaddr !== IPV4_ZERO) {
        // RENEWING (unicast to us) or REBINDING (broadcast).
        ip = c.ciaddr;
        if (!leases.subnetOf(ip)) return ignore(c, 'renewal of an address we do not own');
        // RENEWING is unicast straight to us, so a client of a relayed subnet
        // arrives with giaddr 0: RFC 2131 §4.3.2 says trust ciaddr then, rather
        // than NAK it for not being on our own interface's subnet.
        if (!c.relayed) clientNet = undefined;
      } else {
        return ignore(c, 'REQUEST with neither server id, requested address nor ciaddr');
      }
      const s = leases.subnetOf(ip);
      if (!s || (clientNet && s !== clientNet)) {
        return { event: 'dhcp.nak', mac, ip, reason: 'wrong network', reply: buildNak(req, ctx.serverId, 'wrong network') };
      }
      const a = leases.assignable(mac, ip, s);
      if (a !== 'ok') return { event: 'dhcp.nak', mac, ip, reason: a, reply: buildNak(req, ctx.serverId, `address ${a}`) };
      await leases.bind(mac, ip, s, details);
      const reply = buildLeaseReply(req, c, MessageType.Ack, { ip, subnet: s, leaseTime: s.leaseTime, hostname: details.hostname }, boot, ctx.serverId, ctx.logServer);
      return { event: 'dhcp.ack', mac, ip, reply, boot };
    }
    case MessageType.Decline: {
      if (!ours(c.serverId) || c.requestedIp === undefined) return ignore(c, 'DECLINE not for us');
      const ds = leases.subnetOf(c.requestedIp);
      if (!ds) return ignore(c, 'DECLINE not for us');
      // Only the client holding (or offered) the address may decline it: a
      // DECLINE from anyone else would strip the owner's lease and, once the
      // quarantine ran out, hand its still-valid address to a second client.
      const held = leases.assignable(mac, c.requestedIp, ds);
      if (held === 'in-use' || held === 'reserved') return ignore(c, 'DECLINE of an address held by another client');
      // RFC 2131 §4.4.1: a client declines right after the ACK, when its ARP probe finds the address
      // taken. DECLINE is broadcast from 0.0.0.0, so the sender cannot be checked; a bound lease
      // declined long after its ACK is someone with the holder's chaddr stripping its lease.
      const since = leases.msSinceBound(mac, c.requestedIp);
      if (since !== undefined && since > DECLINE_WINDOW_MS) return ignore(c, 'DECLINE long after the ACK');
      await leases.decline(mac, c.requestedIp);
      return { event: 'dhcp.decline', mac, ip: c.requestedIp };
    }
    case MessageType.Release: {
      if (c.serverId !== undefined && !ours(c.serverId)) return ignore(c, 'RELEASE for another server');
      // RFC 2131 §4.4.4/§4.4.6: the client unicasts RELEASE from the address it gives up, so a
      // RELEASE from any other source is someone else's (a relay never forwards one): it would
      // free the holder's lease, and with it the holder's claim to its boot script.
      if (source.address !== c.ciaddr) return ignore(c, 'RELEASE not sent from the address it releases');
      const l = await leases.release(mac, c.ciaddr);
      return l ? { event: 'dhcp.release', mac, ip: c.ciaddr } : ignore(c, 'RELEASE of an address this client does not hold');
    }
    case MessageType.Inform: {
      const s = c.ciaddr !== IPV4_ZERO ? leases.subnetOf(c.ciaddr) : undefined;
      if (!s) return ignore(c, 'INFORM from an address we do not serve');
      // RFC 2131 §4.4.3: a client that already has an address informs from it. Neither the
      // subnet's network nor its broadcast address can be one host's.
      if (c.ciaddr === s.cidr.network || c.ciaddr === cidrBroadcast(s.cidr)) return ignore(c, 'INFORM with a network or broadcast ciaddr');
      // Direct: the packet comes from ciaddr itself. Relayed (giaddr set): it comes from the relay,
      // and ciaddr must be in the relay's subnet. Either way INFORM binds nothing and teaches the
      // address book nothing (events/addresses.ts): it only gets the configuration ACK.
      if (c.relayed ? source.address !== c.giaddr || leases.subnetOf(c.giaddr) !== s : source.address !== c.ciaddr) {
        return ignore(c, c.relayed ? 'relayed INFORM not from its relay, or for another subnet' : 'INFORM not sent from its ciaddr');
      }
      return { event: 'dhcp.inform', mac, ip: c.ciaddr, reply: buildInformAck(req, c, s, boot, ctx.serverId, ctx.logServer), boot };
    }
    default:
      return ignore(c, `unexpected ${messageTypeName(c.messageType)}`);
  }
}

/**
 * ProxyDHCP: PXE clients only, never an address. DISCOVER on port 67 gets an
 * OFFER; REQUEST (or DISCOVER) on port 4011 gets an ACK sent back to its source.
 */
export function handleProxy(req: DhcpPacket, c: ClientInfo, ctx: HandlerContext, port: number, source: Destination): Outcome {
  if (req.op !== BOOTREQUEST) return ignore(c, 'not a BOOTREQUEST');
  if (!c.isPxe) return ignore(c, 'not a PXE client');
  if (!c.mac) return ignore(c, 'not an Ethernet client');
  const notUnicast = nonUnicastMacReason(c.mac);
  if (notUnicast) return ignore(c, `chaddr is ${notUnicast}`);
  const boot = bootFor(c, ctx);
  if (boot.kind === 'none') return ignore(c, boot.reason);
  if (port === PROXY_PORT) {
    if (c.messageType !== MessageType.Request && c.messageType !== MessageType.Discover) return ignore(c, `unexpected ${messageTypeName(c.messageType)} on 4011`);
    return { event: 'dhcp.proxy-ack', mac: c.mac, reply: buildProxyReply(req, c, MessageType.Ack, boot, ctx.serverId, source, ctx.logServer), boot };
  }
  if (c.messageType !== MessageType.Discover) return ignore(c, `proxy answers only DISCOVER on 67 (got ${messageTypeName(c.messageType)})`);
  return { event: 'dhcp.proxy-offer', mac: c.mac, reply: buildProxyReply(req, c, MessageType.Offer, boot, ctx.serverId, source, ctx.logServer), boot };
}
