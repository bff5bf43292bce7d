/**
 * A stand-in for systemd's notification socket: python3 binds an AF_UNIX
 * datagram socket (node can neither send nor receive unix datagrams) and
 * prints every datagram as one JSON line, with the sender's pid from
 * SO_PASSCRED (what systemd checks for NotifyAccess=main).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { LineCollector } from './netns.js';

export const PYTHON3 = '/usr/bin/python3';

const RECEIVER = String.raw`
import json, socket, struct, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind('\0' + addr[1:] if addr.startswith('@') else addr)
print(json.dumps({"listening": addr}), flush=True)
while True:
    data, anc, flags, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', payload[:12])[0]
    print(json.dumps({"state": data.decode('utf-8', 'replace'), "pid": pid}), flush=True)
`;

export interface Notification { state: string; pid: number | null }

export class NotifyReceiver {
  private readonly out: LineCollector;
  private constructor(readonly address: string, private readonly proc: ChildProcess) {
    this.out = new LineCollector(proc.stdout);
  }

  /** address: an absolute path or @abstract-name. */
  static async start(address: string): Promise<NotifyReceiver> {
    const proc = spawn(PYTHON3, ['-c', RECEIVER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
    const r = new NotifyReceiver(address, proc);
    await r.out.waitFor((l) => l.includes('"listening"'), 10_000, 'python receiver to bind');
    return r;
  }

  received(): Notification[] {
    return this.out.lines.flatMap((l) => { const j = JSON.parse(l) as Partial<Notification>; return typeof j.state === 'string' ? [j as Notification] : []; });
  }

  /** Waits for a datagram containing the field line (e.g. "READY=1"). */
  async waitFor(field: string, timeoutMs = 10_000): Promise<Notification> {
    const line = await this.out.waitFor((l) => { const j = JSON.parse(l) as Partial<Notification>; return typeof j.state === 'string' && j.state.split('\n').includes(field); }, timeoutMs, field);
    return JSON.parse(line) as Notification;
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGKILL');
    await gone;
  }
}
