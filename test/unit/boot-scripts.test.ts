import t from 'tap';
import { renderSanbootScript, renderLocalScript, renderNetbootScript, renderMenuScript, iscsiUri, ScriptValueError } from '../../src/boot/ipxe.js';
import { bootActionFor } from '../../src/boot/policy.js';
import { parseMac } from '../../src/net/mac.js';
import type { Machine } from '../../src/machines/model.js';
import type { DiskRecord } from '../../src/disks/record.js';

const mac = parseMac('52:54:00:12:34:56');
const base = {
  mac, name: 'node1', portalHost: '10.99.0.1', portalPort: 3260, targetIqn: 'iqn.2026-11.org.metalboot:mac-525400123456', lun: 1,
  initiatorIqn: 'iqn.2026-11.org.metalboot:mac-525400123456:initiator', chap: { user: 'mb-i525400123456', secret: 'AbCdEfGhJkMnPqRsTuVw' },
  tries: 3, retryDelaySec: 5, fallback: 'exit' as const,
};

t.test('sanboot script: IQN, CHAP, URI with LUN 1 in hex, retries with a message, fallback', async (t) => {
  const s = renderSanbootScript(base);
  const lines = s.split('\n');
  t.equal(lines[0], '#!ipxe');
  t.ok(lines.includes('set initiator-iqn iqn.2026-11.org.metalboot:mac-525400123456:initiator'));
  t.ok(lines.includes('set username mb-i525400123456'));
  t.ok(lines.includes('set password AbCdEfGhJkMnPqRsTuVw'));
  t.ok(lines.includes('sanboot iscsi:10.99.0.1::3260:1:iqn.2026-11.org.metalboot:mac-525400123456 && goto mbdone ||'));
  t.ok(lines.includes('iseq ${mbtry} 3 && goto mbfallback ||'), 'three tries');
  t.match(s, /echo metalboot: sanboot failed \(\$\{errno\}\), try \$\{mbtry\} of 3; again in 5 s/);
  t.match(s, /:mbfallback\necho metalboot: the disk did not boot after 3 tries; next boot device\nsleep 3\nexit 1/);
  t.notMatch(s, /reverse-/, 'no mutual CHAP unless asked');
  const m = renderSanbootScript({ ...base, mutualChap: { user: 'mb-t525400123456', secret: 'ZyXwVuTsRqPnMkJhGfEd' }, filename: '\\EFI\\BOOT\\BOOTX64.EFI', fallback: 'menu', menuUrl: 'http://10.99.0.1:8080/boot/52:54:00:12:34:56.menu.ipxe' });
  t.match(m, /set reverse-username mb-t525400123456\nset reverse-password ZyXwVuTsRqPnMkJhGfEd/);
  t.match(m, /sanboot --filename \/EFI\/BOOT\/BOOTX64.EFI iscsi:/, 'UEFI --filename');
  t.match(m, /chain http:\/\/10\.99\.0\.1:8080\/boot\/52:54:00:12:34:56\.menu\.ipxe \|\|/);
  t.match(renderSanbootScript({ ...base, fallback: 'retry' }), /starting over\nset mbtry:int32 0\nsleep 5\ngoto mbsan/);
  t.equal(iscsiUri('10.0.0.1', 3261, 26, 'iqn.x:y'), 'iscsi:10.0.0.1::3261:1a:iqn.x:y', 'LUN in hex');
});

t.test('nothing from a record can inject iPXE commands', async (t) => {
  for (const bad of ['x\nshell', 'x ${net0/ip}', 'x || shell', 'a;b', 'a b']) {
    t.throws(() => renderSanbootScript({ ...base, name: bad }), ScriptValueError, JSON.stringify(bad));
    t.throws(() => renderSanbootScript({ ...base, chap: { user: 'u', secret: bad } }), ScriptValueError);
  }
  t.throws(() => renderNetbootScript({ mac, kernelUrl: 'http://x/k', cmdline: 'console=ttyS0\nshell' }), ScriptValueError);
});

t.test('local, netboot and menu scripts', async (t) => {
  t.equal(renderLocalScript(mac, 'bios'), '#!ipxe\necho metalboot: 52:54:00:12:34:56 boots from its local disk\nsanboot --no-describe --drive 0x80 ||\nexit 1\n');
  t.notMatch(renderLocalScript(mac, 'uefi'), /sanboot/, 'UEFI: back to the firmware boot order');
  const n = renderNetbootScript({ mac, kernelUrl: 'http://10.0.0.1:8080/boot/files/vmlinuz', initrdUrl: 'http://10.0.0.1:8080/boot/files/initrd.img', cmdline: 'console=ttyS0 root=/dev/ram0' });
  t.match(n, /kernel http:\/\/10\.0\.0\.1:8080\/boot\/files\/vmlinuz console=ttyS0 root=\/dev\/ram0 \|\| goto mbfail\ninitrd http:\/\/10\.0\.0\.1:8080\/boot\/files\/initrd\.img \|\| goto mbfail\nboot/);
  const menu = renderMenuScript({ mac, name: 'node1', sanbootUrl: 'http://h/boot/52:54:00:12:34:56.ipxe', firmware: 'bios', timeoutMs: 10000 });
  t.match(menu, /item mbsan Boot the iSCSI disk/);
  t.match(menu, /choose --timeout 10000 --default mbsan mbchoice \|\| goto mblocal/);
  t.notMatch(renderMenuScript({ mac, firmware: 'uefi', timeoutMs: 0 }), /mbsan/, 'no disk: no disk item');
});

t.test('policy: what each machine boots', async (t) => {
  const m = (o: Partial<Machine>): Machine => ({ mac, name: 'n', bootMode: 'sanboot', firmware: 'bios', state: 'ready', createdAt: 0, updatedAt: 0, ...o });
  const disk = { mac } as DiskRecord;
  t.same(bootActionFor(undefined, undefined, 'ignore'), { kind: 'none' });
  t.same(bootActionFor(undefined, undefined, 'menu'), { kind: 'menu' });
  t.same(bootActionFor(undefined, undefined, 'local'), { kind: 'local', firmware: 'unknown' });
  t.equal(bootActionFor(m({ state: 'discovered' }), undefined, 'ignore').kind, 'none', 'discovered is still unknown');
  t.equal(bootActionFor(m({}), disk, 'ignore').kind, 'sanboot');
  t.equal(bootActionFor(m({ state: 'active' }), disk, 'ignore').kind, 'sanboot');
  t.equal(bootActionFor(m({ state: 'provisioning' }), undefined, 'ignore').kind, 'wait');
  for (const state of ['enrolled', 'error', 'maintenance'] as const) t.equal(bootActionFor(m({ state }), disk, 'ignore').kind, 'local', `${state}: local disk`);
  t.equal(bootActionFor(m({}), undefined, 'ignore').kind, 'local', 'ready without a disk record: local');
  t.equal(bootActionFor(m({ bootMode: 'local' }), disk, 'ignore').kind, 'local');
  t.equal(bootActionFor(m({ bootMode: 'netboot', netboot: { kernel: 'k' } }), disk, 'ignore').kind, 'netboot');
  t.equal(bootActionFor(m({ bootMode: 'netboot' }), disk, 'ignore').kind, 'local', 'netboot without a kernel: local');
  t.match(bootActionFor(m({ bootMode: 'menu' }), disk, 'ignore'), { kind: 'menu', disk });
});
