/**
 * Parsers for the JSON that `rbd … --format json` and `ceph … --format json` print (Ceph 16,
 * Debian 12). Pure, and strict at the boundary: an entry that does not have the shape we rely on
 * is a RbdReportError naming the command, never a guess.
 */

export class RbdReportError extends Error {
  constructor(readonly what: string, detail: string) {
    super(`unexpected output of ${what}: ${detail}`);
    this.name = 'RbdReportError';
  }
}

/** One row of `rbd ls -l`: an image, or one of its snapshots. */
export interface RbdListEntry {
  readonly image: string;
  readonly size: number;
  readonly snapshot?: string;
  readonly protected?: boolean;
  readonly parent?: { readonly pool: string; readonly image: string; readonly snapshot: string };
}

export interface CephHealth {
  readonly status: 'HEALTH_OK' | 'HEALTH_WARN' | 'HEALTH_ERR';
  /** Check name → its summary, e.g. OSD_DOWN → "1 osds down". */
  readonly checks: Readonly<Record<string, string>>;
}

function json(text: string, what: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new RbdReportError(what, 'not JSON');
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown, what: string, field: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RbdReportError(what, `${field} is not a non-negative number`);
  return v;
};

export function parseList(text: string): RbdListEntry[] {
  const what = 'rbd ls -l';
  const v = json(text, what) ?? [];
  if (!Array.isArray(v)) throw new RbdReportError(what, 'not an array');
  return v.map((e, i) => {
    if (!isObj(e) || typeof e['image'] !== 'string') throw new RbdReportError(what, `entry ${i} has no image name`);
    const p = e['parent'];
    const parent = isObj(p) && typeof p['image'] === 'string'
      ? { pool: String(p['pool'] ?? ''), image: p['image'], snapshot: String(p['snapshot'] ?? '') } : undefined;
    return {
      image: e['image'], size: num(e['size'], what, `${e['image']}.size`),
      ...(typeof e['snapshot'] === 'string' ? { snapshot: e['snapshot'], protected: e['protected'] === 'true' || e['protected'] === true } : {}),
      ...(parent ? { parent } : {}),
    };
  });
}

/** `rbd snap ls`: the snapshot names. */
export function parseSnaps(text: string): string[] {
  const what = 'rbd snap ls';
  const v = json(text, what) ?? [];
  if (!Array.isArray(v)) throw new RbdReportError(what, 'not an array');
  return v.map((s, i) => {
    if (!isObj(s) || typeof s['name'] !== 'string') throw new RbdReportError(what, `entry ${i} has no name`);
    return s['name'];
  });
}

/** `rbd status`: who has the image open (tgtd's librbd registers a watcher). */
export function parseStatus(text: string): string[] {
  const what = 'rbd status';
  const v = json(text, what);
  if (!isObj(v) || !Array.isArray(v['watchers'])) throw new RbdReportError(what, 'no watchers list');
  return v['watchers'].map((w) => (isObj(w) && typeof w['address'] === 'string' ? w['address'] : 'a client'));
}

/** Our image-meta value: {sha256, bytes, readOnly}; undefined when absent or not ours. */
export function parseImageMeta(value: string | undefined): { sha256: string; bytes: number; readOnly: boolean } | undefined {
  if (value === undefined) return undefined;
  let v: unknown;
  try { v = JSON.parse(value); } catch { return undefined; }
  if (!isObj(v) || typeof v['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(v['sha256']) || typeof v['bytes'] !== 'number') return undefined;
  return { sha256: v['sha256'], bytes: v['bytes'], readOnly: v['readOnly'] === true };
}

/** `ceph osd pool get-quota`: stored bytes and the byte quota (0: none). */
export function parseQuota(text: string): { bytes: number; maxBytes: number } {
  const what = 'ceph osd pool get-quota';
  const v = json(text, what);
  if (!isObj(v)) throw new RbdReportError(what, 'not an object');
  return { bytes: num(v['current_num_bytes'] ?? 0, what, 'current_num_bytes'), maxBytes: num(v['quota_max_bytes'], what, 'quota_max_bytes') };
}

/** One pool's line of `ceph df`. */
export function parsePoolDf(text: string, pool: string): { stored: number; maxAvail: number; percentUsed: number } {
  const what = 'ceph df';
  const v = json(text, what);
  if (!isObj(v) || !Array.isArray(v['pools'])) throw new RbdReportError(what, 'no pools');
  const p = v['pools'].find((x) => isObj(x) && x['name'] === pool);
  if (!isObj(p) || !isObj(p['stats'])) throw new RbdReportError(what, `pool ${pool} not listed`);
  const s = p['stats'];
  return { stored: num(s['stored'] ?? 0, what, 'stored'), maxAvail: num(s['max_avail'], what, 'max_avail'), percentUsed: num(s['percent_used'], what, 'percent_used') };
}

export function cephHealth(text: string): CephHealth {
  const what = 'ceph health';
  const v = json(text, what);
  if (!isObj(v)) throw new RbdReportError(what, 'not an object');
  const status = v['status'];
  if (status !== 'HEALTH_OK' && status !== 'HEALTH_WARN' && status !== 'HEALTH_ERR') throw new RbdReportError(what, `status ${String(status).slice(0, 40)}`);
  const checks: Record<string, string> = {};
  if (isObj(v['checks'])) {
    for (const [k, c] of Object.entries(v['checks'])) {
      const m = isObj(c) && isObj(c['summary']) ? c['summary']['message'] : undefined;
      checks[k] = typeof m === 'string' ? m.slice(0, 200) : '';
    }
  }
  return { status, checks };
}
