/**
 * A DHCP load client that can pull the plug: it runs many DORA exchanges at
 * once as a relay agent would (giaddr = its own address, replies to it on
 * port 67), and the moment it has received `--kill-after` ACKs it sends
 * SIGKILL to `--kill-pid` (the daemon) itself, with no round trip through the
 * test. It keeps listening briefly (ACKs already on their way were sent before
 * the kill too) and prints every ACK it received as one JSON line:
 *
 *   ip netns exec NS node dist/test/helpers/dhcp-storm.js --server 10.95.0.1 \
 *     --local 10.95.0.2 --kill-pid 1234 --kill-after 150 [--window 64]
 *
 * A daemon that replies before its lease write is durable loses some of these.
 */
import dgram from 'node:dgram';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const COOKIE = 0x63825363;

function ipBytes(s: string): Buffer {
  return Buffer.from(s.split('.').map(Number));
}

function ipStr(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function packet(type: number, xid: number, mac: Buffer, giaddr: Buffer, extra: [number, Buffer][]): Buffer {
  const b = Buffer.alloc(300);
  b[0] = 1; b[1] = 1; b[2] = 6;
  b.writeUInt32BE(xid >>> 0, 4);
  giaddr.copy(b, 24);
  mac.copy(b, 28);
  b.writeUInt32BE(COOKIE, 236);
  let o = 240;
  for (const [code, v] of [[53, Buffer.from([type])] as [number, Buffer], ...extra]) {
    b[o] = code; b[o + 1] = v.length; v.copy(b, o + 2); o += 2 + v.length;
  }
  b[o] = 255;
  return b;
}

function options(p: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let i = 240; i < p.length;) {
    const c = p[i]!;
    if (c === 0) { i++; continue; }
    if (c === 255 || i + 1 >= p.length) break;
    m.set(c, p.subarray(i + 2, i + 2 + p[i + 1]!));
    i += 2 + p[i + 1]!;
  }
  return m;
}

export interface StormResult {
  /** [mac, ip] of every ACK received. */
  acks: [string, string][];
  acksBeforeKill: number;
  killed: boolean;
  discovers: number;
  elapsedMs: number;
}

export async function storm(o: { server: string; local: string; killPid: number; killAfter: number; window: number; macPrefix: number; maxSeconds: number }): Promise<StormResult> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  await new Promise<void>((res, rej) => { sock.once('error', rej); sock.bind(67, o.local, () => res()); });
  const giaddr = ipBytes(o.local);
  const start = Date.now();
  const res: StormResult = { acks: [], acksBeforeKill: 0, killed: false, discovers: 0, elapsedMs: 0 };
  const clients = new Map<number, { mac: Buffer; started: number }>();
  let next = 0;
  let stopSending = false;

  const startClient = () => {
    if (stopSending || Date.now() - start > o.maxSeconds * 1000 || next >= 0xffff) return;
    const n = next++;
    const mac = Buffer.from([0x00, 0x0c, o.macPrefix & 0xff, 0x00, n >> 8, n & 0xff]);
    const xid = ((o.macPrefix & 0xff) << 24) | n;
    clients.set(xid, { mac, started: Date.now() });
    res.discovers++;
    sock.send(packet(1, xid, mac, giaddr, []), 67, o.server);
  };

  sock.on('message', (msg) => {
    if (msg.length < 240 || msg[0] !== 2 || msg.readUInt32BE(236) !== COOKIE) return;
    const xid = msg.readUInt32BE(4);
    const c = clients.get(xid);
    if (!c) return;
    const opts = options(msg);
    const type = opts.get(53)?.[0];
    const yiaddr = msg.subarray(16, 20);
    if (type === 2) {
      const sid = opts.get(54);
      if (!stopSending && sid) sock.send(packet(3, xid, c.mac, giaddr, [[50, Buffer.from(yiaddr)], [54, Buffer.from(sid)]]), 67, o.server);
      return;
    }
    clients.delete(xid);
    if (type === 5) {
      res.acks.push([[...c.mac].map((x) => x.toString(16).padStart(2, '0')).join(':'), ipStr(msg, 16)]);
      if (!res.killed && res.acks.length >= o.killAfter) {
        // Pull the plug now, synchronously, before anything else runs.
        try { process.kill(o.killPid, 'SIGKILL'); res.killed = true; } catch { /* already gone */ }
        res.acksBeforeKill = res.acks.length;
        stopSending = true;
      }
    }
    startClient();
  });

  for (let i = 0; i < o.window; i++) startClient();
  // Re-start clients whose exchange stalled (a lost packet), until done.
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = Date.now();
      for (const [xid, c] of clients) if (now - c.started > 2000) { clients.delete(xid); startClient(); }
      if (stopSending || now - start > o.maxSeconds * 1000) { clearInterval(tick); resolve(); }
    }, 50);
  });
  // ACKs that were already on their way when the daemon died.
  await new Promise((r) => setTimeout(r, 300));
  sock.close();
  res.elapsedMs = Date.now() - start;
  return res;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: v } = parseArgs({
    options: {
      server: { type: 'string' }, local: { type: 'string' }, 'kill-pid': { type: 'string' }, 'kill-after': { type: 'string', default: '150' },
      window: { type: 'string', default: '64' }, 'mac-prefix': { type: 'string', default: '4' }, 'max-seconds': { type: 'string', default: '20' },
    },
  });
  if (!v.server || !v.local || !v['kill-pid']) throw new Error('--server, --local and --kill-pid are required');
  storm({
    server: v.server, local: v.local, killPid: Number(v['kill-pid']), killAfter: Number(v['kill-after']),
    window: Number(v.window), macPrefix: Number(v['mac-prefix']), maxSeconds: Number(v['max-seconds']),
  }).then((r) => { process.stdout.write(JSON.stringify(r) + '\n'); }, (e: unknown) => { process.stderr.write(`dhcp-storm: ${String(e)}\n`); process.exitCode = 1; });
}
