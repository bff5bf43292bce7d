/**
 * tgtd's management protocol, spoken directly on its control socket for the one request that
 * carries a secret: `--mode account --op new` (a CHAP account). tgtadm takes the secret only as
 * `--password <secret>` on its command line (no stdin, file or environment option in tgt 1.0.85:
 * see tgtadm --help and tgt-admin, which also passes `--password=` on argv), where any local user
 * reads it in /proc/<pid>/cmdline while tgtadm runs. Sending the same request ourselves keeps the
 * secret inside this process and the kernel's socket buffer.
 *
 * The wire format is tgtadm's own (tgt usr/tgtadm.h, struct tgtadm_req; checked byte for byte
 * against `strace -e write tgtadm ... --mode account --op new` of tgt 1.0.85 in
 * test/unit/iscsi-tgtd-ipc.test.ts): a 120-byte header in host byte order, then the parameters as
 * one NUL-terminated "key=value,key=value" string; the answer is struct tgtadm_rsp {u32 err;
 * u32 len} (len counts the 8 header bytes) followed by len - 8 bytes of text. The socket is
 * `<TGT_IPC_SOCKET or /var/run/tgtd/socket>.<control port>`, a root-only Unix stream socket.
 *
 * Pure encoders/decoders first; the one socket exchange at the end.
 */
import net from 'node:net';
import os from 'node:os';
import { checkSecret, checkUser } from './tgtadm.js';

/** enum tgtadm_mode / tgtadm_op values (tgt usr/tgtadm.h): MODE_ACCOUNT is 7, OP_NEW 0. */
export const TGT_MODE_ACCOUNT = 7;
export const TGT_OP_NEW = 0;
export const TGT_REQ_HEADER_BYTES = 120;
export const TGT_RSP_HEADER_BYTES = 8;
/** Bound on an answer we read: a new-account answer is empty; anything large is not tgtd. */
export const TGT_RSP_MAX_BYTES = 64 * 1024;
export const DEFAULT_TGT_SOCKET_BASE = '/var/run/tgtd/socket';

/**
 * What tgtadm prints for the enum tgtadm_errno values a new-account request can get (so
 * classifyTgtadmFailure reads ours the same way); 14 was observed for a duplicate account.
 */
const TGT_ERRNO_TEXT: Readonly<Record<number, string>> = {
  1: 'unknown error', 2: 'out of memory', 3: "can't find the driver", 14: 'this account already exists',
  16: 'too many accounts', 17: 'invalid request', 23: 'unknown parameter',
};

export function tgtErrnoText(err: number): string {
  return TGT_ERRNO_TEXT[err] ?? `tgtd error ${err}`;
}

export class TgtdIpcError extends Error {
  constructor(readonly controlPort: number, readonly reason: 'connect' | 'timeout' | 'protocol' | 'refused', detail: string, readonly tgtErrno?: number) {
    super(`tgtd control socket (port ${controlPort}): ${detail}`);
    this.name = 'TgtdIpcError';
  }
}

export function tgtSocketPath(controlPort: number, base = DEFAULT_TGT_SOCKET_BASE): string {
  return `${base}.${controlPort}`;
}

/**
 * struct tgtadm_req for `--lld iscsi --mode account --op new --user U --password P`, followed by
 * "user=U,password=P\0". Values must not contain ',' (tgtd splits the string on it): tgtadm.ts's
 * checkUser / checkSecret, applied here as for the argv, allow neither ',' nor NUL.
 */
export function encodeNewAccountRequest(user: string, secret: string, endian: 'LE' | 'BE' = os.endianness()): Buffer {
  checkUser(user);
  checkSecret(secret);
  const params = Buffer.from(`user=${user},password=${secret}\0`, 'latin1');
  const h = Buffer.alloc(TGT_REQ_HEADER_BYTES);
  const u32 = (v: number, at: number) => (endian === 'LE' ? h.writeUInt32LE(v, at) : h.writeUInt32BE(v, at));
  const i32 = (v: number, at: number) => (endian === 'LE' ? h.writeInt32LE(v, at) : h.writeInt32BE(v, at));
  u32(TGT_MODE_ACCOUNT, 0); // mode
  u32(TGT_OP_NEW, 4); // op
  h.write('iscsi', 8, 'latin1'); // lld[64], NUL-padded
  u32(TGT_REQ_HEADER_BYTES + params.length, 72); // len: header and parameters
  i32(-1, 76); // tid: none
  // sid (u64 at 80) 0; lun (u64 at 88) "none" = all ones, as tgtadm sends them.
  h.fill(0xff, 88, 96);
  // cid, host_no, device_type, ac_dir, pack, force (u32 each, 96..120): 0.
  return Buffer.concat([h, params]);
}

/** struct tgtadm_rsp: the error number and the total length (header included). */
export function decodeResponseHeader(b: Buffer, endian: 'LE' | 'BE' = os.endianness()): { err: number; len: number } | string {
  if (b.length < TGT_RSP_HEADER_BYTES) return `answer header is ${b.length} bytes, expected ${TGT_RSP_HEADER_BYTES}`;
  const err = endian === 'LE' ? b.readUInt32LE(0) : b.readUInt32BE(0);
  const len = endian === 'LE' ? b.readUInt32LE(4) : b.readUInt32BE(4);
  if (len < TGT_RSP_HEADER_BYTES || len > TGT_RSP_MAX_BYTES) return `answer length ${len} out of range ${TGT_RSP_HEADER_BYTES}..${TGT_RSP_MAX_BYTES}`;
  if (err > 0xffff) return `answer error number ${err} is not a tgtd errno`;
  return { err, len };
}

/**
 * One request on tgtd's control socket; resolves with the answer's text, rejects with a
 * TgtdIpcError (the message never contains the request, which holds the secret).
 */
export function tgtdRequest(socketPath: string, controlPort: number, request: Buffer, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    let done = false;
    const sock = net.connect({ path: socketPath });
    const finish = (e: TgtdIpcError | undefined, text?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (e) reject(e); else resolve(text ?? '');
    };
    const timer = setTimeout(() => finish(new TgtdIpcError(controlPort, 'timeout', `no answer within ${timeoutMs} ms`)), timeoutMs);
    sock.once('connect', () => sock.write(request));
    sock.on('error', (e: NodeJS.ErrnoException) => finish(new TgtdIpcError(controlPort, 'connect', `${e.code ?? 'error'} on ${socketPath} (is tgtd running on this control port?)`)));
    const evaluate = (): boolean => {
      const all = Buffer.concat(chunks);
      const h = decodeResponseHeader(all);
      if (typeof h === 'string') { if (all.length >= TGT_RSP_HEADER_BYTES) finish(new TgtdIpcError(controlPort, 'protocol', h)); return all.length >= TGT_RSP_HEADER_BYTES; }
      if (all.length < h.len) return false;
      const text = all.subarray(TGT_RSP_HEADER_BYTES, h.len).toString('latin1').replace(/\0+$/, '');
      if (h.err !== 0) finish(new TgtdIpcError(controlPort, 'refused', tgtErrnoText(h.err), h.err));
      else finish(undefined, text);
      return true;
    };
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got > TGT_RSP_MAX_BYTES) { finish(new TgtdIpcError(controlPort, 'protocol', `answer longer than ${TGT_RSP_MAX_BYTES} bytes`)); return; }
      chunks.push(d);
      evaluate();
    });
    sock.once('end', () => { if (!evaluate()) finish(new TgtdIpcError(controlPort, 'protocol', `tgtd closed the socket after ${got} bytes of its answer`)); });
  });
}
