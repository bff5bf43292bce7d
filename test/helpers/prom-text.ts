/**
 * A strict reader of the Prometheus text exposition format (0.0.4), enough to check /metrics:
 * every line is a HELP, a TYPE or a sample of a declared family; names and label names are
 * valid; label values are properly quoted; values are numbers; no series appears twice.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function parsePromText(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('output must end with a newline');
  lines.pop();
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${line.slice(0, 120)}`;
    if (line === '') return;
    if (line.startsWith('# HELP ')) { if (!NAME.test(line.split(' ')[2] ?? '')) throw new Error(`bad HELP ${where}`); return; }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type, extra] = line.split(' ');
      if (!NAME.test(name ?? '') || !['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type ?? '') || extra !== undefined) throw new Error(`bad TYPE ${where}`);
      if (types.has(name!)) throw new Error(`TYPE twice ${where}`);
      types.set(name!, type!);
      return;
    }
    if (line.startsWith('#')) return;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`bad sample ${where}`);
    const name = m[1]!;
    const labels: Record<string, string> = {};
    let rest = m[3] ?? '';
    while (rest.length > 0) {
      const lm = /^([^=]+)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/.exec(rest);
      if (!lm || !LABEL.test(lm[1]!)) throw new Error(`bad labels ${where}`);
      if (lm[1]! in labels) throw new Error(`label twice ${where}`);
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
      rest = rest.slice(lm[0].length);
    }
    const v = m[4]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : v === 'NaN' ? NaN : Number(v);
    if (!/^(-?[0-9.eE+-]+|[+-]Inf|NaN)$/.test(v) || (Number.isNaN(value) && v !== 'NaN')) throw new Error(`bad value ${where}`);
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count|total|created)$/, '');
    if (!types.has(family) && !types.has(name)) throw new Error(`sample of an undeclared family ${where}`);
    const key = `${name}{${Object.entries(labels).sort().map(([k, x]) => `${k}=${x}`).join(',')}}`;
    if (seen.has(key)) throw new Error(`series twice ${where}`);
    seen.add(key);
    samples.push({ name, labels, value });
  });
  return { samples, types };
}

/** The value of one series (labels must match exactly), or undefined. */
export function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).sort().join('|');
  return samples.find((s) => s.name === name && Object.entries(s.labels).sort().join('|') === want)?.value;
}
