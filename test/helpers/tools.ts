/**
 * Skip reasons for missing external tools, from the one list of them:
 * scripts/tools.tsv (name, scope, Debian package, path, probe). The same rows
 * tell scripts/install-deps.sh what to install and scripts/check-tools.sh what
 * to probe, so a test can only skip for a tool the install is meant to bring
 * (and with MB_REQUIRE_ALL=1 in CI a skip is a failure).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Tool {
  readonly name: string;
  readonly scope: 'build' | 'test';
  /** Debian package, or undefined for a tool not from a package (the pinned node). */
  readonly pkg: string | undefined;
  /** The file the tests look for, or undefined. */
  readonly path: string | undefined;
  readonly probe: string;
}

export class ToolListError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'ToolListError';
  }
}

export const TOOLS_TSV = fileURLToPath(new URL('../../../scripts/tools.tsv', import.meta.url));

/** Parses tools.tsv text: comments and blank lines skipped, five TAB-separated columns. */
export function parseTools(text: string, file = TOOLS_TSV): Map<string, Tool> {
  const tools = new Map<string, Tool>();
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '' || raw.startsWith('#')) return;
    const cols = raw.split('\t');
    if (cols.length !== 5) throw new ToolListError(file, i + 1, `expected 5 TAB-separated columns, got ${cols.length}`);
    const [name, scope, pkg, p, probe] = cols as [string, string, string, string, string];
    if (scope !== 'build' && scope !== 'test') throw new ToolListError(file, i + 1, `scope must be build or test, not "${scope}"`);
    if (tools.has(name)) throw new ToolListError(file, i + 1, `tool "${name}" listed twice`);
    tools.set(name, { name, scope, pkg: pkg === '-' ? undefined : pkg, path: p === '-' ? undefined : p, probe });
  });
  return tools;
}

let cached: Map<string, Tool> | undefined;
export function tools(): Map<string, Tool> {
  cached ??= parseTools(readFileSync(TOOLS_TSV, 'utf8'));
  return cached;
}

/**
 * The skip reason when `name`'s file is missing, else false. An unknown name
 * throws: a test must not depend on a tool the install list does not know.
 */
export function toolMissing(...names: readonly string[]): string | false {
  for (const name of names) {
    const tool = tools().get(name);
    if (!tool) throw new Error(`tool "${name}" is not in ${TOOLS_TSV}: add a row (package, path, probe) so install-deps installs it`);
    if (tool.path !== undefined && !existsSync(tool.path)) {
      return `${name} missing (${tool.path}; Debian package ${tool.pkg ?? '-'}: scripts/install-deps.sh --test)`;
    }
  }
  return false;
}
