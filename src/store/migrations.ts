/**
 * Store layout migrations, one per schema version: each reads the records it rewrites and answers
 * the puts that bring them to its version; db.ts writes them together with the new schema version
 * in one synced batch, so a crash leaves the store at the old version or the new one, never between.
 */
import type { RecordKind } from './db.js';

export interface MigrationInput {
  /** Raw JSON objects of one record kind; unparsable records are left alone (loadRecords skips them). */
  records(kind: RecordKind): AsyncIterable<{ readonly key: string; readonly value: Record<string, unknown> }>;
}

export interface Migration {
  /** The schema version the store is at once this ran. */
  readonly to: number;
  readonly what: string;
  run(input: MigrationInput): Promise<{ readonly kind: RecordKind; readonly key: string; readonly value: object }[]>;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    // Machines stored their BMC as `bmc: {host, port, user, password, cipherSuite?, privilege?}`
    // (IPMI being the only power protocol); from version 2 it is `power: {driver: 'ipmi', …}`.
    to: 2,
    what: 'machines: bmc → power {driver: ipmi}',
    async run(input) {
      const puts = [];
      for await (const { key, value } of input.records('machines')) {
        const bmc = value['bmc'];
        if (bmc === undefined) continue;
        const { bmc: _old, ...rest } = value;
        puts.push({ kind: 'machines' as const, key, value: typeof bmc === 'object' && bmc !== null ? { ...rest, power: { driver: 'ipmi', ...bmc } } : rest });
      }
      return puts;
    },
  },
];
