/**
 * How route handlers answer the two things every API route meets: a MAC in the request that is
 * not one (400 naming the field) and a service's refusal (errors.ts sendError: its status, its
 * message, 5xx logged). Only the handler is wrapped: a route's access (access.ts, fixed when it
 * is registered) and its preHandler stay in its options, so authorisation is still decided on
 * the route the router matched, before any of this runs.
 */
import type { FastifyReply, FastifyRequest, RouteGenericInterface } from 'fastify';
import type { Logger } from '../log.js';
import { nonUnicastMacReason, tryParseMac, type Mac } from '../net/mac.js';
import { sendError } from './errors.js';

export interface MacFieldOptions {
  /** The request field named in the error; default params.mac. */
  readonly field?: string;
  /** Also refuse addresses that are no one machine's (broadcast, multicast, all-zero): enrolment. */
  readonly unicast?: boolean;
}

/** The MAC in `raw`, or undefined after a 400 naming the field has been sent. */
export function macOr400(raw: string, reply: FastifyReply, o: MacFieldOptions = {}): Mac | undefined {
  const field = o.field ?? 'params.mac';
  const mac = tryParseMac(raw);
  if (!mac) {
    void reply.code(400).send({ error: `${field}: ${JSON.stringify(raw.slice(0, 40))} is not a MAC address` });
    return undefined;
  }
  const notUnicast = o.unicast ? nonUnicastMacReason(mac) : undefined;
  if (notUnicast) {
    void reply.code(400).send({ error: `${field}: ${mac} is ${notUnicast}, not one machine's` });
    return undefined;
  }
  return mac;
}

/** Where a handler's thrown error is answered: sendError, 5xx logged under `event`. */
export interface ErrorAnswer {
  readonly log: Logger;
  readonly event: string;
}

/** A request to a /:mac route (fastify resolves `params` only once R is known). */
type MacRequest<R extends RouteGenericInterface> = FastifyRequest<R> & { readonly params: { readonly mac: string } };

/** The handler, with what it throws answered by sendError. */
export function answering<Req>(errors: ErrorAnswer, handler: (req: Req, reply: FastifyReply) => unknown): (req: Req, reply: FastifyReply) => Promise<unknown> {
  return async (req, reply) => {
    try {
      return await handler(req, reply);
    } catch (e) {
      return sendError(reply, e, errors.log, errors.event);
    }
  };
}

/**
 * A /:mac route's handler: the MAC parsed (or 400), then `handler` with it; what it throws is
 * answered by sendError, or without `errors` left to the app's error handler (500).
 */
export function macRoute<R extends RouteGenericInterface & { Params: { mac: string } }>(
  errors: ErrorAnswer | undefined,
  handler: (mac: Mac, req: MacRequest<R>, reply: FastifyReply) => unknown,
  o?: MacFieldOptions,
): (req: MacRequest<R>, reply: FastifyReply) => Promise<unknown> {
  const withMac = (req: MacRequest<R>, reply: FastifyReply): unknown => {
    const mac = macOr400(req.params.mac, reply, o);
    return mac ? handler(mac, req, reply) : reply;
  };
  return errors ? answering(errors, withMac) : async (req, reply) => withMac(req, reply);
}
