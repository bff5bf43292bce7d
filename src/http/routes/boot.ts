/**
 * GET /boot/<mac>.ipxe: the script iPXE runs after DHCP pointed it here (dhcp/bootfile.ts), chosen
 * by boot/policy.ts. A script that carries CHAP secrets is served only to the machine it is for,
 * as boot/script-access.ts decides from facts a forged DHCP packet cannot create; anyone else gets
 * 403 and a log line naming the reason. Unknown MACs get a script that names nothing but themselves.
 *   GET /boot/<mac>.menu.ipxe   the machine's menu
 *   GET /boot/files/<name>      netboot kernels and initrds (Range supported), regular files that
 *                               resolve inside netbootDir (fs/under-root.ts; symlinks out are 404)
 *   GET /boot/agent/<arch>/vmlinuz|initrd.img   the agent ramdisk (agent-assets/, Range supported)
 * A machine with an agent operation running (inspect, deploy, erase) gets the agent script: the
 * ramdisk with the operation's one-time token on its command line, served only to the machine
 * itself (the same rule as a sanboot script). All public (config.access): firmware and iPXE
 * present no token.
 */
import { errorMessage } from '../../errors/message.js';
import { sendFile } from '../send-file.js';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../../log.js';
import { tryParseMac, type Mac } from '../../net/mac.js';
import { unmapIpv4 } from '../../net/ipv4.js';
import type { EventBus } from '../../events/bus.js';
import type { Machine } from '../../machines/model.js';
import type { DiskRecord } from '../../disks/record.js';
import type { HostPort } from '../../config/types.js';
import { bootActionFor, type UnknownPolicy } from '../../boot/policy.js';
import type { ScriptAccess } from '../../boot/script-access.js';
import type { AgentSessions } from '../../agent/sessions.js';
import {
  renderAgentScript, renderLocalScript, renderMenuScript, renderNetbootScript, renderSanbootScript, renderUnknownMachineScript, renderWaitScript, type SanbootFallback,
} from '../../boot/ipxe.js';

export interface BootRouteDeps {
  readonly log: Logger;
  readonly bus?: EventBus;
  readonly publicUrl: string;
  readonly machine?: (mac: Mac) => Machine | undefined;
  readonly disk?: (mac: Mac) => DiskRecord | undefined;
  /** The address DHCP leased to (or saw for) this MAC: for display only, never for access. */
  readonly ipOf?: (mac: Mac) => string | undefined;
  /** May `from` have this MAC's sanboot script (its CHAP secrets)? Absent: nobody may. */
  readonly scriptAccess?: (mac: Mac, from: string) => Promise<ScriptAccess>;
  readonly portal?: HostPort;
  readonly unknown: UnknownPolicy;
  readonly sanboot: { readonly tries: number; readonly retryDelaySec: number; readonly fallback: SanbootFallback };
  /** Directory of netboot kernels and initrds. */
  readonly netbootDir?: string;
  /** The agent ramdisk: absent when agent operations are off. */
  readonly agent?: BootAgentDeps;
}

export interface BootAgentDeps {
  readonly sessions: AgentSessions;
  /** agent-assets/: one directory per architecture (x86_64, aarch64) with vmlinuz and initrd.img. */
  readonly dir: string;
  readonly lldpSec: number;
  readonly inventoried: (mac: Mac) => boolean;
  /** machines.unknown: inspect: starts the inspection of a discovered machine booting now (throws when it cannot). */
  readonly autoInspect: (mac: Mac) => void;
}

/** The agent ramdisk's architecture for a machine, from what its firmware said in DHCP (option 93). */
function agentArch(m: Machine | undefined): { dir: string; console: string } {
  return /arm64/.test(m?.discovered?.arch ?? '') ? { dir: 'aarch64', console: 'ttyAMA0' } : { dir: 'x86_64', console: 'ttyS0' };
}

const FILE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function bootRoutes(app: FastifyInstance, d: BootRouteDeps): void {
  const script = (reply: FastifyReply, text: string) => reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(text);

  app.get<{ Params: { file: string } }>('/boot/:file', { config: { access: 'public' } }, async (req, reply) => {
    const m = /^(.+?)(\.menu)?\.ipxe$/.exec(req.params.file);
    const mac = m ? tryParseMac(m[1]!) : undefined;
    if (!mac) return reply.code(404).type('text/plain').send('not found\n');
    const from = unmapIpv4(req.ip);
    const machine = d.machine?.(mac);
    const disk = d.disk?.(mac);
    const menuUrl = `${d.publicUrl}/boot/${mac}.menu.ipxe`;
    const selfUrl = `${d.publicUrl}/boot/${mac}.ipxe`;
    const agentState = { running: d.agent?.sessions.of(mac) !== undefined, inventoried: d.agent?.inventoried(mac) ?? false };
    let action = bootActionFor(machine, disk, d.unknown, agentState);
    if (m![2] && machine) action = disk ? { kind: 'menu', machine, disk } : { kind: 'menu', machine };
    const served = (kind: string, ok = true, reason?: string) => {
      d.bus?.publish({ type: 'boot.script', mac, ip: from, action: kind, served: ok, ...(reason ? { reason } : {}) });
      if (ok) d.log.info({ event: 'http.boot-script', mac, from, action: kind }, 'iPXE script served');
      else d.log.warn({ event: 'http.boot-script-refused', mac, from, reason }, 'iPXE script refused');
    };
    switch (action.kind) {
      case 'sanboot': {
        // The only script with a secret in it: only for the machine itself.
        const access = d.scriptAccess ? await d.scriptAccess(mac, from) : { ok: false as const, reason: 'no access policy configured' };
        if (!access.ok) {
          served('sanboot', false, access.reason);
          return reply.code(403).type('text/plain').send('forbidden\n');
        }
        if (!d.portal) return reply.code(503).type('text/plain').send('iSCSI disabled\n');
        const mm = action.machine;
        served('sanboot');
        return script(reply, renderSanbootScript({
          mac, name: mm.name, portalHost: d.portal.host, portalPort: d.portal.port, targetIqn: action.disk.targetIqn, lun: 1,
          initiatorIqn: action.disk.initiatorIqn, chap: action.disk.chap, ...(action.disk.mutualChap ? { mutualChap: action.disk.mutualChap } : {}),
          ...(mm.firmware === 'uefi' && mm.uefiFilename ? { filename: mm.uefiFilename } : {}),
          tries: d.sanboot.tries, retryDelaySec: d.sanboot.retryDelaySec, fallback: d.sanboot.fallback, menuUrl,
        }));
      }
      case 'wait':
        served('wait');
        return script(reply, renderWaitScript(mac, selfUrl, 5));
      case 'local':
        served('local');
        return script(reply, renderLocalScript(mac, action.firmware));
      case 'netboot': {
        const n = action.machine.netboot!;
        served('netboot');
        return script(reply, renderNetbootScript({
          mac, kernelUrl: `${d.publicUrl}/boot/files/${n.kernel}`, ...(n.initrd ? { initrdUrl: `${d.publicUrl}/boot/files/${n.initrd}` } : {}), ...(n.cmdline ? { cmdline: n.cmdline } : {}),
        }));
      }
      case 'menu':
        served('menu');
        return script(reply, renderMenuScript({
          mac, ...(action.machine ? { name: action.machine.name } : {}), ...(action.disk ? { sanbootUrl: selfUrl } : {}),
          firmware: action.machine?.firmware ?? 'unknown', timeoutMs: 10_000,
        }));
      case 'none':
        served('none');
        return script(reply, renderUnknownMachineScript(mac));
      case 'inspect':
      case 'agent': {
        const ag = d.agent;
        if (!ag) { served(action.kind, false, 'agent operations are off'); return script(reply, renderUnknownMachineScript(mac)); }
        if (action.kind === 'inspect') {
          try {
            ag.autoInspect(mac);
          } catch (e) {
            served('inspect', false, errorMessage(e));
            return script(reply, renderUnknownMachineScript(mac));
          }
        }
        // The token is a secret: the same rule as a sanboot script's CHAP secrets.
        const access = d.scriptAccess ? await d.scriptAccess(mac, from) : { ok: false as const, reason: 'no access policy configured' };
        if (!access.ok) {
          served('agent', false, access.reason);
          return reply.code(403).type('text/plain').send('forbidden\n');
        }
        const token = ag.sessions.mintToken(mac);
        if (!token) { served('agent', false, 'the agent operation ended'); return script(reply, renderUnknownMachineScript(mac)); }
        const arch = agentArch(d.machine?.(mac));
        served('agent');
        return script(reply, renderAgentScript({
          mac, publicUrl: d.publicUrl, token, console: arch.console, lldpSec: ag.lldpSec,
          kernelUrl: `${d.publicUrl}/boot/agent/${arch.dir}/vmlinuz`, initrdUrl: `${d.publicUrl}/boot/agent/${arch.dir}/initrd.img`,
        }));
      }
    }
  });

  app.get<{ Params: { arch: string; name: string } }>('/boot/agent/:arch/:name', { config: { access: 'public' } }, async (req, reply) => {
    const { arch, name } = req.params;
    if (!d.agent || !/^(x86_64|aarch64)$/.test(arch) || !/^(vmlinuz|initrd\.img)$/.test(name)) return reply.code(404).send({ error: 'not found' });
    return sendFile(req, reply, `${d.agent.dir}/${arch}`, name, d.log, 'http.agent-file');
  });

  app.get<{ Params: { name: string } }>('/boot/files/:name', { config: { access: 'public' } }, async (req, reply) => {
    const { name } = req.params;
    if (!d.netbootDir || !FILE_RE.test(name) || name.includes('..')) return reply.code(404).send({ error: 'not found' });
    return sendFile(req, reply, d.netbootDir, name, d.log, 'http.netboot-file');
  });
}
