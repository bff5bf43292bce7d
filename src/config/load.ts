/**
 * The config file boundary: YAML text in, a validated typed Config out.
 *
 * parseConfig is pure (the only facts about the host come through ConfigEnv),
 * so every rule is unit-testable. The first problem found is reported as one
 * ConfigError whose one-line message names the key path, e.g.
 *   config: dhcp.subnets[1].pool: 10.99.1.5 is outside 10.99.0.0/24
 * so an operator reading `systemctl status` knows which line to fix.
 *
 * This file composes the sections (config/sections/, one reader per top-level
 * key, written with the generic readers of config/readers.ts); a new section is
 * a new file there, one key in the top-level list and one line below.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { DEFAULT_CONFIG_PATH, DEFAULT_DATA_DIR, DEFAULT_LOG_LEVEL, LOG_LEVELS } from './defaults.js';
import { systemConfigEnv, type ConfigEnv } from './env.js';
import { ConfigError } from './error.js';
import { mapping, oneOf, opt, readAbsolutePath } from './readers.js';
import { readDhcp } from './sections/dhcp.js';
import { completeHttp, readHttp } from './sections/http.js';
import { readImages } from './sections/images.js';
import { readIpmi } from './sections/ipmi.js';
import { readRedfish } from './sections/redfish.js';
import { portalDefault, readIscsi } from './sections/iscsi.js';
import { readMachines } from './sections/machines.js';
import { readStatus } from './sections/status.js';
import { legacyBstypeOf, readStorage } from './sections/storage.js';
import { readSyslog } from './sections/syslog.js';
import { readTftp } from './sections/tftp.js';
import type { Config } from './types.js';

export { DEFAULT_CONFIG_PATH, ConfigError, type ConfigEnv };

// ---------------------------------------------------------------- entry points

export function parseConfig(text: string, env: ConfigEnv): Config {
  const top = mapping(parseYaml(text) ?? {}, '', ['dataDir', 'logLevel', 'http', 'dhcp', 'tftp', 'ipmi', 'redfish', 'storage', 'iscsi', 'machines', 'syslog', 'status', 'images']);
  const dataDir = opt(top, 'dataDir', '', readAbsolutePath) ?? DEFAULT_DATA_DIR;
  const logLevel = opt(top, 'logLevel', '', (v, p) => oneOf(v, p, LOG_LEVELS)) ?? DEFAULT_LOG_LEVEL;
  const rawHttp = readHttp(top['http'] ?? {}, 'http');
  const dhcp = readDhcp(top['dhcp'] ?? {}, 'dhcp', env);
  const tftp = readTftp(top['tftp'] ?? {}, 'tftp', env, dhcp);
  const ipmi = readIpmi(top['ipmi'] ?? {}, 'ipmi');
  const http = completeHttp(rawHttp, dhcp.mode, dataDir);
  const storage = readStorage(top['storage'] ?? {}, 'storage', dataDir, legacyBstypeOf(top['iscsi']));
  const iscsi = readIscsi(top['iscsi'] ?? {}, 'iscsi', portalDefault(dhcp, http.publicUrl));
  return {
    dataDir, logLevel, http,
    syslog: readSyslog(top['syslog'] ?? {}, 'syslog'), status: readStatus(top['status'] ?? {}, 'status'),
    dhcp, tftp, ipmi, redfish: readRedfish(top['redfish'] ?? {}, 'redfish'), storage, iscsi, machines: readMachines(top['machines'] ?? {}, 'machines', dataDir),
    images: readImages(top['images'] ?? {}, 'images', dataDir),
  };
}

/**
 * Reads and parses the file. Without an env, the host's interfaces are asked
 * of the running system first (the one place config parsing touches the host).
 */
export async function loadConfigFile(path: string, env?: ConfigEnv): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError('', `cannot read ${path}: ${(err as Error).message}`);
  }
  return parseConfig(text, env ?? await systemConfigEnv());
}

// ---------------------------------------------------------------- YAML

function parseYaml(text: string): unknown {
  // uniqueKeys: a duplicated key is almost always a merge mistake; YAML would keep the last silently.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    // prettyErrors appends " at line L, column C:" and a source excerpt; keep the first line only.
    const first = problem.message.split('\n')[0]!.replace(/:\s*$/, '');
    const line = problem.linePos?.[0].line;
    const m = / at line (\d+), column (\d+)$/.exec(first);
    const where = m ? `line ${m[1]}, column ${m[2]}` : line ? `line ${line}` : 'unknown position';
    const what = m ? first.slice(0, m.index) : first;
    throw new ConfigError('', `invalid YAML at ${where}: ${what}`, line);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError('', `invalid YAML: ${(err as Error).message}`);
  }
}
