/**
 * The `--json` form of a topology. Field names are part of tiseal's interface: add fields, do not
 * rename them. Paths are absolute; ports are numbers; keys appear in the order documented here.
 */
import type { TopologyProblem } from '../errors';
import { allInstancesInStartOrder, instanceAddress } from './query';
import type { AuxInstance, Instance, Topology } from './types';

export interface InstanceJson {
  /** TiUP instance ID, `host:port` of the main port. */
  id: string;
  role: string;
  /** The topology list it came from, e.g. `pd_servers`. */
  roleKey: string;
  /** false for roles tiseal does not manage (tso, kvcdc, tispark, ...). */
  managed: boolean;
  host: string;
  /** SSH target when it differs from `host` (TiUP manage_host). */
  manageHost: string | null;
  sshPort: number;
  port: number;
  /** Every port by TiUP field name (client_port, peer_port, status_port, ...). */
  ports: Record<string, number>;
  /** PD (and TSO/scheduling) member name; null for other roles. */
  name: string | null;
  deployDir: string;
  /** First data dir; null for roles without data. */
  dataDir: string | null;
  dataDirs: string[];
  logDir: string;
  unit: string;
  runScript: string;
  configFiles: string[];
  /** Certificate CN and file stem under `<deployDir>/tls/`. */
  certName: string;
  listenHost: string | null;
  advertise: Record<string, string>;
  numaNode: string | null;
  os: string | null;
  arch: string | null;
  /** Per-instance `config:` block as written. */
  config: Record<string, unknown>;
  source: { file: string; line: number; column: number };
}

export interface TopologyJson {
  file: string;
  clusterVersion: string | null;
  global: {
    user: string;
    group: string | null;
    sshPort: number;
    deployDir: string;
    dataDir: string;
    logDir: string | null;
    arch: string;
    os: string;
    systemdMode: 'system' | 'user';
    listenHost: string | null;
    enableTls: boolean;
  };
  /** Distinct SSH targets of the managed instances. */
  hosts: Array<{ host: string; sshPort: number }>;
  /** All instances in TiUP start order (managed ones have `managed: true`). */
  instances: InstanceJson[];
  monitored: Record<string, unknown>;
  serverConfigs: Record<string, Record<string, unknown>>;
  componentVersions: Record<string, string>;
  warnings: TopologyProblem[];
}

function instanceJson(i: Instance | AuxInstance, managed: boolean): InstanceJson {
  return {
    id: instanceAddress(i),
    role: i.role,
    roleKey: i.roleKey ?? '',
    managed,
    host: i.host,
    manageHost: i.manageHost ?? null,
    sshPort: i.sshPort,
    port: i.port,
    ports: { ...i.ports },
    name: i.name ?? null,
    deployDir: i.deployDir,
    dataDir: i.dataDir ?? null,
    dataDirs: i.dataDirs ?? (i.dataDir ? [i.dataDir] : []),
    logDir: i.logDir,
    unit: i.unit,
    runScript: i.runScript,
    configFiles: [...i.configFiles],
    certName: i.certName,
    listenHost: i.listenHost ?? null,
    advertise: { ...i.advertise },
    numaNode: i.numaNode ?? null,
    os: i.os ?? null,
    arch: i.arch ?? null,
    config: i.config,
    source: { file: i.source.file, line: i.source.line, column: i.source.column },
  };
}

export function topologyToJson(t: Topology): TopologyJson {
  const managed = new Set<unknown>(t.instances);
  const g = t.global;
  return {
    file: t.file,
    clusterVersion: t.clusterVersion ?? null,
    global: {
      user: g.user,
      group: g.group ?? null,
      sshPort: g.sshPort,
      deployDir: g.deployDir,
      dataDir: g.dataDir,
      logDir: g.logDir ?? null,
      arch: g.arch,
      os: g.os,
      systemdMode: g.systemdMode,
      listenHost: g.listenHost ?? null,
      enableTls: g.enableTls,
    },
    hosts: t.hosts.map((h) => ({ host: h.host, sshPort: h.sshPort })),
    instances: allInstancesInStartOrder(t).map((i) => instanceJson(i, managed.has(i))),
    monitored: t.monitored,
    serverConfigs: t.serverConfigs,
    componentVersions: t.componentVersions,
    warnings: t.warnings.map((w) => ({ ...w })),
  };
}
