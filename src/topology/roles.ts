/**
 * What TiUP knows about each role list: accepted fields (yaml tags of the Go structs in
 * pingcap/tiup pkg/cluster/spec/*.go), port defaults, and the names TiUP derives on the host
 * (dirs, systemd unit, run script, config files, certificate file stem).
 */
import type { AuxRole, AuxRoleKey, Role, RoleKey } from './types';

/** How a field's value is checked. `string` accepts any scalar, as Go's yaml.v2 does. */
export type FieldType = 'string' | 'int' | 'bool' | 'map' | 'stringMap' | 'list' | 'any' | 'resource';

export interface PortSpec {
  field: string;
  default: number;
  /** TiUP treats 0 (and -1) as "not deployed" for this port (ng_port). */
  optional?: boolean;
  /**
   * Not listened on from this component version on (TiFlash http_port, v7.1.0). Counted only when
   * written in the file or when component_versions says an older version.
   */
  unusedSince?: string;
}

export interface RoleSpec {
  key: RoleKey | AuxRoleKey;
  /** Component name: dir `<role>-<port>`, unit `<role>-<port>.service`, TLS file stem. */
  role: Role | AuxRole;
  managed: boolean;
  /** In the order TiUP lists them (display "Ports" column, conflict checks). */
  ports: PortSpec[];
  /** The port that names the instance (TiUP getPort: Port, ClientPort, WebPort or TCPPort). */
  mainPort: string;
  hasDataDir: boolean;
  /** Default member name: `pd-<host>-<client_port>` (pd) or `<role>-<host>-<port>` (tso, scheduling). */
  defaultName?: (host: string, port: number) => string;
  /** Relative to the deploy dir. */
  configFiles: string[];
  /** Relative to the deploy dir. */
  runScript: string;
  /** TiUP advertise_* fields of this role. */
  advertise: string[];
  fields: Record<string, FieldType>;
}

const base: Record<string, FieldType> = {
  host: 'string',
  manage_host: 'string',
  ssh_port: 'int',
  imported: 'bool',
  patched: 'bool',
  ignore_exporter: 'bool',
  deploy_dir: 'string',
  source: 'string',
  numa_node: 'string',
  config: 'map',
  resource_control: 'resource',
  arch: 'string',
  os: 'string',
};
const withData = { data_dir: 'string', log_dir: 'string' } as const;
const ports = (spec: PortSpec[]): Record<string, FieldType> => Object.fromEntries(spec.map((p) => [p.field, 'int' as FieldType]));

function role(
  spec: Omit<RoleSpec, 'fields' | 'advertise' | 'configFiles' | 'runScript'> & {
    extra?: Record<string, FieldType>;
    advertise?: string[];
    configFiles?: string[];
    runScript?: string;
    noBase?: string[];
  },
): RoleSpec {
  const fields: Record<string, FieldType> = { ...base, ...ports(spec.ports), ...(spec.hasDataDir ? withData : {}), ...spec.extra };
  for (const f of spec.noBase ?? []) delete fields[f];
  for (const a of spec.advertise ?? []) fields[a] = 'string';
  return {
    key: spec.key,
    role: spec.role,
    managed: spec.managed,
    ports: spec.ports,
    mainPort: spec.mainPort,
    hasDataDir: spec.hasDataDir,
    defaultName: spec.defaultName,
    configFiles: spec.configFiles ?? [`conf/${spec.role}.toml`],
    runScript: spec.runScript ?? `scripts/run_${spec.role}.sh`,
    advertise: spec.advertise ?? [],
    fields,
  };
}

/** Roles tiseal manages, in TiUP start order (same order as ROLE_KEYS). */
export const ROLE_SPECS: RoleSpec[] = [
  role({
    key: 'pd_servers',
    role: 'pd',
    managed: true,
    ports: [
      { field: 'client_port', default: 2379 },
      { field: 'peer_port', default: 2380 },
    ],
    mainPort: 'client_port',
    hasDataDir: true,
    defaultName: (host, port) => `pd-${host}-${port}`,
    advertise: ['advertise_client_addr', 'advertise_peer_addr'],
    extra: { listen_host: 'string', name: 'string' },
  }),
  role({
    key: 'tiproxy_servers',
    role: 'tiproxy',
    managed: true,
    ports: [
      { field: 'port', default: 6000 },
      { field: 'status_port', default: 3080 },
    ],
    mainPort: 'port',
    hasDataDir: false,
    // TiProxySpec has no log_dir/resource_control/imported/source fields.
    noBase: ['imported', 'patched', 'ignore_exporter', 'source', 'resource_control'],
  }),
  role({
    key: 'tikv_servers',
    role: 'tikv',
    managed: true,
    ports: [
      { field: 'port', default: 20160 },
      { field: 'status_port', default: 20180 },
    ],
    mainPort: 'port',
    hasDataDir: true,
    advertise: ['advertise_addr', 'advertise_status_addr'],
    extra: { listen_host: 'string', offline: 'bool', numa_cores: 'string' },
  }),
  role({
    key: 'pump_servers',
    role: 'pump',
    managed: true,
    ports: [{ field: 'port', default: 8250 }],
    mainPort: 'port',
    hasDataDir: true,
    extra: { offline: 'bool' },
  }),
  role({
    key: 'tidb_servers',
    role: 'tidb',
    managed: true,
    ports: [
      { field: 'port', default: 4000 },
      { field: 'status_port', default: 10080 },
    ],
    mainPort: 'port',
    hasDataDir: false,
    advertise: ['advertise_address'],
    extra: { listen_host: 'string', log_dir: 'string', numa_cores: 'string' },
  }),
  role({
    key: 'tiflash_servers',
    role: 'tiflash',
    managed: true,
    // TiFlashInstance.UsedPorts order; http_port last and only before v7.1.0.
    ports: [
      { field: 'tcp_port', default: 9000 },
      { field: 'flash_service_port', default: 3930 },
      { field: 'flash_proxy_port', default: 20170 },
      { field: 'flash_proxy_status_port', default: 20292 },
      { field: 'metrics_port', default: 8234 },
      { field: 'http_port', default: 8123, unusedSince: 'v7.1.0' },
    ],
    mainPort: 'tcp_port',
    hasDataDir: true,
    configFiles: ['conf/tiflash.toml', 'conf/tiflash-learner.toml'],
    extra: { tmp_path: 'string', offline: 'bool', numa_cores: 'string', learner_config: 'map' },
  }),
  role({
    key: 'drainer_servers',
    role: 'drainer',
    managed: true,
    ports: [{ field: 'port', default: 8249 }],
    mainPort: 'port',
    hasDataDir: true,
    extra: { offline: 'bool', commit_ts: 'int' },
  }),
  role({
    key: 'cdc_servers',
    role: 'cdc',
    managed: true,
    ports: [{ field: 'port', default: 8300 }],
    mainPort: 'port',
    hasDataDir: true,
    extra: { offline: 'bool', 'gc-ttl': 'int', tz: 'string', ticdc_cluster_id: 'string' },
  }),
  role({
    key: 'monitoring_servers',
    role: 'prometheus',
    managed: true,
    ports: [
      { field: 'port', default: 9090 },
      // TiUP fills 12020 for clusters >= v5.4.0 (spec.AdjustByVersion); -1 disables it.
      { field: 'ng_port', default: 12020, optional: true },
    ],
    mainPort: 'port',
    hasDataDir: true,
    configFiles: ['conf/prometheus.yml'],
    noBase: ['config', 'source'],
    extra: {
      remote_config: 'map',
      external_alertmanagers: 'list',
      pushgateway_addrs: 'list',
      storage_retention: 'string',
      rule_dir: 'string',
      additional_scrape_conf: 'map',
      scrape_interval: 'string',
      scrape_timeout: 'string',
      additional_args: 'list',
    },
  }),
  role({
    key: 'grafana_servers',
    role: 'grafana',
    managed: true,
    ports: [{ field: 'port', default: 3000 }],
    mainPort: 'port',
    hasDataDir: false,
    configFiles: ['conf/grafana.ini'],
    noBase: ['numa_node', 'source'],
    extra: {
      config: 'stringMap',
      dashboard_dir: 'string',
      username: 'string',
      password: 'string',
      anonymous_enable: 'bool',
      root_url: 'string',
      domain: 'string',
      default_theme: 'string',
      org_name: 'string',
      org_role: 'string',
    },
  }),
  role({
    key: 'alertmanager_servers',
    role: 'alertmanager',
    managed: true,
    ports: [
      { field: 'web_port', default: 9093 },
      { field: 'cluster_port', default: 9094 },
    ],
    mainPort: 'web_port',
    hasDataDir: true,
    configFiles: ['conf/alertmanager.yml'],
    noBase: ['config', 'source'],
    extra: { listen_host: 'string', config_file: 'string', additional_args: 'list' },
  }),
];

/** Roles TiUP accepts that tiseal leaves alone, in TiUP start order. */
export const AUX_ROLE_SPECS: RoleSpec[] = [
  role({
    key: 'tso_servers',
    role: 'tso',
    managed: false,
    ports: [{ field: 'port', default: 3379 }],
    mainPort: 'port',
    hasDataDir: true,
    defaultName: (host, port) => `tso-${host}-${port}`,
    advertise: ['advertise_listen_addr'],
    noBase: ['imported', 'patched', 'resource_control'],
    extra: { listen_host: 'string', name: 'string' },
  }),
  role({
    key: 'scheduling_servers',
    role: 'scheduling',
    managed: false,
    ports: [{ field: 'port', default: 3379 }],
    mainPort: 'port',
    hasDataDir: true,
    defaultName: (host, port) => `scheduling-${host}-${port}`,
    advertise: ['advertise_listen_addr'],
    noBase: ['imported', 'patched', 'resource_control'],
    extra: { listen_host: 'string', name: 'string' },
  }),
  // PD microservices (pkg/cluster/spec/router.go, resource_manager.go): RouterSpec and
  // ResourceManagerSpec carry the same fields as TSOSpec; the default name is the lower-cased
  // spec type, host and port (spec.go fillCustomDefaults).
  role({
    key: 'router_servers',
    role: 'router',
    managed: false,
    ports: [{ field: 'port', default: 3379 }],
    mainPort: 'port',
    hasDataDir: true,
    defaultName: (host, port) => `router-${host}-${port}`,
    advertise: ['advertise_listen_addr'],
    noBase: ['imported', 'patched', 'resource_control'],
    extra: { listen_host: 'string', name: 'string' },
  }),
  role({
    key: 'resource_manager_servers',
    role: 'resource-manager',
    managed: false,
    ports: [{ field: 'port', default: 3379 }],
    mainPort: 'port',
    hasDataDir: true,
    defaultName: (host, port) => `resourcemanager-${host}-${port}`,
    advertise: ['advertise_listen_addr'],
    noBase: ['imported', 'patched', 'resource_control'],
    extra: { listen_host: 'string', name: 'string' },
  }),
  role({
    key: 'tidb_dashboard_servers',
    role: 'tidb-dashboard',
    managed: false,
    ports: [{ field: 'port', default: 12333 }],
    mainPort: 'port',
    hasDataDir: true,
    noBase: ['imported'],
  }),
  role({
    key: 'kvcdc_servers',
    role: 'tikv-cdc',
    managed: false,
    ports: [{ field: 'port', default: 8600 }],
    mainPort: 'port',
    hasDataDir: true,
    extra: { offline: 'bool', 'gc-ttl': 'int', tz: 'string' },
  }),
  role({
    key: 'tispark_masters',
    role: 'tispark-master',
    managed: false,
    ports: [
      { field: 'port', default: 7077 },
      { field: 'web_port', default: 8080 },
    ],
    mainPort: 'port',
    hasDataDir: false,
    configFiles: ['conf/spark-defaults.conf', 'conf/spark-env.sh'],
    runScript: 'sbin/start-master.sh',
    noBase: ['manage_host', 'patched', 'ignore_exporter', 'source', 'numa_node', 'config', 'resource_control'],
    extra: { listen_host: 'string', java_home: 'string', spark_config: 'map', spark_env: 'map' },
  }),
  role({
    key: 'tispark_workers',
    role: 'tispark-worker',
    managed: false,
    ports: [
      { field: 'port', default: 7078 },
      { field: 'web_port', default: 8081 },
    ],
    mainPort: 'port',
    hasDataDir: false,
    configFiles: ['conf/spark-defaults.conf', 'conf/spark-env.sh'],
    runScript: 'sbin/start-slave.sh',
    noBase: ['manage_host', 'patched', 'ignore_exporter', 'source', 'numa_node', 'config', 'resource_control'],
    extra: { listen_host: 'string', java_home: 'string' },
  }),
];

/** TiUP start order across both lists (spec.go ComponentsByStartOrder: pd, tso, scheduling, router, resource-manager, dashboard, tiproxy, tikv, ...). */
const START_ORDER: Array<RoleKey | AuxRoleKey> = [
  'pd_servers',
  'tso_servers',
  'scheduling_servers',
  'router_servers',
  'resource_manager_servers',
  'tidb_dashboard_servers',
  'tiproxy_servers',
  'tikv_servers',
  'pump_servers',
  'tidb_servers',
  'tiflash_servers',
  'drainer_servers',
  'cdc_servers',
  'kvcdc_servers',
  'monitoring_servers',
  'grafana_servers',
  'alertmanager_servers',
  'tispark_masters',
  'tispark_workers',
];

export const ALL_ROLE_SPECS: RoleSpec[] = START_ORDER.map(
  (k) => [...ROLE_SPECS, ...AUX_ROLE_SPECS].find((s) => s.key === k)!,
);

export function specForKey(key: string): RoleSpec | undefined {
  return ALL_ROLE_SPECS.find((s) => s.key === key);
}

export function specForRole(role: string): RoleSpec | undefined {
  return ALL_ROLE_SPECS.find((s) => s.role === role);
}

export const GLOBAL_FIELDS: Record<string, FieldType> = {
  user: 'string',
  group: 'string',
  ssh_port: 'int',
  ssh_type: 'string',
  enable_tls: 'bool',
  listen_host: 'string',
  deploy_dir: 'string',
  data_dir: 'string',
  log_dir: 'string',
  resource_control: 'resource',
  os: 'string',
  arch: 'string',
  custom: 'any',
  systemd_mode: 'string',
  pd_mode: 'string',
};

export const MONITORED_FIELDS: Record<string, FieldType> = {
  node_exporter_port: 'int',
  blackbox_exporter_port: 'int',
  node_exporter_version: 'string',
  blackbox_exporter_version: 'string',
  deploy_dir: 'string',
  data_dir: 'string',
  log_dir: 'string',
  numa_node: 'string',
  resource_control: 'resource',
};

/** meta.ResourceControl */
export const RESOURCE_CONTROL_FIELDS: Record<string, FieldType> = {
  memory_limit: 'string',
  cpu_quota: 'string',
  io_read_bandwidth_max: 'string',
  io_write_bandwidth_max: 'string',
  limit_core: 'string',
};

/** ServerConfigs: `grafana` is map[string]string, the rest free-form maps. */
export const SERVER_CONFIG_KEYS: Record<string, FieldType> = {
  tidb: 'map',
  tikv: 'map',
  pd: 'map',
  tso: 'map',
  scheduling: 'map',
  resource_manager: 'map',
  router: 'map',
  tidb_dashboard: 'map',
  tiflash: 'map',
  tiproxy: 'map',
  'tiflash-learner': 'map',
  pump: 'map',
  drainer: 'map',
  cdc: 'map',
  kvcdc: 'map',
  grafana: 'stringMap',
  ng_monitoring: 'map',
};

export const COMPONENT_VERSION_KEYS = [
  'tidb',
  'tikv',
  'tiflash',
  'pd',
  'tso',
  'scheduling',
  'resource_manager',
  'router',
  'tidb_dashboard',
  'pump',
  'drainer',
  'cdc',
  'kvcdc',
  'tiproxy',
  'prometheus',
  'grafana',
  'alertmanager',
];

export const COMPONENT_SOURCE_KEYS = ['tidb', 'tikv', 'tiflash', 'pd', 'tidb_dashboard', 'pump', 'drainer', 'cdc', 'kvcdc'];

export const TOP_LEVEL_KEYS = [
  'global',
  'monitored',
  'component_versions',
  'component_sources',
  'server_configs',
  ...START_ORDER,
];

/** Top-level keys of a TiUP meta.yaml (`~/.tiup/storage/cluster/clusters/<name>/meta.yaml`). */
export const META_KEYS = ['user', 'tidb_version', 'last_ops_ver', 'topology'];
