/** The `http` section: listen address, public URL, token files, connection limits. */
import { DEFAULT_HTTP_LIMITS, DEFAULT_HTTP_LISTEN, HTTP_LIMITS_BOUNDS } from '../defaults.js';
import { ConfigError } from '../error.js';
import { int, key, mapping, opt, readAbsolutePath, readHostPort, str, underDataDir } from '../readers.js';
import type { DhcpMode, HostPort, HttpConfig, HttpLimits } from '../types.js';

/** The section as written; completeHttp fills in what depends on other sections. */
export interface RawHttp {
  readonly listen: HostPort;
  readonly publicUrl: string | undefined;
  readonly apiTokenFile: string | undefined;
  readonly readOnlyTokenFile: string | undefined;
  readonly limits: HttpLimits;
}

export function readHttp(v: unknown, path: string): RawHttp {
  const m = mapping(v, path, ['listen', 'publicUrl', 'apiTokenFile', 'readOnlyTokenFile', 'limits']);
  return {
    listen: opt(m, 'listen', path, readHostPort) ?? readHostPort(DEFAULT_HTTP_LISTEN, key(path, 'listen')),
    publicUrl: opt(m, 'publicUrl', path, readPublicUrl),
    // The token itself never sits in the config file (which is world-readable on many systems).
    apiTokenFile: opt(m, 'apiTokenFile', path, readAbsolutePath),
    readOnlyTokenFile: opt(m, 'readOnlyTokenFile', path, readAbsolutePath),
    limits: readHttpLimits(m['limits'] ?? {}, key(path, 'limits')),
  };
}

function readHttpLimits(v: unknown, path: string): HttpLimits {
  const names = Object.keys(DEFAULT_HTTP_LIMITS) as (keyof HttpLimits)[];
  const m = mapping(v, path, names);
  const out = Object.fromEntries(names.map((k) => [k, opt(m, k, path, (x, p) => int(x, p, HTTP_LIMITS_BOUNDS[k])) ?? DEFAULT_HTTP_LIMITS[k]])) as Record<keyof HttpLimits, number>;
  if (out.maxConnectionsPerAddress > out.maxConnections) throw new ConfigError(key(path, 'maxConnectionsPerAddress'), `${out.maxConnectionsPerAddress} is above maxConnections ${out.maxConnections}`);
  // node's http.Server refuses a headers timeout longer than a non-zero request timeout.
  if (out.requestTimeoutMs !== 0 && out.requestTimeoutMs < out.headersTimeoutMs) throw new ConfigError(key(path, 'requestTimeoutMs'), `${out.requestTimeoutMs} is below headersTimeoutMs ${out.headersTimeoutMs} (0 turns it off)`);
  return out;
}

function readPublicUrl(v: unknown, path: string): string {
  const s = str(v, path);
  // Checked on the text first: a forgotten scheme ("10.99.0.1:8080") is the usual mistake.
  if (!/^https?:\/\//i.test(s)) throw new ConfigError(path, `${JSON.stringify(s)} must start with http:// or https://`);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new ConfigError(path, `${JSON.stringify(s)} is not a URL`);
  }
  // It is interpolated into iPXE scripts and logged: no secrets, nothing to append paths after.
  if (url.username || url.password) throw new ConfigError(path, 'must not contain credentials');
  if (url.search || url.hash) throw new ConfigError(path, 'must not have a query or fragment');
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') {
    throw new ConfigError(path, `${url.hostname} is a listen address; use an address machines can reach`);
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

function urlFromListen({ host, port }: HostPort): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/**
 * publicUrl is what DHCP hands to iPXE; without DHCP nothing needs it yet,
 * so fall back to the listen address (reachable at least from this host).
 */
export function completeHttp(http: RawHttp, dhcpMode: DhcpMode, dataDir: string): HttpConfig {
  let publicUrl = http.publicUrl;
  if (publicUrl === undefined) {
    if (dhcpMode !== 'off') throw new ConfigError('http.publicUrl', `is required when dhcp.mode is ${dhcpMode}`);
    publicUrl = urlFromListen(http.listen);
  }
  return {
    listen: http.listen, publicUrl, apiTokenFile: http.apiTokenFile ?? underDataDir(dataDir, 'api-token'),
    ...(http.readOnlyTokenFile !== undefined ? { readOnlyTokenFile: http.readOnlyTokenFile } : {}),
    limits: http.limits,
  };
}
