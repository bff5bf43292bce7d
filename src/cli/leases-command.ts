/** `metalboot leases [--json]`: the DHCP lease table. */
import type { CliIo } from './api-client.js';
import { COMMON_USAGE, noMore, openClient, parse, runCli } from './common.js';
import { formatLeaseTable, json, type LeaseRow } from './tables.js';

export const LEASES_USAGE = '  leases                               DHCP leases';

export async function runLeasesCommand(argv: string[], io: CliIo): Promise<number> {
  return runCli(io, 'leases', `${LEASES_USAGE}\n${COMMON_USAGE}`, async () => {
    const { values, positionals } = parse(argv, {});
    noMore(positionals);
    const api = await openClient(values, io);
    const body = await api.get<{ leases: LeaseRow[] }>('/api/v1/leases');
    io.out(values.json ? json(body.leases) : formatLeaseTable(body.leases));
    return 0;
  });
}
