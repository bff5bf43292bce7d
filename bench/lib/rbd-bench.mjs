// bench/lib/rbd-bench.mjs — the metalboot side of bench/rbd: RbdBackend.clone() of golden RBD
// images of several sizes against a running lab cluster (scripts/ceph-lab.sh), one JSON line out.
//
//   node rbd-bench.mjs clone DIST CONF SIZES_GIB REPS
//
// Each golden image is made as RbdBackend.importImage leaves it (mbt-ID written, image-meta
// `metalboot`, snapshot `golden` protected, renamed to mbi-ID), but written with `rbd bench`
// (256 MiB of 4 MiB random-offset writes) instead of streamed, so that a 32 GiB image does not
// need 32 GiB of input. Every rep: clone(ID, disk) timed, the clone checked (parent, size), removed.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [mode, dist, conf, sizesS, repsS] = process.argv.slice(2);
const imp = (p) => import(pathToFileURL(path.join(dist, p)).href);
const { runCommand } = await imp('src/exec/run.js');
const { RbdBackend } = await imp('src/storage/rbd.js');
const GiB = 1 << 30;
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const round = (x) => Math.round(x * 10) / 10;
const admin = async (args, timeoutMs = 600_000) => (await runCommand(['rbd', '-c', conf, '--id', 'admin', ...args], { timeoutMs, maxBuffer: 16 << 20 })).stdout;

let cmds = [];
const timedRunner = async (argv, opts) => {
  const t0 = nowMs();
  // "rbd clone", "rbd snap create", "ceph df": the words after the common options, not the specs.
  const words = argv.slice(5).filter((a) => !a.startsWith('-') && !a.includes('/') && a !== 'json' && a !== 'metalboot').slice(0, 2);
  try { return await runCommand(argv, opts); } finally { cmds.push({ cmd: [argv[0], ...words].join(' '), ms: round(nowMs() - t0) }); }
};

if (mode !== 'clone') { console.error('usage: node rbd-bench.mjs clone DIST CONF SIZES_GIB REPS'); process.exit(2); }
const b = new RbdBackend({ pool: 'metalboot', cephConf: conf, user: 'metalboot', runner: timedRunner });
await b.init();
const out = { images: [] };
for (const g of sizesS.split(',').map(Number)) {
  const id = `g${g}`;
  const stage = `metalboot/mbt-${id}`;
  await admin(['create', '--size', `${g}G`, stage]);
  await admin(['bench', '--io-type', 'write', '--io-size', '4M', '--io-total', '256M', '--io-pattern', 'rand', stage]);
  await admin(['image-meta', 'set', stage, 'metalboot', JSON.stringify({ sha256: '0'.repeat(64), bytes: g * GiB, readOnly: true })]);
  await admin(['snap', 'create', `${stage}@golden`]);
  await admin(['snap', 'protect', `${stage}@golden`]);
  await admin(['rename', stage, `metalboot/mbi-${id}`]);
  const reps = [];
  for (let r = 1; r <= Number(repsS); r++) {
    cmds = [];
    const t0 = nowMs();
    const d = await b.clone(id, `bench-${id}-${r}`);
    const ms = nowMs() - t0;
    const breakdown = cmds;
    if (d.imageId !== id || d.sizeBytes !== g * GiB) throw new Error(`clone ${d.id}: ${JSON.stringify(d)}`);
    await b.removeDisk(d.id);
    reps.push({ ms: round(ms), cmds: breakdown });
  }
  await b.removeImage(id);
  out.images.push({ id, gib: g, reps });
}
console.log(JSON.stringify(out));
