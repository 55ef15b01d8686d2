/**
 * The resolved shape of a TiUP topology. `parseTopology` (src/topology/parse.ts) produces a
 * `Topology`; everything downstream (lab deploy, plans, tasks) works from `Instance`s.
 */

/**
 * TiUP role list keys tiseal manages, in TiUP's start order
 * (pkg/cluster/spec/spec.go ComponentsByStartOrder: pd, tiproxy, tikv, pump, tidb, tiflash,
 * drainer, cdc, prometheus, grafana, alertmanager). Stop order is the reverse.
 */
export const ROLE_KEYS = [
  'pd_servers',
  'tiproxy_servers',
  'tikv_servers',
  'pump_servers',
  'tidb_servers',
  'tiflash_servers',
  'drainer_servers',
  'cdc_servers',
  'monitoring_servers',
  'grafana_servers',
  'alertmanager_servers',
] as const;
export type RoleKey = (typeof ROLE_KEYS)[number];

/** Component / role name as TiUP uses it in dir and unit names (`pd-2379`, `tikv-20160`, ...). */
export type Role =
  | 'pd'
  | 'tikv'
  | 'tidb'
  | 'tiflash'
  | 'tiproxy'
  | 'pump'
  | 'drainer'
  | 'cdc'
  | 'prometheus'
  | 'grafana'
  | 'alertmanager';

/**
 * Role lists TiUP accepts but tiseal does not manage. Their instances are parsed and take part in
 * port/directory conflict checks; the cluster TLS commands refuse a topology that has any
 * (src/topology/tls-coverage.ts), since TiUP converts all but TiSpark.
 */
export const AUX_ROLE_KEYS = [
  'tso_servers',
  'scheduling_servers',
  'router_servers',
  'resource_manager_servers',
  'tidb_dashboard_servers',
  'kvcdc_servers',
  'tispark_masters',
  'tispark_workers',
] as const;
export type AuxRoleKey = (typeof AUX_ROLE_KEYS)[number];
export type AuxRole = 'tso' | 'scheduling' | 'router' | 'resource-manager' | 'tidb-dashboard' | 'tikv-cdc' | 'tispark-master' | 'tispark-worker';

export interface GlobalOptions {
  user: string; // default "tidb"
  group?: string;
  sshPort: number; // default 22
  deployDir: string; // default "deploy" (relative → /home/<user>/deploy)
  dataDir: string; // default "data"
  logDir?: string;
  arch: string; // default "amd64"
  os: string; // default "linux"
  systemdMode: 'system' | 'user';
  listenHost?: string;
  enableTls: boolean;
  /** `global.resource_control` as written (memory_limit, cpu_quota, ...). */
  resourceControl?: Record<string, unknown>;
  /** `global.ssh_type` (builtin | system | none) when set. */
  sshType?: string;
  /** `global.pd_mode` (e.g. "ms" for PD microservices) when set. */
  pdMode?: string;
}

export interface Instance {
  role: Role;
  /** `<role>-<main port>`, e.g. `pd-2379`; unique per host. */
  id: string;
  /** Address tiseal connects to over SSH and that other components dial. */
  host: string;
  /** Optional different SSH target (TiUP's `manage_host`). */
  manageHost?: string;
  sshPort: number;
  /** The port that names the instance (client port for PD, server port for TiKV, ...). */
  port: number;
  /** All ports of this instance by TiUP's field name: client_port, peer_port, status_port, ... */
  ports: Record<string, number>;
  /** PD member name (default `pd-<host>-<client_port>`); undefined for other roles. */
  name?: string;
  deployDir: string; // absolute
  dataDir?: string; // absolute; roles without data have none
  logDir: string; // absolute
  /** `<role>-<port>.service` */
  unit: string;
  /** Absolute paths of the component's config files on the host (conf/pd.toml, ...). */
  configFiles: string[];
  /** Absolute path of scripts/run_<role>.sh */
  runScript: string;
  /** Name used as the certificate CN and file stem under tls/ (pd, tikv, tidb, tiflash, cdc, ...). */
  certName: string;
  /** Advertise addresses (TiUP advertise_* fields) when set. */
  advertise: Record<string, string>;
  listenHost?: string;
  numaNode?: string;
  /** Per-instance `config:` block (merged over server_configs.<role> by consumers). */
  config: Record<string, unknown>;
  /** TiFlash `learner_config:` block. */
  learnerConfig?: Record<string, unknown>;
  /** Source position of the instance entry, for messages. */
  source: { file: string; line: number; column: number };
  /** Raw YAML fields as written (for re-emitting TiUP format, e.g. scale-pd.yaml). */
  raw: Record<string, unknown>;
  // The fields below are always filled by the parser; optional only so hand-built test
  // instances elsewhere keep compiling.
  /** The list the instance came from (`pd_servers`, ...). */
  roleKey?: RoleKey;
  /** All data directories, absolute (TiFlash may have several; `dataDir` is the first). */
  dataDirs?: string[];
  /** Instance os/arch (instance value, else global; arch normalised like TiUP: x86_64 → amd64). */
  os?: string;
  arch?: string;
  /** TiUP `ignore_exporter`, `imported`, `offline` flags when set. */
  ignoreExporter?: boolean;
  imported?: boolean;
  offline?: boolean;
}

/** An instance of a role tiseal does not manage (see AUX_ROLE_KEYS); same fields as Instance. */
export interface AuxInstance extends Omit<Instance, 'role' | 'roleKey'> {
  role: AuxRole;
  roleKey: AuxRoleKey;
}

export interface Topology {
  file: string;
  global: GlobalOptions;
  monitored: Record<string, unknown>;
  /** server_configs.<component> blocks, keyed as in the YAML (tidb, tikv, pd, tiflash, tiflash-learner, cdc, ...). */
  serverConfigs: Record<string, Record<string, unknown>>;
  componentVersions: Record<string, string>;
  instances: Instance[];
  /** Distinct hosts (SSH targets) in first-seen order with their ssh ports. */
  hosts: Array<{ host: string; sshPort: number }>;
  warnings: import('../errors').TopologyProblem[];
  /** Instances of roles tiseal does not manage (tso, kvcdc, tispark, ...), in TiUP start order. */
  otherInstances?: AuxInstance[];
  /** `component_sources` as written. */
  componentSources?: Record<string, string>;
  /** Cluster version when the file is a TiUP meta.yaml (`tidb_version`). */
  clusterVersion?: string;
}
