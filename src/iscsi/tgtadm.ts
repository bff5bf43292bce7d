/**
 * tgtadm(8), pure: argv for every operation metalboot uses, parsers for
 * `--mode target --op show` and `--mode account --op show`, and the mapping
 * of tgtadm's stderr to an error kind. No I/O; tgtd.ts runs what this builds.
 *
 * Facts measured against tgt 1.0.85 (Debian 12), which this code relies on:
 * - Every failed request exits 22 with one stderr line "tgtadm: <reason>";
 *   no tgtd listening on the control port exits 107 ("Transport endpoint is
 *   not connected"). The reason text is the only way to tell failures apart.
 * - ACLs are a union: a login is accepted when the initiator's address
 *   matches ANY `--initiator-address` rule OR its IQN matches ANY
 *   `--initiator-name` rule. Binding an address therefore admits every IQN
 *   from that address. A target with no ACL at all refuses every login
 *   ("Target not found").
 * - `show` prints address rules first, then name rules, under one
 *   "ACL information:" heading with no marker, so we tell them apart by form.
 * - tgtd accepts any string as an address rule ("notanaddress" binds fine),
 *   so the builders validate; "ALL" (and /0 prefixes) are refused outright.
 * - `--params readonly=1` is refused on `--op new` of a logical unit
 *   ("option '-P' is not allowed/supported"); it must be a separate
 *   `--op update` right after. plan.ts orders LUNs before access for the window this leaves.
 * - LUN 0 is tgtd's controller and cannot be deleted ("invalid request").
 * - A target has at most one outgoing account ("this target already has an
 *   outgoing account").
 * - `delete` of a target with a session fails ("this target is still
 *   active") unless `--force`.
 * - An empty tgtd prints nothing at all for both shows (no heading).
 * - When tgtd cannot bind its `--iscsi portal=IP:PORT` (port taken) it does
 *   NOT exit: it logs the failure and listens on 0.0.0.0:3260 and [::]:3260
 *   instead. `--mode portal --op show` ("Portal: 127.0.0.1:3260,1") is how
 *   Tgtd.ensureRunning notices.
 */
import { isIP } from 'node:net';
import { BS_TYPES, type BsType, type VolumeExport } from '../storage/export.js';
import { checkIscsiName } from './iqn.js';

/** An operation tgtadm performs. Builders validate every field. */
export type TgtadmOp =
  | { readonly op: 'show-targets' }
  | { readonly op: 'show-accounts' }
  | { readonly op: 'show-sys' }
  | { readonly op: 'show-portals' }
  | { readonly op: 'new-target'; readonly tid: number; readonly iqn: string }
  | { readonly op: 'delete-target'; readonly tid: number; readonly force: boolean }
  | { readonly op: 'target-state'; readonly tid: number; readonly state: 'ready' | 'offline' }
  /** A LUN exporting a volume as its backend describes it (storage/export.ts). */
  | ({ readonly op: 'new-lun'; readonly tid: number; readonly lun: number } & VolumeExport)
  | { readonly op: 'lun-readonly'; readonly tid: number; readonly lun: number; readonly readonly: boolean }
  | { readonly op: 'delete-lun'; readonly tid: number; readonly lun: number }
  | { readonly op: 'bind-address' | 'unbind-address'; readonly tid: number; readonly address: string }
  | { readonly op: 'bind-name' | 'unbind-name'; readonly tid: number; readonly iqn: string }
  | { readonly op: 'new-account'; readonly user: string; readonly secret: string }
  | { readonly op: 'delete-account'; readonly user: string }
  | { readonly op: 'bind-account' | 'unbind-account'; readonly tid: number; readonly user: string; readonly outgoing: boolean }
  /** Closes one connection of a session (sid = the I_T nexus number `show` prints). */
  | { readonly op: 'delete-conn'; readonly tid: number; readonly sid: number; readonly cid: number }
  | { readonly op: 'sys-state'; readonly state: 'ready' | 'offline' }
  | { readonly op: 'sys-delete' };

export class TgtadmArgError extends Error {
  constructor(readonly field: string, readonly value: string, readonly reason: string) {
    super(`tgtadm ${field} ${JSON.stringify(value.slice(0, 80))} refused: ${reason}`);
    this.name = 'TgtadmArgError';
  }
}

/** tgtd keeps tids in an int; 0 is not a target. */
export const TID_MAX = 0x7fff_ffff;
/** LUN 0 is tgtd's controller; 16383 is the top of SAM flat addressing, far more than one target needs. */
export const LUN_MAX = 16383;

export function checkTid(tid: number): number {
  if (!Number.isInteger(tid) || tid < 1 || tid > TID_MAX) throw new TgtadmArgError('tid', String(tid), `must be an integer 1..${TID_MAX}`);
  return tid;
}

export function checkLun(lun: number): number {
  if (!Number.isInteger(lun) || lun < 1 || lun > LUN_MAX) throw new TgtadmArgError('lun', String(lun), `must be an integer 1..${LUN_MAX} (LUN 0 is tgtd's controller)`);
  return lun;
}

/** A name must already be in normalised form: show output is compared to it verbatim. */
export function checkIqnArg(field: string, iqn: string): string {
  const r = checkIscsiName(iqn);
  if (!r.ok) throw new TgtadmArgError(field, iqn, r.reason);
  if (r.value.name !== iqn) throw new TgtadmArgError(field, iqn, `not normalised (expected ${r.value.name})`);
  return iqn;
}

/**
 * An initiator address rule: an IPv4/IPv6 address, optionally with a /prefix.
 * Never "ALL", never a /0 (the same thing spelled differently): every target
 * metalboot makes is for one machine.
 */
export function checkAddressRule(address: string): string {
  if (address.toUpperCase() === 'ALL') throw new TgtadmArgError('initiator-address', address, 'binding ALL is never allowed');
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(address);
  const family = m ? isIP(m[1]!) : 0;
  if (!m || family === 0) throw new TgtadmArgError('initiator-address', address, 'not an IP address or address/prefix');
  if (m[2] !== undefined) {
    const len = Number(m[2]);
    if (len === 0) throw new TgtadmArgError('initiator-address', address, 'a /0 rule admits everyone, like ALL');
    if (len > (family === 4 ? 32 : 128)) throw new TgtadmArgError('initiator-address', address, 'prefix too long');
  }
  return address;
}

/** Any single ACL token as show prints it (for unbind): non-empty, no blanks or control characters. */
export function checkAclToken(entry: string): string {
  if (!/^[^\s\x00-\x1f\x7f]{1,255}$/.test(entry) || entry.startsWith('-')) throw new TgtadmArgError('acl/user', entry, 'not a single token');
  return entry;
}

/**
 * Backing-store paths appear in `show` output one per line after
 * "Backing store path: ", so a control character could forge lines and
 * leading/trailing blanks would not survive the round trip. tgtadm sends the
 * path to tgtd inside one comma-separated "path=…,bstype=…,bsopts=…" string
 * that tgtd splits at every comma (usr/tgtadm.c, usr/target.c), so a comma
 * would cut the path short and name another file.
 */
export function checkBackingPath(path: string): string {
  if (!path.startsWith('/')) throw new TgtadmArgError('backing-store', path, 'must be an absolute path');
  if (/[\x00-\x1f\x7f]/.test(path)) throw new TgtadmArgError('backing-store', path, 'control characters are not allowed');
  if (path !== path.trim()) throw new TgtadmArgError('backing-store', path, 'leading or trailing blanks are not allowed');
  if (path.includes(',')) throw new TgtadmArgError('backing-store', path, 'a comma would split tgtd\'s parameter string');
  if (path.length > 4095) throw new TgtadmArgError('backing-store', path, 'too long');
  return path;
}

/**
 * One RBD pool or image name. tgt's rbd backstore reads its backing store as
 * `[pool/]image[@snap]` (usr/bs_rbd.c parse_imagepath); we always name the pool
 * and never a snapshot, so neither "/" nor "@" may appear inside a name. Ceph
 * allows more, but names we export stay in this charset: no blanks or control
 * characters (show output), no comma (tgtd's parameter string), no leading "."
 * or "-".
 */
const RBD_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$/;

/** An rbd backing store: exactly `pool/image`, never a path. */
export function checkRbdImage(spec: string): string {
  const parts = spec.split('/');
  if (spec.startsWith('/') || parts.length !== 2) throw new TgtadmArgError('backing-store', spec, 'an rbd backing store is pool/image, not a path');
  for (const p of parts) {
    if (!RBD_NAME_RE.test(p)) throw new TgtadmArgError('backing-store', spec, 'pool and image names are 1-250 of A-Z a-z 0-9 _ . -, starting with a letter, digit or _');
  }
  return spec;
}

/**
 * The rbd backstore's options (usr/bs_rbd.c bs_rbd_init): `key=value` joined
 * by ";". Only conf (a ceph.conf path), id (the client name without
 * "client.") and cluster: cephx_key would put a Ceph secret on tgtadm's argv
 * (use a keyring named in the conf file), and virsecretuuid reads libvirt's
 * secret store. Other backstores take none.
 */
const RBD_BSOPTS = ['conf', 'id', 'cluster'];

export function checkBsopts(bstype: BsType, bsopts: string): string {
  // Errors show the keys only: a refused cephx_key's value is a secret.
  const fail = (reason: string): never => { throw new TgtadmArgError('bsopts', bsopts.replace(/=[^;]*/g, '=…'), reason); };
  if (bstype !== 'rbd') fail(`bstype ${bstype} takes no options`);
  const seen = new Set<string>();
  for (const opt of bsopts.split(';')) {
    const m = /^([a-z_]{1,32})=(.*)$/s.exec(opt);
    if (!m) return fail('must be key=value;…');
    const [, k, value] = m as unknown as [string, string, string];
    if (!RBD_BSOPTS.includes(k)) fail(`option ${k} refused (allowed: ${RBD_BSOPTS.join(', ')})`);
    if (!/^[A-Za-z0-9_./:@+-]{1,255}$/.test(value)) fail(`${k}: 1-255 of A-Z a-z 0-9 _ . / : @ + -`);
    if (seen.has(k)) fail(`${k} given twice`);
    seen.add(k);
  }
  return bsopts;
}

/** Throws TgtadmArgError unless tgtadm can be given this export as it is. */
export function checkVolumeExport(e: VolumeExport): VolumeExport {
  checkBstype(e.bstype);
  if (e.bstype === 'rbd') checkRbdImage(e.backingStore);
  else checkBackingPath(e.backingStore);
  if (e.bsopts !== undefined) checkBsopts(e.bstype, e.bsopts);
  return e;
}

/** Account names: one token in show output; "(outgoing)" is tgtadm's own suffix. */
export function checkUser(user: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(user)) throw new TgtadmArgError('user', user, 'must be 1-64 of A-Z a-z 0-9 . _ @ -, starting alphanumeric');
  return user;
}

/**
 * CHAP secrets: 12..255 characters (RFC 3720 §8.2.1 asks for at least 96
 * bits; iPXE and Windows initiators insist on 12..16 bytes, which the caller
 * chooses), from an alphabet that needs no quoting in argv, iPXE scripts or
 * iSCSI URLs. The value itself never appears in an error.
 */
export function checkSecret(secret: string): string {
  if (secret.length < 12 || secret.length > 255 || !/^[A-Za-z0-9._~+=-]+$/.test(secret) || secret.startsWith('-')) {
    throw new TgtadmArgError('password', '<redacted>', 'must be 12-255 of A-Z a-z 0-9 . _ ~ + = -, not starting with "-"');
  }
  return secret;
}

function checkBstype(bstype: string): BsType {
  if (!(BS_TYPES as readonly string[]).includes(bstype)) throw new TgtadmArgError('bstype', bstype, `must be one of ${BS_TYPES.join(', ')}`);
  return bstype as BsType;
}

export interface TgtadmArgvOptions {
  readonly tgtadm?: string;
  /** tgtd's control port (`-C`); its socket is /var/run/tgtd/socket.<port>. Default 0, tgtd's own default. */
  readonly controlPort?: number;
}

/** tgtd and tgtadm both refuse `-C` above 32767 ("-C argument value '32768' out of range"). */
export const CONTROL_PORT_MAX = 32767;

export function checkControlPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > CONTROL_PORT_MAX) throw new TgtadmArgError('control-port', String(port), `must be an integer 0..${CONTROL_PORT_MAX}`);
  return port;
}

/** The full argv (binary first) for one operation. */
export function tgtadmArgv(op: TgtadmOp, opts: TgtadmArgvOptions = {}): string[] {
  const head = [opts.tgtadm ?? 'tgtadm', '-C', String(checkControlPort(opts.controlPort ?? 0))];
  const iscsi = [...head, '--lld', 'iscsi'];
  switch (op.op) {
    case 'show-targets': return [...iscsi, '--mode', 'target', '--op', 'show'];
    case 'show-accounts': return [...iscsi, '--mode', 'account', '--op', 'show'];
    case 'show-sys': return [...head, '--mode', 'sys', '--op', 'show'];
    case 'show-portals': return [...iscsi, '--mode', 'portal', '--op', 'show'];
    case 'new-target':
      return [...iscsi, '--mode', 'target', '--op', 'new', '--tid', String(checkTid(op.tid)), '--targetname', checkIqnArg('targetname', op.iqn)];
    case 'delete-target':
      return [...iscsi, '--mode', 'target', '--op', 'delete', ...(op.force ? ['--force'] : []), '--tid', String(checkTid(op.tid))];
    case 'delete-conn':
      if (!Number.isInteger(op.sid) || op.sid < 0 || !Number.isInteger(op.cid) || op.cid < 0) throw new TgtadmArgError('sid/cid', `${op.sid}/${op.cid}`, 'must be non-negative integers');
      return [...iscsi, '--mode', 'conn', '--op', 'delete', '--tid', String(checkTid(op.tid)), '--sid', String(op.sid), '--cid', String(op.cid)];
    case 'target-state':
      // Lower-case "state": "--name State" is an invalid request for a target (but right for sys).
      return [...iscsi, '--mode', 'target', '--op', 'update', '--tid', String(checkTid(op.tid)), '--name', 'state', '--value', op.state];
    case 'new-lun':
      checkVolumeExport(op);
      return [...iscsi, '--mode', 'logicalunit', '--op', 'new', '--tid', String(checkTid(op.tid)), '--lun', String(checkLun(op.lun)),
        '--backing-store', op.backingStore, '--bstype', op.bstype, ...(op.bsopts !== undefined ? ['--bsopts', op.bsopts] : [])];
    case 'lun-readonly':
      return [...iscsi, '--mode', 'logicalunit', '--op', 'update', '--tid', String(checkTid(op.tid)), '--lun', String(checkLun(op.lun)),
        '--params', `readonly=${op.readonly ? 1 : 0}`];
    case 'delete-lun':
      return [...iscsi, '--mode', 'logicalunit', '--op', 'delete', '--tid', String(checkTid(op.tid)), '--lun', String(checkLun(op.lun))];
    case 'bind-address':
      return [...iscsi, '--mode', 'target', '--op', 'bind', '--tid', String(checkTid(op.tid)), '--initiator-address', checkAddressRule(op.address)];
    case 'unbind-address':
      // Unbinding takes whatever tgtd holds, including an "ALL" someone else bound: removing access is always allowed.
      return [...iscsi, '--mode', 'target', '--op', 'unbind', '--tid', String(checkTid(op.tid)), '--initiator-address', checkAclToken(op.address)];
    case 'bind-name':
      return [...iscsi, '--mode', 'target', '--op', 'bind', '--tid', String(checkTid(op.tid)), '--initiator-name', checkIqnArg('initiator-name', op.iqn)];
    case 'unbind-name':
      return [...iscsi, '--mode', 'target', '--op', 'unbind', '--tid', String(checkTid(op.tid)), '--initiator-name', checkAclToken(op.iqn)];
    case 'new-account':
      // The secret is on argv: tgtadm has no other way to take it. Tgtd.run sends it on tgtd's control socket instead unless chapSecretsVia is argv.
      return [...iscsi, '--mode', 'account', '--op', 'new', '--user', checkUser(op.user), '--password', checkSecret(op.secret)];
    case 'delete-account':
      return [...iscsi, '--mode', 'account', '--op', 'delete', '--user', checkAclToken(op.user)];
    case 'bind-account':
    case 'unbind-account':
      // Removal takes any name show printed; only what we add must be in our alphabet.
      return [...iscsi, '--mode', 'account', '--op', op.op === 'bind-account' ? 'bind' : 'unbind', '--tid', String(checkTid(op.tid)),
        '--user', op.op === 'bind-account' ? checkUser(op.user) : checkAclToken(op.user), ...(op.outgoing ? ['--outgoing'] : [])];
    case 'sys-state':
      return [...head, '--mode', 'sys', '--op', 'update', '--name', 'State', '--value', op.state];
    case 'sys-delete':
      return [...head, '--mode', 'sys', '--op', 'delete'];
  }
}

export const REDACTED = '<redacted>';

/** argv with the value after every --password replaced; for errors and logs. */
export function redactArgv(argv: readonly string[]): string[] {
  return argv.map((a, i) => (i > 0 && argv[i - 1] === '--password' ? REDACTED : a.startsWith('--password=') ? `--password=${REDACTED}` : a));
}

/**
 * `text` (an error message, a stderr) with the operation's secret replaced wherever it
 * appears: new-account's CHAP secret is the only one an operation carries.
 */
export function redactSecret(op: TgtadmOp, text: string): string {
  return op.op === 'new-account' && op.secret !== '' ? text.split(op.secret).join(REDACTED) : text;
}

// ---------------------------------------------------------------------------
// Errors

export type TgtadmErrorKind = 'exists' | 'not-found' | 'busy' | 'invalid' | 'not-running' | 'timeout' | 'spawn' | 'other';

/** Classifies a failed tgtadm by exit code and its stderr line. */
export function classifyTgtadmFailure(code: number | undefined, stderr: string): TgtadmErrorKind {
  const s = stderr.toLowerCase();
  if (code === 107 || code === 111 || /not connected|connection refused|can't connect|no such file or directory/.test(s)) return 'not-running';
  if (/already exists|already has/.test(s)) return 'exists';
  if (/can't find|cannot find|does not exist/.test(s)) return 'not-found';
  if (/still active|prevent removal/.test(s)) return 'busy';
  if (/invalid request|unknown parameter|isn't supported|not allowed\/supported|unsupported|out of range/.test(s)) return 'invalid';
  return 'other';
}

// ---------------------------------------------------------------------------
// show parsers

export interface TgtConnection {
  readonly cid: number;
  readonly address: string;
}

/** One I_T nexus (session) with its connections. */
export interface TgtSession {
  readonly nexus: number;
  readonly initiator: string;
  readonly alias: string | null;
  readonly connections: readonly TgtConnection[];
}

export interface TgtLun {
  readonly lun: number;
  /** "controller" for LUN 0, "disk" for ours. */
  readonly type: string;
  readonly scsiId: string;
  readonly scsiSn: string;
  /** Size as tgtadm prints it: whole MB (rounded down by tgtd). */
  readonly sizeMb: number;
  readonly blockSize: number;
  readonly online: boolean;
  readonly readonly: boolean;
  readonly swp: boolean;
  /** "null" for the controller, else e.g. "rdwr", "aio", "rbd". */
  readonly bstype: string;
  /** The backing store (a path, or pool/image for rbd); null when tgtadm prints "None". */
  readonly path: string | null;
  readonly bsflags: string;
}

export interface TgtAccountBinding {
  readonly user: string;
  readonly outgoing: boolean;
}

export interface TgtTarget {
  readonly tid: number;
  readonly iqn: string;
  readonly driver: string;
  readonly state: string;
  readonly sessions: readonly TgtSession[];
  /** Every LUN including the controller LUN 0. */
  readonly luns: readonly TgtLun[];
  readonly accounts: readonly TgtAccountBinding[];
  /** `--initiator-address` rules, in tgtd's order. */
  readonly initiatorAddresses: readonly string[];
  /** `--initiator-name` rules, in tgtd's order. */
  readonly initiatorNames: readonly string[];
}

export class TgtadmParseError extends Error {
  constructor(readonly lineNo: number, readonly line: string, readonly reason: string) {
    super(`tgtadm show output line ${lineNo}: ${reason}: ${JSON.stringify(line.slice(0, 120))}`);
    this.name = 'TgtadmParseError';
  }
}

/** An ACL entry that names an initiator (RFC 3720 name forms); everything else is an address rule. */
export function isNameRule(entry: string): boolean {
  return /^(iqn|eui|naa)\./i.test(entry);
}

type Section = 'system' | 'nexus' | 'lun' | 'account' | 'acl' | 'unknown';

const SECTIONS: Readonly<Record<string, Section>> = {
  'system information': 'system',
  'i_t nexus information': 'nexus',
  'lun information': 'lun',
  'account information': 'account',
  'acl information': 'acl',
};

interface MutTarget {
  tid: number; iqn: string; driver: string; state: string;
  sessions: { nexus: number; initiator: string; alias: string | null; connections: { cid: number; address: string }[] }[];
  luns: Record<string, string | number>[];
  accounts: TgtAccountBinding[];
  addresses: string[]; names: string[];
}

function yesNo(v: string | number | undefined): boolean {
  return typeof v === 'string' && v.toLowerCase() === 'yes';
}

function freezeLun(l: Record<string, string | number>): TgtLun {
  const size = /^(\d+)\s*MB,\s*Block size:\s*(\d+)$/i.exec(String(l['size'] ?? ''));
  const path = String(l['backing store path'] ?? 'None');
  return Object.freeze({
    lun: l['lun'] as number,
    type: String(l['type'] ?? ''),
    scsiId: String(l['scsi id'] ?? ''),
    scsiSn: String(l['scsi sn'] ?? ''),
    sizeMb: size ? Number(size[1]) : 0,
    blockSize: size ? Number(size[2]) : 0,
    online: yesNo(l['online']),
    readonly: yesNo(l['readonly']),
    swp: yesNo(l['swp']),
    bstype: String(l['backing store type'] ?? ''),
    path: path === 'None' ? null : path,
    bsflags: String(l['backing store flags'] ?? ''),
  });
}

function freezeTarget(t: MutTarget): TgtTarget {
  return Object.freeze({
    tid: t.tid, iqn: t.iqn, driver: t.driver, state: t.state,
    sessions: Object.freeze(t.sessions.map((s) => Object.freeze({ ...s, connections: Object.freeze(s.connections.map((c) => Object.freeze(c))) }))),
    luns: Object.freeze(t.luns.map(freezeLun)),
    accounts: Object.freeze(t.accounts.map((a) => Object.freeze(a))),
    initiatorAddresses: Object.freeze(t.addresses),
    initiatorNames: Object.freeze(t.names),
  });
}

/**
 * Parses `tgtadm --lld iscsi --mode target --op show`. Indentation is not
 * trusted (only keys are), CRLF and blank lines are ignored, unknown keys and
 * unknown "... information:" sections are skipped (newer tgt prints more).
 * Structure errors (a LUN field before any "LUN:", a line before the first
 * "Target N:", a bad number) throw TgtadmParseError.
 */
export function parseTargetShow(text: string): TgtTarget[] {
  const out: TgtTarget[] = [];
  let cur: MutTarget | undefined;
  let section: Section = 'unknown';
  let lun: Record<string, string | number> | undefined;
  const lines = text.split('\n');
  const flush = (): void => {
    if (cur) out.push(freezeTarget(cur));
    cur = undefined;
    lun = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = raw.trim();
    if (line === '') continue;
    const lineNo = i + 1;
    const fail = (reason: string): never => { throw new TgtadmParseError(lineNo, raw, reason); };
    const num = (s: string, what: string): number => {
      if (!/^\d{1,10}$/.test(s)) fail(`${what} is not a number`);
      return Number(s);
    };

    const tm = /^Target\s+(\S+?)\s*:\s*(.*)$/.exec(line);
    if (tm) {
      flush();
      const iqn = tm[2]!.trim();
      if (!iqn) fail('target without a name');
      cur = { tid: num(tm[1]!, 'tid'), iqn, driver: '', state: '', sessions: [], luns: [], accounts: [], addresses: [], names: [] };
      section = 'unknown';
      continue;
    }
    if (!cur) fail('expected "Target N: <iqn>"');
    const t = cur!;
    const hdr = /^(.*information)\s*:$/i.exec(line);
    if (hdr) {
      section = SECTIONS[hdr[1]!.replace(/\s+/g, ' ').toLowerCase()] ?? 'unknown';
      lun = undefined;
      continue;
    }
    // "Key: value" with the key split at the first colon; values may hold colons (IQNs, IPv6).
    const kv = /^([^:]+?)\s*:\s?(.*)$/.exec(line);
    const key = kv ? kv[1]!.replace(/\s+/g, ' ').toLowerCase() : undefined;
    const value = kv ? kv[2]!.trim() : '';
    switch (section) {
      case 'system':
        if (key === 'driver') t.driver = value;
        else if (key === 'state') t.state = value;
        break;
      case 'nexus': {
        if (key === 'i_t nexus') {
          t.sessions.push({ nexus: num(value, 'I_T nexus'), initiator: '', alias: null, connections: [] });
          break;
        }
        const s = t.sessions[t.sessions.length - 1];
        if (key === undefined) break;
        if (!s) fail('nexus field before "I_T nexus:"');
        if (key === 'initiator') {
          const m = /^(\S+)(?:\s+alias\s*:\s*(.*))?$/.exec(value);
          if (!m) fail('bad Initiator line');
          s!.initiator = m![1]!;
          const alias = m![2]?.trim();
          s!.alias = alias && alias !== 'none' ? alias : null;
        } else if (key === 'connection') {
          s!.connections.push({ cid: num(value, 'connection'), address: '' });
        } else if (key === 'ip address') {
          const c = s!.connections[s!.connections.length - 1];
          if (!c) fail('"IP Address" before "Connection:"');
          c!.address = value;
        }
        break;
      }
      case 'lun': {
        if (key === 'lun') {
          lun = { lun: num(value, 'LUN') };
          t.luns.push(lun);
          break;
        }
        if (key === undefined) break;
        if (!lun) fail('LUN field before "LUN:"');
        // The key is split at the FIRST colon, so a path holding ": " stays whole; paths we
        // create never begin or end with blanks (checkBackingPath), so trimming loses nothing.
        lun![key] = value;
        break;
      }
      case 'account': {
        const m = /^(\S+)(?:\s+\(outgoing\))?$/.exec(line);
        if (!m) fail('bad account line');
        t.accounts.push({ user: m![1]!, outgoing: /\(outgoing\)$/.test(line) });
        break;
      }
      case 'acl':
        if (/\s/.test(line)) fail('ACL entry with blanks');
        (isNameRule(line) ? t.names : t.addresses).push(line);
        break;
      case 'unknown':
        break;
    }
  }
  flush();
  return out;
}

/** Parses `tgtadm --lld iscsi --mode account --op show`: the account names, in tgtd's order. */
export function parseAccountShow(text: string): string[] {
  const out: string[] = [];
  let seenHeader = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (/^account list\s*:$/i.test(line)) { seenHeader = true; continue; }
    if (!seenHeader) throw new TgtadmParseError(i + 1, lines[i]!, 'expected "Account list:"');
    if (!/^\S+$/.test(line)) throw new TgtadmParseError(i + 1, lines[i]!, 'bad account name');
    out.push(line);
  }
  return out;
}

/** Targets' LUNs without tgtd's controller LUN 0. */
export function dataLuns(t: TgtTarget): readonly TgtLun[] {
  return t.luns.filter((l) => l.lun !== 0);
}

export interface TgtPortal {
  readonly address: string;
  readonly port: number;
  readonly tpgt: number;
}

/** Parses `--mode portal --op show`: "Portal: 127.0.0.1:3260,1", "Portal: [::]:3260,1". */
export function parsePortalShow(text: string): TgtPortal[] {
  const out: TgtPortal[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const m = /^Portal\s*:\s*(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5}),(\d+)$/i.exec(line);
    if (!m) throw new TgtadmParseError(i + 1, lines[i]!, 'expected "Portal: addr:port,tpgt"');
    out.push(Object.freeze({ address: (m[1] ?? m[2])!, port: Number(m[3]), tpgt: Number(m[4]) }));
  }
  return out;
}

/** The `--iscsi portal=` value for tgtd: IPv6 in brackets. */
export function portalArg(address: string, port: number): string {
  const family = isIP(address);
  if (family === 0) throw new TgtadmArgError('portal', address, 'not an IP address');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TgtadmArgError('portal', String(port), 'port must be 1..65535');
  return `portal=${family === 6 ? `[${address}]` : address}:${port}`;
}
