/**
 * The pure parts of machines/: the record's rules (record.ts: applySpec names the field at
 * fault, null removes, power goes through its driver's parse) and the one filter of what the
 * network says (discovery.ts: interest, discoveredMachine).
 */
import t from 'tap';
import type { EventBody, MetalbootEvent } from '../../src/events/bus.js';
import { discoveredMachine, interest } from '../../src/machines/discovery.js';
import type { Machine } from '../../src/machines/model.js';
import { MachineError, applySpec } from '../../src/machines/record.js';
import { parseMac } from '../../src/net/mac.js';

const MAC = parseMac('52:54:00:00:71:01');
const ev = (b: EventBody): MetalbootEvent => ({ ...b, at: 0, seq: 1 }) as MetalbootEvent;
const base: Machine = { mac: MAC, name: 'n1', bootMode: 'sanboot', firmware: 'bios', state: 'enrolled', createdAt: 0, updatedAt: 0 };

t.test('interest: a known machine\'s iSCSI sessions; an unknown network-boot client seen by DHCP, only when discovering', async (t) => {
  const login = ev({ type: 'iscsi.login', iqn: 'iqn.x:t', initiator: 'iqn.x:i', mac: MAC });
  const pxe = ev({ type: 'dhcp.offer', mac: MAC, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' });
  t.same(interest(login, true, true), { session: login });
  t.same(interest(ev({ type: 'iscsi.logout', iqn: 'iqn.x:t', initiator: 'iqn.x:i', mac: MAC }), true, false), { session: { type: 'iscsi.logout', iqn: 'iqn.x:t', initiator: 'iqn.x:i', mac: MAC, at: 0, seq: 1 } });
  t.equal(interest(pxe, true, true), undefined, 'a known machine is not discovered again');
  t.equal(interest(login, false, true), undefined, 'an unknown machine\'s session changes nothing');
  t.same(interest(pxe, false, true), { sighting: pxe });
  t.equal(interest(pxe, false, false), undefined, 'discovery off');
  for (const type of ['dhcp.ack', 'dhcp.proxy-offer', 'dhcp.proxy-ack'] as const) t.ok(interest(ev({ type, mac: MAC, vendorClass: 'PXEClient' }), false, true), type);
  t.ok(interest(ev({ type: 'dhcp.ack', mac: MAC, vendorClass: 'HTTPClient:Arch:00016' }), false, true), 'UEFI HTTP boot');
  t.ok(interest(ev({ type: 'dhcp.ack', mac: MAC, ipxe: true }), false, true), 'iPXE');
  t.equal(interest(ev({ type: 'dhcp.ack', mac: MAC, vendorClass: 'udhcp 1.36' }), false, true), undefined, 'not a network-boot client');
  t.equal(interest(ev({ type: 'dhcp.nak', mac: MAC, vendorClass: 'PXEClient' }), false, true), undefined, 'a NAK is no sighting');
});

t.test('discoveredMachine: firmware from the arch, what DHCP said kept', async (t) => {
  const d = (arch?: string) => discoveredMachine(MAC, { type: 'dhcp.offer', mac: MAC, at: 0, seq: 1, ...(arch ? { arch } : {}), vendorClass: 'PXEClient', uuid: 'u-1' }, 42);
  t.match(d('bios'), { mac: MAC, name: 'm-525400007101', state: 'discovered', firmware: 'bios', bootMode: 'sanboot', createdAt: 42, discovered: { at: 42, arch: 'bios', vendorClass: 'PXEClient', uuid: 'u-1' } });
  t.equal(d('efi-x64').firmware, 'uefi');
  t.equal(d('unknown').firmware, 'unknown');
  t.equal(d().firmware, 'unknown');
});

t.test('applySpec: the record\'s rules name the field; null removes; power through its driver', async (t) => {
  const bad = (spec: Parameters<typeof applySpec>[1], field: string, why: RegExp) => {
    try {
      applySpec(base, spec);
      t.fail(`${field}: accepted`);
    } catch (e) {
      t.ok(e instanceof MachineError, `${field}: MachineError`);
      t.match(e, { code: 'invalid', field, reason: why }, `${field}: named`);
      t.match((e as Error).message, `machine ${MAC}: ${field}: `);
    }
  };
  bad({ name: 'bad name' }, 'name', /host name label/);
  bad({ name: 'x'.repeat(64) }, 'name', /host name label/);
  bad({ ip: '10.0.0.256' }, 'ip', /"10\.0\.0\.256" is not an IPv4 address/);
  bad({ image: '../x' }, 'image', /^"\.\.\/x": only letters/);
  bad({ uefiFilename: 'a b' }, 'uefiFilename', /letters, digits/);
  bad({ netboot: { kernel: '../vmlinuz' } }, 'netboot.kernel', /a file name/);
  bad({ netboot: { kernel: 'k', cmdline: 'a;b' } }, 'netboot.cmdline', /unsupported characters/);
  bad({ power: { driver: 'ipmi', host: 'h h', user: 'u', password: '' } }, 'power.host', /not a host name/);
  bad({ power: { driver: 'nope' } }, 'power.driver', /is not a power driver/);
  const m = applySpec(base, { name: 'n2', ip: '10.0.0.7', image: 'golden', power: { driver: 'ipmi', host: 'bmc.lab', user: 'u', password: 'p', privilege: 'operator' } });
  t.match(m, { name: 'n2', ip: '10.0.0.7', image: 'golden', power: { driver: 'ipmi', host: 'bmc.lab', port: 623, user: 'u', password: 'p', privilege: 'operator' } });
  const cleared = applySpec(m, { ip: null, image: null, power: null });
  t.notOk('ip' in cleared || 'image' in cleared || 'power' in cleared, 'null removes');
  t.same(applySpec(m, {}), m, 'nothing given: nothing changed');
});
