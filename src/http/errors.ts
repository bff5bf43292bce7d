/**
 * One mapping from the services' typed errors to HTTP statuses, so every route answers a
 * refusal the same way: a status that says what kind of problem it is, and the error's own
 * message (which names the thing that failed and never carries a secret).
 */
import { errorMessage } from '../errors/message.js';
import type { FastifyReply } from 'fastify';
import type { Logger } from '../log.js';
import { DiskError } from '../disks/service.js';
import { IscsiUnavailableError } from '../reconcile.js';
import { AlreadyExistsError, BusyError, InUseError, InvalidNameError, NotFoundError, PoolFullError, SizeError, StorageError } from '../storage/backend.js';
import { ImageFormatError } from '../images/service.js';
import { ImportPathError } from '../images/import-dir.js';
import { TgtadmError } from '../iscsi/tgtd.js';
import { MachineError } from '../machines/service.js';
import { TransitionError } from '../machines/model.js';
import { IpmiAuthError, IpmiError } from '../ipmi/errors.js';

export function statusOf(e: unknown): number {
  if (e instanceof MachineError) return { 'not-found': 404, exists: 409, invalid: 400, conflict: 409, 'no-bmc': 409, 'no-disks': 409 }[e.code];
  if (e instanceof TransitionError) return 409;
  // The BMC refused (502) or did not answer (504): a gateway's errors, not ours.
  if (e instanceof IpmiAuthError) return 502;
  if (e instanceof IpmiError) return 504;
  if (e instanceof DiskError) return { 'not-found': 404, exists: 409, busy: 409, invalid: 400, 'image-not-found': 404, 'not-exported': 409 }[e.code];
  // Outside the import directory is a refusal of what the path names (403); the rest are bad input.
  if (e instanceof ImportPathError) return e.problem === 'outside' ? 403 : 400;
  if (e instanceof InvalidNameError || e instanceof SizeError || e instanceof ImageFormatError) return 400;
  if (e instanceof NotFoundError) return 404;
  if (e instanceof AlreadyExistsError || e instanceof InUseError || e instanceof BusyError) return 409;
  if (e instanceof PoolFullError) return 507;
  if (e instanceof IscsiUnavailableError) return 503;
  return 500;
}

/** Sends the error; 5xx are logged (the client sees a message, the log keeps the detail). */
export function sendError(reply: FastifyReply, e: unknown, log: Logger, event: string): FastifyReply {
  const status = statusOf(e);
  const known = e instanceof DiskError || e instanceof StorageError || e instanceof IscsiUnavailableError || e instanceof TgtadmError
    || e instanceof MachineError || e instanceof TransitionError || e instanceof IpmiError;
  const message = known || status < 500 ? (e as Error).message : 'internal error';
  if (status >= 500) log.error({ event, err: errorMessage(e) }, 'request failed');
  return reply.code(status).send({ error: message });
}
