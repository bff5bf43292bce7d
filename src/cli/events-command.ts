/**
 * `metalboot events`: the daemon's events, recent ones or followed live over the SSE stream
 * (GET /api/v1/events, /api/v1/events/stream), filtered by MAC and type prefix. The token is
 * read from a file (argv is visible to every user in /proc) and sent as a Bearer header.
 * When the stream drops, it reconnects with Last-Event-ID, so nothing in the daemon's ring is missed.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

export const EVENTS_USAGE = [
  '  events [--follow] [--mac M] [--type T[,T…]] [--limit N] [--json] [--api URL] [--token-file F]',
  '                               recent events, or follow them live (token: --token-file, $METALBOOT_TOKEN_FILE',
  '                               or /var/lib/metalboot/api-token)',
].join('\n');

const DEFAULT_TOKEN_FILE = '/var/lib/metalboot/api-token';

export interface EventsIo {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  /** Ends --follow (SIGINT in the real CLI; tests abort it). */
  signal?: AbortSignal;
}

class UsageError extends Error {}

interface Ev { type: string; at: number; seq: number; mac?: string; [k: string]: unknown }

/** `value` for the one-line form: bare when simple, JSON-quoted otherwise (no control characters reach the terminal). */
function fieldValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[\x21-\x7e]*$/.test(s) && !s.includes('"') && s !== '' ? s : JSON.stringify(s);
}

export function formatEvent(e: Ev): string {
  const rest = Object.entries(e).filter(([k]) => k !== 'type' && k !== 'at' && k !== 'seq' && k !== 'mac').map(([k, v]) => `${k}=${fieldValue(v)}`);
  return [new Date(e.at).toISOString(), e.type.replace(/[^\x21-\x7e]/g, '?'), e.mac ?? '-', ...rest].join(' ');
}

async function readToken(file: string | undefined, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const explicit = file ?? env['METALBOOT_TOKEN_FILE'];
  const path = explicit ?? DEFAULT_TOKEN_FILE;
  try {
    return (await readFile(path, 'utf8')).trim() || undefined;
  } catch (e) {
    if (explicit === undefined) return undefined; // no default file: try without a token
    throw new UsageError(`cannot read token file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function describeFetchError(e: unknown): string {
  return e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
}

export async function runEventsCommand(argv: string[], io: EventsIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true,
      options: {
        follow: { type: 'boolean', short: 'f' }, mac: { type: 'string' }, type: { type: 'string' }, limit: { type: 'string' },
        json: { type: 'boolean' }, api: { type: 'string' }, 'token-file': { type: 'string' },
      },
    }));
  } catch (e) {
    io.err(`metalboot events: ${(e as Error).message}\n${EVENTS_USAGE}\n`);
    return 2;
  }
  try {
    const api = (values.api ?? io.env['METALBOOT_API'] ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
    const limit = values.limit ?? (values.follow ? '20' : '100');
    if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > 2000) throw new UsageError('--limit must be a whole number 1..2000');
    const token = await readToken(values['token-file'], io.env);
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const q = new URLSearchParams();
    if (values.mac) q.set('mac', values.mac);
    if (values.type) q.set('type', values.type);
    const print = (e: Ev) => io.out(values.json ? `${JSON.stringify(e)}\n` : `${formatEvent(e)}\n`);

    const recentUrl = `${api}/api/v1/events?${q}${q.size ? '&' : ''}limit=${limit}`;
    let res: Response;
    try {
      res = await fetch(recentUrl, { headers, signal: AbortSignal.timeout(10_000) });
    } catch (e) {
      io.err(`metalboot: cannot reach ${api}: ${describeFetchError(e)}\n`);
      return 1;
    }
    if (!res.ok) {
      const body = await res.json().catch(() => ({})) as { error?: string };
      io.err(`metalboot: ${recentUrl}: HTTP ${res.status}${body.error ? `: ${body.error}` : ''}${res.status === 401 ? ' (give --token-file)' : ''}\n`);
      return 1;
    }
    const recent = (await res.json()) as { events: Ev[]; lastSeq: number };
    for (const e of recent.events) print(e);
    if (!values.follow) return 0;
    return await follow(`${api}/api/v1/events/stream${q.size ? `?${q}` : ''}`, headers, recent.lastSeq, print, io);
  } catch (e) {
    if (e instanceof UsageError) { io.err(`metalboot events: ${e.message}\n`); return 2; }
    throw e;
  }
}

async function follow(url: string, headers: Record<string, string>, fromSeq: number, print: (e: Ev) => void, io: EventsIo): Promise<number> {
  let last = fromSeq;
  let backoff = 500;
  let warned = false;
  while (!io.signal?.aborted) {
    try {
      const res = await fetch(url, { headers: { ...headers, 'last-event-id': String(last) }, ...(io.signal ? { signal: io.signal } : {}) });
      if (res.status === 401 || res.status === 400) { io.err(`metalboot: ${url}: HTTP ${res.status}\n`); return 1; }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      if (warned) io.err('metalboot: event stream reconnected\n');
      warned = false;
      backoff = 500;
      let buf = '';
      let data: string[] = [];
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.search(/\r?\n/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf[nl] === '\r' ? 2 : 1));
          if (line === '') {
            if (data.length > 0) {
              try {
                const e = JSON.parse(data.join('\n')) as Ev;
                if (typeof e.seq === 'number' && e.seq > last) { last = e.seq; print(e); }
              } catch { /* not an event (e.g. a gap notice) */ }
            }
            data = [];
          } else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
          else if (line.startsWith('event:')) data = [];
        }
      }
    } catch (e) {
      if (io.signal?.aborted) break;
      if (!warned) io.err(`metalboot: event stream lost (${describeFetchError(e)}); reconnecting\n`);
      warned = true;
    }
    if (io.signal?.aborted) break;
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 10_000);
  }
  return 0;
}
