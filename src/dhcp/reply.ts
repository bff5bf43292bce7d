/**
 * Builds replies (pure): a request, who sent it, what it gets → the reply
 * packet and where it goes. RFC 2131 §4.3 (table 3: fields and options per
 * message), §4.1 (destination), PXE 2.1 §2.2 (ProxyDHCP), RFC 4578 §2.5.
 */
import { MAX_BOOT_FILE_BYTES } from '../config/defaults.js';
import type { SubnetConfig } from '../config/types.js';
import { cidrBroadcast, cidrMask, IPV4_BROADCAST, IPV4_ZERO, type Ipv4 } from '../net/ipv4.js';
import type { BootTarget } from './bootfile.js';
import type { ClientInfo } from './classify.js';
import {
  MessageType, Opt, encodeSubOptions, setIpv4, setIpv4List, setText, setUint32, setUint8,
} from './options.js';
import { FLAG_BROADCAST, replyTo, type DhcpPacket } from './packet.js';

export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;
export const PROXY_PORT = 4011;

export interface Destination {
  readonly address: Ipv4;
  readonly port: number;
}

export interface Reply {
  readonly packet: DhcpPacket;
  readonly to: Destination;
}

export interface LeaseGrant {
  readonly ip: Ipv4;
  readonly subnet: SubnetConfig;
  /** Seconds remaining on the lease. */
  readonly leaseTime: number;
  readonly hostname?: string;
}

/** iPXE option 175 sub-option 176 "no-pxedhcp": do not wait for ProxyDHCP offers. */
const IPXE_NO_PXEDHCP = encodeSubOptions([[176, Buffer.from([1])]]);
/** PXE option 43 sub-option 6 (PXE_DISCOVERY_CONTROL) = 8: boot the file named in this offer, no discovery. */
const PXE_VENDOR_BOOT_FILE_DIRECTLY = encodeSubOptions([[6, Buffer.from([8])]], true);

/**
 * RFC 3046 §2.2: a server that understands option 82 echoes it unchanged in
 * its reply, so the relay can use it (e.g. the circuit to forward on) and
 * then strip it. Set last so it is the last option before End, as relays expect.
 */
function echoRelayAgentInfo(req: DhcpPacket, p: DhcpPacket): void {
  const info = req.options.get(Opt.RelayAgentInfo);
  if (info && req.giaddr !== IPV4_ZERO) p.options.set(Opt.RelayAgentInfo, info);
}

/** RFC 2131 §4.1: where a server reply goes (not for ProxyDHCP on port 4011). */
export function replyDestination(req: DhcpPacket, type: MessageType): Destination {
  if (req.giaddr !== IPV4_ZERO) return { address: req.giaddr, port: SERVER_PORT };
  if (type === MessageType.Nak) return { address: IPV4_BROADCAST, port: CLIENT_PORT };
  if (req.ciaddr !== IPV4_ZERO) return { address: req.ciaddr, port: CLIENT_PORT };
  // With the broadcast bit clear, RFC 2131 allows unicast to yiaddr/chaddr, but
  // that needs an ARP entry injected for an address the client does not have
  // yet; broadcasting instead is explicitly allowed ("MAY be sent as a broadcast").
  return { address: IPV4_BROADCAST, port: CLIENT_PORT };
}

/** Boot fields and options for a network-boot client. */
function applyBoot(p: DhcpPacket, c: ClientInfo, boot: BootTarget, nextServer: Ipv4, inServerMode: boolean): void {
  if (boot.kind === 'none') return;
  const name = boot.kind === 'tftp' ? boot.file : boot.url;
  if (boot.kind === 'tftp') p.siaddr = nextServer;
  // publicUrl has no length limit, so a script/HTTP-boot URL can exceed the
  // 127-byte file field (encodePacket would throw on it): then the name goes
  // in option 67 only, which iPXE and UEFI HTTP boot both read, asked or not.
  const fits = Buffer.byteLength(name, 'latin1') <= MAX_BOOT_FILE_BYTES;
  if (fits) p.file = name;
  if (!fits || c.paramRequestList.includes(Opt.BootfileName)) setText(p.options, Opt.BootfileName, name);
  if (boot.kind === 'http') setText(p.options, Opt.VendorClass, 'HTTPClient');
  if (c.isPxe) {
    // PXE 2.1: echo "PXEClient" so the ROM takes this offer's boot file, and
    // say "boot this file directly" in option 43.
    setText(p.options, Opt.VendorClass, 'PXEClient');
    p.options.set(Opt.VendorSpecific, PXE_VENDOR_BOOT_FILE_DIRECTLY);
  }
  // RFC 4578 §2.5: echo the machine UUID when the client sent one.
  if (c.uuid) p.options.set(Opt.ClientUuid, Buffer.concat([Buffer.from([0]), Buffer.from(c.uuid.replace(/-/g, ''), 'hex')]));
  if (boot.kind === 'ipxe-script' && inServerMode) p.options.set(Opt.Ipxe, IPXE_NO_PXEDHCP);
}

function applySubnet(p: DhcpPacket, subnet: SubnetConfig): void {
  setIpv4(p.options, Opt.SubnetMask, cidrMask(subnet.cidr));
  if (subnet.router !== undefined) setIpv4List(p.options, Opt.Router, [subnet.router]);
  if (subnet.dns.length > 0) setIpv4List(p.options, Opt.DnsServers, subnet.dns);
  if (subnet.domainName) setText(p.options, Opt.DomainName, subnet.domainName);
  setIpv4(p.options, Opt.BroadcastAddress, cidrBroadcast(subnet.cidr));
}

/** RFC 2132 §3.9 option 7 (log servers): where iPXE sends its console as syslog, when one is configured. */
function applyLogServer(p: DhcpPacket, logServer: Ipv4 | undefined): void {
  if (logServer !== undefined) setIpv4List(p.options, Opt.LogServers, [logServer]);
}

/** DHCPOFFER or DHCPACK for a lease (server mode). */
export function buildLeaseReply(
  req: DhcpPacket, c: ClientInfo, type: MessageType.Offer | MessageType.Ack,
  grant: LeaseGrant, boot: BootTarget, serverId: Ipv4, logServer?: Ipv4,
): Reply {
  const p = replyTo(req);
  p.yiaddr = grant.ip;
  // RFC 2131 table 3: ciaddr is copied into an ACK for a renewing client.
  if (type === MessageType.Ack) p.ciaddr = req.ciaddr;
  setUint8(p.options, Opt.MessageType, type);
  setIpv4(p.options, Opt.ServerId, serverId);
  setUint32(p.options, Opt.LeaseTime, grant.leaseTime);
  // RFC 2131 §4.4.5 defaults: T1 = 0.5, T2 = 0.875 of the lease.
  setUint32(p.options, Opt.RenewalTime, Math.floor(grant.leaseTime / 2));
  setUint32(p.options, Opt.RebindingTime, Math.floor((grant.leaseTime * 7) / 8));
  applySubnet(p, grant.subnet);
  applyLogServer(p, logServer);
  if (grant.hostname) setText(p.options, Opt.Hostname, grant.hostname);
  applyBoot(p, c, boot, serverId, true);
  echoRelayAgentInfo(req, p);
  return { packet: p, to: replyDestination(req, type) };
}

/** DHCPACK to a DHCPINFORM: configuration, no address, no lease time (RFC 2131 §3.4). */
export function buildInformAck(req: DhcpPacket, c: ClientInfo, subnet: SubnetConfig, boot: BootTarget, serverId: Ipv4, logServer?: Ipv4): Reply {
  const p = replyTo(req);
  p.ciaddr = req.ciaddr;
  setUint8(p.options, Opt.MessageType, MessageType.Ack);
  setIpv4(p.options, Opt.ServerId, serverId);
  applySubnet(p, subnet);
  applyLogServer(p, logServer);
  applyBoot(p, c, boot, serverId, true);
  echoRelayAgentInfo(req, p);
  // §4.3.5: the reply goes to ciaddr (or the relay).
  const to = req.giaddr !== IPV4_ZERO ? { address: req.giaddr, port: SERVER_PORT } : { address: req.ciaddr, port: CLIENT_PORT };
  return { packet: p, to };
}

export function buildNak(req: DhcpPacket, serverId: Ipv4, message: string): Reply {
  const p = replyTo(req);
  setUint8(p.options, Opt.MessageType, MessageType.Nak);
  setIpv4(p.options, Opt.ServerId, serverId);
  setText(p.options, Opt.Message, message.slice(0, 200));
  // §4.3.2: a NAK through a relay asks the relay to broadcast it.
  if (req.giaddr !== IPV4_ZERO) p.flags |= FLAG_BROADCAST;
  echoRelayAgentInfo(req, p);
  return { packet: p, to: replyDestination(req, MessageType.Nak) };
}

/**
 * ProxyDHCP (PXE 2.1 §2.2.5): boot information only, yiaddr 0.0.0.0, with
 * options 60, 54, 43 and 97. On port 67 it is an OFFER broadcast to the
 * client; on port 4011 an ACK sent back to where the request came from.
 */
export function buildProxyReply(
  req: DhcpPacket, c: ClientInfo, type: MessageType.Offer | MessageType.Ack,
  boot: BootTarget, serverId: Ipv4, source: Destination, logServer?: Ipv4,
): Reply {
  const p = replyTo(req);
  setUint8(p.options, Opt.MessageType, type);
  setIpv4(p.options, Opt.ServerId, serverId);
  setText(p.options, Opt.VendorClass, 'PXEClient');
  applyLogServer(p, logServer);
  applyBoot(p, c, boot, serverId, false);
  // iPXE takes boot information from a ProxyDHCP reply only when it has both
  // next-server and a file name (its dhcp_has_pxeopts), even for an HTTP URL.
  p.siaddr = serverId;
  setText(p.options, Opt.VendorClass, 'PXEClient');
  if (!p.options.has(Opt.VendorSpecific)) p.options.set(Opt.VendorSpecific, PXE_VENDOR_BOOT_FILE_DIRECTLY);
  if (type === MessageType.Ack) {
    p.ciaddr = req.ciaddr;
    return { packet: p, to: source };
  }
  return { packet: p, to: req.giaddr !== IPV4_ZERO ? { address: req.giaddr, port: SERVER_PORT } : { address: IPV4_BROADCAST, port: CLIENT_PORT } };
}
