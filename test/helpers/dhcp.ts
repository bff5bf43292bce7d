/**
 * Fixtures for the DHCP unit tests: packets built byte by byte (the way a
 * capture looks, independent of encodePacket), an in-memory Store, a
 * controllable conflict prober and small config builders.
 */
import type { BootFilesConfig, ReservationConfig, SubnetConfig } from '../../src/config/types.js';
import { DEFAULT_BOOT_FILES } from '../../src/config/defaults.js';
import type { Lease } from '../../src/leases/lease.js';
import { parseCidr, parseIpv4, type Ipv4 } from '../../src/net/ipv4.js';
import { parseMac, type Mac } from '../../src/net/mac.js';
import type { ConflictProber } from '../../src/net/ping.js';
import type { Store, StoreStats } from '../../src/store/db.js';

export const ip = (s: string): Ipv4 => parseIpv4(s);
export const mac = (s: string): Mac => parseMac(s);

/** One TLV option as raw bytes. */
export function opt(code: number, value: Buffer | readonly number[] | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value as readonly number[]);
  if (v.length > 255) throw new RangeError('fixture option too long');
  return Buffer.concat([Buffer.from([code, v.length]), v]);
}

export interface RawFields {
  op?: number;
  htype?: number;
  hlen?: number;
  hops?: number;
  xid?: number;
  secs?: number;
  flags?: number;
  ciaddr?: string;
  yiaddr?: string;
  siaddr?: string;
  giaddr?: string;
  /** Hardware address bytes (copied into the 16-byte chaddr). */
  chaddr?: readonly number[];
  /** Raw 64-byte sname field contents (shorter is zero-padded). */
  sname?: Buffer;
  /** Raw 128-byte file field contents (shorter is zero-padded). */
  file?: Buffer;
  cookie?: number;
  /** Everything after the cookie, verbatim (include End yourself). */
  options: Buffer;
}

function writeIp(buf: Buffer, off: number, s: string | undefined): void {
  buf.writeUInt32BE(s === undefined ? 0 : parseIpv4(s), off);
}

/** A DHCP message assembled field by field, without the codec under test. */
export function rawPacket(f: RawFields): Buffer {
  const head = Buffer.alloc(240);
  head[0] = f.op ?? 1;
  head[1] = f.htype ?? 1;
  head[2] = f.hlen ?? 6;
  head[3] = f.hops ?? 0;
  head.writeUInt32BE(f.xid ?? 0x12345678, 4);
  head.writeUInt16BE(f.secs ?? 0, 8);
  head.writeUInt16BE(f.flags ?? 0, 10);
  writeIp(head, 12, f.ciaddr);
  writeIp(head, 16, f.yiaddr);
  writeIp(head, 20, f.siaddr);
  writeIp(head, 24, f.giaddr);
  Buffer.from(f.chaddr ?? [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]).copy(head, 28);
  if (f.sname) f.sname.copy(head, 44, 0, Math.min(64, f.sname.length));
  if (f.file) f.file.copy(head, 108, 0, Math.min(128, f.file.length));
  head.writeUInt32BE(f.cookie ?? 0x63825363, 236);
  return Buffer.concat([head, f.options]);
}

export const END = Buffer.from([255]);

/** 17-byte option 97 value: type 0 + 16 UUID bytes. */
export const UUID_BYTES = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
export const UUID_TEXT = '00010203-0405-0607-0809-0a0b0c0d0e0f';
export const UUID_OPT_VALUE = Buffer.concat([Buffer.from([0]), UUID_BYTES]);

/** Intel-style PXE 2.1 BIOS ROM DISCOVER (the option set a real UNDI ROM sends). */
export function pxeBiosDiscover(over: Partial<RawFields> = {}): Buffer {
  return rawPacket({
    xid: 0x9a3c5e01,
    secs: 4,
    flags: 0x8000,
    chaddr: [0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01],
    options: Buffer.concat([
      opt(53, [1]),
      opt(57, [0x04, 0xec]), // 1260
      opt(93, [0, 0]),
      opt(94, [1, 2, 1]),
      opt(97, UUID_OPT_VALUE),
      opt(55, [1, 2, 3, 5, 6, 11, 12, 13, 15, 16, 17, 18, 43, 54, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135]),
      opt(60, 'PXEClient:Arch:00000:UNDI:002001'),
      END,
    ]),
    ...over,
  });
}

/** iPXE (undionly.kpxe) DISCOVER: user class "iPXE" (bare) and option 175 with feature sub-options. */
export function ipxeDiscover(over: Partial<RawFields> = {}): Buffer {
  const o175 = Buffer.from([
    0xb1, 0x05, 0x01, 0x80, 0x86, 0x10, 0x0e, // 177 bus-id
    0xeb, 0x03, 0x01, 0x00, 0x00, // 235 version
    0x17, 0x01, 0x01, // 23 HTTPS
    0x13, 0x01, 0x01, // 19 HTTP
    0x11, 0x01, 0x01, // 17 iSCSI
    0x27, 0x01, 0x01, // 39 EFI
  ]);
  return rawPacket({
    xid: 0x0badf00d,
    chaddr: [0x52, 0x54, 0x00, 0xaa, 0xbb, 0x02],
    options: Buffer.concat([
      opt(53, [1]),
      opt(57, [0x05, 0xc0]),
      opt(93, [0, 0]),
      opt(94, [1, 2, 1]),
      opt(60, 'PXEClient:Arch:00000:UNDI:002001'),
      opt(77, 'iPXE'),
      opt(55, [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203]),
      opt(175, o175),
      opt(61, [1, 0x52, 0x54, 0x00, 0xaa, 0xbb, 0x02]),
      opt(97, UUID_OPT_VALUE),
      END,
    ]),
    ...over,
  });
}

/** OVMF (EDK2) UEFI x64 PXE DISCOVER: arch 7. */
export function ovmfDiscover(over: Partial<RawFields> = {}): Buffer {
  return rawPacket({
    xid: 0x5ca1ab1e,
    flags: 0x8000,
    chaddr: [0x52, 0x54, 0x00, 0xaa, 0xbb, 0x03],
    options: Buffer.concat([
      opt(53, [1]),
      opt(57, [0x05, 0xdc]),
      opt(55, [1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135]),
      opt(97, UUID_OPT_VALUE),
      opt(94, [1, 3, 0]),
      opt(93, [0, 7]),
      opt(60, 'PXEClient:Arch:00007:UNDI:003000'),
      END,
    ]),
    ...over,
  });
}

/** A plain OS client (no vendor class), e.g. dhclient. */
export function plainOptions(type: number, extra: Buffer[] = []): Buffer {
  return Buffer.concat([opt(53, [type]), ...extra, opt(55, [1, 3, 6, 12, 15, 28]), END]);
}

export function subnet(cidr: string, first: string | undefined, last: string | undefined, extra: Partial<SubnetConfig> = {}): SubnetConfig {
  return {
    cidr: parseCidr(cidr),
    ...(first !== undefined && last !== undefined ? { pool: { first: ip(first), last: ip(last) } } : {}),
    dns: [],
    leaseTime: 3600,
    ...extra,
  };
}

export function reservation(m: string, addr: string, hostname?: string): ReservationConfig {
  return { mac: mac(m), ip: ip(addr), ...(hostname !== undefined ? { hostname } : {}) };
}

export const BOOT_FILES: BootFilesConfig = DEFAULT_BOOT_FILES;
export const PUBLIC_URL = 'http://10.99.0.1:8080';

/** A manually controllable gate: the promise returned by wait() settles when release() is called. */
interface Pending {
  readonly leases: readonly Lease[];
  resolve(): void;
  reject(e: Error): void;
}

/**
 * In-memory implementation of the Store interface (for tests only). With
 * `manual = true`, putLeases stays pending until the test calls flush().
 */
export class InMemoryStore implements Store {
  readonly leases = new Map<Ipv4, Lease>();
  readonly reservations = new Map<Mac, { readonly mac: Mac; readonly ip: Ipv4; readonly hostname?: string }>();
  /** Every putLeases call, in order. */
  readonly writes: (readonly Lease[])[] = [];
  readonly pending: Pending[] = [];
  manual = false;
  closed = false;

  async loadLeases(): Promise<Lease[]> {
    return [...this.leases.values()].sort((a, b) => a.ip - b.ip);
  }

  putLeases(leases: readonly Lease[]): Promise<void> {
    this.writes.push([...leases]);
    const apply = () => { for (const l of leases) this.leases.set(l.ip, l); };
    if (!this.manual) {
      apply();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ leases, resolve: () => { apply(); resolve(); }, reject });
    });
  }

  /** Completes every pending write (manual mode). */
  flush(): number {
    const n = this.pending.length;
    for (const p of this.pending.splice(0)) p.resolve();
    return n;
  }

  async deleteLeases(ips: readonly Ipv4[]): Promise<void> {
    for (const i of ips) this.leases.delete(i);
  }

  async loadReservations(): Promise<{ readonly mac: Mac; readonly ip: Ipv4; readonly hostname?: string }[]> {
    return [...this.reservations.values()];
  }

  async putReservation(r: { readonly mac: Mac; readonly ip: Ipv4; readonly hostname?: string }): Promise<void> {
    this.reservations.set(r.mac, r);
  }

  async deleteReservation(m: Mac): Promise<void> {
    this.reservations.delete(m);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  stats(): StoreStats {
    return {
      groupCommit: { batches: this.writes.length, ops: 0, failedBatches: 0, maxBatchSeen: 0, queued: 0 },
      corrupt: 0,
    } as StoreStats;
  }
}

/** Conflict prober whose answers the test decides; records every probe. */
export class FakeProber implements ConflictProber {
  readonly inUseSet = new Set<Ipv4>();
  readonly probed: Ipv4[] = [];
  /** When set, probes stay pending until resolveAll() is called. */
  manual = false;
  private readonly waiting: { ip: Ipv4; resolve: (v: boolean) => void }[] = [];

  async inUse(addr: Ipv4): Promise<boolean> {
    this.probed.push(addr);
    if (!this.manual) return this.inUseSet.has(addr);
    return new Promise<boolean>((resolve) => this.waiting.push({ ip: addr, resolve }));
  }

  resolveAll(): number {
    const n = this.waiting.length;
    for (const w of this.waiting.splice(0)) w.resolve(this.inUseSet.has(w.ip));
    return n;
  }
}

/** Settles queued microtasks and immediate callbacks. */
export function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
