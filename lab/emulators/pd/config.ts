import { flagString, FlagSpec, ParsedFlags } from '../common/flags';
import {
  ConfigError, getBool, getNumber, getString, getStringArray, loadTomlFile, parseGoDuration, Schema, Table, unknownKeys,
} from '../common/toml';
import type { Version } from '../common/version';

/** pd-server's flags (v8.5 cmd/pd-server/main.go, cobra/pflag). */
export const PD_FLAGS: FlagSpec[] = [
  { name: 'version', short: 'V', bool: true },
  { name: 'config' },
  { name: 'config-check', bool: true },
  { name: 'name' },
  { name: 'data-dir' },
  { name: 'client-urls' },
  { name: 'advertise-client-urls' },
  { name: 'peer-urls' },
  { name: 'advertise-peer-urls' },
  { name: 'initial-cluster' },
  { name: 'join' },
  { name: 'metrics-addr' },
  { name: 'log-level', short: 'L' },
  { name: 'log-file' },
  { name: 'cacert' },
  { name: 'cert' },
  { name: 'key' },
  { name: 'force-new-cluster', bool: true },
];

/** Keys PD's config struct decodes; anything else only produces PD's "Config contains undefined item" warning. */
const PD_SCHEMA: Schema = {
  name: true, 'data-dir': true, 'client-urls': true, 'peer-urls': true, 'advertise-client-urls': true,
  'advertise-peer-urls': true, 'initial-cluster': true, 'initial-cluster-state': true, 'initial-cluster-token': true,
  join: true, lease: true, log: 'any', 'log-file': true, 'log-level': true, 'tso-save-interval': true,
  'tso-update-physical-interval': true, 'enable-local-tso': true, metric: 'any', schedule: 'any', replication: 'any',
  'pd-server': 'any', 'cluster-version': true, labels: 'any', 'quota-backend-bytes': true, 'auto-compaction-mode': true,
  'auto-compaction-retention': true, 'auto-compaction-retention-v2': true, 'tick-interval': true, 'election-interval': true,
  'enable-prevote': true, 'max-request-bytes': true,
  security: {
    'cacert-path': true, 'cert-path': true, 'key-path': true, 'cert-allowed-cn': true, 'redact-info-log': true,
    encryption: 'any',
  },
  'label-property': 'any', 'enable-dynamic-config': true, 'enable-grpc-gateway': true, dashboard: 'any',
  'replication-mode': 'any', keyspace: 'any', controller: 'any', 'micro-service': 'any', 'force-new-cluster': true,
  'heartbeat-streams': true, 'max-concurrent-tso-proxy-streamings': true, 'tso-proxy-recv-from-client-timeout': true,
  'enable-tso-dynamic-switching': true,
};

export interface PdSecurity {
  ca?: string;
  cert?: string;
  key?: string;
  allowedCN: string[];
}

export interface PdConfig {
  name: string;
  dataDir: string;
  clientUrls: string[];
  advertiseClientUrls: string[];
  peerUrls: string[];
  advertisePeerUrls: string[];
  initialCluster: string;
  initialClusterState: string;
  join: string;
  logFile?: string;
  configFile?: string;
  security: PdSecurity;
  maxStoreDownTimeMs: number;
  maxStoreDownTimeText: string;
  maxReplicas: number;
  locationLabels: string[];
  strictlyMatchLabel: boolean;
  enablePlacementRules: boolean;
  isolationLevel: string;
  leaderSchedulePolicy: string;
  warnings: string[];
  raw: Table;
}

function urls(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function loadPdConfig(flags: ParsedFlags, version: Version): PdConfig {
  const configFile = flagString(flags, 'config');
  const raw: Table = configFile ? loadTomlFile(configFile) : {};
  const warnings: string[] = [];
  const undecoded = unknownKeys(raw, PD_SCHEMA);
  if (undecoded.length) warnings.push(`Config contains undefined item: ${undecoded.join(', ')}`);

  const pick = (flag: string, key: string, dflt: string): string => flagString(flags, flag) ?? getString(raw, key) ?? dflt;
  const name = pick('name', 'name', 'pd');
  const dataDir = pick('data-dir', 'data-dir', `default.${name}`);
  const clientUrls = urls(pick('client-urls', 'client-urls', 'http://127.0.0.1:2379'));
  const peerUrls = urls(pick('peer-urls', 'peer-urls', 'http://127.0.0.1:2380'));
  const advClient = flagString(flags, 'advertise-client-urls') ?? getString(raw, 'advertise-client-urls');
  const advPeer = flagString(flags, 'advertise-peer-urls') ?? getString(raw, 'advertise-peer-urls');
  const advertiseClientUrls = advClient ? urls(advClient) : clientUrls;
  const advertisePeerUrls = advPeer ? urls(advPeer) : peerUrls;
  const join = pick('join', 'join', '');
  let initialCluster = flagString(flags, 'initial-cluster') ?? getString(raw, 'initial-cluster') ?? '';
  if (join && initialCluster) throw new ConfigError('-initial-cluster and -join can not be provided at the same time');
  if (!join && !initialCluster) initialCluster = advertisePeerUrls.map((u) => `${name}=${u}`).join(',');
  const initialClusterState = getString(raw, 'initial-cluster-state') ?? 'new';

  const security: PdSecurity = {
    ca: flagString(flags, 'cacert') ?? getString(raw, 'security.cacert-path') ?? undefined,
    cert: flagString(flags, 'cert') ?? getString(raw, 'security.cert-path') ?? undefined,
    key: flagString(flags, 'key') ?? getString(raw, 'security.key-path') ?? undefined,
    allowedCN: getStringArray(raw, 'security.cert-allowed-cn') ?? [],
  };
  for (const k of ['ca', 'cert', 'key'] as const) if (security[k] === '') security[k] = undefined;
  // etcd transport's rule: a server certificate needs both halves.
  if (!!security.cert !== !!security.key) {
    throw new ConfigError(`KeyFile and CertFile must both be present[key: ${security.key ?? ''}, cert: ${security.cert ?? ''}]`);
  }

  const downText = getString(raw, 'schedule.max-store-down-time') ?? '30m';
  const maxStoreDownTimeMs = parseGoDuration(downText);
  const logFile = flagString(flags, 'log-file') ?? getString(raw, 'log.file.filename') ?? getString(raw, 'log-file');

  return {
    name, dataDir, clientUrls, advertiseClientUrls, peerUrls, advertisePeerUrls, initialCluster, initialClusterState, join,
    logFile: logFile || undefined, configFile, security,
    maxStoreDownTimeMs, maxStoreDownTimeText: downText,
    maxReplicas: getNumber(raw, 'replication.max-replicas') ?? 3,
    locationLabels: getStringArray(raw, 'replication.location-labels') ?? [],
    strictlyMatchLabel: getBool(raw, 'replication.strictly-match-label') ?? false,
    enablePlacementRules: getBool(raw, 'replication.enable-placement-rules') ?? true,
    isolationLevel: getString(raw, 'replication.isolation-level') ?? '',
    leaderSchedulePolicy: getString(raw, 'schedule.leader-schedule-policy') ?? 'count',
    warnings, raw,
  };
}

export function tlsEnabled(c: PdConfig): boolean {
  return !!(c.security.cert && c.security.key);
}
