/**
 * `metalboot bmc probe HOST`: which protocols a BMC answers, asking only what needs no credentials
 * (Redfish: the TLS certificate and the service root, DSP0266 §13.3.1; IPMI: Get Channel
 * Authentication Capabilities outside a session, §22.13, which also tells an IPMI-over-LAN-disabled
 * BMC by its RMCP presence pong), then the power settings to enrol it with.
 */
import { parseArgs } from 'node:util';
import { IpmiClient } from '../ipmi/client.js';
import { IpmiError } from '../ipmi/errors.js';
import { PowerError } from '../power/driver.js';
import { RedfishDriver } from '../power/redfish.js';
import { RedfishHttp, type FetchedCert } from '../power/redfish-http.js';
import { BmcUsageError, bmcCliFailure, tcpPort, wholeNumber } from './bmc-cli.js';
import type { CliIo } from './ipmi-command.js';

export const BMC_USAGE = [
  '  bmc probe HOST [--redfish-port 443] [--ipmi-port 623] [--timeout-ms 2000]',
  '       which protocols the BMC answers (no credentials needed) and the power settings to use',
].join('\n');

type RedfishProbe = { ok: true; cert: FetchedCert; root: Record<string, unknown> } | { ok: false; why: string; cert?: FetchedCert };
type IpmiProbe = { ok: true; v20: boolean; v15: boolean; auths: string[] } | { ok: false; why: string };

async function probeRedfish(host: string, port: number, timeoutMs: number): Promise<RedfishProbe> {
  let cert: FetchedCert;
  try {
    cert = await RedfishHttp.fetchCertificate(host, port, timeoutMs);
  } catch (e) {
    return { ok: false, why: e instanceof PowerError ? e.message : String(e) };
  }
  // Pinned to the certificate just seen: the service root needs no credentials, none are sent.
  const d = new RedfishDriver({ host, port, user: '', password: Buffer.alloc(0), trust: { certSha256: cert.fingerprint256 }, timeoutMs, retries: 0, maxRequestsPerSecond: 0 });
  try {
    return { ok: true, cert, root: await d.serviceRoot() };
  } catch (e) {
    return { ok: false, cert, why: e instanceof PowerError ? e.message : String(e) };
  } finally {
    await d.close();
  }
}

async function probeIpmi(host: string, port: number, timeoutMs: number): Promise<IpmiProbe> {
  const c = new IpmiClient({ host, port, username: '', password: Buffer.alloc(0), timeoutMs, retries: 0, keepAliveMs: 0, maxCommandsPerSecond: 0 });
  try {
    const a = await c.authCapabilities();
    const auths = [a.authNone && 'none', a.authMd2 && 'md2', a.authMd5 && 'md5', a.authPassword && 'password'].filter((x): x is string => typeof x === 'string');
    return { ok: true, v20: a.ipmi20, v15: a.ipmi15 || !a.extended, auths };
  } catch (e) {
    return { ok: false, why: e instanceof IpmiError ? e.message : String(e) };
  } finally {
    await c.close();
  }
}

export async function runBmcCommand(argv: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { 'redfish-port': { type: 'string' }, 'ipmi-port': { type: 'string' }, 'timeout-ms': { type: 'string' } },
    });
    const [verb, host, ...extra] = positionals;
    if (verb !== 'probe') throw new BmcUsageError(verb === undefined ? 'bmc needs probe' : `unknown bmc command ${JSON.stringify(verb)}`);
    if (!host) throw new BmcUsageError('probe needs HOST');
    if (extra.length) throw new BmcUsageError(`unexpected ${JSON.stringify(extra[0])}`);
    const rport = tcpPort(values['redfish-port'], 443);
    const iport = tcpPort(values['ipmi-port'], 623);
    const timeoutMs = wholeNumber(values['timeout-ms'], 'timeout-ms', 2000);
    const [rf, ip] = await Promise.all([probeRedfish(host, rport, timeoutMs), probeIpmi(host, iport, timeoutMs)]);
    const lines: string[] = [];
    if (rf.ok) {
      lines.push(`Redfish   : yes, https://${host}:${rport}/redfish/v1/ (RedfishVersion ${String(rf.root['RedfishVersion'] ?? '?')}, ${String(rf.root['Vendor'] ?? rf.root['Product'] ?? 'vendor not given')})`);
      lines.push(`            sessions: ${rf.root['SessionService'] || (rf.root['Links'] as Record<string, unknown> | undefined)?.['Sessions'] ? 'yes' : 'no (HTTP Basic)'}`);
    } else lines.push(`Redfish   : no (${rf.why})`);
    if (rf.cert) lines.push(`            certificate CN=${rf.cert.subject}, valid to ${rf.cert.validTo}`, `            SHA-256 ${rf.cert.fingerprint256}`);
    if (ip.ok) lines.push(`IPMI      : yes, ${host}:${iport} (${ip.v20 ? 'RMCP+ (IPMI 2.0)' : ''}${ip.v20 && ip.v15 ? ', ' : ''}${ip.v15 ? 'IPMI 1.5' : ''}; auth ${ip.auths.join(', ') || 'none listed'})`);
    else lines.push(`IPMI      : no (${ip.why})`);
    if (rf.ok) {
      lines.push('suggested : power: {driver: redfish, host: ' + host + (rport !== 443 ? `, port: ${rport}` : '') + `, user: <user>, password: <password>, certSha256: "${rf.cert.fingerprint256}"}`);
      if (ip.ok) lines.push('            (IPMI answers too; Redfish is preferred: vendors are retiring IPMI over LAN)');
    } else if (ip.ok) {
      lines.push('suggested : power: {driver: ipmi, host: ' + host + (iport !== 623 ? `, port: ${iport}` : '') + ', user: <user>, password: <password>}');
    } else lines.push('suggested : nothing answered; check the address and that the BMC\'s network services are on');
    io.out(lines.join('\n') + '\n');
    return rf.ok || ip.ok ? 0 : 1;
  } catch (e) {
    return bmcCliFailure(e, 'bmc', BMC_USAGE, (s) => io.err(s), (_x): _x is Error => false);
  }
}
