/**
 * Issue 13 ("Also:"): a BMC whose replies are corrupted was reported as "IPMI over LAN is probably
 * disabled". The real ipmi_sim sits behind test/helpers/udp-proxy.ts, which flips a bit in the IPMI
 * part of every IPMI-class reply and passes RMCP/ASF (presence ping) replies untouched, as a link
 * corrupting larger datagrams or a BMC with a broken IPMI stack would. The client must say the
 * replies were malformed or corrupted, name the BMC and count them, must not blame a disabled
 * IPMI-over-LAN (nor a wrong password), and must work again once the link is clean. Silence is
 * still reported as silence. No ipmitool involved: metalboot's own client against the simulator.
 */
import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import { IpmiClient } from '../../src/ipmi/client.js';
import { IpmiCorruptRepliesError, IpmiError, IpmiTimeoutError } from '../../src/ipmi/errors.js';
import { RMCP_CLASS_IPMI } from '../../src/ipmi/rmcp.js';
import { ipmiSimUnavailable, startIpmiSim } from '../helpers/ipmi-sim.js';
import { startUdpProxy } from '../helpers/udp-proxy.js';

const skip = ipmiSimUnavailable();

function client(t: Test, port: number, user: string, password: string, cipherSuite?: '1.5'): IpmiClient {
  const c = new IpmiClient({ host: '127.0.0.1', port, username: user, password: Buffer.from(password), timeoutMs: 200, retries: 2, maxCommandsPerSecond: 0, ...(cipherSuite ? { cipherSuite } : {}) }, {});
  t.teardown(() => c.close());
  return c;
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try { await p; return undefined; } catch (e) { return e; }
}

for (const mode of ['new client', 'open RMCP+ session'] as const) {
  t.test(`${mode}: corrupted replies are reported as corrupted, counted, with the BMC named; not as IPMI over LAN disabled`, { skip, timeout: 60_000 }, async (t) => {
    const sim = await startIpmiSim(t);
    let corrupt = false;
    let corrupted = 0;
    const proxy = await startUdpProxy(t, sim.port, (b, dir) => {
      // Byte 2 of the RMCP header is the class (§13.1.3): ASF pongs pass, IPMI replies are hit.
      if (!corrupt || dir !== 'to-client' || b.length < 8 || (b[3]! & 0x1f) !== RMCP_CLASS_IPMI) return b;
      const out = Buffer.from(b);
      out[out.length - 1] = out[out.length - 1]! ^ 0x5a; // the last byte: a checksum or integrity pad/code
      corrupted++;
      return out;
    });
    const bmc = `127.0.0.1:${proxy.port}`;

    const first = client(t, proxy.port, sim.user, sim.password);
    t.equal(await first.powerState(), 'off', 'through the clean link first');

    corrupt = true;
    // A new client's first step is Get Channel Authentication Capabilities, where the old code
    // pinged, got a pong, and blamed a disabled IPMI over LAN. In an open session the command's
    // authenticated replies fail their HMAC; the client then re-opens the session, which starts
    // with that same step.
    const c = mode === 'new client' ? client(t, proxy.port, sim.user, sim.password) : first;
    const started = Date.now();
    const e = await failure(c.powerState());
    const ms = Date.now() - started;
    t.ok(e instanceof IpmiCorruptRepliesError, `a corrupt-replies error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    t.equal((e as IpmiError).kind, 'corrupt', 'kind corrupt (what the API and events carry)');
    const msg = e instanceof Error ? e.message : '';
    t.ok(msg.startsWith(`BMC ${bmc}: `), 'names the BMC');
    t.match(msg, /malformed or corrupted/, 'says the replies were malformed or corrupted');
    t.notMatch(msg, /probably disabled|IPMI over LAN/i, 'does not blame a disabled IPMI over LAN');
    t.notMatch(msg, /password/i, 'nor the password');
    const counted = (e as IpmiCorruptRepliesError).corrupted;
    // The error counts the replies of the exchange that ended the call (3 tries); in an open session
    // the command's own 3 corrupted replies came before it.
    t.equal(counted, 3, `counts them: 3 in the error, one per try`);
    t.equal(corrupted, mode === 'new client' ? 3 : 6, `the proxy corrupted ${corrupted}`);
    t.match(msg, new RegExp(`^BMC ${bmc}: ${counted} replies to `), 'the count is in the message');
    t.ok(ms <= (mode === 'new client' ? 1 : 2) * (200 + 400 + 800) + 500, `within the retry bound (${ms} ms)`);

    corrupt = false;
    t.equal(await c.powerState(), 'off', 'the same client works once the link is clean');
  });
}

t.test('silence is still reported as no answer, not as corruption', { skip, timeout: 30_000 }, async (t) => {
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  const e = await failure(client(t, silent.address().port, 'admin', 'x').powerState());
  t.ok(e instanceof IpmiTimeoutError && !(e instanceof IpmiCorruptRepliesError), `a timeout: ${e instanceof Error ? e.message : String(e)}`);
  t.match(e instanceof Error ? e.message : '', /no answer to Get Channel Authentication Capabilities/, 'says nothing answered');
});
