/** The `tftp` section: listener, root, and the transfer and admission limits. */
import { DEFAULT_TFTP, DEFAULT_TFTP_LISTEN, LIMITS } from '../defaults.js';
import type { ConfigEnv } from '../env.js';
import { ConfigError } from '../error.js';
import { bool, int, key, mapping, opt, readAbsolutePath, readIfName, readIpv4HostPort } from '../readers.js';
import type { DhcpConfig, TftpConfig } from '../types.js';

export function readTftp(v: unknown, path: string, env: ConfigEnv, dhcp: DhcpConfig): TftpConfig {
  const m = mapping(v, path, [
    'enabled', 'listen', 'interface', 'root', 'maxBlksize', 'maxWindowsize', 'maxTransfers', 'timeoutMs', 'retries',
    'maxTransfersPerClient', 'reservedTransfers',
  ]);
  const enabled = opt(m, 'enabled', path, bool) ?? DEFAULT_TFTP.enabled;
  const listen = opt(m, 'listen', path, readIpv4HostPort) ?? readIpv4HostPort(DEFAULT_TFTP_LISTEN, key(path, 'listen'));
  const explicitIf = opt(m, 'interface', path, readIfName);
  if (enabled && explicitIf !== undefined && !env.interfaceExists(explicitIf)) {
    throw new ConfigError(key(path, 'interface'), `network interface ${explicitIf} does not exist`);
  }
  const root = opt(m, 'root', path, readAbsolutePath);
  const n = (k: keyof typeof LIMITS, name: string, dflt: number) => opt(m, name, path, (x, p) => int(x, p, LIMITS[k])) ?? dflt;
  const maxTransfers = n('tftpMaxTransfers', 'maxTransfers', DEFAULT_TFTP.maxTransfers);
  const explicitReserved = opt(m, 'reservedTransfers', path, (x, p) => int(x, p, LIMITS.tftpReservedTransfers));
  // An explicit reservation must leave clients without a DHCP binding a slot; the default is
  // at most half of a smaller maxTransfers.
  if (explicitReserved !== undefined && explicitReserved >= maxTransfers) {
    throw new ConfigError(key(path, 'reservedTransfers'), `${explicitReserved} leaves none of maxTransfers ${maxTransfers} for clients without a DHCP binding`);
  }
  const tftp: TftpConfig = {
    enabled,
    listen,
    // Serving PXE on the DHCP interface is the usual set-up; an explicit '' is not accepted by readIfName.
    interface: explicitIf ?? (dhcp.mode !== 'off' ? dhcp.interface : ''),
    maxBlksize: n('tftpBlksize', 'maxBlksize', DEFAULT_TFTP.maxBlksize),
    maxWindowsize: n('tftpWindowsize', 'maxWindowsize', DEFAULT_TFTP.maxWindowsize),
    maxTransfers,
    timeoutMs: n('tftpTimeoutMs', 'timeoutMs', DEFAULT_TFTP.timeoutMs),
    retries: n('tftpRetries', 'retries', DEFAULT_TFTP.retries),
    maxTransfersPerClient: n('tftpMaxTransfersPerClient', 'maxTransfersPerClient', DEFAULT_TFTP.maxTransfersPerClient),
    reservedTransfers: explicitReserved ?? Math.min(DEFAULT_TFTP.reservedTransfers, Math.floor(maxTransfers / 2)),
  };
  return root === undefined ? tftp : { ...tftp, root };
}
