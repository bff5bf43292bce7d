/**
 * A bounded UDP flood for the security tests, run inside the attacker's
 * namespace (`node udp-flood.js <mode> <json>`). It sends only to the one
 * server address given (a test namespace's), at most rate × duration
 * datagrams, and prints one JSON line of what it sent and what came back.
 *
 *   rrq:    TFTP read requests, each from a fresh socket (a new TID) bound to
 *           the next source address; never ACKed. The sockets stay open to
 *           the end so every answer (DATA, OACK, ERROR) is counted.
 *   syslog: RFC 3164 lines `<14>atk flood: <tag> <source> <n>`, one socket per
 *           source address, sources taken in turn.
 */
import dgram from 'node:dgram';
import { decodePacket, encodeRequest, OP_DATA, OP_ERROR, OP_OACK, OP_RRQ } from '../../src/tftp/packet.js';

interface FloodArgs {
  readonly server: string;
  readonly port: number;
  /** Datagrams per second, and for how long (both capped below). */
  readonly rate: number;
  readonly durationMs: number;
  /** Local addresses to send from, in turn (they must be on the attacker's interface). */
  readonly sources: readonly string[];
  /** rrq: the file asked for; syslog: a tag put in every line. */
  readonly file?: string;
  readonly tag?: string;
}

const MAX_RATE = 2000;
const MAX_DURATION_MS = 30_000;

async function bound(address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(0, address, () => { s.off('error', reject); resolve(); }); });
  s.on('error', () => undefined);
  return s;
}

async function flood(mode: 'rrq' | 'syslog', a: FloodArgs): Promise<Record<string, unknown>> {
  const rate = Math.min(a.rate, MAX_RATE);
  const duration = Math.min(a.durationMs, MAX_DURATION_MS);
  const total = Math.floor((rate * duration) / 1000);
  const replies = { data: 0, oack: 0, error: 0, other: 0 };
  const errors: Record<string, number> = {};
  const sockets: dgram.Socket[] = [];
  const perSource = new Map<string, dgram.Socket>();
  const started = Date.now();
  let sent = 0;
  for (let i = 0; i < total; i++) {
    // Paced against the clock: datagram i leaves at i / rate seconds.
    const due = started + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const src = a.sources[i % a.sources.length]!;
    if (mode === 'rrq') {
      const s = await bound(src);
      sockets.push(s);
      s.on('message', (m) => {
        const d = decodePacket(m);
        if (!d.ok) { replies.other++; return; }
        if (d.packet.op === OP_DATA) replies.data++;
        else if (d.packet.op === OP_OACK) replies.oack++;
        else if (d.packet.op === OP_ERROR) { replies.error++; errors[d.packet.message] = (errors[d.packet.message] ?? 0) + 1; }
        else replies.other++;
      });
      s.send(encodeRequest({ op: OP_RRQ, filename: a.file ?? 'x', mode: 'octet' }), a.port, a.server);
    } else {
      let s = perSource.get(src);
      if (!s) { s = await bound(src); perSource.set(src, s); sockets.push(s); }
      s.send(`<14>atk flood: ${a.tag ?? 'spoof'} ${src} ${i}`, a.port, a.server);
    }
    sent++;
  }
  const elapsedMs = Date.now() - started;
  // Answers to the last requests (and retransmissions) arrive within a second.
  await new Promise((r) => setTimeout(r, 1000));
  for (const s of sockets) s.close();
  return { mode, sent, elapsedMs, sources: a.sources.length, replies, errors };
}

const isMain = process.argv[1]?.endsWith('udp-flood.js');
if (isMain) {
  const [mode, json] = process.argv.slice(2);
  if ((mode !== 'rrq' && mode !== 'syslog') || !json) {
    console.error('usage: udp-flood.js rrq|syslog <json>');
    process.exit(2);
  }
  flood(mode, JSON.parse(json) as FloodArgs).then((r) => { console.log(JSON.stringify(r)); }, (e: unknown) => { console.error(String(e)); process.exit(1); });
}
