/**
 * Event filters of the events API and `metalboot events`: `mac` is a MAC (any notation; exact
 * match) or a prefix of one in lower-case colon form ("52:54:00"); `type` is a comma-separated
 * list of type prefixes ("dhcp", "tftp.end,syslog"). Both optional; parsing is strict so a typo
 * is an error, not an empty stream.
 */
import type { MetalbootEvent } from '../events/bus.js';
import { tryParseMac } from '../net/mac.js';

export interface EventFilter {
  readonly mac?: string;
  /** True when mac is a whole address (exact match). */
  readonly macExact?: boolean;
  readonly types?: readonly string[];
}

export type FilterParse = { readonly ok: true; readonly filter: EventFilter } | { readonly ok: false; readonly error: string };

const MAC_PREFIX = /^[0-9a-f]{1,2}(:[0-9a-f]{1,2}){0,5}:?$/;
const TYPE_PREFIX = /^[a-z][a-z0-9.-]{0,39}$/;

export function parseEventFilter(q: { mac?: unknown; type?: unknown }): FilterParse {
  let mac: string | undefined;
  let macExact = false;
  if (q.mac !== undefined && q.mac !== '') {
    if (typeof q.mac !== 'string') return { ok: false, error: 'mac: give it once' };
    const full = tryParseMac(q.mac);
    if (full) { mac = full; macExact = true; }
    else {
      const p = q.mac.toLowerCase().replace(/-/g, ':');
      if (!MAC_PREFIX.test(p)) return { ok: false, error: `mac: ${JSON.stringify(q.mac.slice(0, 40))} is neither a MAC address nor the start of one` };
      mac = p;
    }
  }
  let types: string[] | undefined;
  if (q.type !== undefined && q.type !== '') {
    if (typeof q.type !== 'string') return { ok: false, error: 'type: give a comma-separated list once' };
    types = q.type.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const bad = types.find((s) => !TYPE_PREFIX.test(s));
    if (bad !== undefined || types.length > 20) return { ok: false, error: `type: ${JSON.stringify((bad ?? q.type).slice(0, 40))} is not an event type prefix` };
  }
  return { ok: true, filter: { ...(mac !== undefined ? { mac, macExact } : {}), ...(types ? { types } : {}) } };
}

export function matches(f: EventFilter, e: MetalbootEvent): boolean {
  if (f.mac !== undefined) {
    if (!e.mac) return false;
    if (f.macExact ? e.mac !== f.mac : !e.mac.startsWith(f.mac)) return false;
  }
  if (f.types && !f.types.some((t) => e.type.startsWith(t))) return false;
  return true;
}
