/**
 * Who may change things through the API: with a configured token, requests
 * carrying it as a Bearer token; without one, only clients on loopback (the
 * admin on the server itself, through the CLI).
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export type ApiAuth = { readonly token?: string };

function sameSecret(a: string, b: string): boolean {
  // Compare fixed-length digests so neither length nor content leaks through timing.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export function isLoopback(addr: string): boolean {
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

export function mayChange(auth: ApiAuth, remote: string, authorization: string | undefined): boolean {
  if (auth.token === undefined) return isLoopback(remote);
  const m = /^Bearer (\S+)$/.exec(authorization ?? '');
  return m !== null && sameSecret(m[1]!, auth.token);
}

/** Fastify preHandler for mutating routes. */
export function requireChangeRight(auth: ApiAuth) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!mayChange(auth, req.ip, req.headers.authorization)) {
      await reply.code(auth.token === undefined ? 403 : 401).send({
        error: auth.token === undefined ? 'changes are allowed from loopback only (no http.apiTokenFile configured)' : 'missing or wrong API token',
      });
    }
  };
}
