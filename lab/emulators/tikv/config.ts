import * as fs from 'fs';
import { flagString, FlagSpec, ParsedFlags } from '../common/flags';
import { ConfigError, getString, getStringArray, getTable, loadTomlFile, Schema, Table, unknownKeys } from '../common/toml';
import type { Version } from '../common/version';
import { EncryptionConfig, parseEncryption } from './encryption';

/** tikv-server's clap arguments (cmd/tikv-server/main.rs). */
export const TIKV_FLAGS: FlagSpec[] = [
  { name: 'config', short: 'C' },
  { name: 'config-check', bool: true },
  { name: 'log-level', short: 'L' },
  { name: 'log-file', short: 'f' },
  { name: 'addr', short: 'A' },
  { name: 'advertise-addr' },
  { name: 'status-addr' },
  { name: 'advertise-status-addr' },
  { name: 'data-dir', short: 's' },
  { name: 'capacity' },
  { name: 'pd', aliases: ['pd-endpoints'] },
  { name: 'labels' },
  { name: 'metrics-addr' },
  { name: 'version', short: 'V', bool: true },
];

const TIKV_SCHEMA: Schema = {
  'log-level': true, 'log-file': true, 'log-format': true, 'log-rotation-timespan': true, 'log-rotation-size': true,
  'slow-log-file': true, 'slow-log-threshold': true, 'abort-on-panic': true, 'memory-usage-limit': true,
  'memory-usage-high-water': true, 'panic-when-unexpected-key-or-data': true, 'enable-io-snoop': true,
  log: 'any', memory: 'any', quota: 'any', readpool: 'any', server: 'any', storage: 'any', pd: 'any', metric: 'any',
  raftstore: 'any', coprocessor: 'any', 'coprocessor-v2': 'any', rocksdb: 'any', raftdb: 'any', 'raft-engine': 'any',
  security: {
    'ca-path': true, 'cert-path': true, 'key-path': true, 'cert-allowed-cn': true, 'redact-info-log': true,
    'override-ssl-target': true,
    encryption: {
      'data-encryption-method': true, 'data-key-rotation-period': true, 'enable-file-dictionary-log': true,
      'file-dictionary-rewrite-threshold': true, 'master-key': 'any', 'previous-master-key': 'any',
    },
  },
  import: 'any', backup: 'any', 'backup-stream': 'any', 'log-backup': 'any', 'pessimistic-txn': 'any', gc: 'any',
  split: 'any', cdc: 'any', 'resolved-ts': 'any', 'resource-metering': 'any', 'causal-ts': 'any',
  'resource-control': 'any', 'in-memory-engine': 'any', 'txn-status-cache': 'any',
};

export interface TikvSecurity {
  ca: string;
  cert: string;
  key: string;
  allowedCN: string[];
}

export interface TikvConfig {
  configFile?: string;
  addr: string;
  advertiseAddr: string;
  statusAddr: string;
  advertiseStatusAddr: string;
  dataDir: string;
  pdEndpoints: string[];
  logFile?: string;
  labels: { key: string; value: string }[];
  security: TikvSecurity;
  encryption: EncryptionConfig;
  unrecognized: string[];
  raw: Table;
}

export function loadTikvConfig(flags: ParsedFlags, version: Version): TikvConfig {
  const configFile = flagString(flags, 'config');
  let raw: Table = {};
  if (configFile) {
    try {
      raw = loadTomlFile(configFile);
    } catch (e) {
      throw new ConfigError(`invalid auto generated configuration file ${configFile}, err ${(e as Error).message}`);
    }
  }
  const typed = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      throw new ConfigError(`invalid auto generated configuration file ${configFile}, err ${(e as Error).message}`);
    }
  };
  const addr = flagString(flags, 'addr') ?? typed(() => getString(raw, 'server.addr')) ?? '127.0.0.1:20160';
  const statusAddr = flagString(flags, 'status-addr') ?? typed(() => getString(raw, 'server.status-addr')) ?? '127.0.0.1:20180';
  const labels: { key: string; value: string }[] = [];
  const tl = typed(() => getTable(raw, 'server.labels')) ?? {};
  for (const [k, v] of Object.entries(tl)) labels.push({ key: k, value: String(v) });
  const fl = flagString(flags, 'labels');
  if (fl) {
    for (const kv of fl.split(',').filter(Boolean)) {
      const [k, v] = kv.split('=');
      const i = labels.findIndex((l) => l.key === k.trim());
      if (i >= 0) labels.splice(i, 1);
      labels.push({ key: k.trim(), value: (v ?? '').trim() });
    }
  }
  const pdFlag = flagString(flags, 'pd');
  const pdEndpoints = pdFlag
    ? pdFlag.split(',').map((s) => s.trim()).filter(Boolean)
    : typed(() => getStringArray(raw, 'pd.endpoints')) ?? [];
  const security: TikvSecurity = {
    ca: typed(() => getString(raw, 'security.ca-path')) ?? '',
    cert: typed(() => getString(raw, 'security.cert-path')) ?? '',
    key: typed(() => getString(raw, 'security.key-path')) ?? '',
    allowedCN: typed(() => getStringArray(raw, 'security.cert-allowed-cn')) ?? [],
  };
  return {
    configFile,
    addr,
    advertiseAddr: flagString(flags, 'advertise-addr') ?? typed(() => getString(raw, 'server.advertise-addr')) ?? addr,
    statusAddr,
    advertiseStatusAddr: flagString(flags, 'advertise-status-addr') ?? typed(() => getString(raw, 'server.advertise-status-addr')) ?? statusAddr,
    dataDir: flagString(flags, 'data-dir') ?? typed(() => getString(raw, 'storage.data-dir')) ?? './',
    pdEndpoints,
    logFile: flagString(flags, 'log-file') ?? typed(() => getString(raw, 'log.file.filename')) ?? typed(() => getString(raw, 'log-file')),
    labels,
    security,
    encryption: typed(() => parseEncryption(raw, version)),
    unrecognized: unknownKeys(raw, TIKV_SCHEMA),
    raw,
  };
}

/** SecurityConfig::validate from components/security: file checks first, then all-or-none. */
export function validateSecurity(s: TikvSecurity): void {
  const check = (tag: string, p: string): void => {
    if (!p) return;
    try {
      fs.closeSync(fs.openSync(p, 'r'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const os =
        code === 'ENOENT'
          ? 'Os { code: 2, kind: NotFound, message: "No such file or directory" }'
          : code === 'EACCES'
            ? 'Os { code: 13, kind: PermissionDenied, message: "Permission denied" }'
            : JSON.stringify((e as Error).message);
      throw new ConfigError(`failed to open ${p} to load ${tag}: ${os}`);
    }
  };
  check('ca key', s.ca);
  check('cert key', s.cert);
  check('private key', s.key);
  const any = !!(s.ca || s.cert || s.key);
  const all = !!(s.ca && s.cert && s.key);
  if (any && !all) throw new ConfigError('ca, cert and private key should be all configured.');
}
