/**
 * A small TFTP client at the socket level, for what real clients cannot be
 * made to do: ACK every block twice, vanish after the request, hold transfers
 * open, send from a wrong TID, send hostile names and write requests. Run
 * inside a test namespace as
 *   node dist/test/helpers/tftp-client.js <command> <server> <json-args>
 * and prints one JSON result line on stdout.
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import {
  OP_DATA, OP_ERROR, OP_OACK, OP_RRQ, OP_WRQ, decodePacket, encodeAck, encodeRequest, type TftpOption, type TftpPacket,
} from '../../src/tftp/packet.js';

interface Received { packet: TftpPacket; port: number; address: string }

function socket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  return new Promise((r) => s.bind(0, () => r(s)));
}

/** Next decodable packet on s, or undefined after ms. */
function next(s: dgram.Socket, ms: number): Promise<Received | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { s.off('message', on); resolve(undefined); }, ms);
    const on = (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      const d = decodePacket(msg);
      if (!d.ok) return;
      clearTimeout(t);
      s.off('message', on);
      resolve({ packet: d.packet, port: rinfo.port, address: rinfo.address });
    };
    s.on('message', on);
  });
}

function describe(r: Received | undefined): unknown {
  if (!r) return { op: 'none' };
  const p = r.packet;
  if (p.op === OP_ERROR) return { op: 'error', code: p.code, message: p.message, port: r.port };
  if (p.op === OP_DATA) return { op: 'data', block: p.block, length: p.data.length, port: r.port };
  if (p.op === OP_OACK) return { op: 'oack', options: p.options, port: r.port };
  return { op: p.op, port: r.port };
}

export interface GetArgs {
  file: string;
  options?: TftpOption[];
  /** How many times each ACK is sent (2: the duplicate-ACK replay). */
  ackTimes?: number;
  /** After the first DATA, send an ACK from another socket to the transfer's port. */
  wrongTid?: boolean;
  /** Wait this long before each ACK: a slow client (a transfer to watch in progress). */
  ackDelayMs?: number;
  timeoutMs?: number;
}

/** A full RRQ (lock-step or windowed). Reports every DATA packet received and the sha256 of the file. */
async function get(server: string, a: GetArgs): Promise<unknown> {
  const s = await socket();
  const blksize = Number(a.options?.find(([k]) => k === 'blksize')?.[1] ?? 512);
  let windowsize = 1;
  s.send(encodeRequest({ op: OP_RRQ, filename: a.file, mode: 'octet', options: a.options ?? [] }), 69, server);
  const hash = createHash('sha256');
  let expected = 1;
  let dataPackets = 0;
  let tid: number | undefined;
  let wrongTidReply: unknown;
  let bytes = 0;
  const ack = async (b: number) => {
    if (a.ackDelayMs) await new Promise((r) => setTimeout(r, a.ackDelayMs));
    for (let i = 0; i < (a.ackTimes ?? 1); i++) s.send(encodeAck(b), tid!, server);
  };
  for (;;) {
    const r = await next(s, a.timeoutMs ?? 5000);
    if (!r) { s.close(); return { ok: false, error: 'timeout', dataPackets, bytes }; }
    tid ??= r.port;
    const p = r.packet;
    if (p.op === OP_ERROR) { s.close(); return { ok: false, error: `ERROR ${p.code} ${p.message}`, dataPackets, bytes }; }
    if (p.op === OP_OACK) {
      windowsize = Number(p.options.find(([k]) => k === 'windowsize')?.[1] ?? 1);
      const bs = p.options.find(([k]) => k === 'blksize');
      if (bs && Number(bs[1]) !== blksize) { s.close(); return { ok: false, error: `blksize ${bs[1]}` }; }
      await ack(0);
      continue;
    }
    if (p.op !== OP_DATA) continue;
    dataPackets++;
    if (a.wrongTid && dataPackets === 1) {
      const other = await socket();
      other.send(encodeAck(1), tid, server);
      wrongTidReply = describe(await next(other, 2000));
      other.close();
    }
    if (p.block === (expected & 0xffff)) {
      hash.update(p.data);
      bytes += p.data.length;
      const last = p.data.length < blksize;
      if (last || expected % windowsize === 0) await ack(p.block);
      expected++;
      if (last) break;
    }
  }
  // Linger like a polite client: count late duplicates for a moment.
  for (;;) {
    const r = await next(s, 300);
    if (!r) break;
    if (r.packet.op === OP_DATA) dataPackets++;
  }
  s.close();
  return { ok: true, sha256: hash.digest('hex'), bytes, blocks: expected - 1, dataPackets, wrongTidReply };
}

/** Sends an RRQ from a socket that is closed right after the first answer: the client vanishes. */
async function vanish(server: string, a: { file: string; options?: TftpOption[] }): Promise<unknown> {
  const s = await socket();
  s.send(encodeRequest({ op: OP_RRQ, filename: a.file, mode: 'octet', options: a.options ?? [] }), 69, server);
  const first = await next(s, 3000);
  s.close();
  return { first: describe(first) };
}

/** One request per name (RRQ, or WRQ with wrq: true), each from its own socket; the first answer of each. */
async function ask(server: string, a: { names: string[]; wrq?: boolean; latin1?: boolean }): Promise<unknown> {
  const out: unknown[] = [];
  for (const name of a.names) {
    const s = await socket();
    s.send(encodeRequest({ op: a.wrq ? OP_WRQ : OP_RRQ, filename: name, mode: 'octet' }), 69, server);
    const r = await next(s, 3000);
    s.close();
    out.push({ name, reply: describe(r) });
  }
  return out;
}

/** Opens `hold` transfers that are never acknowledged, then asks once more; reports the extra request's answer. */
async function busy(server: string, a: { file: string; hold: number }): Promise<unknown> {
  const held: dgram.Socket[] = [];
  const firsts: unknown[] = [];
  for (let i = 0; i < a.hold; i++) {
    const s = await socket();
    held.push(s);
    s.send(encodeRequest({ op: OP_RRQ, filename: a.file, mode: 'octet' }), 69, server);
    firsts.push(describe(await next(s, 3000)));
  }
  const extra = await socket();
  extra.send(encodeRequest({ op: OP_RRQ, filename: a.file, mode: 'octet' }), 69, server);
  const reply = describe(await next(extra, 3000));
  extra.close();
  for (const s of held) s.close();
  return { held: firsts, extra: reply };
}

const commands: Record<string, (server: string, a: never) => Promise<unknown>> = { get, vanish, ask, busy };

const isMain = process.argv[1]?.endsWith('tftp-client.js');
if (isMain) {
  const [cmd, server, json] = process.argv.slice(2);
  const f = commands[cmd ?? ''];
  if (!f || !server) {
    console.error('usage: tftp-client.js get|vanish|ask|busy <server> <json>');
    process.exit(2);
  }
  f(server, JSON.parse(json ?? '{}') as never).then((r) => { console.log(JSON.stringify(r)); }, (e: unknown) => { console.error(String(e)); process.exit(1); });
}
