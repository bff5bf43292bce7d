/**
 * `metalboot operations [--mac M] [--status S]`: long-running actions (provision, import), and
 * the poller behind `provision --wait`.
 */
import { ApiTimeoutError, UsageError, type ApiClient, type CliIo } from './api-client.js';
import { COMMON_USAGE, macArg, noMore, oneOf, openClient, parse, runCli } from './common.js';
import { formatOperationTable, formatTime, json, printable, type OperationRow } from './tables.js';

const STATUSES = ['running', 'succeeded', 'failed'] as const;

export const OPERATIONS_USAGE = [
  '  operations [--mac MAC] [--status running|succeeded|failed]',
  '  operations show ID',
].join('\n');

export async function runOperationsCommand(argv: string[], io: CliIo): Promise<number> {
  const usage = `${OPERATIONS_USAGE}\n${COMMON_USAGE}`;
  return runCli(io, 'operations', usage, async () => {
    const { values, positionals } = parse(argv, { mac: { type: 'string' }, status: { type: 'string' } });
    const [verb = 'list', ...args] = positionals;
    if (verb === 'show') {
      const id = args[0];
      if (!id || id.includes('/')) throw new UsageError('operations show needs an operation ID');
      noMore(args.slice(1));
      const api = await openClient(values, io);
      const op = await api.get<OperationRow>(`/api/v1/operations/${encodeURIComponent(id)}`);
      io.out(values.json ? json(op) : formatOperationTable([op]) + op.steps.map((s) => `  ${formatTime(s.at)}  ${printable(s.step)}\n`).join(''));
      return 0;
    }
    if (verb !== 'list') throw new UsageError(`unknown operations command ${JSON.stringify(verb.slice(0, 40))}`);
    noMore(args);
    const mac = values.mac !== undefined ? macArg(values.mac, '--mac') : undefined;
    const status = oneOf(values.status, STATUSES, '--status');
    const api = await openClient(values, io);
    const r = await api.get<{ operations: OperationRow[] }>('/api/v1/operations', { query: { mac, status } });
    io.out(values.json ? json(r.operations) : formatOperationTable(r.operations));
    return 0;
  });
}

/**
 * Polls GET /api/v1/operations/:id until it is no longer running, calling `onStep` once for each
 * step as it appears. Bounded by `timeoutMs` overall; each poll has its own request timeout.
 */
export async function waitForOperation(api: ApiClient, first: OperationRow, o: { timeoutMs: number; intervalMs: number; onStep: (s: { step: string; at: number }) => void }): Promise<OperationRow> {
  const deadline = Date.now() + o.timeoutMs;
  let seen = 0;
  let op = first;
  for (;;) {
    for (; seen < op.steps.length; seen++) o.onStep(op.steps[seen]!);
    if (op.status !== 'running') return op;
    const left = deadline - Date.now();
    if (left <= 0) throw new ApiTimeoutError(api.url(`/api/v1/operations/${op.id}`), `operation ${op.id} still running (step ${op.step}) after ${Math.round(o.timeoutMs / 1000)} s; the daemon carries on — follow it with metalboot operations show ${op.id}`);
    await new Promise((r) => setTimeout(r, Math.min(o.intervalMs, left)));
    try {
      op = await api.get<OperationRow>(`/api/v1/operations/${encodeURIComponent(op.id)}`, { timeoutMs: Math.max(1000, Math.min(15_000, deadline - Date.now())) });
    } catch (e) {
      // One slow answer is not the end of the wait while time is left.
      if (!(e instanceof ApiTimeoutError) || Date.now() >= deadline) throw e;
    }
  }
}
