/**
 * DHCP fuzz packets from a seeded PRNG, and a sender that runs as its own
 * process inside a test namespace:
 *
 *   ip netns exec NS node dist/test/helpers/dhcp-fuzz.js --seed 1 --count 20000 \
 *     --server 10.94.0.1 --bcast 10.94.15.255 --pool-first A --pool-last B
 *
 * It sends every packet to UDP port 67 (unicast to the server, to the limited
 * broadcast and to the subnet broadcast, from port 68 and from an ephemeral
 * port), paced and bounded in time, then prints one JSON summary line.
 *
 * Packet kinds: valid PXE/iPXE DISCOVER/REQUEST/DECLINE/RELEASE/INFORM and
 * mutations of them (flipped bytes, truncation, lying option lengths, missing
 * End, overload (option 52) abuse, header field lies, zero-length and
 * duplicated options, giant and long-option packets), and plain garbage.
 */
import dgram from 'node:dgram';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** mulberry32: small, fast, seedable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzParams {
  readonly server: number;
  readonly poolFirst: number;
  readonly poolLast: number;
}

export interface FuzzPacket {
  readonly kind: string;
  readonly buf: Buffer;
  /**
   * No DHCP server may accept this: shorter than the fixed header plus the
   * magic cookie, or an option in the main options field runs past the end of
   * the packet before any End option.
   */
  readonly certainlyMalformed: boolean;
}

const HEADER = 236;
const COOKIE = [99, 130, 83, 99];

type Opt = [code: number, value: Buffer];

class Gen {
  constructor(private readonly rnd: () => number, private readonly p: FuzzParams) {}

  int(n: number): number { return Math.floor(this.rnd() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  chance(p: number): boolean { return this.rnd() < p; }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  ip(v: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; }
  poolIp(): number { return this.p.poolFirst + this.int(this.p.poolLast - this.p.poolFirst + 1); }
  /** A small fixed set of MACs most of the time, so valid packets do not exhaust the pool. */
  mac(): Buffer {
    return this.chance(0.8) ? Buffer.from([0x52, 0x54, 0x00, 0x94, 0xf0, this.int(32)]) : this.bytes(6);
  }

  header(opts: { op?: number; htype?: number; hlen?: number; ciaddr?: number; giaddr?: number; flags?: number; chaddr?: Buffer } = {}): Buffer {
    const b = Buffer.alloc(HEADER + 4);
    b[0] = opts.op ?? 1;
    b[1] = opts.htype ?? 1;
    b[2] = opts.hlen ?? 6;
    b[3] = this.chance(0.1) ? this.int(256) : 0;
    b.writeUInt32BE(this.int(2 ** 32), 4);
    b.writeUInt16BE(this.chance(0.2) ? this.int(65536) : 0, 8);
    b.writeUInt16BE(opts.flags ?? (this.chance(0.5) ? 0x8000 : 0), 10);
    b.writeUInt32BE((opts.ciaddr ?? 0) >>> 0, 12);
    b.writeUInt32BE((opts.giaddr ?? 0) >>> 0, 24);
    (opts.chaddr ?? this.mac()).copy(b, 28);
    Buffer.from(COOKIE).copy(b, HEADER);
    return b;
  }

  encodeOpts(opts: readonly Opt[], end = true): Buffer {
    const parts: Buffer[] = [];
    for (const [code, v] of opts) {
      for (let i = 0; i < v.length || i === 0; i += 255) {
        const chunk = v.subarray(i, Math.min(i + 255, v.length));
        parts.push(Buffer.from([code, chunk.length]), chunk);
        if (v.length === 0) break;
      }
    }
    if (end) parts.push(Buffer.from([255]));
    return Buffer.concat(parts);
  }

  pxeOptions(type: number): Opt[] {
    const arch = this.pick([0, 6, 7, 9, 10, 11, 16, 19, 0xffff]);
    const o: Opt[] = [[53, Buffer.from([type])]];
    if (this.chance(0.8)) o.push([60, Buffer.from(this.pick([`PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:002001`, 'HTTPClient:Arch:00016:UNDI:003000', 'PXEClient', 'udhcp 1.35.0', 'MSFT 5.0']))]);
    if (this.chance(0.8)) { const a = Buffer.alloc(2); a.writeUInt16BE(arch); o.push([93, a]); }
    if (this.chance(0.5)) o.push([94, Buffer.from([1, 2, 1])]);
    if (this.chance(0.6)) o.push([97, Buffer.concat([Buffer.from([0]), this.bytes(16)])]);
    if (this.chance(0.4)) o.push([77, Buffer.from('iPXE')]);
    if (this.chance(0.3)) o.push([175, Buffer.from([19, 1, 1, 17, 1, 1, 176, 1, 1])]);
    if (this.chance(0.3)) o.push([61, Buffer.concat([Buffer.from([1]), this.mac()])]);
    if (this.chance(0.3)) o.push([12, Buffer.from(this.pick(['node1', 'x'.repeat(63), 'bad host name', 'ünï\u0000cöde']), 'latin1')]);
    if (this.chance(0.2)) o.push([82, Buffer.from([1, 4, 0, 1, 2, 3, 2, 6, ...this.bytes(6)])]);
    if (this.chance(0.2)) o.push([57, Buffer.from([this.int(256), this.int(256)])]);
    o.push([55, this.chance(0.2) ? Buffer.from(Array.from({ length: 254 }, (_, i) => i + 1)) : Buffer.from([1, 3, 6, 12, 15, 28, 43, 60, 66, 67, 97, 128, 175])]);
    if (type === 3 || type === 4) {
      if (this.chance(0.7)) o.push([54, this.ip(this.chance(0.8) ? this.p.server : this.int(2 ** 32))]);
      if (this.chance(0.8)) o.push([50, this.ip(this.chance(0.8) ? this.poolIp() : this.int(2 ** 32))]);
    }
    if (type === 1 && this.chance(0.3)) o.push([50, this.ip(this.poolIp())]);
    if (type === 7) o.push([54, this.ip(this.p.server)]);
    return o;
  }

  /** A well-formed request of a random type. */
  valid(): Buffer {
    const type = this.pick([1, 1, 1, 3, 3, 3, 4, 7, 8, 2, 5, 6, 9, 0, 255]);
    const ciaddr = type === 7 || type === 8 || (type === 3 && this.chance(0.3)) ? this.poolIp() : 0;
    const giaddr = this.chance(0.15) ? (this.chance(0.5) ? this.poolIp() : this.int(2 ** 32)) : 0;
    const h = this.header({ ciaddr, giaddr });
    const buf = Buffer.concat([h, this.encodeOpts(this.pxeOptions(type))]);
    return buf.length < 300 ? Buffer.concat([buf, Buffer.alloc(300 - buf.length)]) : buf;
  }

  /** Options field whose last option runs past the end of the packet, no End before it. */
  lyingLength(): Buffer {
    const h = this.header();
    const opts = this.encodeOpts(this.pxeOptions(this.pick([1, 3])), false);
    // A last option that claims more bytes than remain.
    const n = this.int(20);
    const tail = Buffer.concat([Buffer.from([this.pick([12, 43, 55, 60, 61, 82, 93, 97, 175, 250]), n + 1 + this.int(255 - n)]), this.bytes(n)]);
    return Buffer.concat([h, opts, tail]);
  }

  mutate(b: Buffer): Buffer {
    const out = Buffer.from(b);
    const flips = 1 + this.int(12);
    for (let i = 0; i < flips; i++) {
      const at = this.chance(0.6) ? HEADER + this.int(Math.max(1, out.length - HEADER)) : this.int(out.length);
      if (at < out.length) out[at] = this.chance(0.5) ? this.int(256) : out[at]! ^ (1 << this.int(8));
    }
    return out;
  }

  overload(): Buffer {
    const h = this.header();
    const v = this.pick([0, 1, 2, 3, 4, 255]);
    const o: Opt[] = [[53, Buffer.from([this.pick([1, 3])])], [52, this.chance(0.8) ? Buffer.from([v]) : this.bytes(this.int(4))]];
    const main = this.encodeOpts(o, this.chance(0.8));
    // file (108..235) and sname (44..107): options, lying lengths, nested overload, or junk.
    const area = (len: number): Buffer => {
      const k = this.int(5);
      if (k === 0) return this.bytes(len);
      if (k === 1) return Buffer.concat([this.encodeOpts([[52, Buffer.from([3])], [53, Buffer.from([1])]], false), Buffer.alloc(len)]).subarray(0, len);
      if (k === 2) { const x = Buffer.alloc(len); x[0] = 60; x[1] = 250; return x; }
      if (k === 3) return Buffer.concat([this.encodeOpts([[61, this.bytes(this.int(40))], [12, Buffer.from('overloaded')]], this.chance(0.5)), Buffer.alloc(len)]).subarray(0, len);
      return Buffer.alloc(len, 0); // all Pad, no End
    };
    area(64).copy(h, 44);
    area(128).copy(h, 108);
    return Buffer.concat([h, main]);
  }

  headerLies(): Buffer {
    const h = this.header({
      op: this.pick([0, 1, 2, 3, 255]),
      htype: this.pick([0, 1, 6, 32, 255]),
      hlen: this.pick([0, 1, 6, 16, 17, 255]),
      ciaddr: this.int(2 ** 32),
      giaddr: this.chance(0.5) ? this.int(2 ** 32) : 0,
      flags: this.int(65536),
      chaddr: this.bytes(16),
    });
    if (this.chance(0.3)) h.writeUInt32BE(this.int(2 ** 32), HEADER); // wrong cookie
    return Buffer.concat([h, this.encodeOpts(this.pxeOptions(this.pick([1, 3, 8])))]);
  }

  weirdOptions(): Buffer {
    const h = this.header();
    const k = this.int(6);
    let opts: Buffer;
    if (k === 0) { // zero-length (and odd-length) known options
      opts = this.encodeOpts([53, 50, 54, 55, 60, 61, 77, 82, 93, 94, 97, 175, 12, 57].map((c): Opt => [c, this.bytes(this.chance(0.5) ? 0 : this.int(3))]));
    } else if (k === 1) { // duplicated options concatenate (RFC 3396)
      opts = this.encodeOpts([[53, Buffer.from([1])], [53, Buffer.from([3])], [50, Buffer.from([10, 94])], [50, Buffer.from([1, 5])], [93, Buffer.from([0])], [93, Buffer.from([7])]]);
    } else if (k === 2) { // long options split over many instances
      opts = this.encodeOpts([[53, Buffer.from([1])], [60, Buffer.from('PXEClient'.repeat(100))], [175, this.bytes(1000)], [82, this.bytes(600)], [77, this.bytes(700)], [55, this.bytes(300)]]);
    } else if (k === 3) { // only Pad, or End right away, or nothing
      opts = this.pick([Buffer.alloc(this.int(300)), Buffer.from([255]), Buffer.alloc(0)]);
    } else if (k === 4) { // sub-option structures that lie
      opts = this.encodeOpts([[53, Buffer.from([1])], [60, Buffer.from('PXEClient:Arch:00000')], [175, Buffer.from([19, 200, 1])], [82, Buffer.from([1, 255, 2])], [77, Buffer.from([5, 65, 66])], [43, Buffer.from([6, 9, 8])]]);
    } else { // random codes with random (honest) lengths
      opts = this.encodeOpts(Array.from({ length: 1 + this.int(30) }, (): Opt => [1 + this.int(254), this.bytes(this.int(40))]));
    }
    return Buffer.concat([h, opts]);
  }

  giant(): Buffer {
    if (this.chance(0.5)) return this.bytes(1500 + this.int(64_000));
    const h = this.header();
    const many: Opt[] = [[53, Buffer.from([1])], [60, Buffer.from('PXEClient:Arch:00007:UNDI:003016')]];
    const n = 50 + this.int(200);
    for (let i = 0; i < n; i++) many.push([this.pick([43, 77, 82, 175, 224, 250]), this.bytes(255)]);
    return Buffer.concat([h, this.encodeOpts(many)]).subarray(0, 65_000);
  }

  next(): FuzzPacket {
    const r = this.rnd();
    if (r < 0.06) return { kind: 'valid', buf: this.valid(), certainlyMalformed: false };
    if (r < 0.36) return { kind: 'flipped', buf: this.mutate(this.chance(0.5) ? this.valid() : this.overload()), certainlyMalformed: false };
    if (r < 0.5) {
      const b = this.valid();
      const len = this.int(HEADER + 4);
      return { kind: 'truncated', buf: b.subarray(0, len), certainlyMalformed: true };
    }
    if (r < 0.56) {
      const b = this.valid();
      return { kind: 'truncated-options', buf: b.subarray(0, HEADER + 4 + this.int(b.length - HEADER - 4)), certainlyMalformed: false };
    }
    if (r < 0.66) return { kind: 'lying-length', buf: this.lyingLength(), certainlyMalformed: true };
    if (r < 0.72) return { kind: 'overload', buf: this.overload(), certainlyMalformed: false };
    if (r < 0.8) return { kind: 'header-lies', buf: this.headerLies(), certainlyMalformed: false };
    if (r < 0.88) return { kind: 'weird-options', buf: this.weirdOptions(), certainlyMalformed: false };
    if (r < 0.995) {
      const b = this.bytes(this.int(this.chance(0.5) ? HEADER + 4 : 1500));
      return { kind: 'garbage', buf: b, certainlyMalformed: b.length < HEADER + 4 };
    }
    return { kind: 'giant', buf: this.giant(), certainlyMalformed: false };
  }
}

export function* fuzzPackets(seed: number, count: number, params: FuzzParams): Generator<FuzzPacket> {
  const g = new Gen(prng(seed), params);
  for (let i = 0; i < count; i++) yield g.next();
}

export interface FuzzSummary {
  sent: number;
  sendErrors: number;
  certainlyMalformed: number;
  kinds: Record<string, number>;
  elapsedMs: number;
  stoppedEarly: boolean;
}

function ipNum(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

async function bindSocket(port: number): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true, sendBufferSize: 4 << 20 });
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(port, () => { s.off('error', reject); resolve(); }); });
  s.setBroadcast(true);
  // Replies (offers to broadcast:68) arrive here; drain and ignore them.
  s.on('message', () => undefined);
  s.on('error', () => undefined);
  return s;
}

export async function sendFuzz(opts: {
  seed: number; count: number; server: string; bcast: string; poolFirst: string; poolLast: string;
  /** Packets per second. */ rate: number; maxSeconds: number;
}): Promise<FuzzSummary> {
  const socks = [await bindSocket(68), await bindSocket(0)];
  const dests = [opts.server, opts.server, '255.255.255.255', opts.bcast];
  const summary: FuzzSummary = { sent: 0, sendErrors: 0, certainlyMalformed: 0, kinds: {}, elapsedMs: 0, stoppedEarly: false };
  const start = Date.now();
  const deadline = start + opts.maxSeconds * 1000;
  const batch = 25;
  const gapMs = (batch * 1000) / opts.rate;
  let i = 0;
  let pending: Promise<void>[] = [];
  for (const p of fuzzPackets(opts.seed, opts.count, { server: ipNum(opts.server), poolFirst: ipNum(opts.poolFirst), poolLast: ipNum(opts.poolLast) })) {
    if (Date.now() > deadline) { summary.stoppedEarly = true; break; }
    const sock = socks[i % socks.length]!;
    const to = dests[(i >>> 1) % dests.length]!;
    pending.push(new Promise<void>((resolve) => sock.send(p.buf, 67, to, (err) => {
      if (err) summary.sendErrors++;
      else {
        summary.sent++;
        summary.kinds[p.kind] = (summary.kinds[p.kind] ?? 0) + 1;
        if (p.certainlyMalformed) summary.certainlyMalformed++;
      }
      resolve();
    })));
    i++;
    if (i % batch === 0) {
      await Promise.all(pending);
      pending = [];
      // Pace to the target rate (the kernel drops what the daemon's socket cannot take).
      const due = start + (i / batch) * gapMs;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
  await Promise.all(pending);
  summary.elapsedMs = Date.now() - start;
  for (const s of socks) s.close();
  return summary;
}

// Run as a script: parse argv, send, print the summary as one JSON line.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: v } = parseArgs({
    options: {
      seed: { type: 'string', default: '1' }, count: { type: 'string', default: '20000' },
      server: { type: 'string' }, bcast: { type: 'string' }, 'pool-first': { type: 'string' }, 'pool-last': { type: 'string' },
      rate: { type: 'string', default: '2500' }, 'max-seconds': { type: 'string', default: '60' },
    },
  });
  for (const k of ['server', 'bcast', 'pool-first', 'pool-last'] as const) if (!v[k]) throw new Error(`--${k} is required`);
  sendFuzz({
    seed: Number(v.seed), count: Number(v.count), server: v.server!, bcast: v.bcast!, poolFirst: v['pool-first']!, poolLast: v['pool-last']!,
    rate: Number(v.rate), maxSeconds: Number(v['max-seconds']),
  }).then((s) => { process.stdout.write(JSON.stringify(s) + '\n'); }, (e: unknown) => { process.stderr.write(`fuzz sender: ${String(e)}\n`); process.exitCode = 1; });
}
