/**
 * IPMI messages and the commands metalboot needs (IPMI v2.0 rev 1.1 §13.8 LAN message format,
 * §22 App commands, §28 chassis commands). Pure: requests are encoded to message data,
 * responses decoded from it; decoders never throw.
 *
 * Over 400 lines on purpose: mostly the spec's tables (net functions, completion codes, boot
 * device selectors) and one small encode/decode pair per command, read side by side with the spec.
 */
import { fail, type Decoded } from './rmcp.js';

export const BMC_SLAVE_ADDR = 0x20;
export const REMOTE_SWID = 0x81;

export const NETFN_CHASSIS = 0x00;
export const NETFN_APP = 0x06;

export const CMD_GET_DEVICE_ID = 0x01;
export const CMD_GET_CHANNEL_AUTH_CAPABILITIES = 0x38;
export const CMD_GET_SESSION_CHALLENGE = 0x39;
export const CMD_ACTIVATE_SESSION = 0x3a;
export const CMD_SET_SESSION_PRIVILEGE_LEVEL = 0x3b;
export const CMD_CLOSE_SESSION = 0x3c;
export const CMD_GET_CHANNEL_CIPHER_SUITES = 0x54;
export const CMD_GET_CHASSIS_STATUS = 0x01;
export const CMD_CHASSIS_CONTROL = 0x02;
export const CMD_SET_SYSTEM_BOOT_OPTIONS = 0x08;
export const CMD_GET_SYSTEM_BOOT_OPTIONS = 0x09;

// ---------------------------------------------------------------- completion codes (§5.2, table 5-2)

export const COMPLETION_CODES: Readonly<Record<number, string>> = {
  0x00: 'ok',
  0xc0: 'node busy',
  0xc1: 'invalid command',
  0xc2: 'command invalid for given LUN',
  0xc3: 'timeout while processing command',
  0xc4: 'out of space',
  0xc5: 'reservation canceled or invalid reservation ID',
  0xc6: 'request data truncated',
  0xc7: 'request data length invalid',
  0xc8: 'request data field length limit exceeded',
  0xc9: 'parameter out of range',
  0xca: 'cannot return number of requested data bytes',
  0xcb: 'requested sensor, data, or record not present',
  0xcc: 'invalid data field in request',
  0xcd: 'command illegal for specified sensor or record type',
  0xce: 'command response could not be provided',
  0xcf: 'cannot execute duplicated request',
  0xd0: 'SDR repository in update mode',
  0xd1: 'device in firmware update mode',
  0xd2: 'BMC initialization in progress',
  0xd3: 'destination unavailable',
  0xd4: 'insufficient privilege level',
  0xd5: 'command not supported in present state',
  0xd6: 'command sub-function disabled or unavailable',
  0xff: 'unspecified error',
};

export const CC_OK = 0x00;
export const CC_NODE_BUSY = 0xc0;
export const CC_INVALID_COMMAND = 0xc1;
export const CC_TIMEOUT = 0xc3;
export const CC_REQUEST_DATA_LENGTH_INVALID = 0xc7;
export const CC_PARAMETER_OUT_OF_RANGE = 0xc9;
export const CC_INVALID_DATA_FIELD = 0xcc;
export const CC_INSUFFICIENT_PRIVILEGE = 0xd4;
export const CC_NOT_SUPPORTED_IN_PRESENT_STATE = 0xd5;
export const CC_UNSPECIFIED = 0xff;

export function completionCodeName(cc: number): string {
  const n = COMPLETION_CODES[cc];
  if (n) return n;
  if (cc >= 0x01 && cc <= 0x7e) return `OEM completion code 0x${cc.toString(16).padStart(2, '0')}`;
  if (cc >= 0x80 && cc <= 0xbe) return `command-specific completion code 0x${cc.toString(16)}`;
  return `unknown completion code 0x${cc.toString(16).padStart(2, '0')}`;
}

/** Completion codes worth retrying the same request for. */
export function isTransientCompletion(cc: number): boolean {
  return cc === CC_NODE_BUSY || cc === CC_TIMEOUT || cc === 0xcf || cc === 0xd2;
}

// ---------------------------------------------------------------- message framing (§13.8, table 13-4; IPMB checksum)

/** Two's complement checksum: the bytes plus the checksum sum to 0 mod 256. */
export function checksum(bytes: Buffer): number {
  let s = 0;
  for (const b of bytes) s = (s + b) & 0xff;
  return (0x100 - s) & 0xff;
}

export interface IpmiRequest {
  readonly netFn: number;
  readonly cmd: number;
  readonly rqSeq: number;
  readonly data?: Buffer;
  readonly rsAddr?: number;
  readonly rsLun?: number;
  readonly rqAddr?: number;
  readonly rqLun?: number;
}

export interface IpmiMessage {
  readonly rsAddr: number;
  readonly netFn: number;
  readonly rsLun: number;
  readonly rqAddr: number;
  readonly rqSeq: number;
  readonly rqLun: number;
  readonly cmd: number;
  /** Data after cmd (for a response, starting with the completion code). */
  readonly data: Buffer;
}

/** rsAddr | netFn/rsLUN | chk1 | rqAddr | rqSeq/rqLUN | cmd | data | chk2. */
export function encodeRequest(r: IpmiRequest): Buffer {
  const data = r.data ?? Buffer.alloc(0);
  const b = Buffer.alloc(7 + data.length);
  b[0] = r.rsAddr ?? BMC_SLAVE_ADDR;
  b[1] = ((r.netFn & 0x3f) << 2) | ((r.rsLun ?? 0) & 0x03);
  b[2] = checksum(b.subarray(0, 2));
  b[3] = r.rqAddr ?? REMOTE_SWID;
  b[4] = ((r.rqSeq & 0x3f) << 2) | ((r.rqLun ?? 0) & 0x03);
  b[5] = r.cmd & 0xff;
  data.copy(b, 6);
  b[b.length - 1] = checksum(b.subarray(3, b.length - 1));
  return b;
}

/**
 * Decodes either direction's frame: the first address byte, netFn/LUN, chk1, the second address,
 * seq/LUN, cmd, data, chk2. Field names follow the request; use decodeResponse for responses.
 */
function decodeFrame(b: Buffer): Decoded<{ a1: number; netFn: number; lun1: number; a2: number; seq: number; lun2: number; cmd: number; data: Buffer }> {
  if (b.length < 7) return fail('truncated', `IPMI message needs at least 7 bytes, got ${b.length}`);
  if (checksum(b.subarray(0, 2)) !== b[2]) return fail('checksum', 'IPMI header checksum mismatch');
  if (checksum(b.subarray(3, b.length - 1)) !== b[b.length - 1]) return fail('checksum', 'IPMI data checksum mismatch');
  return {
    ok: true,
    value: {
      a1: b[0]!, netFn: b[1]! >> 2, lun1: b[1]! & 3, a2: b[3]!, seq: b[4]! >> 2, lun2: b[4]! & 3, cmd: b[5]!,
      data: Buffer.from(b.subarray(6, b.length - 1)),
    },
  };
}

export function decodeRequest(b: Buffer): Decoded<IpmiMessage> {
  const f = decodeFrame(b);
  if (!f.ok) return f;
  const v = f.value;
  return { ok: true, value: { rsAddr: v.a1, netFn: v.netFn, rsLun: v.lun1, rqAddr: v.a2, rqSeq: v.seq, rqLun: v.lun2, cmd: v.cmd, data: v.data } };
}

export interface IpmiResponse {
  readonly rqAddr: number;
  /** The response netFn (request netFn + 1). */
  readonly netFn: number;
  readonly rqLun: number;
  readonly rsAddr: number;
  readonly rqSeq: number;
  readonly rsLun: number;
  readonly cmd: number;
  readonly completionCode: number;
  readonly data: Buffer;
}

/** rqAddr | netFn/rqLUN | chk1 | rsAddr | rqSeq/rsLUN | cmd | cc | data | chk2. */
export function encodeResponse(r: Omit<IpmiResponse, 'rqAddr' | 'rsAddr' | 'rqLun' | 'rsLun'> & Partial<Pick<IpmiResponse, 'rqAddr' | 'rsAddr' | 'rqLun' | 'rsLun'>>): Buffer {
  return encodeRequest({
    rsAddr: r.rqAddr ?? REMOTE_SWID, netFn: r.netFn, rsLun: r.rqLun ?? 0,
    rqAddr: r.rsAddr ?? BMC_SLAVE_ADDR, rqSeq: r.rqSeq, rqLun: r.rsLun ?? 0, cmd: r.cmd,
    data: Buffer.concat([Buffer.from([r.completionCode & 0xff]), r.data]),
  });
}

export function decodeResponse(b: Buffer): Decoded<IpmiResponse> {
  const f = decodeFrame(b);
  if (!f.ok) return f;
  const v = f.value;
  if ((v.netFn & 1) !== 1) return fail('malformed', `netFn 0x${v.netFn.toString(16)} is a request, not a response`);
  if (v.data.length < 1) return fail('truncated', 'IPMI response without a completion code');
  return {
    ok: true,
    value: {
      rqAddr: v.a1, netFn: v.netFn, rqLun: v.lun1, rsAddr: v.a2, rqSeq: v.seq, rsLun: v.lun2, cmd: v.cmd,
      completionCode: v.data[0]!, data: v.data.subarray(1),
    },
  };
}

/** True when `res` answers `req` (netFn+1, same cmd, same rqSeq). */
export function responseMatches(req: IpmiRequest, res: IpmiResponse): boolean {
  return res.netFn === (req.netFn | 1) && res.cmd === req.cmd && res.rqSeq === (req.rqSeq & 0x3f);
}

/** A command: what to send, and how to read the response data (after the completion code). */
export interface Command<T> {
  readonly netFn: number;
  readonly cmd: number;
  readonly data: Buffer;
  readonly decode: (data: Buffer) => Decoded<T>;
}

function need(data: Buffer, n: number, what: string): Decoded<never> | undefined {
  return data.length < n ? fail('truncated', `${what} response needs ${n} data bytes, got ${data.length}`) : undefined;
}

// ---------------------------------------------------------------- Get Channel Authentication Capabilities (§22.13)

export const CHANNEL_THIS = 0x0e;

export interface ChannelAuthCapabilities {
  readonly channel: number;
  /** Bit 7 of byte 2: IPMI v2.0+ extended data present. */
  readonly extended: boolean;
  readonly authNone: boolean;
  readonly authMd2: boolean;
  readonly authMd5: boolean;
  readonly authPassword: boolean;
  readonly authOem: boolean;
  readonly kgNonZero: boolean;
  readonly perMessageAuthDisabled: boolean;
  readonly userLevelAuthDisabled: boolean;
  readonly nonNullUsers: boolean;
  readonly nullUsers: boolean;
  readonly anonymousLogin: boolean;
  readonly ipmi20: boolean;
  readonly ipmi15: boolean;
  readonly oemIana: number;
  readonly oemAux: number;
}

export function getChannelAuthCapabilities(privilege: number, channel = CHANNEL_THIS, v2 = true): Command<ChannelAuthCapabilities> {
  return {
    netFn: NETFN_APP, cmd: CMD_GET_CHANNEL_AUTH_CAPABILITIES,
    data: Buffer.from([(channel & 0x0f) | (v2 ? 0x80 : 0), privilege & 0x0f]),
    decode: decodeChannelAuthCapabilities,
  };
}

export function decodeChannelAuthCapabilities(d: Buffer): Decoded<ChannelAuthCapabilities> {
  const short = need(d, 8, 'Get Channel Authentication Capabilities');
  if (short) return short;
  const a = d[1]!, s = d[2]!, x = d[3]!;
  const extended = (a & 0x80) !== 0;
  return {
    ok: true,
    value: {
      channel: d[0]! & 0x0f, extended,
      authNone: (a & 0x01) !== 0, authMd2: (a & 0x02) !== 0, authMd5: (a & 0x04) !== 0,
      authPassword: (a & 0x10) !== 0, authOem: (a & 0x20) !== 0,
      kgNonZero: (s & 0x20) !== 0, perMessageAuthDisabled: (s & 0x10) !== 0, userLevelAuthDisabled: (s & 0x08) !== 0,
      nonNullUsers: (s & 0x04) !== 0, nullUsers: (s & 0x02) !== 0, anonymousLogin: (s & 0x01) !== 0,
      ipmi20: extended && (x & 0x02) !== 0, ipmi15: !extended || (x & 0x01) !== 0,
      oemIana: d[4]! | (d[5]! << 8) | (d[6]! << 16), oemAux: d[7]!,
    },
  };
}

// ---------------------------------------------------------------- Get Channel Cipher Suites (§22.15)

export interface CipherSuiteRecord {
  readonly id: number;
  /** For OEM records (start byte C1h). */
  readonly oemIana?: number;
  readonly auth: number;
  readonly integrity: readonly number[];
  readonly confidentiality: readonly number[];
}

/** `index` 0..63: the response carries 16 bytes of record data per index; repeat until fewer than 16 come back. */
export function getChannelCipherSuites(index: number, channel = CHANNEL_THIS, payloadType = 0): Command<{ channel: number; records: Buffer }> {
  return {
    netFn: NETFN_APP, cmd: CMD_GET_CHANNEL_CIPHER_SUITES,
    data: Buffer.from([channel & 0x0f, payloadType & 0x3f, 0x80 | (index & 0x3f)]),
    decode: (d) => {
      const short = need(d, 1, 'Get Channel Cipher Suites');
      if (short) return short;
      if (d.length > 17) return fail('malformed', `Get Channel Cipher Suites returned ${d.length - 1} record bytes (max 16)`);
      return { ok: true, value: { channel: d[0]! & 0x0f, records: Buffer.from(d.subarray(1)) } };
    },
  };
}

/** Parses concatenated cipher suite record data (table 22-18: C0h id auth [int..] [conf..] / C1h id iana(3) ...). */
export function parseCipherSuiteRecords(b: Buffer): Decoded<CipherSuiteRecord[]> {
  const out: CipherSuiteRecord[] = [];
  let i = 0;
  while (i < b.length) {
    const start = b[i]!;
    if (start !== 0xc0 && start !== 0xc1) return fail('malformed', `cipher suite record start byte 0x${start.toString(16)} at ${i}`);
    const oem = start === 0xc1;
    const hdr = oem ? 5 : 2;
    if (i + hdr + 1 > b.length) return fail('truncated', `cipher suite record at ${i} is cut short`);
    const id = b[i + 1]!;
    const oemIana = oem ? b[i + 2]! | (b[i + 3]! << 8) | (b[i + 4]! << 16) : undefined;
    let j = i + hdr;
    const authByte = b[j]!;
    if ((authByte & 0xc0) !== 0x00) return fail('malformed', `cipher suite ${id} lacks an authentication algorithm`);
    j++;
    const integrity: number[] = [];
    const confidentiality: number[] = [];
    while (j < b.length && b[j] !== 0xc0 && b[j] !== 0xc1) {
      const tag = b[j]! & 0xc0;
      if (tag === 0x40) integrity.push(b[j]! & 0x3f);
      else if (tag === 0x80) confidentiality.push(b[j]! & 0x3f);
      else return fail('malformed', `cipher suite ${id} has an unexpected algorithm byte 0x${b[j]!.toString(16)}`);
      j++;
    }
    out.push(oemIana === undefined ? { id, auth: authByte & 0x3f, integrity, confidentiality } : { id, oemIana, auth: authByte & 0x3f, integrity, confidentiality });
    i = j;
  }
  return { ok: true, value: out };
}

// ---------------------------------------------------------------- sessions (§22.18, §22.19)

/** IPMI 1.5 only (§22.16): user name NUL-padded to 16 bytes. */
export function getSessionChallenge(authType: number, username: Buffer): Command<{ tempSessionId: number; challenge: Buffer }> {
  if (username.length > 16) throw new RangeError('user name longer than 16 bytes');
  const data = Buffer.alloc(17);
  data[0] = authType & 0x0f;
  username.copy(data, 1);
  return {
    netFn: NETFN_APP, cmd: CMD_GET_SESSION_CHALLENGE, data,
    decode: (d) => need(d, 20, 'Get Session Challenge') ?? { ok: true, value: { tempSessionId: d.readUInt32LE(0), challenge: Buffer.from(d.subarray(4, 20)) } },
  };
}

export interface ActivatedSession {
  readonly authType: number;
  readonly sessionId: number;
  /** First sequence number the BMC expects from us. */
  readonly inboundSequence: number;
  readonly maxPrivilege: number;
}

/** IPMI 1.5 only (§22.17): sent in a session header carrying the temporary session id. */
export function activateSession(authType: number, maxPrivilege: number, challenge: Buffer, initialOutboundSequence: number): Command<ActivatedSession> {
  if (challenge.length !== 16) throw new RangeError('challenge must be 16 bytes');
  const data = Buffer.alloc(22);
  data[0] = authType & 0x0f;
  data[1] = maxPrivilege & 0x0f;
  challenge.copy(data, 2);
  data.writeUInt32LE(initialOutboundSequence >>> 0, 18);
  return {
    netFn: NETFN_APP, cmd: CMD_ACTIVATE_SESSION, data,
    decode: (d) => need(d, 10, 'Activate Session') ?? {
      ok: true, value: { authType: d[0]! & 0x0f, sessionId: d.readUInt32LE(1), inboundSequence: d.readUInt32LE(5), maxPrivilege: d[9]! & 0x0f },
    },
  };
}

export function setSessionPrivilegeLevel(privilege: number): Command<{ privilege: number }> {
  return {
    netFn: NETFN_APP, cmd: CMD_SET_SESSION_PRIVILEGE_LEVEL, data: Buffer.from([privilege & 0x0f]),
    decode: (d) => need(d, 1, 'Set Session Privilege Level') ?? { ok: true, value: { privilege: d[0]! & 0x0f } },
  };
}

export function closeSession(sessionId: number): Command<null> {
  const data = Buffer.alloc(4);
  data.writeUInt32LE(sessionId >>> 0);
  return { netFn: NETFN_APP, cmd: CMD_CLOSE_SESSION, data, decode: () => ({ ok: true, value: null }) };
}

// ---------------------------------------------------------------- Get Device ID (§20.1)

export interface DeviceId {
  readonly deviceId: number;
  readonly deviceRevision: number;
  readonly providesSdrs: boolean;
  readonly deviceAvailable: boolean;
  readonly firmwareMajor: number;
  /** BCD-decoded minor firmware revision. */
  readonly firmwareMinor: number;
  /** e.g. "2.0" from 0x02, "1.5" from 0x51. */
  readonly ipmiVersion: string;
  readonly additionalSupport: number;
  readonly manufacturerId: number;
  readonly productId: number;
  readonly auxFirmware?: Buffer;
}

function bcd(n: number): number {
  return (n >> 4) * 10 + (n & 0x0f);
}

export function getDeviceId(): Command<DeviceId> {
  return { netFn: NETFN_APP, cmd: CMD_GET_DEVICE_ID, data: Buffer.alloc(0), decode: decodeDeviceId };
}

export function decodeDeviceId(d: Buffer): Decoded<DeviceId> {
  const short = need(d, 11, 'Get Device ID');
  if (short) return short;
  const base = {
    deviceId: d[0]!, deviceRevision: d[1]! & 0x0f, providesSdrs: (d[1]! & 0x80) !== 0,
    deviceAvailable: (d[2]! & 0x80) === 0, firmwareMajor: d[2]! & 0x7f, firmwareMinor: bcd(d[3]!),
    ipmiVersion: `${d[4]! & 0x0f}.${d[4]! >> 4}`, additionalSupport: d[5]!,
    manufacturerId: d[6]! | (d[7]! << 8) | ((d[8]! & 0x0f) << 16), productId: d.readUInt16LE(9),
  };
  return { ok: true, value: d.length >= 15 ? { ...base, auxFirmware: Buffer.from(d.subarray(11, 15)) } : base };
}

// ---------------------------------------------------------------- Get Chassis Status (§28.2)

export type PowerRestorePolicy = 'always-off' | 'previous' | 'always-on' | 'unknown';

export interface ChassisStatus {
  readonly powerOn: boolean;
  readonly powerOverload: boolean;
  readonly interlock: boolean;
  readonly powerFault: boolean;
  readonly powerControlFault: boolean;
  readonly restorePolicy: PowerRestorePolicy;
  readonly lastEvent: {
    readonly acFailed: boolean; readonly overload: boolean; readonly interlock: boolean;
    readonly fault: boolean; readonly onByIpmi: boolean;
  };
  readonly intrusion: boolean;
  readonly frontPanelLockout: boolean;
  readonly driveFault: boolean;
  readonly coolingFault: boolean;
  readonly frontPanel?: number;
}

const POLICIES: readonly PowerRestorePolicy[] = ['always-off', 'previous', 'always-on', 'unknown'];

export function getChassisStatus(): Command<ChassisStatus> {
  return { netFn: NETFN_CHASSIS, cmd: CMD_GET_CHASSIS_STATUS, data: Buffer.alloc(0), decode: decodeChassisStatus };
}

export function decodeChassisStatus(d: Buffer): Decoded<ChassisStatus> {
  const short = need(d, 3, 'Get Chassis Status');
  if (short) return short;
  const p = d[0]!, e = d[1]!, m = d[2]!;
  const base: ChassisStatus = {
    powerOn: (p & 0x01) !== 0, powerOverload: (p & 0x02) !== 0, interlock: (p & 0x04) !== 0,
    powerFault: (p & 0x08) !== 0, powerControlFault: (p & 0x10) !== 0, restorePolicy: POLICIES[(p >> 5) & 3]!,
    lastEvent: {
      acFailed: (e & 0x01) !== 0, overload: (e & 0x02) !== 0, interlock: (e & 0x04) !== 0,
      fault: (e & 0x08) !== 0, onByIpmi: (e & 0x10) !== 0,
    },
    intrusion: (m & 0x01) !== 0, frontPanelLockout: (m & 0x02) !== 0, driveFault: (m & 0x04) !== 0, coolingFault: (m & 0x08) !== 0,
  };
  return { ok: true, value: d.length >= 4 ? { ...base, frontPanel: d[3]! } : base };
}

// ---------------------------------------------------------------- Chassis Control (§28.3)

export const CHASSIS_CONTROL = { off: 0x00, on: 0x01, cycle: 0x02, reset: 0x03, diag: 0x04, soft: 0x05 } as const;
export type ChassisAction = keyof typeof CHASSIS_CONTROL;

export function chassisControl(action: ChassisAction): Command<null> {
  return {
    netFn: NETFN_CHASSIS, cmd: CMD_CHASSIS_CONTROL, data: Buffer.from([CHASSIS_CONTROL[action]]),
    decode: () => ({ ok: true, value: null }),
  };
}

// ---------------------------------------------------------------- System Boot Options (§28.12, §28.13, table 28-14)

export const BOOT_PARAM_SET_IN_PROGRESS = 0;
export const BOOT_PARAM_VALID_BIT_CLEARING = 3;
export const BOOT_PARAM_INFO_ACK = 4;
export const BOOT_PARAM_BOOT_FLAGS = 5;

/** Parameter 3 bits: "don't clear the boot flag valid bit" on … */
export const VALID_BIT_KEEP = {
  powerUp: 0x01, resetPushbutton: 0x02, watchdog: 0x04, timeout60s: 0x08, pef: 0x10,
} as const;

export type BootDevice = 'none' | 'pxe' | 'disk' | 'disk-safe' | 'diag' | 'cdrom' | 'bios' | 'remote-floppy' | 'remote-cdrom' | 'remote-media' | 'remote-disk' | 'floppy';

/** Boot device selector, data byte 2 bits 5:2. */
export const BOOT_DEVICE_SELECTOR: Readonly<Record<BootDevice, number>> = {
  none: 0x0, pxe: 0x1, disk: 0x2, 'disk-safe': 0x3, diag: 0x4, cdrom: 0x5, bios: 0x6,
  'remote-floppy': 0x7, 'remote-cdrom': 0x8, 'remote-media': 0x9, 'remote-disk': 0xb, floppy: 0xf,
};

export interface BootFlags {
  readonly valid: boolean;
  readonly persistent: boolean;
  readonly efi: boolean;
  readonly device: BootDevice | 'unknown';
  /** Raw 5 data bytes, for what is not decoded (CMOS clear, locks, verbosity, console redirection, …). */
  readonly raw: Buffer;
}

/**
 * Set System Boot Options, parameter 3: the bits say which events must NOT clear the boot flag valid bit.
 * The default, 0x08, keeps the flags past the 60 s "chassis control not received" timeout (as ipmitool does).
 */
export function setBootValidBitClearing(keepMask: number = VALID_BIT_KEEP.timeout60s): Command<null> {
  return {
    netFn: NETFN_CHASSIS, cmd: CMD_SET_SYSTEM_BOOT_OPTIONS,
    data: Buffer.from([BOOT_PARAM_VALID_BIT_CLEARING, keepMask & 0x1f]),
    decode: () => ({ ok: true, value: null }),
  };
}

/** Parameter 0, "set in progress": 0 = set complete, 1 = set in progress, 2 = commit write (§28.13). */
export function setBootOptionsInProgress(state: 'complete' | 'in-progress' | 'commit-write'): Command<null> {
  const v = state === 'complete' ? 0 : state === 'in-progress' ? 1 : 2;
  return { netFn: NETFN_CHASSIS, cmd: CMD_SET_SYSTEM_BOOT_OPTIONS, data: Buffer.from([BOOT_PARAM_SET_IN_PROGRESS, v]), decode: () => ({ ok: true, value: null }) };
}

/**
 * Parameter 4, "boot info acknowledge": write mask then acknowledge data (§28.13). ipmitool's
 * `chassis bootdev` sends mask 01h, data 01h (BIOS/POST bit) before the boot flags.
 */
export function setBootInfoAcknowledge(writeMask = 0x01, data = 0x01): Command<null> {
  return { netFn: NETFN_CHASSIS, cmd: CMD_SET_SYSTEM_BOOT_OPTIONS, data: Buffer.from([BOOT_PARAM_INFO_ACK, writeMask & 0xff, data & 0xff]), decode: () => ({ ok: true, value: null }) };
}

export function encodeBootFlags(f: { device: BootDevice; persistent?: boolean; efi?: boolean; valid?: boolean }): Buffer {
  const b = Buffer.alloc(5);
  b[0] = ((f.valid ?? true) ? 0x80 : 0) | (f.persistent ? 0x40 : 0) | (f.efi ? 0x20 : 0);
  b[1] = (BOOT_DEVICE_SELECTOR[f.device] & 0x0f) << 2;
  return b;
}

export function decodeBootFlags(b: Buffer): Decoded<BootFlags> {
  if (b.length < 5) return fail('truncated', `boot flags need 5 bytes, got ${b.length}`);
  const sel = (b[1]! >> 2) & 0x0f;
  const device = (Object.keys(BOOT_DEVICE_SELECTOR) as BootDevice[]).find((k) => BOOT_DEVICE_SELECTOR[k] === sel) ?? 'unknown';
  return {
    ok: true,
    value: {
      valid: (b[0]! & 0x80) !== 0, persistent: (b[0]! & 0x40) !== 0, efi: (b[0]! & 0x20) !== 0,
      device, raw: Buffer.from(b.subarray(0, 5)),
    },
  };
}

/** Set System Boot Options, parameter 5 (boot flags). Send setBootValidBitClearing() first. */
export function setBootDevice(f: { device: BootDevice; persistent?: boolean; efi?: boolean }): Command<null> {
  return {
    netFn: NETFN_CHASSIS, cmd: CMD_SET_SYSTEM_BOOT_OPTIONS,
    data: Buffer.concat([Buffer.from([BOOT_PARAM_BOOT_FLAGS]), encodeBootFlags(f)]),
    decode: () => ({ ok: true, value: null }),
  };
}

export interface BootOptionsResponse {
  readonly version: number;
  readonly parameter: number;
  /** Bit 7 of byte 2: parameter marked invalid / locked. */
  readonly invalid: boolean;
  readonly data: Buffer;
}

export function getSystemBootOptions(parameter: number, setSelector = 0, blockSelector = 0): Command<BootOptionsResponse> {
  return {
    netFn: NETFN_CHASSIS, cmd: CMD_GET_SYSTEM_BOOT_OPTIONS,
    data: Buffer.from([parameter & 0x7f, setSelector & 0xff, blockSelector & 0xff]),
    decode: (d) => {
      const short = need(d, 2, 'Get System Boot Options');
      if (short) return short;
      return { ok: true, value: { version: d[0]! & 0x0f, parameter: d[1]! & 0x7f, invalid: (d[1]! & 0x80) !== 0, data: Buffer.from(d.subarray(2)) } };
    },
  };
}

/** Get System Boot Options parameter 5, decoded to boot flags. */
export function getBootFlags(): Command<BootFlags> {
  const base = getSystemBootOptions(BOOT_PARAM_BOOT_FLAGS);
  return {
    ...base,
    decode: (d) => {
      const r = base.decode(d);
      if (!r.ok) return r;
      if (r.value.parameter !== BOOT_PARAM_BOOT_FLAGS) return fail('malformed', `boot options response is for parameter ${r.value.parameter}, not 5`);
      return decodeBootFlags(r.value.data);
    },
  };
}
