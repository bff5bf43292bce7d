/**
 * The README's main-job command, as a user runs it: `scripts/demo.sh --once` (with --no-install:
 * the test command has installed and built everything already). It creates its lab, starts
 * metalboot on its embedded configuration, provisions a BIOS and a UEFI machine through the API,
 * powers them on over IPMI, prints each one's timeline and its own disk's marker, and tears
 * everything down. A regression in the script itself fails here.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { runCommand } from '../../src/exec/run.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { e2eUnavailable } from '../helpers/e2e.js';

const skip = e2eUnavailable(['bios', 'uefi']);

t.test('scripts/demo.sh --once boots both machines from their own disks, prints their timelines and tears down', { skip, timeout: 400_000 }, async (t) => {
  const child = spawn('bash', [path.join(REPO_ROOT, 'scripts/demo.sh'), '--once', '--no-install'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
  const killer = setTimeout(() => child.kill('SIGINT'), 360_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(killer);
  t.equal(code, 0, 'the demo exits 0');
  for (const [vm, fw] of [['vm-bios', 'bios'], ['vm-uefi', 'efi']] as const) {
    const section = out.slice(out.indexOf(`== ${vm} `));
    t.ok(out.includes(`== ${vm} `), `${vm}: timeline printed`);
    for (const step of ['DHCP ack', 'iPXE script', 'iSCSI login seen', 'marker on serial']) {
      t.match(section, new RegExp(`^  ${step} +\\+\\d+$`, 'm'), `${vm}: ${step} with its time after power on`);
    }
    if (fw === 'efi') t.match(section, /^ {2}TFTP iPXE program +\+\d+$/m, `${vm}: the firmware fetched iPXE over TFTP`);
    t.match(section, new RegExp(`serial: METALBOOT-DISK-OK demo ${vm}-disk ${fw}`), `${vm}: booted its own disk (its id on the serial console)`);
  }
  t.match(out, /demo: status page: http:\/\/127\.0\.0\.1:18080\//, 'the status page URL');
  t.match(out, /demo: torn down/, 'torn down');
  const ns = await runCommand(['ip', 'netns', 'list'], { timeoutMs: 5000 });
  t.notMatch(ns.stdout, /^mbdemo\b/m, 'the demo namespace is gone');
  const left = await runCommand(['pgrep', '-af', 'metalboot-demo'], { timeoutMs: 5000, okCodes: [0, 1] });
  t.equal(left.stdout.trim(), '', 'no process of the demo left');
  if (t.passing() === false) t.comment(out.split('\n').slice(-60).join('\n'));
});
