/**
 * Each machine's last inventory (what its agent reported), kept in the store by MAC so it
 * survives restarts; records that no longer parse are skipped at load.
 */
import type { Mac } from '../net/mac.js';
import { tryParseMac } from '../net/mac.js';
import type { RecordStore } from '../store/db.js';
import { parseInventory, type Inventory } from '../agent/inventory.js';

export class Inventories {
  private readonly byMac = new Map<Mac, Inventory>();

  constructor(private readonly store: RecordStore) {}

  async load(): Promise<void> {
    for (const { key, value } of await this.store.loadRecords('inventories')) {
      const mac = tryParseMac(key);
      if (!mac || typeof value['collectedAt'] !== 'number') continue;
      try { this.byMac.set(mac, parseInventory(value, value['collectedAt'])); } catch { /* written by an older schema: skipped */ }
    }
  }

  get(mac: Mac): Inventory | undefined {
    return this.byMac.get(mac);
  }

  async put(mac: Mac, inv: Inventory): Promise<void> {
    await this.store.writeRecords([{ type: 'put', kind: 'inventories', key: mac, value: inv }]);
    this.byMac.set(mac, inv);
  }

  async remove(mac: Mac): Promise<void> {
    if (!this.byMac.delete(mac)) return;
    await this.store.writeRecords([{ type: 'del', kind: 'inventories', key: mac }]);
  }
}
