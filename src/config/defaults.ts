/**
 * Defaults and bounds for the config file, in one place so the loader, the
 * docs and the tests agree on them.
 */
import type { BootFilesConfig, ConflictCheckConfig, DhcpMode, IpmiConfig, LogLevel, RedfishConfig } from './types.js';

export const DEFAULT_CONFIG_PATH = '/etc/metalboot/metalboot.yaml';

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];
export const DHCP_MODES: readonly DhcpMode[] = ['server', 'proxy', 'off'];

export const DEFAULT_DATA_DIR = '/var/lib/metalboot';
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
export const DEFAULT_HTTP_LISTEN = '0.0.0.0:8080';
export const DEFAULT_DHCP_MODE: DhcpMode = 'server';
export const DEFAULT_OFFER_HOLD_SECONDS = 30;
export const DEFAULT_QUARANTINE_SECONDS = 600;
export const DEFAULT_LEASE_TIME = 3600;

export const DEFAULT_CONFLICT_CHECK: ConflictCheckConfig = { method: 'ping', timeoutMs: 500 };

/**
 * UEFI x86_64 gets snponly.efi (iPXE on the firmware's own NIC driver), by measurement: ipxe.efi
 * (iPXE's own drivers) brings the link up again and cost ~4.4 s a boot in bench/boot --firmware
 * uefi (README "Boot"). HTTP boot likewise. arm64, riscv64 and loong64 have one Debian build each.
 */
export const DEFAULT_BOOT_FILES: BootFilesConfig = {
  bios: 'undionly.kpxe',
  efiX64: 'snponly.efi',
  efiIa32: 'ipxe-ia32.efi',
  efiArm64: 'ipxe-arm64.efi',
  efiRiscv64: 'ipxe-riscv64.efi',
  efiLoong64: 'ipxe-loong64.efi',
  httpX64: '/boot-assets/snponly.efi',
  httpArm64: '/boot-assets/ipxe-arm64.efi',
  httpRiscv64: '/boot-assets/ipxe-riscv64.efi',
  httpLoong64: '/boot-assets/ipxe-loong64.efi',
};

export const DEFAULT_TFTP_LISTEN = '0.0.0.0:69';
export const DEFAULT_TFTP = {
  enabled: true,
  /** Ethernet MTU 1500 − 20 (IP) − 8 (UDP) − 4 (TFTP header): one DATA packet per frame. */
  maxBlksize: 1468,
  maxWindowsize: 16,
  maxTransfers: 128,
  /** A PXE client holds one or two at a time (UEFI: a tsize query, then the download); 4 leaves room for a retry. */
  maxTransfersPerClient: 4,
  /** A quarter of the default total kept for machines with a DHCP binding (see tftp/admission.ts). */
  reservedTransfers: 32,
  timeoutMs: 1000,
  retries: 5,
} as const;

export const DEFAULT_IPMI: IpmiConfig = {
  timeoutMs: 1000, retries: 3, keepAliveMs: 20_000, maxCommandsPerSecond: 20, cipherSuite: 'auto', privilege: 'administrator',
};

export const DEFAULT_REDFISH: RedfishConfig = { timeoutMs: 10_000, retries: 3, maxConcurrent: 2, maxRequestsPerSecond: 20, taskTimeoutMs: 120_000 };

export const DEFAULT_STORAGE = { backend: 'file', maxPoolPercent: 90 } as const;
export const DEFAULT_ISCSI = {
  enabled: true, port: 3260, iqnPrefix: 'iqn.2026-11.org.metalboot', tgtadm: '/usr/sbin/tgtadm',
  manageTgtd: false, controlPort: 0, checkIntervalMs: 2000, mutualChap: false,
  chapSecretsVia: 'control-socket',
} as const;

/** Inclusive [min, max] bounds for integer settings. */
export const LIMITS = {
  /** A minute to a year: shorter leases flood the server, longer ones never give addresses back. */
  leaseTime: [60, 31_536_000],
  /** An offer not answered within an hour is abandoned by any real client. */
  offerHoldSeconds: [1, 3600],
  /** 0 disables quarantine; a week is already longer than any lab wants an address parked. */
  quarantineSeconds: [0, 604_800],
  /** A ping slower than 10 s is not an answer a DHCP client will wait for. */
  conflictTimeoutMs: [10, 10_000],
  port: [1, 65_535],
  /** RFC 2348's range. */
  tftpBlksize: [8, 65_464],
  /** Each transfer holds one window in memory: 64 × 65464 bytes is the most one may take. */
  tftpWindowsize: [1, 64],
  tftpMaxTransfers: [1, 4096],
  tftpMaxTransfersPerClient: [1, 4096],
  /** Checked against maxTransfers by the loader: 0 = no reservation. */
  tftpReservedTransfers: [0, 4096],
  /** RFC 2349 timeouts are 1..255 s; below 100 ms a busy client looks dead. */
  tftpTimeoutMs: [100, 255_000],
  tftpRetries: [1, 50],
  /** Below 50 ms even a LAN BMC looks dead; above 30 s a command is never worth waiting for. */
  ipmiTimeoutMs: [50, 30_000],
  ipmiRetries: [0, 10],
  /** IPMI v2.0 §6.12.15: sessions time out after 60 s ± 3 idle; a keep-alive must come before. */
  ipmiKeepAliveMs: [0, 55_000],
  ipmiMaxCommandsPerSecond: [0, 10_000],
  /** HTTPS to a BMC: a TLS handshake plus a busy BMC's answer needs more than IPMI's bound. */
  redfishTimeoutMs: [100, 120_000],
  redfishRetries: [0, 10],
  /** BMCs allow few connections and sessions; more than a handful in flight only gets 503s. */
  redfishMaxConcurrent: [1, 16],
  redfishMaxRequestsPerSecond: [0, 10_000],
  redfishTaskTimeoutMs: [1000, 1_800_000],
  /** Below 50 % a pool is refused while mostly empty; at 100 % thin pools fail writes. */
  maxPoolPercent: [50, 99],
  /** tgtd and tgtadm refuse -C above 32767 (its socket is /var/run/tgtd/socket.N). */
  tgtdControlPort: [0, 32_767],
  iscsiCheckIntervalMs: [200, 600_000],
} as const satisfies Record<string, readonly [number, number]>;

/** A subnet smaller than /30 has no room for a host besides network and broadcast. */
export const MAX_SUBNET_PREFIX = 30;

/** The BOOTP `file` field is 128 bytes including the terminating NUL. */
export const MAX_BOOT_FILE_BYTES = 127;

/**
 * maxPerSecondTotal: an iPXE boot logs some tens of lines; 200/s is a lab of dozens booting at
 * once, and at that rate the log and the bus (syslog keeps its own part of the ring) stay light.
 */
export const DEFAULT_SYSLOG = { enabled: false, listen: '0.0.0.0:514', maxPerSecondPerSource: 20, burst: 100, acceptFrom: 'served', maxPerSecondTotal: 200, burstTotal: 1000 } as const;
export const SYSLOG_LIMITS = { maxPerSecondPerSource: [1, 10_000], burst: [1, 100_000], maxPerSecondTotal: [1, 100_000], burstTotal: [1, 1_000_000] } as const satisfies Record<string, readonly [number, number]>;
/** A longer CIDR list is a mistake, and each datagram is checked against all of it. */
export const SYSLOG_MAX_ACCEPT_CIDRS = 64;
export const DEFAULT_STATUS = { public: false } as const;

/**
 * http.limits (see http/limits.ts and README "Security model"). maxConnections is further bounded
 * by (RLIMIT_NOFILE − (fdReserve + 3 × tftp.maxTransfers)) / 2 at start: a transfer holds three
 * fds, a connection serving a file two. 64 per address: a browser opens at most 6 per host plus the
 * event stream, iPXE one at a time, so only a NAT of many admins comes near it. 10 s for headers: iPXE, curl and browsers send theirs at once. An hour for a whole
 * request: an image upload streams through one. 5 s keep-alive: node's own default (fastify's
 * 72 s suits load balancers, not a lab), and the status page re-uses it at its once-a-second poll.
 * 60 s idle: a client that stops reading a download (and holds its socket and file) goes within a
 * minute; a live one moves bytes far more often, and the event stream's heartbeat is at most 15 s.
 * 512 fds: node itself (~30), the store (LevelDB opens one fd per table file), DHCP/syslog sockets
 * and the tgtadm/lvm/qemu-img children (3 pipes each).
 */
export const DEFAULT_HTTP_LIMITS = {
  maxConnections: 4096, maxConnectionsPerAddress: 64, headersTimeoutMs: 10_000, requestTimeoutMs: 3_600_000, keepAliveTimeoutMs: 5000, idleTimeoutMs: 60_000, fdReserve: 512,
} as const;
export const HTTP_LIMITS_BOUNDS = {
  maxConnections: [16, 1_000_000],
  maxConnectionsPerAddress: [1, 100_000],
  /** Below 1 s a client on a slow link cannot send its headers; above 5 min a slow-loris holds its fd for long. */
  headersTimeoutMs: [1000, 300_000],
  /** 0 = none; otherwise at least headersTimeoutMs (node refuses a smaller one). */
  requestTimeoutMs: [0, 86_400_000],
  keepAliveTimeoutMs: [100, 600_000],
  /** Below 1 s a pause of a slow link cuts a download; above an hour a stalled reader holds its fds for long. */
  idleTimeoutMs: [1000, 3_600_000],
  fdReserve: [64, 1_000_000],
} as const satisfies Record<string, readonly [number, number]>;
