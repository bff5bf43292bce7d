/**
 * A machine's disk as the store keeps it: which image it was cloned from, the backend volume,
 * the iSCSI target it is exported as and the credentials that lock the target to the machine.
 * Plus the operation journal entry written before any step that changes storage or tgtd.
 * Decoders validate what comes back from the store; nothing here does I/O.
 */
import { randomInt } from 'node:crypto';
import { checkId } from '../storage/backend.js';
import { iqnForMac, isValidIscsiName } from '../iscsi/iqn.js';
import { tryParseMac, type Mac } from '../net/mac.js';

export interface ChapAccount {
  readonly user: string;
  readonly secret: string;
}

export interface DiskRecord {
  readonly mac: Mac;
  /** Backend volume id ("m-525400990001"). */
  readonly diskId: string;
  readonly imageId: string;
  readonly targetIqn: string;
  /** The only initiator name the target admits (the machine's iPXE script sets it). */
  readonly initiatorIqn: string;
  /** Incoming CHAP: the initiator proves itself with it. */
  readonly chap: ChapAccount;
  /** Outgoing (mutual) CHAP: the target proves itself to the initiator. */
  readonly mutualChap?: ChapAccount;
  /** Preferred tgtd target id. */
  readonly tid: number;
  readonly createdAt: number;
}

export type OpKind = 'provision' | 'reset' | 'restore' | 'deprovision';

/** Written (synced) before an operation's first step; removed in the same batch as its last. */
export interface OpRecord {
  readonly id: string;
  readonly kind: OpKind;
  readonly mac: Mac;
  readonly diskId: string;
  readonly imageId?: string;
  readonly checkpoint?: string;
  readonly startedAt: number;
}

/** 12 hex digits of the MAC: what names the disk, the CHAP user and the IQNs. */
export function macHex(mac: Mac): string {
  return mac.replaceAll(':', '');
}

export function diskIdFor(mac: Mac): string {
  return `m-${macHex(mac)}`;
}

export function targetIqnFor(prefix: string, mac: Mac): string {
  return iqnForMac(prefix, mac);
}

export function initiatorIqnFor(prefix: string, mac: Mac): string {
  return `${iqnForMac(prefix, mac)}:initiator`;
}

/** metalboot's CHAP user names; accounts with this prefix are ours to delete. */
export const CHAP_USER_PREFIX = 'mb-';

export function chapUserFor(mac: Mac, outgoing = false): string {
  return `${CHAP_USER_PREFIX}${outgoing ? 't' : 'i'}${macHex(mac)}`;
}

const SECRET_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/**
 * 20 characters, ~115 bits. RFC 3720 §8.2.1 wants at least 96 bits for CHAP secrets; iPXE and
 * tgtd take any length, but some initiators cap secrets at 16 bytes (Windows: 12–16), so an
 * admin swapping iPXE for another initiator may need to rotate; 20 keeps within tgtd's and iPXE's limits.
 */
export function newChapSecret(): string {
  let s = '';
  for (let i = 0; i < 20; i++) s += SECRET_ALPHABET[randomInt(SECRET_ALPHABET.length)];
  return s;
}

export function opId(now: number, seq: number): string {
  return `${now.toString(36).padStart(9, '0')}-${seq.toString(36).padStart(4, '0')}`;
}

// ---------------------------------------------------------------- decoding (untrusted: the store may hold anything)

function str(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 255;
}

function chap(v: unknown): ChapAccount | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { user, secret } = v as Record<string, unknown>;
  return str(user) && str(secret) ? { user, secret } : undefined;
}

export function decodeDiskRecord(key: string, v: Record<string, unknown>): DiskRecord | string {
  const mac = typeof v['mac'] === 'string' ? tryParseMac(v['mac']) : undefined;
  if (!mac || mac !== key) return 'mac is not a normalised MAC matching its key';
  const { diskId, imageId, targetIqn, initiatorIqn, tid, createdAt } = v;
  if (!str(diskId) || !checkId(diskId).ok) return 'diskId is not a volume id';
  if (!str(imageId) || !checkId(imageId).ok) return 'imageId is not a volume id';
  if (!str(targetIqn) || !isValidIscsiName(targetIqn)) return 'targetIqn is not an iSCSI name';
  if (!str(initiatorIqn) || !isValidIscsiName(initiatorIqn)) return 'initiatorIqn is not an iSCSI name';
  if (typeof tid !== 'number' || !Number.isInteger(tid) || tid < 1 || tid > 0x7fffffff) return 'tid is not a target id';
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt)) return 'createdAt is not a number';
  const c = chap(v['chap']);
  if (!c) return 'chap is not a user and secret';
  const m = v['mutualChap'] === undefined ? undefined : chap(v['mutualChap']);
  if (v['mutualChap'] !== undefined && !m) return 'mutualChap is not a user and secret';
  return { mac, diskId, imageId, targetIqn, initiatorIqn, chap: c, ...(m ? { mutualChap: m } : {}), tid, createdAt };
}

const OP_KINDS: ReadonlySet<string> = new Set<OpKind>(['provision', 'reset', 'restore', 'deprovision']);

export function decodeOpRecord(key: string, v: Record<string, unknown>): OpRecord | string {
  const { id, kind, diskId, imageId, checkpoint, startedAt } = v;
  if (id !== key) return 'id does not match its key';
  if (typeof kind !== 'string' || !OP_KINDS.has(kind)) return 'kind is not an operation';
  const mac = typeof v['mac'] === 'string' ? tryParseMac(v['mac']) : undefined;
  if (!mac) return 'mac is not a MAC';
  if (!str(diskId) || !checkId(diskId).ok) return 'diskId is not a volume id';
  if (imageId !== undefined && (!str(imageId) || !checkId(imageId).ok)) return 'imageId is not a volume id';
  if (checkpoint !== undefined && (!str(checkpoint) || !checkId(checkpoint).ok)) return 'checkpoint is not a name';
  if (typeof startedAt !== 'number') return 'startedAt is not a number';
  return {
    id: key, kind: kind as OpKind, mac, diskId, startedAt,
    ...(typeof imageId === 'string' ? { imageId } : {}), ...(typeof checkpoint === 'string' ? { checkpoint } : {}),
  };
}

/** The record without its secrets: what the API and logs may show. */
export function publicView(r: DiskRecord): Omit<DiskRecord, 'chap' | 'mutualChap'> & { chapUser: string; mutualChap: boolean } {
  const { chap: c, mutualChap, ...rest } = r;
  return { ...rest, chapUser: c.user, mutualChap: mutualChap !== undefined };
}
