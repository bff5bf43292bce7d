/**
 * What a TFTP transfer tells the event bus (pure): its start and its end, attributed to the
 * machine at the client's address when one is known.
 */
import type { EventBody } from '../events/bus.js';
import type { Mac } from '../net/mac.js';
import type { TransferEvent } from './server.js';

export function tftpEvent(e: TransferEvent, mac: Mac | undefined): Extract<EventBody, { readonly type: 'tftp.start' | 'tftp.end' }> {
  if (e.phase === 'start') return { type: 'tftp.start', client: e.client, file: e.file, size: e.size, ...(mac ? { mac } : {}) };
  const { phase: _p, ...end } = e;
  return { type: 'tftp.end', ...end, ...(mac ? { mac } : {}) };
}
