/**
 * Agent sessions: one per machine with an agent operation running (inspect, deploy, erase), and
 * the one-time token bound to that machine and that operation.
 *
 * A token is minted when the machine's iPXE script is rendered (it is on the kernel command line
 * in that script) and only its sha256 is kept: neither memory nor the store holds one in clear,
 * and a second script fetch (iPXE retried) replaces it. It is valid only for requests naming its
 * own machine, only while its operation runs: end() forgets the session, and the token with it.
 * Sessions live in memory only: an operation a restart interrupted is failed (operations.ts),
 * so its token must not outlive the process either.
 *
 * The session also carries what the agent is to do (its task) and the operation's handlers the
 * agent routes call: a step, the inventory, done, failed. lastSeen feeds the silent-agent timeout.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Mac } from '../net/mac.js';
import type { Inventory } from './inventory.js';
import type { Readable } from 'node:stream';

export type AgentKind = 'inspect' | 'deploy' | 'erase' | 'capture';

export interface AgentTask {
  readonly kind: AgentKind;
  /** What the machine does once the agent is done: the agent powers off or reboots itself. */
  readonly then: 'poweroff' | 'reboot';
  readonly image?: { readonly id: string; readonly sizeBytes: number; readonly sha256: string };
  /** deploy: a disk name or serial; absent = the smallest disk that fits. */
  readonly disk?: string;
  /** erase: `all` or disk names. */
  readonly disks?: 'all' | readonly string[];
  readonly method?: 'discard' | 'zero';
  /** capture: the new image the disk is uploaded into. */
  readonly captureImage?: string;
}

export interface AgentHandlers {
  step(name: string): void;
  inventory(inv: Inventory): Promise<void>;
  progress(bytes: number): void;
  done(result: unknown): void;
  /** capture: the disk's bytes as they arrive; resolves with what the image store recorded. */
  capture?(body: Readable, sizeBytes: number | undefined): Promise<{ readonly sizeBytes: number; readonly sha256: string }>;
  failed(message: string): void;
}

export interface AgentSession {
  readonly mac: Mac;
  readonly operationId: string;
  readonly task: AgentTask;
  readonly handlers: AgentHandlers;
  readonly startedAt: number;
  lastSeen: number;
  tokenHash?: string;
}

export type SessionCheck =
  | { readonly ok: true; readonly session: AgentSession }
  | { readonly ok: false; readonly reason: 'no-token' | 'unknown-token' | 'other-machine' };

const hash = (token: string): string => createHash('sha256').update(token).digest('hex');

export class AgentSessions {
  private readonly byMac = new Map<Mac, AgentSession>();

  constructor(private readonly clock: () => number) {}

  /** Opens the session of an operation; a machine has at most one (the caller refuses a second). */
  open(mac: Mac, operationId: string, task: AgentTask, handlers: AgentHandlers): AgentSession {
    if (this.byMac.has(mac)) throw new Error(`machine ${mac}: an agent operation is already running (${this.byMac.get(mac)!.operationId})`);
    const s: AgentSession = { mac, operationId, task, handlers, startedAt: this.clock(), lastSeen: this.clock() };
    this.byMac.set(mac, s);
    return s;
  }

  /** Ends the session (its operation finished): the token is refused from now on. */
  end(mac: Mac, operationId: string): void {
    if (this.byMac.get(mac)?.operationId === operationId) this.byMac.delete(mac);
  }

  of(mac: Mac): AgentSession | undefined {
    return this.byMac.get(mac);
  }

  /** A fresh token for the machine's running session (the previous one stops working), or undefined. */
  mintToken(mac: Mac): string | undefined {
    const s = this.byMac.get(mac);
    if (!s) return undefined;
    const token = randomBytes(32).toString('base64url');
    s.tokenHash = hash(token);
    return token;
  }

  /** Which session an `Authorization: Bearer <token>` header opens for a request naming `mac`. */
  check(authorization: string | undefined, mac: Mac | undefined): SessionCheck {
    const m = /^Bearer ([A-Za-z0-9_-]{16,128})$/.exec(authorization ?? '');
    if (!m) return { ok: false, reason: 'no-token' };
    const h = hash(m[1]!);
    for (const s of this.byMac.values()) {
      if (s.tokenHash !== h) continue;
      if (s.mac !== mac) return { ok: false, reason: 'other-machine' };
      s.lastSeen = this.clock();
      return { ok: true, session: s };
    }
    return { ok: false, reason: 'unknown-token' };
  }
}

/**
 * The task as the agent reads it: `key=value` lines, every value from a strict alphabet (the
 * agent reads them with `read`, never evaluates them; see agent.sh).
 */
export function renderTask(mac: Mac, s: Pick<AgentSession, 'operationId' | 'task'>): string {
  const t = s.task;
  const lines: [string, string][] = [['operation', s.operationId], ['kind', t.kind], ['then', t.then]];
  if (t.image) {
    lines.push(['image', t.image.id], ['imageUrl', `/agent/v1/${mac}/image`], ['imageSize', String(t.image.sizeBytes)], ['imageSha256', t.image.sha256]);
  }
  if (t.disk !== undefined) lines.push(['disk', t.disk]);
  if (t.disks !== undefined) lines.push(['disks', t.disks === 'all' ? 'all' : t.disks.join(',')]);
  if (t.method !== undefined) lines.push(['method', t.method]);
  if (t.captureImage !== undefined) lines.push(['image', t.captureImage], ['captureUrl', `/agent/v1/${mac}/capture`]);
  for (const [k, v] of lines) if (!/^[A-Za-z0-9._:,/-]*$/.test(v)) throw new Error(`agent task ${k}: unsafe value`);
  return lines.map(([k, v]) => `${k}=${v}\n`).join('');
}
