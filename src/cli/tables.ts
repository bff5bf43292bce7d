/**
 * Plain-text output of the admin CLI: aligned columns, key/value blocks, sizes and times.
 * Every cell is made printable first: names, reasons and DHCP-reported host names come from
 * the network, and a terminal escape sequence in one of them must not reach the admin's terminal.
 */

/** Control characters (C0, DEL, C1) shown as `?`, so a cell is one line of plain text. */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-';
  return printable(typeof v === 'string' ? v : String(v));
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function formatTable(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const body = rows.map((r) => header.map((_, i) => cell(r[i])));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [header, ...body].map((cols) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** "Key: value" lines with the values aligned; undefined values are left out. */
export function formatFields(fields: readonly (readonly [string, unknown])[]): string {
  const shown = fields.filter(([, v]) => v !== undefined);
  const w = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(w + 1)}  ${cell(v)}`).join('\n') + '\n';
}

/** Milliseconds since the epoch as ISO time, seconds precision ("2026-01-02T03:04:05Z"). */
export function formatTime(ms: number | undefined | null): string | undefined {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return undefined;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function json(v: unknown): string {
  return JSON.stringify(v, null, 2) + '\n';
}

// ---------------------------------------------------------------- the API's shapes, as the CLI reads them

export interface LeaseRow { mac: string | null; ip: string; state: string; expiresAt: string; hostname: string | null; clientArch: number | null; vendorClass: string | null }

export function formatLeaseTable(rows: readonly LeaseRow[]): string {
  return formatTable(['IP', 'MAC', 'STATE', 'EXPIRES', 'HOSTNAME', 'ARCH', 'VENDOR CLASS'],
    rows.map((r) => [r.ip, r.mac, r.state, r.expiresAt, r.hostname, r.clientArch, r.vendorClass]));
}

export interface MachineRow {
  mac: string; name: string; ip?: string; image?: string; bootMode: string; firmware: string; state: string; stateReason?: string;
  uefiFilename?: string;
  netboot?: { kernel: string; initrd?: string; cmdline?: string };
  /** The BMC as its power driver's public view (power/drivers.ts): never the password. */
  power?: { driver: string; host?: string; port?: number; user?: string; passwordSet?: boolean; [field: string]: unknown };
  discovered?: { at: number; arch?: string; vendorClass?: string; uuid?: string; hostname?: string };
  createdAt: number; updatedAt: number;
}

export function formatMachineTable(rows: readonly MachineRow[]): string {
  return formatTable(['MAC', 'NAME', 'STATE', 'IP', 'IMAGE', 'BOOT', 'FIRMWARE', 'BMC'],
    rows.map((m) => [m.mac, m.name, m.state, m.ip, m.image, m.bootMode, m.firmware, m.power?.host !== undefined ? `${m.power.host}${m.power.port !== undefined ? `:${m.power.port}` : ''}` : undefined]));
}

export function formatMachine(m: MachineRow): string {
  const d = m.discovered;
  return formatFields([
    ['MAC', m.mac], ['Name', m.name], ['State', m.state], ['Reason', m.stateReason],
    ['IP', m.ip ?? ''], ['Image', m.image ?? ''], ['Boot mode', m.bootMode], ['Firmware', m.firmware],
    ['UEFI filename', m.uefiFilename],
    ['Netboot', m.netboot ? [m.netboot.kernel, m.netboot.initrd, m.netboot.cmdline].filter(Boolean).join(' ') : undefined],
    ['BMC', m.power ? formatPower(m.power) : ''],
    ['Power driver', m.power?.driver],
    ['Discovered', d ? [formatTime(d.at), d.arch, d.vendorClass, d.uuid && `uuid ${d.uuid}`, d.hostname && `hostname ${d.hostname}`].filter(Boolean).join(', ') : undefined],
    ['Created', formatTime(m.createdAt)], ['Updated', formatTime(m.updatedAt)],
  ]);
}

export interface InventoryRow {
  collectedAt: number; firmware: string;
  system: { manufacturer: string; product: string; serial: string; uuid: string };
  cpu: { arch: string; model: string; cores: number; threads: number }; memoryBytes: number;
  disks: { name: string; sizeBytes: number; model: string; serial: string; wwn: string; rotational: boolean }[];
  nics: { mac: string; name: string; driver: string; speedMbps: number | null; link: boolean; lldp?: { chassisId: string; portId: string; systemName: string } }[];
}

/** The inventory under a machine's fields (`machines show`). */
export function formatInventory(i: InventoryRow): string {
  return `\nInventory (${formatTime(i.collectedAt)}):\n` + formatFields([
    ['Firmware', i.firmware], ['System', [i.system.manufacturer, i.system.product, i.system.serial && `serial ${i.system.serial}`, i.system.uuid && `uuid ${i.system.uuid}`].filter(Boolean).join(', ')],
    ['CPU', `${i.cpu.arch}, ${i.cpu.model || 'model unknown'}, ${i.cpu.cores} cores, ${i.cpu.threads} threads`], ['Memory', formatBytes(i.memoryBytes)],
  ]) + '\n' + formatTable(['DISK', 'SIZE', 'MODEL', 'SERIAL', 'WWN', 'ROTATIONAL'], i.disks.map((d) => [d.name, formatBytes(d.sizeBytes), d.model, d.serial, d.wwn, d.rotational ? 'yes' : 'no']))
    + '\n' + formatTable(['NIC', 'MAC', 'DRIVER', 'SPEED', 'LINK', 'LLDP'], i.nics.map((n) => [n.name, n.mac, n.driver, n.speedMbps === null ? '' : `${n.speedMbps} Mb/s`, n.link ? 'up' : 'down',
      n.lldp ? `${n.lldp.systemName} ${n.lldp.portId} (${n.lldp.chassisId})` : '']));
}

/** user@host:port, then the driver's other settings (cipher suite 17, operator, …); the password only as "set". */
function formatPower(p: NonNullable<MachineRow['power']>): string {
  const { driver: _d, host, port, user, passwordSet, ...rest } = p;
  const label: Record<string, string> = { cipherSuite: 'cipher suite ', privilege: '' };
  const extras = Object.entries(rest).map(([k, v]) => ` ${label[k] ?? `${k} `}${String(v)}`).join('');
  return `${user !== undefined ? `${user}@` : ''}${host ?? ''}${port !== undefined ? `:${port}` : ''}${extras}${passwordSet ? ' (password set)' : ''}`;
}

export interface StateEventRow { mac: string; at: number; actor: string; from: string | null; to: string; reason: string }

export function formatEventTable(rows: readonly StateEventRow[]): string {
  return formatTable(['TIME', 'ACTOR', 'FROM', 'TO', 'REASON'], rows.map((e) => [formatTime(e.at), e.actor, e.from, e.to, e.reason]));
}

export interface ImageRow { id: string; sizeBytes: number; sha256: string; readOnly: boolean }

export function formatImageTable(rows: readonly ImageRow[]): string {
  return formatTable(['ID', 'SIZE', 'BYTES', 'SHA256', 'READ-ONLY'],
    rows.map((i) => [i.id, formatBytes(i.sizeBytes), i.sizeBytes, i.sha256, i.readOnly ? 'yes' : 'no']));
}

export interface OperationRow {
  id: string; kind: string; mac?: string; status: string; step: string; steps: { step: string; at: number }[];
  startedAt: number; finishedAt?: number; error?: string; result?: unknown;
}

export function formatOperationTable(rows: readonly OperationRow[]): string {
  return formatTable(['ID', 'KIND', 'MAC', 'STATUS', 'STEP', 'STARTED', 'FINISHED', 'ERROR'],
    rows.map((o) => [o.id, o.kind, o.mac, o.status, o.step, formatTime(o.startedAt), formatTime(o.finishedAt), o.error]));
}
