/**
 * Plaintext component config files as TiUP generates them: server_configs.<component> merged with
 * the instance's `config:` (dotted keys nested), TiUP's header on top. TiFlash gets TiUP's built-in
 * defaults underneath (pkg/cluster/spec/tiflash.go initTiFlashConfig / InitTiFlashLearnerConfig).
 */
import * as posix from 'path/posix';
import { TisealError } from '../errors';
import type { Instance, Topology } from '../topology/types';
import { joinHostPort, listenHostOf, pdHostPorts, portOf } from './addresses';
import { ConfigMap, mergeConfig, mergeToToml } from './toml';

export interface ConfigOptions {
  /** Cluster version (decides version-dependent TiFlash keys). Default: the topology's, else v8.5.1. */
  version?: string;
}

export const DEFAULT_CLUSTER_VERSION = 'v8.5.1';

/** Compare `vX.Y.Z` versions (pre-release suffixes ignored); nightly sorts last. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string): number[] => (v.includes('nightly') ? [Infinity] : v.replace(/^v/, '').split(/[.-]/).slice(0, 3).map((x) => Number(x) || 0));
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 3; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d > 0 ? 1 : -1;
  }
  return 0;
}

function versionOf(inst: Instance, topo: Topology, opts: ConfigOptions): string {
  return opts.version ?? topo.componentVersions?.[inst.role] ?? topo.clusterVersion ?? DEFAULT_CLUSTER_VERSION;
}

function confPath(inst: Instance, file: string): string {
  const hit = inst.configFiles?.find((f) => posix.basename(f) === file);
  return hit ?? posix.join(inst.deployDir, 'conf', file);
}

function dataDirs(inst: Instance): string[] {
  const dirs = inst.dataDirs?.length ? inst.dataDirs : inst.dataDir ? [inst.dataDir] : [];
  if (dirs.length === 0) throw new TisealError(`${inst.role} ${inst.host}:${inst.port} has no data_dir`);
  return dirs;
}

/** TiUP's tiflash.toml defaults for this instance and version. */
export function tiflashDefaults(inst: Instance, topo: Topology, version: string): ConfigMap {
  const dirs = dataDirs(inst);
  const tmp = typeof inst.raw?.tmp_path === 'string' && inst.raw.tmp_path ? (inst.raw.tmp_path as string) : `${dirs[0]}/tmp`;
  const d: ConfigMap = {
    default_profile: 'default',
    display_name: 'TiFlash',
    listen_host: listenHostOf(inst, topo),
    tmp_path: tmp,
    path: dirs.join(','),
    'flash.tidb_status_addr': topo.instances
      .filter((i) => i.role === 'tidb')
      .map((t) => joinHostPort(t.host, portOf(t, 'status_port', 10080)))
      .join(','),
    'flash.service_addr': joinHostPort(inst.host, portOf(inst, 'flash_service_port', 3930)),
    'flash.flash_cluster.cluster_manager_path': `${inst.deployDir}/bin/tiflash/flash_cluster_manager`,
    'flash.flash_cluster.log': `${inst.logDir}/tiflash_cluster_manager.log`,
    'flash.flash_cluster.master_ttl': 60,
    'flash.flash_cluster.refresh_interval': 20,
    'flash.flash_cluster.update_rule_interval': 5,
    'flash.proxy.config': `${inst.deployDir}/conf/tiflash-learner.toml`,
    'status.metrics_port': portOf(inst, 'metrics_port', 8234),
    'logger.errorlog': `${inst.logDir}/tiflash_error.log`,
    'logger.log': `${inst.logDir}/tiflash.log`,
    'logger.count': 20,
    'logger.size': '1000M',
    // TiKV-style "host:port,…": unchanged by TLS.
    'raft.pd_addr': pdHostPorts(topo).join(','),
  };
  // Only TiFlash < v7.1.0 listens on these; TiUP leaves them out for newer versions.
  if (compareVersions(version, 'v7.1.0') < 0) {
    d.tcp_port = portOf(inst, 'tcp_port', 9000);
    d.http_port = portOf(inst, 'http_port', 8123);
  }
  if (compareVersions(version, 'v5.4.0') < 0) {
    d['application.runAsDaemon'] = true;
    d.mark_cache_size = 5368709120;
  }
  return d;
}

/** TiUP's tiflash-learner.toml defaults (the embedded TiKV "proxy"). */
export function tiflashLearnerDefaults(inst: Instance, topo: Topology): ConfigMap {
  const listen = listenHostOf(inst, topo);
  const statusPort = portOf(inst, 'flash_proxy_status_port', 20292);
  const proxyPort = portOf(inst, 'flash_proxy_port', 20170);
  return {
    'log-file': `${inst.logDir}/tiflash_tikv.log`,
    'server.engine-addr': joinHostPort(inst.host, portOf(inst, 'flash_service_port', 3930)),
    'server.addr': joinHostPort(listen, proxyPort),
    'server.advertise-addr': joinHostPort(inst.host, proxyPort),
    'server.status-addr': joinHostPort(listen, statusPort),
    'server.advertise-status-addr': joinHostPort(inst.host, statusPort),
    'storage.data-dir': `${dataDirs(inst)[0]}/flash`,
    'rocksdb.wal-dir': '',
    'security.ca-path': '',
    'security.cert-path': '',
    'security.key-path': '',
    'raftstore.apply-pool-size': 4,
    'raftstore.store-pool-size': 4,
  };
}

function hasKey(m: ConfigMap, dotted: string): boolean {
  let cur: unknown = m;
  for (const part of dotted.split('.')) {
    if (typeof cur !== 'object' || cur === null || !(part in cur)) return false;
    cur = (cur as ConfigMap)[part];
  }
  return true;
}

/** Config files of one instance: absolute path on the host → TOML text. */
export function renderConfig(inst: Instance, topo: Topology, opts: ConfigOptions = {}): Record<string, string> {
  const sc = (name: string): ConfigMap | undefined => topo.serverConfigs?.[name];
  switch (inst.role) {
    case 'pd':
    case 'tikv':
    case 'tidb':
    case 'cdc':
    case 'pump':
    case 'drainer':
      return { [confPath(inst, `${inst.role}.toml`)]: mergeToToml(inst.role, sc(inst.role), inst.config) };
    case 'tiflash': {
      const version = versionOf(inst, topo, opts);
      const learner = mergeToToml('tiflash-learner', tiflashLearnerDefaults(inst, topo), sc('tiflash-learner'), inst.learnerConfig);
      const defaults = tiflashDefaults(inst, topo, version);
      // Multi-disk deployments (storage.main.dir) replace the legacy `path` key.
      if (hasKey(mergeConfig(sc('tiflash'), inst.config), 'storage.main.dir')) delete defaults.path;
      const main = mergeToToml('tiflash', defaults, sc('tiflash'), inst.config);
      return { [confPath(inst, 'tiflash.toml')]: main, [confPath(inst, 'tiflash-learner.toml')]: learner };
    }
    default:
      throw new TisealError(`no config renderer for role ${inst.role}`, { suggestion: 'tiseal renders configs for pd, tikv, tidb, tiflash, cdc, pump and drainer' });
  }
}
