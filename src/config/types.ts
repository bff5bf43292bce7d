/**
 * The validated, typed configuration. The YAML file is parsed and checked by
 * config/load.ts; everything past that boundary trusts these types.
 */
import type { Cidr, Ipv4, Ipv4Range } from '../net/ipv4.js';
import type { Mac } from '../net/mac.js';
import type { PathBsType } from '../storage/export.js';

export type DhcpMode = 'server' | 'proxy' | 'off';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface SubnetConfig {
  readonly cidr: Cidr;
  /** Inclusive address pool inside cidr; absent = reservations only. */
  readonly pool?: Ipv4Range;
  readonly router?: Ipv4;
  readonly dns: readonly Ipv4[];
  readonly domainName?: string;
  /** Seconds. */
  readonly leaseTime: number;
}

export interface ReservationConfig {
  readonly mac: Mac;
  readonly ip: Ipv4;
  readonly hostname?: string;
}

export interface BootFilesConfig {
  /** Non-iPXE BIOS PXE ROMs (arch 0). */
  readonly bios: string;
  /** Non-iPXE UEFI x64 (arch 7, 9). */
  readonly efiX64: string;
  /** Non-iPXE UEFI IA32 (arch 6). */
  readonly efiIa32: string;
  /** Non-iPXE UEFI arm64 (arch 11). */
  readonly efiArm64: string;
  /** Non-iPXE UEFI riscv64 (arch 27). */
  readonly efiRiscv64: string;
  /** Non-iPXE UEFI loong64 (arch 39). */
  readonly efiLoong64: string;
  /** HTTP-boot x64 (arch 16), a path under http.publicUrl. */
  readonly httpX64: string;
  /** HTTP-boot arm64 (arch 19), a path under http.publicUrl. */
  readonly httpArm64: string;
  /** HTTP-boot riscv64 (arch 28), a path under http.publicUrl. */
  readonly httpRiscv64: string;
  /** HTTP-boot loong64 (arch 40), a path under http.publicUrl. */
  readonly httpLoong64: string;
}

export interface ConflictCheckConfig {
  readonly method: 'ping' | 'off';
  readonly timeoutMs: number;
}

export interface DhcpConfig {
  readonly mode: DhcpMode;
  /** The one interface served (SO_BINDTODEVICE). Required unless mode is off. */
  readonly interface: string;
  /** Server identifier (option 54) and next-server; default: the interface's first IPv4. */
  readonly serverAddress?: Ipv4;
  readonly subnets: readonly SubnetConfig[];
  readonly reservations: readonly ReservationConfig[];
  readonly bootFiles: BootFilesConfig;
  readonly conflictCheck: ConflictCheckConfig;
  /** Seconds an offered address stays held for the client it was offered to. */
  readonly offerHoldSeconds: number;
  /** Seconds a declined or conflicting address is kept out of the pool. */
  readonly quarantineSeconds: number;
}

export interface HttpConfig {
  readonly listen: HostPort;
  /** Base URL machines use to reach metalboot's HTTP server, no trailing slash. */
  readonly publicUrl: string;
  /** File holding the read-write API token (Bearer); created (0600) at first start. Default `<dataDir>/api-token`. */
  readonly apiTokenFile: string;
  /** Optional file holding a read-only token. */
  readonly readOnlyTokenFile?: string;
  /** Connection caps and timeouts that keep a connection flood from using up the daemon's fds (http/limits.ts). */
  readonly limits: HttpLimits;
}

/** http.limits: what http/limits.ts applies. */
export interface HttpLimits {
  /** Open connections at most (before the RLIMIT_NOFILE bound is applied). */
  readonly maxConnections: number;
  /** Open connections from one IPv4 address or one IPv6 /64. */
  readonly maxConnectionsPerAddress: number;
  /** The request line and headers must have arrived this long after the connection (or the previous response). */
  readonly headersTimeoutMs: number;
  /** The whole request, body included; 0 = none. Image uploads stream through one request. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  readonly keepAliveTimeoutMs: number;
  /**
   * A connection on which no byte moves either way for this long while a request is read or a
   * response sent (a client that stopped reading a download) is closed. A handler still working
   * on its answer is not cut; the event stream's heartbeat comes well within it.
   */
  readonly idleTimeoutMs: number;
  /** File descriptors kept free of HTTP connections for everything else besides TFTP. */
  readonly fdReserve: number;
}

export interface TftpConfig {
  readonly enabled: boolean;
  /** IPv4 host and port of the request socket (port 69 by default). */
  readonly listen: HostPort;
  /** Interface the sockets are bound to (SO_BINDTODEVICE); '' for none. Default: dhcp.interface. */
  readonly interface: string;
  /** Directory served; absent means the installed boot-assets/ (resolved by the daemon). */
  readonly root?: string;
  /** Largest blksize granted (RFC 2348); also capped by the interface MTU − 32 at start. */
  readonly maxBlksize: number;
  /** Largest windowsize granted (RFC 7440). */
  readonly maxWindowsize: number;
  /** Concurrent transfers; requests beyond get an ERROR packet. */
  readonly maxTransfers: number;
  /** Concurrent transfers from one client address (tftp/admission.ts); default DEFAULT_TFTP's. */
  readonly maxTransfersPerClient?: number;
  /** Of maxTransfers, slots only addresses with a DHCP binding may take (dhcp.mode server/proxy); default DEFAULT_TFTP's. */
  readonly reservedTransfers?: number;
  /** Retransmission timeout when the client asks for none (upper bound of the adaptive one). */
  readonly timeoutMs: number;
  /** Timeouts without progress before a transfer is abandoned. */
  readonly retries: number;
}

/** What every storage backend's settings have. */
interface StorageCommon {
  /**
   * Clone, checkpoint and import are refused above this pool/filesystem use: thin pool data% or
   * metadata% (lvm), filesystem use (file). From the backend's own `maxPoolPercent` when it has
   * one (`storage.lvm.maxPoolPercent`), else `storage.maxPoolPercent`, else 90.
   */
  readonly maxPoolPercent: number;
}

/** `storage.backend: file` with `storage.file`: images and disks as files (reflink clones where the filesystem can). */
export interface FileStorageConfig extends StorageCommon {
  readonly backend: 'file';
  /** `storage.file.dir` (default `<dataDir>/volumes`). */
  readonly dir: string;
  /** tgtd backing store type (`storage.file.bstype`, or the old `iscsi.bstype`); absent: the backend's (rdwr). */
  readonly bstype?: PathBsType;
}

/** `storage.backend: lvm` with `storage.lvm`: a thin pool the administrator made. */
export interface LvmStorageConfig extends StorageCommon {
  readonly backend: 'lvm';
  readonly vg: string;
  readonly thinPool: string;
  /** tgtd backing store type (`storage.lvm.bstype`, or the old `iscsi.bstype`); absent: the backend's (aio). */
  readonly bstype?: PathBsType;
}

/**
 * `storage.backend: rbd` with `storage.rbd`: a Ceph pool and a cephx user the administrator made
 * (README "Disks on Ceph RBD"); disks are exported by tgtd's rbd backing store (tgt-rbd).
 */
export interface RbdStorageConfig extends StorageCommon {
  readonly backend: 'rbd';
  readonly pool: string;
  /** ceph.conf naming the monitors; tgtd's librbd reads it too (`--bsopts conf=…`). */
  readonly cephConf: string;
  /** cephx id without "client." (`storage.rbd.user`, default `metalboot`). */
  readonly user: string;
  /** The user's keyring; absent: the one the conf names (tgtd finds it the same way). */
  readonly keyring?: string;
}

/**
 * The chosen backend's settings, told apart by `backend`. A new backend adds its member here,
 * its section reader in config/sections/storage.ts and its line in storage/factory.ts.
 */
export type StorageConfig = FileStorageConfig | LvmStorageConfig | RbdStorageConfig;

export interface IscsiConfig {
  readonly enabled: boolean;
  /** Where machines reach tgtd (the address in their sanboot URL); tgtd listens there when managed. */
  readonly portal: HostPort;
  /** Target IQN = `<iqnPrefix>:mac-<hex>`; initiator IQN = `<iqnPrefix>:mac-<hex>:initiator` (disks/record.ts). */
  readonly iqnPrefix: string;
  readonly tgtadm: string;
  /** Start tgtd (and restart it when it dies) instead of expecting the Debian tgt service. */
  readonly manageTgtd: boolean;
  /** tgtd's control port (`tgtd -C N`, `tgtadm -C N`): 0 is the system's tgtd. */
  readonly controlPort: number;
  /** How often tgtd is checked for drift (restarted, targets changed) and reconciled. */
  readonly checkIntervalMs: number;
  /** Also make the target authenticate itself to the initiator (mutual CHAP). */
  readonly mutualChap: boolean;
  /**
   * How CHAP secrets reach tgtd: `control-socket` (tgtd's management socket, written by metalboot:
   * the secret is on no process's argv) or `argv` (tgtadm --password, readable in /proc/<pid>/cmdline).
   */
  readonly chapSecretsVia: 'control-socket' | 'argv';
}

export interface MachinesConfig {
  /**
   * What a MAC metalboot has no machine for boots: nothing (`ignore`), a `menu`, its `local` disk,
   * or the agent to be inspected (`inspect`: it then stays `discovered`, with its inventory).
   */
  readonly unknown: 'ignore' | 'menu' | 'local' | 'inspect';
  /** Record unknown PXE clients as `discovered` machines. */
  readonly discover: boolean;
  /** sanboot attempts before the fallback, and the pause between them. */
  readonly sanbootTries: number;
  readonly sanbootRetryDelaySec: number;
  readonly sanbootFallback: 'retry' | 'menu' | 'exit';
  /** Kernels and initrds served at /boot/files/ (default `<dataDir>/netboot`). */
  readonly netbootDir: string;
  /**
   * Proxy mode: how long after metalboot's last ProxyDHCP reply for a machine the machine may
   * fetch its sanboot script (boot/script-access.ts).
   */
  readonly proxyBootWindowSec: number;
  /** The agent ramdisk's directory (<arch>/vmlinuz, <arch>/initrd.img); default agent-assets/ beside dist/. */
  readonly agentDir?: string;
  /** An agent operation whose agent says nothing for this long fails. */
  readonly agentTimeoutSec: number;
  /** How long the agent listens for LLDP frames on each NIC during an inspection. */
  readonly agentLldpSec: number;
}

/** Defaults of the Redfish driver (HTTPS to the BMC); per BMC. */
export interface RedfishConfig {
  /** One HTTPS request's bound. */
  readonly timeoutMs: number;
  /** Resends of idempotent requests (and of any request answered 503). */
  readonly retries: number;
  /** Requests in flight to one BMC. */
  readonly maxConcurrent: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerSecond: number;
  /** Upper bound on following one task monitor (a Reset answered 202). */
  readonly taskTimeoutMs: number;
}

/** Defaults for every BMC the daemon talks to (per-machine settings come with machines). */
export interface IpmiConfig {
  /** First wait for a BMC reply; doubles per retry up to 4×. */
  readonly timeoutMs: number;
  /** Resends after the first try. */
  readonly retries: number;
  /** Idle time after which a keep-alive is sent (BMCs drop sessions idle ~60 s); 0 = none. */
  readonly keepAliveMs: number;
  /** Per BMC; 0 = unlimited. */
  readonly maxCommandsPerSecond: number;
  readonly cipherSuite: 'auto' | 17 | 3 | '1.5';
  readonly privilege: 'administrator' | 'operator';
}

export interface Config {
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  readonly http: HttpConfig;
  readonly dhcp: DhcpConfig;
  readonly tftp: TftpConfig;
  readonly ipmi: IpmiConfig;
  readonly redfish: RedfishConfig;
  readonly storage: StorageConfig;
  readonly iscsi: IscsiConfig;
  readonly syslog: SyslogConfig;
  readonly status: StatusConfig;
  readonly machines: MachinesConfig;
  readonly images: ImagesConfig;
}

/** Golden images. */
export interface ImagesConfig {
  /** POST /api/v1/images/:id/import reads server-side files only inside this directory (default `<dataDir>/import`). */
  readonly importDir: string;
}

/** UDP syslog receiver for iPXE's console (advertised to DHCP clients as option 7 when enabled). */
export interface SyslogConfig {
  readonly enabled: boolean;
  /** IPv4 host and port; iPXE always sends to port 514 of the option 7 address. */
  readonly listen: HostPort;
  /** Token bucket per source address: refill rate and bucket size. */
  readonly maxPerSecondPerSource: number;
  readonly burst: number;
  /** Sources taken (syslog/accept.ts): `served` (default), `any`, or a list of CIDRs. */
  readonly acceptFrom: 'served' | 'any' | readonly Cidr[];
  /** Token bucket for all sources together; sources without a DHCP binding share half of it. */
  readonly maxPerSecondTotal: number;
  readonly burstTotal: number;
}

/** The status page at GET /. */
export interface StatusConfig {
  /** Readable without the API token (its data under /status/api/v1); when false the page asks for the token. */
  readonly public: boolean;
}
