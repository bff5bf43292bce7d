/**
 * Sends a regular file that resolves inside a directory (fs/under-root.ts: opened once, checked
 * on the descriptor, symlinks out refused), whole or one byte range: netboot files, the agent
 * ramdisk, images for the agent's deploy (which resumes a cut download with Range).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { openUnderRoot } from '../fs/under-root.js';
import type { Logger } from '../log.js';
import { unmapIpv4 } from '../net/ipv4.js';

/** A regular file inside dir, whole or one byte range (RFC 9110 §14), opened once and checked on the descriptor. */
export async function sendFile(req: FastifyRequest, reply: FastifyReply, dir: string, name: string, log: Logger, event: string): Promise<FastifyReply> {
  // Opened once, checked on the descriptor, then streamed from it: what is sent is what was checked.
  const opened = await openUnderRoot(dir, name);
  if (!opened.ok) {
    if (opened.kind === 'refused') log.warn({ event: `${event}-refused`, file: name, from: unmapIpv4(req.ip), reason: opened.reason }, 'file refused');
    return reply.code(404).send({ error: 'not found' });
  }
  const { file: fh, stat: st } = opened;
  reply.header('accept-ranges', 'bytes').type('application/octet-stream');
  const range = req.headers.range;
  if (range !== undefined) {
    // RFC 9110 §14.1.2/§14.2: one byte range. A syntactically invalid one (several ranges, or
    // last < first) is ignored and the file served whole ("MAY ignore"); a valid one that starts
    // beyond the end, or a zero-length suffix, is unsatisfiable: 416 with `bytes */size` (§15.5.17).
    const r = /^bytes=(\d*)-(\d*)$/.exec(range);
    const first = r?.[1] ? Number(r[1]) : undefined;
    const last = r?.[2] ? Number(r[2]) : undefined;
    const valid = r !== null && (first !== undefined || last !== undefined) && !(first !== undefined && last !== undefined && last < first);
    if (valid) {
      // "-N" is the last N bytes; "N-" runs to the end; a last-pos past the end is clipped.
      const start = first ?? Math.max(0, st.size - last!);
      const end = first === undefined || last === undefined ? st.size - 1 : Math.min(last, st.size - 1);
      if (start >= st.size || (first === undefined && last === 0)) {
        await fh.close();
        return reply.code(416).header('content-range', `bytes */${st.size}`).send();
      }
      log.debug({ event, file: name, from: unmapIpv4(req.ip), bytes: end - start + 1, range: `${start}-${end}` }, 'file range served');
      return reply.code(206).header('content-range', `bytes ${start}-${end}/${st.size}`).header('content-length', end - start + 1)
        .send(fh.createReadStream({ start, end }));
    }
  }
  log.info({ event, file: name, from: unmapIpv4(req.ip), bytes: st.size }, 'file served');
  return reply.header('content-length', st.size).send(fh.createReadStream());
}