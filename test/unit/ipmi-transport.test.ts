/**
 * Review finding 8: only replies that fail to parse or fail their integrity check make an unanswered
 * exchange "corrupt". A well-formed reply that answers no pending request (a late reply to an earlier
 * request, a BMC's unauthenticated error to a bad IPMI 1.5 AuthCode) leaves it a plain timeout, so the
 * wrong-password diagnosis and the no-LAN-access ping still apply. A fake BMC on fake datagrams.
 */
import t from 'tap';
import { CORRUPT, Transport, type Datagrams } from '../../src/ipmi/transport.js';
import { IpmiAuthError, IpmiCorruptRepliesError, IpmiTimeoutError } from '../../src/ipmi/errors.js';
import { openSession, type SessionLink } from '../../src/ipmi/session.js';
import { decodeRequest, encodeResponse, type IpmiMessage } from '../../src/ipmi/commands.js';
import { PRIV_ADMINISTRATOR } from '../../src/ipmi/rakp.js';
import { AUTH_MD5, AUTH_NONE, decodeAsf, decodeIpmiPacket, encodeAsfPong, encodeSessionV15 } from '../../src/ipmi/rmcp.js';

const POLICY = { timeoutMs: 20, retries: 1 };

/** Datagrams whose sends go to `bmc`, which answers through the returned function. */
function fakeIo(bmc: (sent: Buffer, reply: (b: Buffer) => void) => void): Datagrams {
  let deliver: (b: Buffer) => void = () => {};
  return {
    send: (b) => bmc(b, (r) => setImmediate(() => deliver(r))),
    onDatagram: (h) => { deliver = h; },
    onError: () => {},
    close: () => {},
  };
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try { await p; return undefined; } catch (e) { return e; }
}

t.test('transport: an unmatched reply then silence is a plain timeout; a corrupt one is corrupt', async (t) => {
  const late = Buffer.from('late');
  const bad = Buffer.from('bad');
  const accept = (b: Buffer) => (b.equals(bad) ? CORRUPT : undefined);

  let tr = new Transport(fakeIo((_, reply) => reply(late)), 'bmc:623');
  let e = await failure(tr.exchange('X', () => Buffer.from('q'), accept, POLICY));
  t.ok(e instanceof IpmiTimeoutError && !(e instanceof IpmiCorruptRepliesError), `a timeout: ${String(e)}`);
  t.equal((e as IpmiTimeoutError).kind, 'timeout');
  t.equal((e as IpmiTimeoutError).dropped, 2, 'the unmatched replies are counted as such');
  t.match((e as Error).message, /2 unmatched or unauthenticated replies ignored/);
  t.equal(tr.stats.dropped, 2, 'and in the transport stats');

  // Once per try, the corrupt reply comes after an unmatched one: only the corrupt ones are counted.
  tr = new Transport(fakeIo((_, reply) => { reply(late); reply(bad); }), 'bmc:623');
  e = await failure(tr.exchange('X', () => Buffer.from('q'), accept, POLICY));
  t.ok(e instanceof IpmiCorruptRepliesError, `corrupt: ${String(e)}`);
  t.equal((e as IpmiCorruptRepliesError).kind, 'corrupt');
  t.equal((e as IpmiCorruptRepliesError).corrupted, 2, 'counts the corrupt replies only');

  // An accept that throws (a parser bug) counts as a reply that failed to parse.
  tr = new Transport(fakeIo((_, reply) => reply(late)), 'bmc:623');
  e = await failure(tr.exchange('X', () => Buffer.from('q'), () => { throw new Error('bug'); }, POLICY));
  t.ok(e instanceof IpmiCorruptRepliesError, 'a throwing accept is a parse failure');
});

/** An IPMI 1.5-only BMC (MD5). `activate` answers Activate Session; `caps` can override Get Channel Auth Capabilities. */
function v15Bmc(opts: { activate: (req: IpmiMessage, temp: number) => Buffer | undefined; caps?: (req: IpmiMessage) => Buffer | undefined; pong?: boolean }) {
  const TEMP = 0x11223344;
  return fakeIo((b, reply) => {
    const asf = decodeAsf(b);
    if (asf.ok && asf.value.type === 'ping') { if (opts.pong) reply(encodeAsfPong({ tag: asf.value.tag })); return; }
    const p = decodeIpmiPacket(b, 0);
    if (!p.ok || p.value.version !== '1.5') return;
    const r = decodeRequest(p.value.session.message);
    if (!r.ok) return;
    const req = r.value;
    const plain = (completionCode: number, data: Buffer, rqSeq = req.rqSeq) =>
      encodeSessionV15({ authType: AUTH_NONE, sequence: 0, sessionId: 0, message: encodeResponse({ netFn: req.netFn | 1, cmd: req.cmd, rqSeq, completionCode, data }) });
    if (req.cmd === 0x38) {
      // Channel 1; IPMI 1.5 auth types none, MD2, MD5, password; no IPMI v2.0 extension.
      const out = opts.caps ? opts.caps(req) : plain(0, Buffer.from([0x01, 0x17, 0x04, 0, 0, 0, 0, 0]));
      if (out) reply(out);
    } else if (req.cmd === 0x39) {
      const d = Buffer.alloc(20, 0xab);
      d.writeUInt32LE(TEMP, 0);
      reply(plain(0, d));
    } else if (req.cmd === 0x3a) {
      const out = opts.activate(req, TEMP);
      if (out) reply(out);
    }
  });
}

function link(io: Datagrams): SessionLink {
  let seq = 1;
  return { bmc: 'bmc:623', transport: new Transport(io, 'bmc:623'), policy: POLICY, nextRqSeq: () => (seq = (seq + 1) & 0x3f), warn: () => {} };
}

const CREDS = { username: 'admin', password: Buffer.from('wrong'), privilege: PRIV_ADMINISTRATOR };

t.test('IPMI 1.5: an unauthenticated error to a bad AuthCode still reads as a wrong password', async (t) => {
  // Some BMCs answer a failed AuthCode with an error outside the session's authentication.
  const io = v15Bmc({
    activate: (req, temp) => encodeSessionV15({ authType: AUTH_NONE, sequence: 0, sessionId: temp,
      message: encodeResponse({ netFn: req.netFn | 1, cmd: req.cmd, rqSeq: req.rqSeq, completionCode: 0xcc, data: Buffer.alloc(0) }) }),
  });
  const e = await failure(openSession(link(io), CREDS, '1.5'));
  t.ok(e instanceof IpmiAuthError && e.failure === 'wrong-password', `wrong password: ${String(e)}`);
});

t.test('IPMI 1.5: an Activate Session reply whose AuthCode fails is corruption, not a wrong password', async (t) => {
  const io = v15Bmc({
    activate: (req, temp) => encodeSessionV15({ authType: AUTH_MD5, sequence: 0, sessionId: temp, authCode: Buffer.alloc(16, 0x5a),
      message: encodeResponse({ netFn: req.netFn | 1, cmd: req.cmd, rqSeq: req.rqSeq, completionCode: 0, data: Buffer.alloc(10) }) }),
  });
  const e = await failure(openSession(link(io), CREDS, '1.5'));
  t.ok(e instanceof IpmiCorruptRepliesError, `corrupt: ${String(e)}`);
  t.equal((e as IpmiCorruptRepliesError).corrupted, 2);
});

t.test('Get Channel Auth Capabilities: a late reply (other rqSeq) then silence still gets the no-LAN ping', async (t) => {
  const io = v15Bmc({
    pong: true,
    activate: () => undefined,
    caps: (req) => encodeSessionV15({ authType: AUTH_NONE, sequence: 0, sessionId: 0,
      message: encodeResponse({ netFn: req.netFn | 1, cmd: req.cmd, rqSeq: (req.rqSeq + 5) & 0x3f, completionCode: 0, data: Buffer.from([0x01, 0x17, 0x04, 0, 0, 0, 0, 0]) }) }),
  });
  const e = await failure(openSession(link(io), CREDS, '1.5'));
  t.ok(e instanceof IpmiAuthError && e.failure === 'no-lan-access', `no LAN access: ${String(e)}`);
});

t.test('Get Channel Auth Capabilities: a reply with a bad checksum is corrupt, and no ping blames LAN access', async (t) => {
  const io = v15Bmc({
    pong: true,
    activate: () => undefined,
    caps: (req) => {
      const b = encodeSessionV15({ authType: AUTH_NONE, sequence: 0, sessionId: 0,
        message: encodeResponse({ netFn: req.netFn | 1, cmd: req.cmd, rqSeq: req.rqSeq, completionCode: 0, data: Buffer.from([0x01, 0x17, 0x04, 0, 0, 0, 0, 0]) }) });
      b[b.length - 1] = b[b.length - 1]! ^ 0x5a; // the message checksum
      return b;
    },
  });
  const e = await failure(openSession(link(io), CREDS, '1.5'));
  t.ok(e instanceof IpmiCorruptRepliesError, `corrupt: ${String(e)}`);
});
