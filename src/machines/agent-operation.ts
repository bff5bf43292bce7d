/**
 * One agent operation (inspect, deploy, erase): the machine enters its
 * busy state, an agent session with its task is opened (agent/sessions.ts; the iPXE script of
 * the machine boots the agent ramdisk while it is open), the BMC sets PXE as the next boot device
 * and powers the machine on (or cycles it), then the agent's steps become the operation's steps
 * until it reports done or failed. An agent that stays silent for `timeoutMs` (nothing from it
 * since the session opened or its last call) fails the operation, naming the step it was at.
 * The session ends when the agent reports done or failed (or the operation fails otherwise),
 * whatever the outcome: its token is refused from then on.
 * A machine without a BMC is waited for: someone else powers it on to PXE.
 * Shaped like provision.ts: it gets the machine parts it needs (records, power verbs, claims,
 * operations) and holds the machine through MachineClaims while it runs, so reset, deprovision,
 * restore and delete are refused meanwhile (also after a restart until settled).
 */
import { errorMessage } from '../errors/message.js';
import type { Logger } from '../log.js';
import type { Mac } from '../net/mac.js';
import type { AgentHandlers, AgentSessions, AgentTask } from '../agent/sessions.js';
import type { Inventory } from '../agent/inventory.js';
import type { MachineClaims } from './claims.js';
import { transition, type MachineState } from './model.js';
import type { Operation, Operations } from './operations.js';
import type { MachinePower } from './power.js';
import { MachineError } from './record.js';
import type { MachineRecords } from './records.js';

export interface AgentOperationDeps {
  readonly records: MachineRecords;
  /** Boot device and power through the machine's power driver (power/pool.ts). */
  readonly power: MachinePower;
  readonly claims: MachineClaims;
  readonly operations: Operations;
  readonly sessions: AgentSessions;
  readonly clock: () => number;
  readonly log: Logger;
  /** A silent agent fails its operation after this long (machines.agentTimeoutSec). */
  readonly timeoutMs: number;
}

export interface AgentOperationSpec<R> {
  readonly kind: AgentTask['kind'];
  readonly task: AgentTask;
  /** The state while it runs, and the state it ends in (from the state it started in). */
  readonly busy: MachineState;
  readonly end: (from: MachineState) => MachineState;
  /** Power the machine through its BMC (false: the machine is booting the agent already). */
  readonly powerOn: boolean;
  readonly onInventory?: (inv: Inventory) => Promise<void>;
  /** capture: where the uploaded disk goes. */
  readonly onCapture?: AgentHandlers['capture'];
  /** After the agent is done, before the end state (deploy: boot device disk, power on). */
  readonly afterAgent?: (step: (name: string) => void) => Promise<void>;
  /** The operation's result from the agent's. */
  readonly result: (agentResult: unknown) => R;
}

export function startAgentOperation<R>(d: AgentOperationDeps, mac: Mac, spec: AgentOperationSpec<R>, actor: string): Operation {
  const m = d.records.require(mac);
  const running = d.sessions.of(mac);
  if (running) throw new MachineError(mac, 'conflict', `cannot ${spec.kind} while operation ${running.operationId} runs on it`);
  d.claims.refuse(m, spec.kind);
  transition(m, spec.busy, spec.kind);
  const from = m.state;
  d.claims.claim(mac, spec.kind, spec.busy);
  let op: Operation | undefined;
  op = d.operations.start(spec.kind, mac, async (step) => {
    // start() calls this at once and returns the operation after: its id is known past this await.
    await Promise.resolve();
    const id = op!.id;
    let at = 'queued';
    const stepTo = (name: string) => { at = name; void step(name); };
    let settle!: { ok: (r: unknown) => void; fail: (e: Error) => void };
    const finished = new Promise<unknown>((ok, fail) => { settle = { ok, fail }; });
    finished.catch(() => undefined);
    // Until the try below, nothing releases the claim: an open that throws must not keep it.
    const open = (): ReturnType<AgentSessions['open']> => {
      try {
        return d.sessions.open(mac, id, spec.task, handlers);
      } catch (e) {
        d.claims.release(mac);
        throw e;
      }
    };
    const handlers: AgentHandlers = {
      step: stepTo,
      progress: (bytes) => d.log.debug({ event: 'agent.progress', mac, operation: id, bytes }, 'agent progress'),
      inventory: async (inv) => { await spec.onInventory?.(inv); },
      ...(spec.onCapture ? { capture: spec.onCapture } : {}),
      done: (r) => settle.ok(r),
      failed: (msg) => settle.fail(new Error(`the agent failed: ${msg}`)),
    };
    const session = open();
    const watchdog = setInterval(() => {
      const silent = d.clock() - session.lastSeen;
      if (silent > d.timeoutMs) settle.fail(new Error(`the agent was silent for ${Math.round(silent / 1000)} s`));
    }, Math.min(1000, d.timeoutMs));
    try {
      await d.records.setState(mac, spec.busy, `${spec.kind} (operation ${id})`, actor);
      const cur = d.records.require(mac);
      if (spec.powerOn && cur.power) {
        stepTo('bootdev');
        await d.power.bootdev(mac, { device: 'pxe', efi: cur.firmware === 'uefi' }, actor);
        stepTo('power');
        const state = await d.power.powerState(mac);
        await d.power.power(mac, state === 'on' ? 'cycle' : 'on', actor);
      }
      stepTo('agent-boot');
      // Silence counts from here: the power steps above may take the BMC's own time.
      session.lastSeen = d.clock();
      const agentResult = await finished.finally(() => d.sessions.end(mac, id));
      // The session ended with the agent's last word: the machine's next boot (deploy powers it on
      // next) gets its usual script, never the agent's again.
      const r = spec.result(agentResult);
      await spec.afterAgent?.(stepTo);
      await d.records.setState(mac, spec.end(from), `${spec.kind} done`, actor);
      return r;
    } catch (e) {
      const msg = `${spec.kind} failed at step ${at}: ${errorMessage(e)}`;
      d.log.warn({ event: 'agent.operation-failed', mac, operation: id, step: at, err: msg }, msg);
      await d.records.setState(mac, 'error', msg, actor).catch(() => undefined);
      throw new Error(msg);
    } finally {
      clearInterval(watchdog);
      d.sessions.end(mac, id);
      d.claims.release(mac);
    }
  });
  return op;
}

const BUSY: ReadonlyMap<MachineState, AgentTask['kind']> = new Map([['inspecting', 'inspect'], ['deploying', 'deploy'], ['erasing', 'erase'], ['capturing', 'capture']]);

/** Each agent operation's busy state means it holds the machine (claims.ts), as `provisioning` does. */
export function claimAgentStates(claims: MachineClaims): void {
  for (const [state, kind] of BUSY) claims.kind(kind, state);
}

/**
 * At start: a machine left `inspecting`, `deploying`, `erasing` or `capturing` lost its agent operation with
 * the process (operations.ts lists it as failed, interrupted; its token died with the sessions).
 * It goes to `error` naming that operation, from where it can be inspected, deployed or erased again.
 */
export async function settleInterruptedAgentStates(d: Pick<AgentOperationDeps, 'records' | 'operations' | 'log'>): Promise<number> {
  const { records, operations, log } = d;
  let n = 0;
  for (const m of [...records.all()]) {
    const kind = BUSY.get(m.state);
    if (!kind) continue;
    const op = operations.interrupted(kind, m.mac)[0];
    const reason = `${kind} interrupted by a daemon restart${op ? ` (operation ${op.id} at step ${op.step})` : ''}`;
    await records.setState(m.mac, 'error', reason, 'restart');
    log.warn({ event: 'agent.interrupted', mac: m.mac, operation: op?.id, step: op?.step }, reason);
    n++;
  }
  return n;
}
