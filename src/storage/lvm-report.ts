/**
 * Parser of `lvs` / `vgs --reportformat json --units b --nosuffix -o …`.
 * Pure: text in, typed objects out. Only the JSON report is read, never the
 * human-readable tables or messages, whose wording changes between versions
 * and locales.
 *
 * In the JSON report every value is a string: sizes in bytes (with --units b
 * --nosuffix), percentages as "12.50", and "" where a field does not apply
 * (data_percent of a plain LV, origin of an LV that has none). A selection
 * that matches nothing gives `"lv": []` (and lvs exits 5 when a named LV
 * does not exist, with the same empty report on stdout).
 */

/** The -o fields LvmBackend asks for, in this order. */
export const LV_FIELDS = [
  'lv_name', 'vg_name', 'lv_attr', 'lv_size', 'pool_lv', 'origin', 'data_percent', 'metadata_percent', 'lv_tags',
] as const;
export const VG_FIELDS = ['vg_name', 'vg_size', 'vg_free', 'vg_extent_size'] as const;

export type LvType =
  | 'thin' | 'thin-pool' | 'thin-pool-data' | 'metadata' | 'origin' | 'merging-origin' | 'snapshot' | 'merging-snapshot'
  | 'virtual' | 'mirror' | 'raid' | 'cache' | 'image' | 'log' | 'pvmove' | 'vdo' | 'plain' | 'other';

/** lv_attr, one character per position (lvs(8), "lv_attr bits"). */
export interface LvAttr {
  readonly raw: string;
  readonly type: LvType;
  /** Position 2 'w'. 'r' (read-only) and 'R' (read-only activation) are both false. */
  readonly writable: boolean;
  /** Position 5 'a'. */
  readonly active: boolean;
  /** Position 5 is a suspended state ('s', 'S', 'M', 'C'). */
  readonly suspended: boolean;
  /** Position 6 'o': the device is open (e.g. exported by tgtd, mounted). */
  readonly open: boolean;
  /** Position 7. 't' thin, 's' snapshot, 'm' mirror, 'r' raid, 'u' unknown, 'v' virtual, '-' none. */
  readonly target: string;
  /** Position 8 'z': new blocks are zeroed. */
  readonly zero: boolean;
  /**
   * Position 9. For a thin pool: 'D' out of data space, 'M' metadata read
   * only, 'F' failed; for a thin LV 'F' failed; 'p' partial (missing PV).
   * '-' healthy.
   */
  readonly health: string;
  /** Position 10 'k': skipped by plain activation (thin snapshots by default; lvchange -ay -K). */
  readonly skipActivation: boolean;
}

export interface LvReport {
  readonly name: string;
  readonly vg: string;
  readonly attr: LvAttr;
  readonly sizeBytes: number;
  /** Thin pool of a thin LV; undefined otherwise. */
  readonly pool: string | undefined;
  /** Origin of a snapshot; undefined when none (also after the origin is removed). */
  readonly origin: string | undefined;
  readonly dataPercent: number | undefined;
  readonly metadataPercent: number | undefined;
  readonly tags: readonly string[];
}

export interface VgReport {
  readonly name: string;
  readonly sizeBytes: number;
  readonly freeBytes: number;
  readonly extentBytes: number;
}

export class LvmReportError extends Error {
  constructor(message: string) {
    super(`lvm report: ${message}`);
    this.name = 'LvmReportError';
  }
}

const TYPES: Record<string, LvType> = {
  V: 'thin', t: 'thin-pool', T: 'thin-pool-data', e: 'metadata', o: 'origin', O: 'merging-origin', s: 'snapshot',
  S: 'merging-snapshot', v: 'virtual', m: 'mirror', M: 'mirror', r: 'raid', R: 'raid', C: 'cache', i: 'image', I: 'image',
  l: 'log', L: 'log', p: 'pvmove', d: 'vdo', D: 'vdo', '-': 'plain',
};

export function decodeAttr(raw: string): LvAttr {
  // 10 characters since lvm2 2.02.x; older versions printed fewer, newer may add more.
  if (raw.length < 10) throw new LvmReportError(`lv_attr ${JSON.stringify(raw)} is shorter than 10 characters`);
  const c = (i: number): string => raw[i] ?? '-';
  return {
    raw,
    type: TYPES[c(0)] ?? 'other',
    writable: c(1) === 'w',
    active: c(4) === 'a',
    suspended: 'sSMC'.includes(c(4)) && c(4) !== '-',
    open: c(5) === 'o',
    target: c(6),
    zero: c(7) === 'z',
    health: c(8),
    skipActivation: c(9) === 'k',
  };
}

export function parseLvs(json: string): LvReport[] {
  return rows(json, 'lv').map((r, i) => {
    const at = `lv[${i}]`;
    const pool = str(r, 'pool_lv', at);
    const origin = str(r, 'origin', at);
    const tags = str(r, 'lv_tags', at);
    return {
      name: nonEmpty(r, 'lv_name', at),
      vg: nonEmpty(r, 'vg_name', at),
      attr: decodeAttr(nonEmpty(r, 'lv_attr', at)),
      sizeBytes: bytes(r, 'lv_size', at),
      pool: pool === '' ? undefined : pool,
      origin: origin === '' ? undefined : origin,
      dataPercent: percent(r, 'data_percent', at),
      metadataPercent: percent(r, 'metadata_percent', at),
      tags: tags === '' ? [] : tags.split(','),
    };
  });
}

export function parseVgs(json: string): VgReport[] {
  return rows(json, 'vg').map((r, i) => {
    const at = `vg[${i}]`;
    return {
      name: nonEmpty(r, 'vg_name', at),
      sizeBytes: bytes(r, 'vg_size', at),
      freeBytes: bytes(r, 'vg_free', at),
      extentBytes: bytes(r, 'vg_extent_size', at),
    };
  });
}

/** The rows of every report section named `key` ({"report":[{"lv":[…]}]}). */
function rows(json: string, key: 'lv' | 'vg'): Record<string, unknown>[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new LvmReportError(`not JSON: ${(e as Error).message}`);
  }
  const report = isObj(doc) ? doc.report : undefined;
  if (!Array.isArray(report)) throw new LvmReportError('no "report" array');
  const out: Record<string, unknown>[] = [];
  for (const section of report) {
    if (!isObj(section)) throw new LvmReportError('report section is not an object');
    const list = section[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new LvmReportError(`"${key}" is not an array`);
    for (const row of list) {
      if (!isObj(row)) throw new LvmReportError(`a "${key}" row is not an object`);
      out.push(row);
    }
  }
  return out;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(r: Record<string, unknown>, f: string, at: string): string {
  const v = r[f];
  if (typeof v !== 'string') throw new LvmReportError(`${at}.${f} missing or not a string (was it in -o?)`);
  return v;
}

function nonEmpty(r: Record<string, unknown>, f: string, at: string): string {
  const v = str(r, f, at);
  if (v === '') throw new LvmReportError(`${at}.${f} is empty`);
  return v;
}

/** "67108864" -> 67108864; anything with a unit suffix or a fraction is refused (--units b --nosuffix forgotten?). */
function bytes(r: Record<string, unknown>, f: string, at: string): number {
  const v = str(r, f, at);
  if (!/^\d{1,16}$/.test(v)) throw new LvmReportError(`${at}.${f} ${JSON.stringify(v)} is not a byte count`);
  return Number(v);
}

function percent(r: Record<string, unknown>, f: string, at: string): number | undefined {
  const v = str(r, f, at);
  if (v === '') return undefined;
  if (!/^\d{1,3}(\.\d+)?$/.test(v)) throw new LvmReportError(`${at}.${f} ${JSON.stringify(v)} is not a percentage`);
  return Number(v);
}
