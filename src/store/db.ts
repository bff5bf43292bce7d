/**
 * The level database adapter: one ClassicLevel at `${dataDir}/db` with typed
 * sublevels. Services depend on the `Store` interface, not on this file.
 *
 * Every lease write goes through one GroupCommitter whose write is a
 * `sync: true` batch, so a resolved putLeases/deleteLeases is on disk (a
 * crash right after cannot lose it) while a DHCP storm still costs few fsyncs.
 */
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { Lease, LeaseState } from '../leases/lease.js';
import type { Ipv4 } from '../net/ipv4.js';
import { formatIpv4 } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';
import { tryParseMac } from '../net/mac.js';
import { GroupCommitter, StoreClosedError, type GroupCommitStats } from './group-commit.js';
import { MIGRATIONS, type MigrationInput } from './migrations.js';

export { StoreClosedError } from './group-commit.js';

/** The on-disk layout version this code writes and understands. */
export const SCHEMA_VERSION = 2;

export type StoreOpenFailure = 'unavailable' | 'newer-schema' | 'bad-meta';

/** The store could not be opened; names the path and, for I/O failures, the underlying cause. */
export class StoreOpenError extends Error {
  constructor(readonly path: string, readonly reason: StoreOpenFailure, detail: string, options?: { cause?: unknown }) {
    super(`cannot open store at ${path}: ${detail}`, options);
    this.name = 'StoreOpenError';
  }
}

export interface StoreStats {
  readonly groupCommit: GroupCommitStats;
  /** Lease records skipped by loadLeases because they failed validation (cumulative). */
  readonly corrupt: number;
}

export interface Store {
  /** All valid leases, in address order. Corrupt records are skipped and counted. */
  loadLeases(): Promise<Lease[]>;
  /** Upserts; resolves once durably written. One call is atomic (one batch). */
  putLeases(leases: readonly Lease[]): Promise<void>;
  /** Deletes by address (absent ones are fine); resolves once durably written. */
  deleteLeases(ips: readonly Ipv4[]): Promise<void>;
  /** Reservations made through the API; corrupt records are skipped and counted. */
  loadReservations(): Promise<StoredReservation[]>;
  putReservation(r: StoredReservation): Promise<void>;
  deleteReservation(mac: Mac): Promise<void>;
  /** Waits for queued writes, then closes the database. Idempotent. */
  close(): Promise<void>;
  stats(): StoreStats;
}

export interface OpenStoreOptions {
  /** Called for each lease record skipped as corrupt (e.g. to log it). */
  readonly onCorrupt?: (key: string, reason: string) => void;
  /** GroupCommitter cap on ops per batch. */
  readonly maxBatch?: number;
  /** Called after each migration of an older store (migrations.ts), with the records it rewrote. */
  readonly onMigrated?: (to: number, what: string, records: number) => void;
}

type Db = ClassicLevel<string, unknown>;

/** Collections the services keep beside leases, each its own sublevel. */
export const RECORD_KINDS = ['images', 'disks', 'ops', 'machines', 'machine-events', 'operations', 'inventories'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

type Sub = 'leases' | 'reservations' | RecordKind;
type Op = { type: 'put'; sub: Sub; key: string; value: unknown } | { type: 'del'; sub: Sub; key: string };

export type RecordOp =
  | { readonly type: 'put'; readonly kind: RecordKind; readonly key: string; readonly value: object }
  | { readonly type: 'del'; readonly kind: RecordKind; readonly key: string };

/**
 * Small keyed JSON collections for services (images, disks, the operation journal). A
 * writeRecords call is one atomic, synced batch: a service can finish an operation and drop
 * its journal entry in one step. Values come back as plain objects for the service to validate.
 */
export interface RecordStore {
  /** Records of one kind in key order; non-JSON or non-object values are skipped and counted. */
  loadRecords(kind: RecordKind): Promise<{ key: string; value: Record<string, unknown> }[]>;
  writeRecords(ops: readonly RecordOp[]): Promise<void>;
}

/** A reservation made through the API (config reservations live in the config file). */
export interface StoredReservation {
  readonly mac: Mac;
  readonly ip: Ipv4;
  readonly hostname?: string;
}

/** 8 lower-case hex digits: fixed width, so lexicographic key order is address order. */
export function leaseKey(ip: Ipv4): string {
  if (!Number.isInteger(ip) || ip < 0 || ip > 0xffffffff) throw new RangeError(`not an IPv4 address: ${ip}`);
  return ip.toString(16).padStart(8, '0');
}

export async function openStore(dataDir: string, opts: OpenStoreOptions = {}): Promise<Store & RecordStore> {
  const path = join(dataDir, 'db');
  let db: Db;
  try {
    // LevelDB creates its files with the process umask (it has no mode option): the directories
    // are made root's alone here, so its files are unreachable whatever that umask is.
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await mkdir(path, { recursive: true, mode: 0o700 });
    await chmod(path, 0o700);
    db = new ClassicLevel<string, unknown>(path, { valueEncoding: 'json' });
    await db.open();
  } catch (err) {
    throw new StoreOpenError(path, 'unavailable', describeError(err), { cause: err });
  }
  try {
    await checkSchema(db, path, opts);
  } catch (err) {
    await db.close().catch(() => undefined);
    if (err instanceof StoreOpenError) throw err;
    throw new StoreOpenError(path, 'unavailable', describeError(err), { cause: err });
  }
  return new LevelStore(db, opts);
}

async function checkSchema(db: Db, path: string, opts: OpenStoreOptions): Promise<void> {
  const meta = db.sublevel<string, unknown>('meta', { valueEncoding: 'json' });
  const version = await meta.get('schemaVersion');
  if (version === undefined) {
    // Sublevel put() has no sync option; a root batch aimed at the sublevel does.
    await db.batch([{ type: 'put', sublevel: meta, key: 'schemaVersion', value: SCHEMA_VERSION }], { sync: true });
    return;
  }
  if (!Number.isInteger(version) || (version as number) < 1) {
    throw new StoreOpenError(path, 'bad-meta', `schemaVersion is ${JSON.stringify(version)}, expected a positive integer`);
  }
  if ((version as number) > SCHEMA_VERSION) {
    throw new StoreOpenError(
      path,
      'newer-schema',
      `schema version ${version} was written by a newer metalboot (this one understands up to ${SCHEMA_VERSION}); refusing to open`,
    );
  }
  const input: MigrationInput = {
    async *records(kind) {
      for await (const [key, raw] of db.sublevel<string, string>(kind, { valueEncoding: 'utf8' }).iterator()) {
        const v = parseRecord(raw);
        if (typeof v !== 'string') yield { key, value: v };
      }
    },
  };
  for (const m of MIGRATIONS.filter((x) => x.to > (version as number))) {
    const puts = await m.run(input);
    // The records and the version they are at, in one synced batch.
    await db.batch([
      ...puts.map((p) => ({ type: 'put' as const, sublevel: db.sublevel<string, unknown>(p.kind, { valueEncoding: 'json' }), key: p.key, value: p.value as unknown })),
      { type: 'put', sublevel: meta, key: 'schemaVersion', value: m.to },
    ], { sync: true });
    opts.onMigrated?.(m.to, m.what, puts.length);
  }
}

class LevelStore implements Store, RecordStore {
  private readonly leases;
  private readonly reservations;
  private readonly records: Record<RecordKind, () => AsyncIterable<[string, string]>>;
  private readonly committer: GroupCommitter<Op>;
  private corrupt = 0;
  private closing: Promise<void> | undefined;

  constructor(private readonly db: Db, private readonly opts: OpenStoreOptions) {
    this.leases = db.sublevel<string, Lease>('leases', { valueEncoding: 'json' });
    this.reservations = db.sublevel<string, StoredReservation>('reservations', { valueEncoding: 'json' });
    // Writes go to the root with the sublevels' own prefixes and values
    // encoded here: at thousands of leases per second, routing every op
    // through sublevel encoding costs more than the write. Reads still go
    // through the typed sublevels (same keys).
    const subs = Object.fromEntries(RECORD_KINDS.map((k) => [k, db.sublevel<string, unknown>(k, { valueEncoding: 'json' })]));
    this.records = Object.fromEntries(RECORD_KINDS.map((k) => [k, () => subs[k]!.iterator<string, string>({ valueEncoding: 'utf8' })])) as unknown as LevelStore['records'];
    const prefix: Record<Sub, string> = {
      leases: this.leases.prefix, reservations: this.reservations.prefix,
      ...Object.fromEntries(RECORD_KINDS.map((k) => [k, subs[k]!.prefix])) as Record<RecordKind, string>,
    };
    this.committer = new GroupCommitter<Op>(
      (ops) => db.batch(
        ops.map((op) => op.type === 'put'
          ? { type: 'put' as const, key: prefix[op.sub] + op.key, value: JSON.stringify(op.value) }
          : { type: 'del' as const, key: prefix[op.sub] + op.key }),
        { sync: true, keyEncoding: 'utf8', valueEncoding: 'utf8' },
      ),
      opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch },
    );
  }

  loadLeases(): Promise<Lease[]> {
    return this.loadAll(() => this.leases.iterator<string, string>({ valueEncoding: 'utf8' }), decodeLease, '');
  }

  /**
   * Every record of one sublevel, validated. Read as raw text rather than
   * through the json encoding: one undecodable value would otherwise abort
   * the whole iteration. Corrupt records are skipped and counted.
   */
  private async loadAll<T>(records: () => AsyncIterable<[string, string]>, decode: (key: string, raw: string) => T | string, label: string): Promise<T[]> {
    if (this.closing) throw new StoreClosedError();
    const out: T[] = [];
    for await (const [key, raw] of records()) {
      const result = decode(key, raw);
      if (typeof result === 'string') {
        this.corrupt++;
        this.opts.onCorrupt?.(label + key, result);
      } else {
        out.push(result);
      }
    }
    return out;
  }

  putLeases(leases: readonly Lease[]): Promise<void> {
    let ops: Op[];
    try {
      ops = leases.map((l) => ({ type: 'put', sub: 'leases', key: leaseKey(l.ip), value: l }));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.committer.submit(ops);
  }

  deleteLeases(ips: readonly Ipv4[]): Promise<void> {
    let ops: Op[];
    try {
      ops = ips.map((ip) => ({ type: 'del', sub: 'leases', key: leaseKey(ip) }));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.committer.submit(ops);
  }

  loadReservations(): Promise<StoredReservation[]> {
    return this.loadAll(() => this.reservations.iterator<string, string>({ valueEncoding: 'utf8' }), decodeReservation, 'reservations/');
  }

  putReservation(r: StoredReservation): Promise<void> {
    return this.committer.submit({ type: 'put', sub: 'reservations', key: r.mac, value: r });
  }

  deleteReservation(mac: Mac): Promise<void> {
    return this.committer.submit({ type: 'del', sub: 'reservations', key: mac });
  }

  async loadRecords(kind: RecordKind): Promise<{ key: string; value: Record<string, unknown> }[]> {
    return this.loadAll(this.records[kind],
      (key, raw) => { const r = parseRecord(raw); return typeof r === 'string' ? r : { key, value: r }; }, `${kind}/`);
  }

  writeRecords(ops: readonly RecordOp[]): Promise<void> {
    for (const op of ops) if (!RECORD_KINDS.includes(op.kind) || typeof op.key !== 'string' || op.key.length === 0) return Promise.reject(new RangeError(`bad record op for ${String(op.kind)}`));
    return this.committer.submit(ops.map((op): Op => op.type === 'put' ? { type: 'put', sub: op.kind, key: op.key, value: op.value } : { type: 'del', sub: op.kind, key: op.key }));
  }

  close(): Promise<void> {
    this.closing ??= this.committer.close().then(() => this.db.close());
    return this.closing;
  }

  stats(): StoreStats {
    return { groupCommit: this.committer.stats, corrupt: this.corrupt };
  }
}

/** A stored JSON object, or why the record is unusable. */
function parseRecord(raw: string): Record<string, unknown> | string {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return 'value is not JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'value is not an object';
  return v as Record<string, unknown>;
}

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

const STATES: ReadonlySet<string> = new Set<LeaseState>(['bound', 'released', 'declined']);

/** A validated Lease, or the reason the record is unusable. Unknown fields are dropped. */
export function decodeLease(key: string, raw: string): Lease | string {
  const r = parseRecord(raw);
  if (typeof r === 'string') return r;
  const ip = r['ip'];
  if (!isUint32(ip)) return 'ip is not a uint32';
  if (leaseKey(ip as Ipv4) !== key) return `ip ${formatIpv4(ip as Ipv4)} does not match its key`;
  if (typeof r['state'] !== 'string' || !STATES.has(r['state'])) return 'state is not a lease state';
  const { expiresAt, updatedAt } = r;
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) return 'expiresAt is not a number';
  if (typeof updatedAt !== 'number' || !Number.isFinite(updatedAt)) return 'updatedAt is not a number';

  const lease: { -readonly [K in keyof Lease]: Lease[K] } = {
    ip: ip as Ipv4,
    state: r['state'] as LeaseState,
    expiresAt,
    updatedAt,
  };
  const { mac, hostname, clientArch, vendorClass, clientId, boundAt } = r;
  // Absent on records written before it existed: readers take updatedAt then (leases/lease.ts).
  if (boundAt !== undefined) {
    if (typeof boundAt !== 'number' || !Number.isFinite(boundAt)) return 'boundAt is not a number';
    lease.boundAt = boundAt;
  }
  if (mac !== undefined) {
    if (typeof mac !== 'string' || tryParseMac(mac) !== mac) return 'mac is not a normalised MAC';
    lease.mac = mac as Mac;
  }
  if (hostname !== undefined) {
    if (typeof hostname !== 'string') return 'hostname is not a string';
    lease.hostname = hostname;
  }
  if (clientArch !== undefined) {
    if (typeof clientArch !== 'number' || !Number.isInteger(clientArch) || clientArch < 0 || clientArch > 0xffff) {
      return 'clientArch is not a uint16';
    }
    lease.clientArch = clientArch;
  }
  if (vendorClass !== undefined) {
    if (typeof vendorClass !== 'string') return 'vendorClass is not a string';
    lease.vendorClass = vendorClass;
  }
  if (clientId !== undefined) {
    if (typeof clientId !== 'string' || !/^([0-9a-f]{2})*$/i.test(clientId)) return 'clientId is not hex';
    lease.clientId = clientId;
  }
  return lease;
}

/** "Database failed to open (LEVEL_DATABASE_NOT_OPEN) <- IO error: lock .../LOCK: already held by process (LEVEL_LOCKED)" */
function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof Error) {
      const code = (e as { code?: unknown }).code;
      parts.push(typeof code === 'string' ? `${e.message} (${code})` : e.message);
      e = e.cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join(' <- ');
}

/** A validated reservation record, or why it is unusable. */
export function decodeReservation(key: string, raw: string): StoredReservation | string {
  const r = parseRecord(raw);
  if (typeof r === 'string') return r;
  const { mac, ip, hostname } = r;
  if (typeof mac !== 'string' || tryParseMac(mac) !== mac || mac !== key) return 'mac is not a normalised MAC matching its key';
  if (!isUint32(ip)) return 'ip is not a uint32';
  if (hostname !== undefined && typeof hostname !== 'string') return 'hostname is not a string';
  return { mac: mac as Mac, ip: ip as Ipv4, ...(typeof hostname === 'string' ? { hostname } : {}) };
}
