/**
 * The inventory the agent posts (src/agent/agent.sh), parsed at the boundary: every field
 * checked for type and bounds, strings trimmed and capped, unknown keys dropped. Pure.
 * Schema (GET /api/v1/machines/<mac>/inventory adds collectedAt):
 *   {firmware: bios|uefi, system: {manufacturer, product, serial, uuid}, cpu: {arch, model, cores,
 *    threads}, memoryBytes, disks: [{name, sizeBytes, model, serial, wwn, rotational}],
 *    nics: [{mac, name, driver, speedMbps, link, lldp?: {chassisId, portId, systemName}}]}
 */
import { tryParseMac, type Mac } from '../net/mac.js';

export interface InventoryDisk {
  readonly name: string;
  readonly sizeBytes: number;
  readonly model: string;
  readonly serial: string;
  readonly wwn: string;
  readonly rotational: boolean;
}

export interface InventoryNic {
  readonly mac: Mac;
  readonly name: string;
  readonly driver: string;
  readonly speedMbps: number | null;
  readonly link: boolean;
  readonly lldp?: { readonly chassisId: string; readonly portId: string; readonly systemName: string };
}

export interface Inventory {
  readonly collectedAt: number;
  readonly firmware: 'bios' | 'uefi';
  readonly system: { readonly manufacturer: string; readonly product: string; readonly serial: string; readonly uuid: string };
  readonly cpu: { readonly arch: string; readonly model: string; readonly cores: number; readonly threads: number };
  readonly memoryBytes: number;
  readonly disks: readonly InventoryDisk[];
  readonly nics: readonly InventoryNic[];
}

export class InventoryError extends Error {
  constructor(readonly field: string, reason: string) {
    super(`inventory.${field}: ${reason}`);
    this.name = 'InventoryError';
  }
}

const MAX_ITEMS = 128;
type Obj = Record<string, unknown>;

function obj(v: unknown, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InventoryError(field, 'not an object');
  return v as Obj;
}
/** A printable string of at most 256 characters (longer ones are cut, not refused: hardware says odd things). */
function text(v: unknown, field: string, required = false): string {
  if (v === undefined || v === null) { if (required) throw new InventoryError(field, 'missing'); return ''; }
  if (typeof v !== 'string') throw new InventoryError(field, 'not a string');
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, 256);
}
function count(v: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw new InventoryError(field, `not an integer in 0..${max}`);
  return v;
}
function list(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw new InventoryError(field, 'not a list');
  if (v.length > MAX_ITEMS) throw new InventoryError(field, `more than ${MAX_ITEMS} entries`);
  return v;
}

export function parseInventory(raw: unknown, collectedAt: number): Inventory {
  const r = obj(raw, '(root)');
  if (r['firmware'] !== 'bios' && r['firmware'] !== 'uefi') throw new InventoryError('firmware', 'not bios or uefi');
  const s = obj(r['system'], 'system');
  const c = obj(r['cpu'], 'cpu');
  const disks = list(r['disks'], 'disks').map((x, i): InventoryDisk => {
    const d = obj(x, `disks[${i}]`);
    const name = text(d['name'], `disks[${i}].name`, true);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new InventoryError(`disks[${i}].name`, 'not a block device name');
    if (typeof d['rotational'] !== 'boolean') throw new InventoryError(`disks[${i}].rotational`, 'not a boolean');
    return {
      name, sizeBytes: count(d['sizeBytes'], `disks[${i}].sizeBytes`), model: text(d['model'], `disks[${i}].model`),
      serial: text(d['serial'], `disks[${i}].serial`), wwn: text(d['wwn'], `disks[${i}].wwn`), rotational: d['rotational'],
    };
  });
  const nics = list(r['nics'], 'nics').map((x, i): InventoryNic => {
    const n = obj(x, `nics[${i}]`);
    const mac = typeof n['mac'] === 'string' ? tryParseMac(n['mac']) : undefined;
    if (!mac) throw new InventoryError(`nics[${i}].mac`, 'not a MAC address');
    if (typeof n['link'] !== 'boolean') throw new InventoryError(`nics[${i}].link`, 'not a boolean');
    const speed = n['speedMbps'] === null || n['speedMbps'] === undefined ? null : count(n['speedMbps'], `nics[${i}].speedMbps`, 10_000_000);
    let lldp: InventoryNic['lldp'];
    if (n['lldp'] !== undefined && n['lldp'] !== null) {
      const l = obj(n['lldp'], `nics[${i}].lldp`);
      lldp = { chassisId: text(l['chassisId'], `nics[${i}].lldp.chassisId`), portId: text(l['portId'], `nics[${i}].lldp.portId`), systemName: text(l['systemName'], `nics[${i}].lldp.systemName`) };
    }
    return { mac, name: text(n['name'], `nics[${i}].name`, true), driver: text(n['driver'], `nics[${i}].driver`), speedMbps: speed, link: n['link'], ...(lldp ? { lldp } : {}) };
  });
  return {
    collectedAt,
    firmware: r['firmware'],
    system: { manufacturer: text(s['manufacturer'], 'system.manufacturer'), product: text(s['product'], 'system.product'), serial: text(s['serial'], 'system.serial'), uuid: text(s['uuid'], 'system.uuid') },
    cpu: { arch: text(c['arch'], 'cpu.arch', true), model: text(c['model'], 'cpu.model'), cores: count(c['cores'], 'cpu.cores', 1 << 20), threads: count(c['threads'], 'cpu.threads', 1 << 20) },
    memoryBytes: count(r['memoryBytes'], 'memoryBytes'),
    disks, nics,
  };
}

/** The disk an image goes to: the one named or with that serial, else the smallest that holds it. */
export function chooseDisk(inv: Pick<Inventory, 'disks'>, want: string | undefined, minBytes: number): InventoryDisk | undefined {
  if (want) return inv.disks.find((d) => d.name === want || (d.serial !== '' && d.serial === want));
  return [...inv.disks].filter((d) => d.sizeBytes >= minBytes).sort((a, b) => a.sizeBytes - b.sizeBytes)[0];
}
