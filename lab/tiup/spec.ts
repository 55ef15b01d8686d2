/**
 * A TiUP meta.yaml read the way TiUP reads it, with the defaults TiUP fills in
 * (pingcap/tiup v1.16.5 pkg/cluster/spec/spec.go setCustomDefaults/AdjustByVersion, the `default:`
 * tags of each *Spec, instance.go DataDir/LogDir, util.go Abs). Nothing from tiseal's src/.
 */
import * as posix from 'path/posix';
import { GoMap, isMap } from './toml';
import { parseGoYaml } from './yaml';

/** Roles whose own files lab/tiup renders, in ComponentsByStartOrder (spec.go). */
export const RENDERED_ROLES = ['pd', 'tikv', 'pump', 'tidb', 'tiflash', 'drainer', 'cdc', 'prometheus'] as const;
export type Role = (typeof RENDERED_ROLES)[number];

/** Topology key and TiUP's port defaults per role (the `default:` struct tags); `main` names GetMainPort's field. */
const ROLE_SPECS: Record<string, { key: string; main: string; ports: Record<string, number> }> = {
  pd: { key: 'pd_servers', main: 'client_port', ports: { client_port: 2379, peer_port: 2380 } },
  tikv: { key: 'tikv_servers', main: 'port', ports: { port: 20160, status_port: 20180 } },
  pump: { key: 'pump_servers', main: 'port', ports: { port: 8250 } },
  tidb: { key: 'tidb_servers', main: 'port', ports: { port: 4000, status_port: 10080 } },
  tiflash: {
    key: 'tiflash_servers',
    main: 'tcp_port',
    ports: { tcp_port: 9000, http_port: 8123, flash_service_port: 3930, flash_proxy_port: 20170, flash_proxy_status_port: 20292, metrics_port: 8234 },
  },
  drainer: { key: 'drainer_servers', main: 'port', ports: { port: 8249 } },
  cdc: { key: 'cdc_servers', main: 'port', ports: { port: 8300 } },
  prometheus: { key: 'monitoring_servers', main: 'port', ports: { port: 9090 } },
};
/** Roles lab/tiup does not render but whose addresses land in prometheus.yml (monitoring.go). */
const OTHER_SPECS: Record<string, { key: string; main: string; ports: Record<string, number> }> = {
  'tikv-cdc': { key: 'kvcdc_servers', main: 'port', ports: { port: 8600 } },
  grafana: { key: 'grafana_servers', main: 'port', ports: { port: 3000 } },
  alertmanager: { key: 'alertmanager_servers', main: 'web_port', ports: { web_port: 9093, cluster_port: 9094 } },
};
/** Role names used for directories (spec Role()): grafana/alertmanager as TiUP names them. */
const DIR_ROLE: Record<string, string> = { 'tikv-cdc': 'tikv-cdc' };
const HAS_DATA_DIR = new Set(['pd', 'tikv', 'pump', 'tiflash', 'drainer', 'cdc', 'prometheus', 'tikv-cdc', 'alertmanager']);

export interface Instance {
  role: string;
  host: string;
  /** GetMainPort: names the unit (`<role>-<port>.service`) and the default dirs. */
  port: number;
  ports: Record<string, number>;
  /** Absolute, as buildInitConfigTasks passes them (meta.DirPaths). */
  deployDir: string;
  dataDirs: string[];
  logDir: string;
  /** The instance's own entry, defaults filled in. */
  spec: GoMap;
}

export interface Monitored {
  nodeExporterPort: number;
  blackboxExporterPort: number;
  deployDir: string;
  dataDir: string;
  logDir: string;
  numaNode: string;
  resourceControl: GoMap;
}

export interface Cluster {
  name: string;
  user: string;
  version: string;
  global: GoMap;
  tls: boolean;
  serverConfigs: Record<string, GoMap | undefined>;
  monitored: Monitored;
  /** Rendered roles, ComponentsByStartOrder then topology order (IterInstance). */
  instances: Instance[];
  /** tikv-cdc, grafana, alertmanager: only their addresses are used. */
  others: Instance[];
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const num = (v: unknown, d: number): number => (typeof v === 'number' && v !== 0 ? v : d);

/** util.go Abs: relative paths are under /home/<user>. */
export function abs(user: string, p: string): string {
  const t = p.trim();
  return posix.normalize(t.startsWith('/') ? t : posix.join('/home', user.trim(), t));
}

/** Go semver.Compare on vX.Y.Z (nightly counts as newest, as tidbver does with strings.Contains). */
export function versionAtLeast(version: string, min: string): boolean {
  if (version.includes('nightly')) return true;
  const parse = (v: string): number[] => v.replace(/^v/, '').split(/[.-]/).slice(0, 3).map((x) => Number(x) || 0);
  const [a, b] = [parse(version), parse(min)];
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] > b[i];
  return true;
}

function instancesOf(role: string, def: { key: string; main: string; ports: Record<string, number> }, topo: GoMap, global: GoMap, user: string): Instance[] {
  const list = topo[def.key];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new Error(`meta.yaml: topology.${def.key} is not a list`);
  return list.map((raw, i) => {
    if (!isMap(raw) || typeof raw.host !== 'string') throw new Error(`meta.yaml: topology.${def.key}[${i}] has no host`);
    const ports: Record<string, number> = {};
    for (const [k, d] of Object.entries(def.ports)) ports[k] = num(raw[k], d);
    const port = ports[def.main];
    const dirRole = DIR_ROLE[role] ?? role;
    // setCustomDefaults: deploy_dir/data_dir/log_dir default to <global>/<role>-<main port>.
    const gDeploy = str(global.deploy_dir) || 'deploy';
    const deploy = str(raw.deploy_dir) || posix.join(gDeploy, `${dirRole}-${port}`);
    const deployDir = abs(user, deploy);
    let dataDirs: string[] = [];
    if (HAS_DATA_DIR.has(role)) {
      const gData = str(global.data_dir) || 'data';
      let data = str(raw.data_dir);
      if (!data) data = gData.startsWith('/') ? posix.join(gData, `${dirRole}-${port}`) : gData;
      // instance.go DataDir: relative to deploy_dir; util.go MultiDirAbs: comma separated.
      dataDirs = data.split(',').map((d) => d.trim()).filter(Boolean).map((d) => abs(user, d.startsWith('/') ? d : posix.join(deployDir, d)));
    }
    const gLog = str(global.log_dir);
    let log = str(raw.log_dir);
    if (!log) log = gLog.startsWith('/') ? posix.join(gLog, `${dirRole}-${port}`) : gLog || 'log';
    const logDir = abs(user, log.startsWith('/') ? log : posix.join(deployDir, log));
    const spec: GoMap = { ...raw, ...ports };
    if (role === 'pd' && !str(raw.name)) spec.name = `pd-${raw.host}-${ports.client_port}`;
    return { role, host: raw.host, port, ports, deployDir, dataDirs, logDir, spec };
  });
}

/** Parse a meta.yaml (`user`, `tidb_version`, `topology:`) as TiUP holds it after deploy. */
export function parseMeta(text: string, clusterName: string): Cluster {
  const doc = parseGoYaml(text);
  if (!isMap(doc) || !isMap(doc.topology)) throw new Error('meta.yaml: no topology');
  const topo = doc.topology;
  const global: GoMap = isMap(topo.global) ? topo.global : {};
  const user = str(doc.user) || str(global.user) || 'tidb';
  const version = str(doc.tidb_version);
  if (!/^v\d+\.\d+\.\d+/.test(version) && !version.includes('nightly')) throw new Error(`meta.yaml: tidb_version ${JSON.stringify(version)} is not vX.Y.Z`);
  // Older versions take other branches in TiUP (TiFlash users/quotas, http_port, CDC flags...): not rendered here.
  if (!versionAtLeast(version, 'v7.1.0')) throw new Error(`lab/tiup renders TiUP's output for v7.1.0 and later, not ${version}`);
  for (const k of Object.keys(topo)) {
    if (!k.endsWith('_servers') || !Array.isArray(topo[k]) || (topo[k] as unknown[]).length === 0) continue;
    const known = [...Object.values(ROLE_SPECS), ...Object.values(OTHER_SPECS)].some((d) => d.key === k);
    if (!known) throw new Error(`lab/tiup does not render topology.${k}`);
  }
  const instances = RENDERED_ROLES.flatMap((r) => instancesOf(r, ROLE_SPECS[r], topo, global, user));
  // AdjustByVersion: ng_port defaults to 12020 from v5.4.0 (tidbver.NgMonitorDeployByDefault).
  for (const p of instances) if (p.role === 'prometheus' && !num(p.spec.ng_port, 0)) p.spec.ng_port = 12020;
  const others = Object.entries(OTHER_SPECS).flatMap(([r, d]) => instancesOf(r, d, topo, global, user));
  const m: GoMap = isMap(topo.monitored) ? topo.monitored : {};
  const nodePort = num(m.node_exporter_port, 9100);
  // spec.go: monitored dirs default to <global>/monitor-<node_exporter_port>, log under the deploy dir.
  const mDeploy = str(m.deploy_dir) || posix.join(str(global.deploy_dir) || 'deploy', `monitor-${nodePort}`);
  const mData = str(m.data_dir) || posix.join(str(global.data_dir) || 'data', `monitor-${nodePort}`);
  let mLog = str(m.log_dir) || 'log';
  if (!mLog.startsWith('/') && !mLog.startsWith(mDeploy)) mLog = posix.join(mDeploy, mLog);
  const sc: Record<string, GoMap | undefined> = {};
  if (isMap(topo.server_configs)) for (const [k, v] of Object.entries(topo.server_configs)) sc[k] = isMap(v) ? v : undefined;
  return {
    name: clusterName,
    user,
    version,
    global,
    tls: global.enable_tls === true,
    serverConfigs: sc,
    monitored: {
      nodeExporterPort: nodePort,
      blackboxExporterPort: num(m.blackbox_exporter_port, 9115),
      deployDir: abs(user, mDeploy),
      dataDir: abs(user, mData),
      logDir: abs(user, mLog),
      numaNode: str(m.numa_node),
      resourceControl: isMap(m.resource_control) ? m.resource_control : {},
    },
    instances,
    others,
  };
}

/** Go net.JoinHostPort. */
export const joinHostPort = (host: string, port: number | string): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** instance.go GetListenHost (the instance's listen_host, else global.listen_host, else the wildcard). */
export function listenHost(inst: Instance, c: Cluster): string {
  const own = str(inst.spec.listen_host) || str(c.global.listen_host);
  if (own) return own;
  return inst.host.includes(':') ? '::' : '0.0.0.0';
}

export const ofRole = (c: Cluster, role: string): Instance[] => [...c.instances, ...c.others].filter((i) => i.role === role);
export const field = str;

/** Hosts that get node_exporter and blackbox_exporter (manager/basic.go getMonitorHosts, first-seen order). */
export function monitoredHosts(c: Cluster): string[] {
  const ignore = new Set<string>();
  const hosts: string[] = [];
  for (const i of [...c.instances, ...c.others]) {
    if (i.spec.ignore_exporter === true) ignore.add(i.host);
    if (!hosts.includes(i.host)) hosts.push(i.host);
  }
  return hosts.filter((h) => !ignore.has(h));
}
