import type { DhcpCounters } from '../dhcp/server.js';
import type { SyslogCounters } from '../syslog/server.js';
import type { TftpCounters } from '../tftp/server.js';

/**
 * What the status page, its JSON API and the metrics read about the daemon. The services own
 * the facts; these interfaces are the narrow read-only views the edges get.
 */

/** One machine as the status table shows it (supplied by the machines service). */
export interface MachineRow {
  readonly mac: string;
  readonly name: string;
  readonly ip?: string;
  readonly state: string;
  readonly power?: 'on' | 'off' | 'unknown';
  readonly image?: string;
  /** Last boot step reached (timeline step name), when the source knows it. */
  readonly lastStep?: string;
  /** Epoch ms of that step. */
  readonly lastStepAt?: number;
}

export interface MachineRowSource {
  rows(): MachineRow[];
}

/** A TFTP transfer in progress (TftpServer.transfersInProgress()). */
export interface TransferProgress {
  readonly client: string;
  readonly file: string;
  readonly size: number;
  readonly bytes: number;
  readonly startedAt: number;
  readonly retransmits: number;
}

/**
 * Late-bound parts of the daemon: the composition root fills these in as it starts each
 * service (the HTTP edge starts before DHCP and TFTP), and readers treat every one as optional.
 */
export interface DaemonProbes {
  dhcp?: { readonly counters: DhcpCounters };
  tftp?: { readonly counters: TftpCounters; transfersInProgress(): TransferProgress[] };
  syslog?: { readonly counters: SyslogCounters };
  machines?: MachineRowSource;
}
