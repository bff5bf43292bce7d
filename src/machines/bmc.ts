/**
 * One IPMI client per machine's BMC, created on first use and kept (its session is reused), and
 * replaced when the machine's BMC settings change. Every command is published on the bus with
 * its latency and result; passwords stay in the client.
 */
import type { IpmiConfig } from '../config/types.js';
import type { EventBus } from '../events/bus.js';
import { IpmiClient, type IpmiLog } from '../ipmi/client.js';
import { IpmiError } from '../ipmi/errors.js';
import type { Mac } from '../net/mac.js';
import type { BmcSettings } from './model.js';

export class BmcPool {
  private readonly clients = new Map<Mac, { key: string; client: IpmiClient }>();

  constructor(private readonly defaults: IpmiConfig, private readonly bus: EventBus, private readonly log: IpmiLog) {}

  /** Runs `fn` against the machine's BMC; publishes an ipmi.command event either way. */
  async call<T>(mac: Mac, bmc: BmcSettings, command: string, fn: (c: IpmiClient) => Promise<T>): Promise<T> {
    const c = this.client(mac, bmc);
    const started = Date.now();
    try {
      const r = await fn(c);
      this.bus.publish({ type: 'ipmi.command', mac, bmc: c.bmc, command, ok: true, ms: Date.now() - started });
      return r;
    } catch (e) {
      this.bus.publish({ type: 'ipmi.command', mac, bmc: c.bmc, command, ok: false, ms: Date.now() - started, error: e instanceof IpmiError ? e.kind : 'error' });
      throw e;
    }
  }

  /** Closes the machine's client (settings changed, machine deleted). */
  async drop(mac: Mac): Promise<void> {
    const c = this.clients.get(mac);
    this.clients.delete(mac);
    await c?.client.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.client.close()));
  }

  private client(mac: Mac, b: BmcSettings): IpmiClient {
    // The password is part of the key only as a hash-free comparison inside this process.
    const key = JSON.stringify([b.host, b.port, b.user, b.password, b.cipherSuite ?? null, b.privilege ?? null]);
    const have = this.clients.get(mac);
    if (have && have.key === key) return have.client;
    if (have) void have.client.close();
    const d = this.defaults;
    const client = new IpmiClient({
      host: b.host, port: b.port, username: b.user, password: Buffer.from(b.password, 'utf8'),
      privilege: b.privilege ?? d.privilege, cipherSuite: b.cipherSuite ?? d.cipherSuite,
      timeoutMs: d.timeoutMs, retries: d.retries, keepAliveMs: d.keepAliveMs, maxCommandsPerSecond: d.maxCommandsPerSecond,
    }, { log: this.log });
    this.clients.set(mac, { key, client });
    return client;
  }
}
