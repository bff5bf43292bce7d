/**
 * One UDP question, one answer, run as its own process inside a test
 * namespace:
 *   ip netns exec NS node dist/test/helpers/udp-ask.js --from-port 68 \
 *     --to 10.98.0.1 --port 4011 --hex <packet> [--timeout-ms 3000]
 * Prints the first datagram received (hex) and its source as one JSON line,
 * or {"timeout":true}. Bounded by --timeout-ms.
 */
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'from-port': { type: 'string', default: '0' },
    to: { type: 'string' },
    port: { type: 'string' },
    hex: { type: 'string' },
    'timeout-ms': { type: 'string', default: '3000' },
  },
});
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const timer = setTimeout(() => { process.stdout.write(JSON.stringify({ timeout: true }) + '\n'); sock.close(); }, Number(values['timeout-ms']));
sock.on('message', (msg, rinfo) => {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify({ from: rinfo.address, port: rinfo.port, hex: msg.toString('hex') }) + '\n');
  sock.close();
});
sock.bind(Number(values['from-port']), () => {
  sock.setBroadcast(true);
  sock.send(Buffer.from(values.hex!, 'hex'), Number(values.port), values.to!);
});
