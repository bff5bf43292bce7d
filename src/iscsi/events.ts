/**
 * What the reconciler's view of tgtd sessions tells the event bus (pure): a login or logout on a
 * target, attributed to the machine whose disk the target exports.
 */
import type { EventBody } from '../events/bus.js';
import type { Mac } from '../net/mac.js';
import type { TgtSession } from './tgtadm.js';

export function sessionEvent(kind: 'login' | 'logout', target: string, s: TgtSession, mac: Mac | undefined): Extract<EventBody, { readonly type: 'iscsi.login' | 'iscsi.logout' }> {
  const address = s.connections[0]?.address;
  return { type: kind === 'login' ? 'iscsi.login' : 'iscsi.logout', iqn: target, initiator: s.initiator, ...(address ? { address } : {}), ...(mac ? { mac } : {}) };
}
