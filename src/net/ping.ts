/**
 * Conflict check before an address is first offered (RFC 2131 §2.2: the
 * server SHOULD probe a reused address, e.g. with ICMP echo). One `ping`
 * (iputils) per probe: unprivileged ICMP needs either a raw socket or the
 * ping_group sysctl, and iputils already handles both; probes are rare (only
 * addresses never leased before) and bounded in number at once.
 */
import { errorMessage } from '../errors/message.js';
import type { Ipv4 } from './ipv4.js';
import { formatIpv4 } from './ipv4.js';
import { CommandError, type Runner } from '../exec/run.js';

export interface ConflictProber {
  /** true when something answered at ip (the address is in use). */
  inUse(ip: Ipv4): Promise<boolean>;
}

export class PingUnavailableError extends Error {
  constructor(reason: string) {
    super(`dhcp.conflictCheck.method is ping, but ping cannot run (${reason}); install iputils-ping or set method: off`);
    this.name = 'PingUnavailableError';
  }
}

/** Fails when the ping binary is missing, so the check is never silently off. */
export async function assertPingAvailable(run: Runner): Promise<void> {
  try {
    await run(['ping', '-V'], { timeoutMs: 5000 });
  } catch (e) {
    throw new PingUnavailableError(errorMessage(e));
  }
}

export class PingProber implements ConflictProber {
  private inFlight = 0;
  /** Probes skipped because too many were running (for logs and metrics). */
  skipped = 0;

  constructor(
    private readonly run: Runner,
    private readonly iface: string,
    private readonly timeoutMs: number,
    private readonly maxInFlight = 64,
    private readonly onSkip?: (ip: Ipv4) => void,
  ) {}

  async inUse(ip: Ipv4): Promise<boolean> {
    // Too many probes at once (a flood of new clients): skip the check rather
    // than queue replies behind it; the client's DECLINE still protects us.
    if (this.inFlight >= this.maxInFlight) {
      this.skipped++;
      this.onSkip?.(ip);
      return false;
    }
    this.inFlight++;
    try {
      const secs = Math.max(this.timeoutMs / 1000, 0.1).toFixed(1);
      // ping exits 0 when a reply came, 1 when none did, 2 on other errors.
      const r = await this.run(['ping', '-n', '-q', '-c', '1', '-W', secs, '-I', this.iface, formatIpv4(ip)], {
        timeoutMs: this.timeoutMs + 2000,
        okCodes: [0, 1],
      });
      return r.code === 0;
    } catch (e) {
      if (e instanceof CommandError) return false;
      throw e;
    } finally {
      this.inFlight--;
    }
  }
}

export const noConflictCheck: ConflictProber = { inUse: async () => false };
