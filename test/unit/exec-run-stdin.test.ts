/** The runner's stdin option: a stream reaches the command whole; a failing source ends it. */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { runCommand } from '../../src/exec/run.js';

t.test('a stream is piped to the command', async (t) => {
  const data = randomBytes(3 << 20);
  const r = await runCommand(['sha256sum'], { timeoutMs: 30_000, stdin: Readable.from([data.subarray(0, 1000), data.subarray(1000)]) });
  t.equal(r.stdout.split(' ')[0], createHash('sha256').update(data).digest('hex'));
});

t.test('a source that fails kills the command and rejects with the source\'s error', async (t) => {
  const src = new Readable({ read() { this.destroy(new Error('upload cut')); } });
  await t.rejects(runCommand(['cat'], { timeoutMs: 30_000, stdin: src }), /upload cut/);
});
