/**
 * Every file TiUP writes for a cluster, per host: what `tiup cluster deploy` lays down (and `reload`
 * regenerates) from meta.yaml. Binaries, certificates and Prometheus rules are not rendered here.
 */
import * as posix from 'path/posix';
import { configFiles } from './configs';
import { blackboxYml, ngMonitoringToml, prometheusYml } from './monitoring';
import { runBinlog, runBlackboxExporter, runCdc, runNodeExporter, runPd, runPrometheus, runTidb, runTiflash, runTikv } from './scripts';
import { Cluster, Instance, monitoredHosts } from './spec';
import { mergeResourceControl, unitFile } from './systemd';
import { field } from './spec';

export interface TiupFile {
  host: string;
  path: string;
  content: string;
  /** TiUP: scripts `chmod +x`, units moved in by root. */
  mode: number;
  owner: 'user' | 'root';
  /** The instance (`host:port`) or agent the file belongs to. */
  of: string;
}

const UNIT_DIR = '/etc/systemd/system';

export function runScript(i: Instance, c: Cluster): string {
  switch (i.role) {
    case 'pd':
      return runPd(i, c);
    case 'tikv':
      return runTikv(i, c);
    case 'tidb':
      return runTidb(i, c);
    case 'tiflash':
      return runTiflash(i, c);
    case 'cdc':
      return runCdc(i, c);
    case 'pump':
    case 'drainer':
      return runBinlog(i, c);
    case 'prometheus':
      return runPrometheus(i);
    default:
      throw new Error(`lab/tiup has no run script for ${i.role}`);
  }
}

/** instance.go BaseInstance.InitConfig + <role>.go InitConfig: unit, run script, configs of one instance. */
export function instanceFiles(i: Instance, c: Cluster, script = runScript(i, c)): TiupFile[] {
  const of = `${i.host}:${i.port}`;
  const unit = unitFile({
    service: i.role,
    user: c.user,
    deployDir: i.deployDir,
    resourceControl: mergeResourceControl(c.global.resource_control, i.spec.resource_control),
    systemdMode: field(c.global.systemd_mode),
    restart: i.role === 'pump' || i.role === 'drainer' ? 'on-failure' : '',
  });
  const files: TiupFile[] = [
    { host: i.host, path: `${UNIT_DIR}/${i.role}-${i.port}.service`, content: unit, mode: 0o644, owner: 'root', of },
    { host: i.host, path: posix.join(i.deployDir, 'scripts', `run_${i.role}.sh`), content: script, mode: 0o755, owner: 'user', of },
  ];
  const confs: Record<string, string> =
    i.role === 'prometheus'
      ? { 'prometheus.yml': prometheusYml(i, c), ...(Number(i.spec.ng_port) > 0 ? { 'ngmonitoring.toml': ngMonitoringToml(i, c) } : {}) }
      : configFiles(i, c);
  for (const [name, content] of Object.entries(confs)) files.push({ host: i.host, path: posix.join(i.deployDir, 'conf', name), content, mode: 0o644, owner: 'user', of });
  return files;
}

/** task/monitored_config.go: node_exporter and blackbox_exporter on one host. */
export function agentFiles(host: string, c: Cluster): TiupFile[] {
  const m = c.monitored;
  const rc = mergeResourceControl(c.global.resource_control, m.resourceControl);
  const mode = field(c.global.systemd_mode);
  const f = (of: string, path: string, content: string, exec: boolean): TiupFile => ({ host, path, content, mode: exec ? 0o755 : 0o644, owner: path.startsWith(UNIT_DIR) ? 'root' : 'user', of });
  return [
    f('node_exporter', `${UNIT_DIR}/node_exporter-${m.nodeExporterPort}.service`, unitFile({ service: 'node_exporter', user: c.user, deployDir: m.deployDir, resourceControl: rc, systemdMode: mode }), false),
    f('node_exporter', posix.join(m.deployDir, 'conf/blackbox.yml'), blackboxYml(c), false),
    f('node_exporter', posix.join(m.deployDir, 'scripts/run_node_exporter.sh'), runNodeExporter(c), true),
    f('blackbox_exporter', `${UNIT_DIR}/blackbox_exporter-${m.blackboxExporterPort}.service`, unitFile({ service: 'blackbox_exporter', user: c.user, deployDir: m.deployDir, resourceControl: rc, systemdMode: mode, grantCapNetRaw: true }), false),
    f('blackbox_exporter', posix.join(m.deployDir, 'scripts/run_blackbox_exporter.sh'), runBlackboxExporter(c), true),
  ];
}

/** Every rendered file of the cluster: instances in IterInstance order, then each monitored host's agents. */
export function renderCluster(c: Cluster): TiupFile[] {
  return [...c.instances.flatMap((i) => instanceFiles(i, c)), ...monitoredHosts(c).flatMap((h) => agentFiles(h, c))];
}
