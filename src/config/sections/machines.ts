/** The `machines` section: how unknown machines are treated and how SAN boots are tried. */
import { bool, int, mapping, oneOf, opt, readAbsolutePath, underDataDir } from '../readers.js';
import type { MachinesConfig } from '../types.js';

export function readMachines(v: unknown, path: string, dataDir: string): MachinesConfig {
  const m = mapping(v, path, ['unknown', 'discover', 'sanbootTries', 'sanbootRetryDelaySec', 'sanbootFallback', 'netbootDir', 'proxyBootWindowSec']);
  return {
    // Machines metalboot does not know go straight on to their next boot device (they are still
    // recorded as discovered); a menu would hold every stray PXE client for its timeout.
    unknown: opt(m, 'unknown', path, (x, p) => oneOf(x, p, ['ignore', 'menu', 'local'] as const)) ?? 'ignore',
    discover: opt(m, 'discover', path, bool) ?? true,
    sanbootTries: opt(m, 'sanbootTries', path, (x, p) => int(x, p, [1, 100])) ?? 3,
    sanbootRetryDelaySec: opt(m, 'sanbootRetryDelaySec', path, (x, p) => int(x, p, [1, 600])) ?? 5,
    sanbootFallback: opt(m, 'sanbootFallback', path, (x, p) => oneOf(x, p, ['retry', 'menu', 'exit'] as const)) ?? 'exit',
    netbootDir: opt(m, 'netbootDir', path, readAbsolutePath) ?? underDataDir(dataDir, 'netboot'),
    // Ten minutes covers a slow firmware from its ProxyDHCP offer to iPXE's script fetch, and the menu's
    // 'sanboot' choice; a later boot does a new ProxyDHCP exchange and opens a new window.
    proxyBootWindowSec: opt(m, 'proxyBootWindowSec', path, (x, p) => int(x, p, [10, 86_400])) ?? 600,
  };
}
