/**
 * The admin CLI (dist/src/cli/metalboot.js, as a process) against the real daemon: metalbootd in
 * a namespace with file storage and a tgtd it manages (test/helpers/disks.ts). The API address
 * and token file come from the environment, as an admin would set them: import an image by
 * streamed upload, enrol a machine, provision it and wait for the operation, list it as JSON,
 * reset its disk, refuse and then force its deletion; a wrong token file is named in the 401
 * message; `token rotate` takes effect within about a second. No token in any output.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { netnsUnavailable } from '../helpers/netns.js';
import { tgtdUnavailable } from '../helpers/tgtd.js';
import { buildDiskLab } from '../helpers/disks.js';
import { REPO_ROOT } from '../helpers/daemon.js';

const skip = netnsUnavailable() || tgtdUnavailable();
const METALBOOT = path.join(REPO_ROOT, 'dist/src/cli/metalboot.js');
const MAC = '52:54:00:c1:00:01';
const MB = 1 << 20;

t.test('metalboot CLI against metalbootd: images import, machines add, provision --wait, list --json, reset, rm --force, token rotate', { skip, timeout: 300_000 }, async (t) => {
  const lab = await buildDiskLab(t, 'cli');
  await lab.start();
  const tokenFile = path.join(lab.dataDir, 'api-token');
  const printed: string[] = [];
  /** The CLI in the daemon's namespace with a clean environment: API and token file from env only. */
  const cli = async (args: string[], o: { tokenFile?: string; ok?: number[]; timeoutMs?: number } = {}) => {
    const env = ['env', '-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, `HOME=${lab.dir}`, 'METALBOOT_API=http://127.0.0.1:8080', `METALBOOT_TOKEN_FILE=${o.tokenFile ?? tokenFile}`];
    const r = await lab.exec([...env, process.execPath, METALBOOT, ...args], o.timeoutMs ?? 60_000, o.ok ?? [0, 1, 2]);
    printed.push(r.stdout, r.stderr);
    return r;
  };

  const image = randomBytes(8 * MB + 512);
  const imgFile = path.join(lab.dir, 'golden.raw');
  await writeFile(imgFile, image);
  const sha = createHash('sha256').update(image).digest('hex');

  let r = await cli(['images', 'import', 'golden', '--file', imgFile]);
  t.equal(r.code, 0, `images import: ${r.stderr}`);
  t.equal(r.stdout, `imported golden: 8.0 MiB (${image.length} bytes), sha256 ${sha}\n`, 'the daemon hashed what the CLI streamed');
  r = await cli(['images', '--json']);
  t.match(JSON.parse(r.stdout), [{ id: 'golden', sizeBytes: image.length, sha256: sha }]);

  r = await cli(['machines', 'add', MAC, '--name', 'cli-1', '--image', 'golden', '--firmware', 'bios']);
  t.equal(r.code, 0, `machines add: ${r.stderr}`);
  t.equal(r.stdout, `enrolled ${MAC} as cli-1 (state enrolled)\n`);

  r = await cli(['provision', MAC, '--wait', '--timeout', '120'], { timeoutMs: 150_000 });
  t.equal(r.code, 0, `provision --wait: ${r.stderr}`);
  const lines = r.stdout.trimEnd().split('\n');
  t.match(lines[0], new RegExp(`^provisioning ${MAC}: operation provision-\\S+$`), 'the operation id');
  const steps = lines.slice(1, -1).map((l) => l.trim().split(/\s+/)[1]);
  t.same(steps, ['queued', 'disk', 'boot-mode'], 'the steps as they came (no BMC: no bootdev or power)');
  t.match(lines.at(-1), new RegExp(`^${MAC}: provisioned \\(operation provision-\\S+ succeeded\\)$`));

  r = await cli(['machines', 'list', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), [{ mac: MAC, name: 'cli-1', state: 'ready', image: 'golden', bootMode: 'sanboot' }], 'ready, sanboot');
  r = await cli(['machines']);
  t.match(r.stdout, new RegExp(`^MAC\\s+NAME\\s+STATE.*\\n${MAC}\\s+cli-1\\s+ready\\s+-\\s+golden\\s+sanboot\\s+bios\\s+-\\n$`), `table: ${r.stdout}`);
  r = await cli(['operations', '--mac', MAC]);
  t.match(r.stdout, /\nprovision-\S+\s+provision\s+52:54:00:c1:00:01\s+succeeded\s+done\s/, 'operations lists it');

  r = await cli(['reset', MAC]);
  t.equal(r.code, 0, `reset: ${r.stderr}`);
  t.equal(r.stdout, `${MAC}: disk reset to image golden (state ready)\n`);

  r = await cli(['machines', 'events', MAC]);
  t.match(r.stdout, /enrolled\s+provisioning\s+provision golden\n.*provisioning\s+ready\s+disk and target ready/s, 'state history');

  r = await cli(['machines', 'rm', MAC]);
  t.equal(r.code, 1, 'rm of a provisioned machine without --force: refused');
  t.match(r.stderr, /has a provisioned disk \(state ready\).*\(HTTP 409 from DELETE http:\/\/127\.0\.0\.1:8080\/api\/v1\/machines\/52:54:00:c1:00:01\)/);
  r = await cli(['machines', 'rm', MAC, '--force']);
  t.equal(r.code, 0, `rm --force: ${r.stderr}`);
  t.equal(r.stdout, `deleted ${MAC}\n`);
  r = await cli(['machines', 'list', '--json']);
  t.same(JSON.parse(r.stdout), [], 'gone');

  // A wrong token file: 401, and the message names the file.
  const wrong = path.join(lab.dir, 'wrong-token');
  await writeFile(wrong, 'not-the-daemons-token-0123456789\n', { mode: 0o600 });
  r = await cli(['machines'], { tokenFile: wrong });
  t.equal(r.code, 1);
  t.match(r.stderr, `refused the token (HTTP 401); it came from token file ${wrong} ($METALBOOT_TOKEN_FILE)`);

  // Rotation: the new token is written (not printed), the old one refused within about a second.
  const old = (await readFile(tokenFile, 'utf8')).trim();
  const oldCopy = path.join(lab.dir, 'old-token');
  await writeFile(oldCopy, `${old}\n`, { mode: 0o600 });
  r = await cli(['token', 'rotate']);
  t.equal(r.code, 0, `token rotate: ${r.stderr}`);
  t.match(r.stdout, `wrote a new API token to ${tokenFile}`);
  const fresh = (await readFile(tokenFile, 'utf8')).trim();
  t.not(fresh, old, 'a new token in the file');
  let newOk = false;
  let oldRefused = false;
  for (let i = 0; i < 30 && !(newOk && oldRefused); i++) {
    await new Promise((res) => setTimeout(res, 200));
    newOk = (await cli(['machines'])).code === 0;
    oldRefused = (await cli(['machines'], { tokenFile: oldCopy })).code === 1;
  }
  t.ok(newOk && oldRefused, 'the daemon took the new token and refuses the old one');

  const all = printed.join('\n');
  t.notOk(all.includes(old) || all.includes(fresh), 'no token in any output');
});
