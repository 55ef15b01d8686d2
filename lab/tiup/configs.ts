/**
 * conf/<role>.toml: pingcap/tiup v1.16.5 pkg/cluster/spec/<role>.go InitConfig — setTLSConfig puts (or,
 * TLS off, deletes) the role's `security.*` paths in the instance `config:`, then MergeServerConfig
 * writes Merge2Toml(server_configs.<role>, instance config). TiFlash: tiflash.go initTiFlashConfig /
 * InitTiFlashLearnerConfig (TiUP's defaults underneath; server_configs over the instance config, then
 * the instance config again on top).
 */
import { Cluster, Instance, joinHostPort, listenHost, ofRole } from './spec';
import { pdList } from './scripts';
import { GoMap, isMap, merge2Toml, mergeConfig } from './toml';

/** The `security.*` keys each role's setTLSConfig sets to <deploy>/tls/{ca.crt,<role>.crt,<role>.pem}. */
const TLS_KEYS: Record<string, [string, string, string]> = {
  pd: ['security.cacert-path', 'security.cert-path', 'security.key-path'], // pd.go
  tikv: ['security.ca-path', 'security.cert-path', 'security.key-path'], // tikv.go
  tidb: ['security.cluster-ssl-ca', 'security.cluster-ssl-cert', 'security.cluster-ssl-key'], // tidb.go
  pump: ['security.ssl-ca', 'security.ssl-cert', 'security.ssl-key'], // pump.go
  drainer: ['security.ssl-ca', 'security.ssl-cert', 'security.ssl-key'], // drainer.go
  tiflash: ['security.ca_path', 'security.cert_path', 'security.key_path'], // tiflash.go setTLSConfig
  'tiflash-learner': ['security.ca-path', 'security.cert-path', 'security.key-path'], // setTLSConfigWithTiFlashLearner
};

/** setTLSConfig on a copy of the instance config (TiUP mutates spec.Config; the keys are top-level dotted strings). */
export function withTls(role: string, inst: Instance, tls: boolean, config: unknown): GoMap | undefined {
  const keys = TLS_KEYS[role];
  const cfg: GoMap | undefined = isMap(config) ? { ...config } : undefined;
  if (!keys) return cfg;
  if (!tls) {
    if (cfg) for (const k of keys) delete cfg[k];
    return cfg;
  }
  const role0 = role === 'tiflash-learner' ? 'tiflash' : role; // i.Role(): the learner uses tiflash.crt
  const out = cfg ?? {};
  out[keys[0]] = `${inst.deployDir}/tls/ca.crt`;
  out[keys[1]] = `${inst.deployDir}/tls/${role0}.crt`;
  out[keys[2]] = `${inst.deployDir}/tls/${role0}.pem`;
  return out;
}

/** tiflash.go initTiFlashConfig's YAML defaults for v7.1.0+ (no tcp/http port, no runAsDaemon, no users.*). */
function tiflashDefaults(i: Instance, c: Cluster): GoMap {
  const d: GoMap = {
    default_profile: 'default',
    display_name: 'TiFlash',
    listen_host: listenHost(i, c),
    tmp_path: `${i.dataDirs[0]}/tmp`,
    'flash.tidb_status_addr': ofRole(c, 'tidb').map((t) => joinHostPort(t.host, t.ports.status_port)).join(','),
    'flash.service_addr': joinHostPort(i.host, i.ports.flash_service_port),
    'flash.flash_cluster.cluster_manager_path': `${i.deployDir}/bin/tiflash/flash_cluster_manager`,
    'flash.flash_cluster.log': `${i.logDir}/tiflash_cluster_manager.log`,
    'flash.flash_cluster.master_ttl': 60,
    'flash.flash_cluster.refresh_interval': 20,
    'flash.flash_cluster.update_rule_interval': 5,
    'flash.proxy.config': `${i.deployDir}/conf/tiflash-learner.toml`,
    'status.metrics_port': i.ports.metrics_port,
    'logger.errorlog': `${i.logDir}/tiflash_error.log`,
    'logger.log': `${i.logDir}/tiflash.log`,
    'raft.pd_addr': pdList(c).join(','),
  };
  return d;
}

/** checkTiFlashStorageConfig: storage.main.dir set means multi-disk, and `path` goes. */
function definesStorage(m: GoMap | undefined): boolean {
  const s = mergeConfig(m).storage;
  return isMap(s) && isMap(s.main) && Array.isArray(s.main.dir) && s.main.dir.length > 0;
}

function tiflashToml(i: Instance, c: Cluster): string {
  const own = withTls('tiflash', i, c.tls, i.spec.config);
  const global = c.serverConfigs.tiflash;
  const defaults = tiflashDefaults(i, c);
  // initTiFlashConfig: `path` only when neither server_configs.tiflash defines storage.main.dir.
  if (!definesStorage(global)) defaults.path = i.dataDirs.join(',');
  const conf = mergeConfig(defaults, own, global);
  // mergeTiFlashInstanceConfig: the instance's storage.main.dir drops `path`, then the instance config again.
  if (definesStorage(own)) delete conf.path;
  return merge2Toml('tiflash', mergeConfig(conf, own), undefined);
}

function tiflashLearnerToml(i: Instance, c: Cluster): string {
  const l = listenHost(i, c);
  const defaults: GoMap = {
    'log-file': `${i.logDir}/tiflash_tikv.log`,
    'server.engine-addr': joinHostPort(i.host, i.ports.flash_service_port),
    'server.addr': joinHostPort(l, i.ports.flash_proxy_port),
    'server.advertise-addr': joinHostPort(i.host, i.ports.flash_proxy_port),
    'server.status-addr': joinHostPort(l, i.ports.flash_proxy_status_port),
    'server.advertise-status-addr': joinHostPort(i.host, i.ports.flash_proxy_status_port),
    'storage.data-dir': `${i.dataDirs[0]}/flash`,
    'rocksdb.wal-dir': '',
    'security.ca-path': '',
    'security.cert-path': '',
    'security.key-path': '',
    'raftstore.apply-pool-size': 4,
    'raftstore.store-pool-size': 4,
  };
  const own = withTls('tiflash-learner', i, c.tls, i.spec.learner_config);
  const conf = mergeConfig(defaults, own, c.serverConfigs['tiflash-learner']);
  // mergeTiFlashLearnerServerConfig: Merge2Toml("tiflash-learner", conf, spec.LearnerConfig).
  return merge2Toml('tiflash-learner', conf, own);
}

/** conf/*.toml of one instance: file name → content. */
export function configFiles(i: Instance, c: Cluster): Record<string, string> {
  switch (i.role) {
    case 'pd':
    case 'tikv':
    case 'tidb':
    case 'pump':
    case 'drainer':
      return { [`${i.role}.toml`]: merge2Toml(i.role, c.serverConfigs[i.role], withTls(i.role, i, c.tls, i.spec.config)) };
    case 'cdc':
      // cdc.go: setTLSConfig(false, nil) "doesn't work"; TLS goes on the command line.
      return { 'cdc.toml': merge2Toml('cdc', c.serverConfigs.cdc, isMap(i.spec.config) ? i.spec.config : undefined) };
    case 'tiflash':
      return { 'tiflash-learner.toml': tiflashLearnerToml(i, c), 'tiflash.toml': tiflashToml(i, c) };
    default:
      return {};
  }
}

