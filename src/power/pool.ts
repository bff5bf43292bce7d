/**
 * One power driver per machine, made from its stored settings on first use and kept (a session is
 * reused), replaced when the settings change, closed when the machine goes or the daemon stops.
 * Every command is published as one `power.command` event (driver, target, latency, error kind);
 * credentials stay in the drivers. Settings a driver learns as it works (a certificate pinned on
 * first use) are handed to `keep` with the machine's MAC, to be stored in its record; the driver
 * is then kept for the settings with what it learned.
 */
import type { EventBus } from '../events/bus.js';
import type { Mac } from '../net/mac.js';
import { PowerError, type NextBoot, type PowerAction, type PowerDriver, type PowerState } from './driver.js';
import type { PowerSettings } from './drivers.js';

/** Stores `next` as the machine's power settings if they are still `prev`; rejects otherwise. */
export type KeepPowerSettings = (mac: Mac, prev: PowerSettings, next: PowerSettings) => Promise<void>;

export class PowerPool {
  private readonly drivers = new Map<Mac, { key: string; driver: PowerDriver }>();

  constructor(
    private readonly create: (s: PowerSettings, keep: (next: PowerSettings) => Promise<void>) => PowerDriver,
    private readonly bus: EventBus,
    private readonly clock: () => number = Date.now,
    private readonly keep?: KeepPowerSettings,
  ) {}

  powerState(mac: Mac, s: PowerSettings): Promise<PowerState> {
    return this.run(mac, s, 'power status', (d) => d.powerState());
  }

  power(mac: Mac, s: PowerSettings, action: PowerAction): Promise<void> {
    return this.run(mac, s, `power ${action}`, (d) => d.power(action));
  }

  setNextBoot(mac: Mac, s: PowerSettings, next: NextBoot): Promise<NextBoot> {
    return this.run(mac, s, `bootdev ${next.device}`, (d) => d.setNextBoot(next));
  }

  /** Runs `fn` against the machine's driver; publishes a power.command event either way. */
  async run<T>(mac: Mac, s: PowerSettings, command: string, fn: (d: PowerDriver) => Promise<T>): Promise<T> {
    const d = this.driver(mac, s);
    const started = this.clock();
    const event = { type: 'power.command', mac, driver: d.driver, target: d.target, command } as const;
    try {
      const r = await fn(d);
      this.bus.publish({ ...event, ok: true, ms: this.clock() - started });
      return r;
    } catch (e) {
      this.bus.publish({ ...event, ok: false, ms: this.clock() - started, ...(e instanceof PowerError ? { error: e.kind } : {}) });
      throw e;
    }
  }

  /** Closes the machine's driver (its settings were removed or changed, the machine was deleted). */
  async drop(mac: Mac): Promise<void> {
    const d = this.drivers.get(mac);
    this.drivers.delete(mac);
    await d?.driver.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.drivers.values()];
    this.drivers.clear();
    await Promise.all(all.map((d) => d.driver.close()));
  }

  private driver(mac: Mac, s: PowerSettings): PowerDriver {
    const key = keyOf(s);
    const have = this.drivers.get(mac);
    if (have && have.key === key) return have.driver;
    if (have) void have.driver.close().catch(() => undefined);
    const slot: { key: string; driver: PowerDriver } = { key, driver: undefined as unknown as PowerDriver };
    slot.driver = this.create(s, async (next) => {
      if (!this.keep) throw new PowerError(s.driver, slot.driver.target, 'refused', 'what the driver learned cannot be stored here (no machine records)');
      await this.keep(mac, s, next);
      // The record now holds `next`: the next command (made from it) finds this driver, not a new one.
      if (this.drivers.get(mac) === slot) slot.key = keyOf(next);
    });
    this.drivers.set(mac, slot);
    return slot.driver;
  }
}

/** Compared inside this process only; the key holds the password as the settings do. */
function keyOf(s: PowerSettings): string {
  return JSON.stringify(Object.entries(s).sort(([a], [b]) => a.localeCompare(b)));
}
