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
import { MachineError } from '../machines/record.js';
import { TransitionError } from '../machines/model.js';
import { PowerError, type PowerErrorKind } from '../power/driver.js';

/**
 * The BMC is the gateway here: it refused the credentials (502) or the request (502), did not
 * answer (504), or has no way to do what was asked (501), whatever protocol the driver speaks.
 */
const POWER_STATUS: Readonly<Record<PowerErrorKind, number>> = { auth: 502, refused: 502, unreachable: 504, unsupported: 501 };

export function statusOf(e: unknown): number {
  if (e instanceof MachineError) return { 'not-found': 404, exists: 409, invalid: 400, conflict: 409, 'no-power': 409, 'no-disks': 409 }[e.code];
  if (e instanceof TransitionError) return 409;
  if (e instanceof PowerError) return POWER_STATUS[e.kind];
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
    || e instanceof MachineError || e instanceof TransitionError || e instanceof PowerError;
  const message = known || status < 500 ? (e as Error).message : 'internal error';
  if (status >= 500) log.error({ event, err: errorMessage(e) }, 'request failed');
  return reply.code(status).send({ error: message });
}
