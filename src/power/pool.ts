/**
 * One power driver per machine, made from its stored settings on first use and kept (a session is
 * reused), replaced when the settings change, closed when the machine goes or the daemon stops.
 * Every command is published as one `power.command` event (driver, target, latency, error kind);
 * credentials stay in the drivers.
 */
import type { EventBus } from '../events/bus.js';
import type { Mac } from '../net/mac.js';
import { PowerError, type NextBoot, type PowerAction, type PowerDriver, type PowerState } from './driver.js';
import type { PowerSettings } from './drivers.js';

export class PowerPool {
  private readonly drivers = new Map<Mac, { readonly key: string; readonly driver: PowerDriver }>();

  constructor(private readonly create: (s: PowerSettings) => PowerDriver, private readonly bus: EventBus, private readonly clock: () => number = Date.now) {}

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
    // Compared inside this process only; the key holds the password as the settings do.
    const key = JSON.stringify(Object.entries(s).sort(([a], [b]) => a.localeCompare(b)));
    const have = this.drivers.get(mac);
    if (have && have.key === key) return have.driver;
    if (have) void have.driver.close().catch(() => undefined);
    const driver = this.create(s);
    this.drivers.set(mac, { key, driver });
    return driver;
  }
}
