/**
 * What parsing the config needs to know about the host, and how the daemon
 * learns it. parseConfig takes a ConfigEnv so it stays pure; systemConfigEnv
 * is the edge that asks the running system, once, before parsing.
 */
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { runCommand, type Runner } from '../exec/run.js';
import { parseIpv4, type Ipv4 } from '../net/ipv4.js';

/** What parseConfig needs to know about the host; injected so parsing stays pure. */
export interface ConfigEnv {
  interfaceExists(name: string): boolean;
  /** The interface's first IPv4 address, if it has one. */
  interfaceAddress(name: string): Ipv4 | undefined;
}

/**
 * os.networkInterfaces() lists only interfaces that are running with an
 * address: a bridge whose only port is a tap with no carrier yet (no VM
 * started) is missing from it. So existence also consults /sys/class/net and
 * the address falls back to the kernel's own view (`ip -j -4 addr show`, run
 * once through the command runner, before parsing). Names reach the lookups
 * only after parseConfig has validated them.
 */
export async function systemConfigEnv(run: Runner = runCommand): Promise<ConfigEnv> {
  const ifaces = networkInterfaces();
  const kernel = await kernelIpv4Addresses(run);
  return {
    interfaceExists: (name) => name in ifaces || existsSync(`/sys/class/net/${name}`),
    interfaceAddress: (name) => {
      const v4 = ifaces[name]?.find((a) => a.family === 'IPv4');
      return v4 ? parseIpv4(v4.address) : kernel.get(name);
    },
  };
}

/** Each interface's first IPv4 address as the kernel reports it; empty when `ip` cannot tell. */
async function kernelIpv4Addresses(run: Runner): Promise<Map<string, Ipv4>> {
  const out = new Map<string, Ipv4>();
  try {
    const { stdout } = await run(['ip', '-j', '-4', 'addr', 'show'], { timeoutMs: 5000 });
    const parsed = JSON.parse(stdout) as { ifname?: string; addr_info?: { family?: string; local?: string }[] }[];
    for (const link of parsed) {
      const local = link.addr_info?.find((a) => a.family === 'inet')?.local;
      if (link.ifname === undefined || local === undefined || out.has(link.ifname)) continue;
      try { out.set(link.ifname, parseIpv4(local)); } catch { /* not an address we can use: as if absent */ }
    }
  } catch {
    // No `ip`, or output we cannot read: addresses come from networkInterfaces() alone.
  }
  return out;
}
