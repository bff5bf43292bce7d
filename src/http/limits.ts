/**
 * Connection limits of the HTTP edge, so that a flood of TCP connections from one host (accepted
 * by the kernel, never sending a request) cannot use up the daemon's file descriptors: every
 * accepted connection is one fd, and TFTP sockets, the store and every tgtadm/lvm child need fds
 * from the same RLIMIT_NOFILE.
 *
 * - A total cap (net.Server#maxConnections) kept below (RLIMIT_NOFILE minus a reserve) / 2: a
 *   connection serving a file (boot assets, kernels) holds the file open as well. Node closes a
 *   connection over the cap as soon as it is accepted (one fd, for a moment) and emits 'drop'.
 * - A per-address cap: a 'connection' listener, first in line, destroys a connection whose source
 *   already holds the limit. IPv6 sources count per /64 (one host may pick any address in it).
 * - Timeouts (set on the server by buildHttpApp): headers must arrive within headersTimeoutMs of
 *   the connection (node answers 408 and closes), the whole request within requestTimeoutMs, and
 *   an idle keep-alive connection is closed after keepAliveTimeoutMs, and a connection on which
 *   nothing moves for idleTimeoutMs while a response is being sent (a client that stopped reading
 *   a download) is closed, freeing its socket and the file it holds (server.ts).
 *
 * A SYN flood never reaches this code: half-open handshakes live in the kernel (SYN backlog,
 * syncookies) and cost no fd. Established idle connections are what costs fds, and that is what
 * these limits bound.
 */
import { readFile } from 'node:fs/promises';
import { isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { HttpLimits } from '../config/types.js';

export type { HttpLimits };

/** RLIMIT_NOFILE as read from /proc/self/limits; Infinity for "unlimited". */
export interface NofileLimit {
  readonly soft: number;
  readonly hard: number;
}

/**
 * The "Max open files" row of /proc/<pid>/limits (proc(5)): `Max open files  1024  524288  files`.
 * Undefined when the row is missing or malformed (node has no getrlimit).
 */
export function parseNofileLimit(text: string): NofileLimit | undefined {
  const m = /^Max open files[ \t]+(\d{1,12}|unlimited)[ \t]+(\d{1,12}|unlimited)[ \t]+files[ \t]*$/m.exec(text);
  if (!m) return undefined;
  const num = (s: string) => (s === 'unlimited' ? Infinity : Number(s));
  const soft = num(m[1]!), hard = num(m[2]!);
  return soft <= hard ? { soft, hard } : undefined;
}

/** This process's RLIMIT_NOFILE, or undefined where /proc is not readable. */
export async function readNofileLimit(file = '/proc/self/limits'): Promise<NofileLimit | undefined> {
  try {
    return parseNofileLimit(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Below this many connections the HTTP edge is not usable (the status page alone takes a few). */
export const MIN_CONNECTIONS = 16;

export interface ConnectionCap {
  /** What net.Server#maxConnections is set to. */
  readonly maxConnections: number;
  /** Which bound decided it. */
  readonly limitedBy: 'config' | 'nofile' | 'minimum';
  /** Fds left for everything but HTTP connections at the cap (undefined when the limit is unknown). */
  readonly headroom?: number;
}

/** Fds one HTTP connection may hold: its socket, and the file a download streams from. */
const FDS_PER_CONNECTION = 2;

/**
 * min(configured, (soft RLIMIT_NOFILE − reserve) / FDS_PER_CONNECTION), never below
 * MIN_CONNECTIONS. `reserve` covers the fds the rest of the daemon holds at its busiest (TFTP
 * transfers, the store, child processes). Node raises the soft limit to the hard one at start, so
 * `soft` is read after that.
 */
export function deriveConnectionCap(configured: number, nofile: NofileLimit | undefined, reserve: number): ConnectionCap {
  if (!nofile || nofile.soft === Infinity) return { maxConnections: configured, limitedBy: 'config' };
  const room = Math.floor((nofile.soft - reserve) / FDS_PER_CONNECTION);
  const left = (n: number) => nofile.soft - FDS_PER_CONNECTION * n;
  if (room < MIN_CONNECTIONS) return { maxConnections: MIN_CONNECTIONS, limitedBy: 'minimum', headroom: left(MIN_CONNECTIONS) };
  if (room < configured) return { maxConnections: room, limitedBy: 'nofile', headroom: left(room) };
  return { maxConnections: configured, limitedBy: 'config', headroom: left(configured) };
}

/**
 * The key a connection is counted under: an IPv4 address (IPv4-mapped IPv6 unwrapped), or the
 * /64 of an IPv6 address. Undefined for anything else (a socket already closed has no address).
 */
export function addressKey(remote: string | undefined): string | undefined {
  if (remote === undefined) return undefined;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remote);
  if (mapped) return mapped[1];
  if (isIPv4(remote)) return remote;
  if (!isIPv6(remote)) return undefined;
  const zoneless = remote.replace(/%.*$/, '');
  const [head = '', tail] = zoneless.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:a.b.c.d was handled above) takes two groups: the /64 never holds it.
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::/64`;
}

/** Open connections per source; pure bookkeeping, no sockets. */
export class PerAddressCounter {
  private readonly open = new Map<string, number>();
  constructor(readonly limit: number) {}

  /** Counts the connection and returns true, or returns false (not counted) when `key` is at the limit. */
  admit(key: string): boolean {
    const n = this.open.get(key) ?? 0;
    if (n >= this.limit) return false;
    this.open.set(key, n + 1);
    return true;
  }

  /** One admitted connection of `key` closed. */
  release(key: string): void {
    const n = this.open.get(key) ?? 0;
    if (n <= 1) this.open.delete(key);
    else this.open.set(key, n - 1);
  }

  count(key: string): number {
    return this.open.get(key) ?? 0;
  }

  /** Sources with at least one connection open. */
  get sources(): number {
    return this.open.size;
  }
}

export interface ConnectionCounters {
  /** Connections accepted and kept (open now or closed since). */
  accepted: number;
  /** Refused because their source held maxConnectionsPerAddress. */
  refusedPerAddress: number;
  /** Refused because the server held maxConnections. */
  refusedTotal: number;
}

export interface ConnectionGuard {
  readonly counters: Readonly<ConnectionCounters>;
  /** Connections open now, as the guard counted them. */
  open(): number;
  detach(): void;
}

/** How often a refusal is logged at most: a flood must not flood the log as well. */
const LOG_EVERY_MS = 10_000;

/**
 * Applies the total cap and the per-address limit to `server` (before listen). Refusals are
 * counted and logged at most once per LOG_EVERY_MS with the counts since the last line.
 */
export function guardConnections(server: Server, o: { maxConnections: number; perAddress: number; log: Logger; clock: () => number }): ConnectionGuard {
  const counters: ConnectionCounters = { accepted: 0, refusedPerAddress: 0, refusedTotal: 0 };
  const perAddress = new PerAddressCounter(o.perAddress);
  let open = 0;
  let lastLog = -Infinity;
  let sinceLog = { perAddress: 0, total: 0 };
  const refused = (reason: 'per_address' | 'total', from: string | undefined) => {
    if (reason === 'per_address') { counters.refusedPerAddress++; sinceLog.perAddress++; } else { counters.refusedTotal++; sinceLog.total++; }
    const now = o.clock();
    if (now - lastLog < LOG_EVERY_MS) return;
    lastLog = now;
    o.log.warn({ event: 'http.connections-refused', reason, from, refusedPerAddress: sinceLog.perAddress, refusedTotal: sinceLog.total, open, maxConnections: o.maxConnections, maxConnectionsPerAddress: o.perAddress },
      'HTTP connections refused (connection limit); counts since the last such line');
    sinceLog = { perAddress: 0, total: 0 };
  };

  server.maxConnections = o.maxConnections;
  // Node accepted the connection and closed it at once: the cap was reached.
  const onDrop = (d?: { remoteAddress?: string }) => refused('total', addressKey(d?.remoteAddress));
  // First listener, so a refused connection is gone before the HTTP parser is set up for it.
  const onConnection = (socket: Socket) => {
    const key = addressKey(socket.remoteAddress);
    if (key === undefined) return;
    if (!perAddress.admit(key)) {
      socket.destroy();
      refused('per_address', key);
      return;
    }
    counters.accepted++;
    open++;
    socket.once('close', () => { open--; perAddress.release(key); });
  };
  server.on('drop', onDrop);
  server.prependListener('connection', onConnection);
  return {
    counters,
    open: () => open,
    detach: () => { server.off('drop', onDrop); server.off('connection', onConnection); },
  };
}

/**
 * How often node looks for connections past headersTimeout/requestTimeout (http.Server option
 * connectionsCheckingInterval, 30 s by default): a quarter of the headers timeout, 100 ms..1 s,
 * so an idle connection goes within about 1.25 × headersTimeoutMs.
 */
export function checkingIntervalMs(headersTimeoutMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(headersTimeoutMs / 4)));
}

/**
 * The event stream's heartbeat for a given idle timeout: a third of it, at most 15 s, so a live
 * stream always writes (and its client reads) well within idleTimeoutMs and is never cut by it.
 */
export function sseHeartbeatMs(idleTimeoutMs: number | undefined): number {
  return idleTimeoutMs === undefined ? 15_000 : Math.max(50, Math.min(15_000, Math.floor(idleTimeoutMs / 3)));
}
