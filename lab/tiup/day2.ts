/**
 * Day-2 TiUP operations as pure functions over meta.yaml: what `tiup cluster reload` and
 * `tiup cluster scale-out` (one TiKV) write, for the lab to replay.
 */
import { isIP } from 'net';
import { agentFiles, instanceFiles, renderCluster, TiupFile } from './render';
import { Cluster, Instance, monitoredHosts, ofRole, versionAtLeast } from './spec';

export interface ReloadPlan {
  /** manager/reload.go: buildInitConfigTasks (every instance, IterInstance order) + buildInitMonitoredConfigTasks. */
  files: TiupFile[];
  /** operator.Upgrade restarts roles in ComponentsByUpdateOrder (spec.go): `<role>-<port>.service` per step. */
  restart: Array<{ role: string; units: Array<{ host: string; unit: string }> }>;
}

/** spec.go ComponentsByUpdateOrder for the roles lab/tiup renders (cdc first from v5.1.0: TiCDCUpgradeBeforePDTiKVTiDB). */
export function updateOrder(version: string): string[] {
  const cdcFirst = versionAtLeast(version, 'v5.1.0');
  return ['tiflash', ...(cdcFirst ? ['cdc'] : []), 'pd', 'tikv', 'pump', 'tidb', 'drainer', ...(cdcFirst ? [] : ['cdc']), 'prometheus'];
}

export function reloadPlan(c: Cluster): ReloadPlan {
  return {
    files: renderCluster(c),
    restart: updateOrder(c.version)
      .map((role) => ({ role, units: ofRole(c, role).map((i) => ({ host: i.host, unit: `${role}-${i.port}.service` })) }))
      .filter((s) => s.units.length > 0),
  };
}

export interface ScaleOut {
  /** The new TiKV's files (tikv.go ScaleConfig = InitConfig against the merged topology). */
  files: TiupFile[];
  /** Agents for a host the cluster did not have yet (builder.go buildMonitoredDeployTask). */
  agents: TiupFile[];
  /** manager/builder.go buildScaleOutTask: refreshed configs of the existing instances (buildInitConfigTasks on the merged topology, new nodes skipped there). */
  refreshed: TiupFile[];
  /** With TLS: the cert TiUP issues from tls/ca.pem for the new node (builder.go buildCertificateTasks). */
  /** task/tls.go: CN = component, DNS localhost (+ the host if not an IP), IP 127.0.0.1 (+ the host's IP). */
  certificate?: { host: string; dir: string; files: string[]; commonName: string; dns: string[]; ips: string[] };
}

/**
 * `tiup cluster scale-out` of one TiKV: `newInstance` is the tikv_servers entry already resolved
 * against the cluster (e.g. from parseMeta on the meta.yaml with the entry appended).
 */
export function scaleOutFiles(c: Cluster, newInstance: Instance): ScaleOut {
  if (newInstance.role !== 'tikv') throw new Error('scaleOutFiles handles one TiKV');
  const merged: Cluster = { ...c, instances: c.instances.some((i) => i === newInstance) ? c.instances : [...c.instances, newInstance] };
  const isNew = (i: Instance): boolean => i === newInstance;
  const newHost = !monitoredHosts(c).includes(newInstance.host);
  return {
    files: instanceFiles(newInstance, merged),
    agents: newHost ? agentFiles(newInstance.host, merged) : [],
    refreshed: merged.instances.filter((i) => !isNew(i)).flatMap((i) => instanceFiles(i, merged)),
    certificate: c.tls
      ? {
          host: newInstance.host,
          dir: `${newInstance.deployDir}/tls`,
          files: ['ca.crt', 'tikv.crt', 'tikv.pem'],
          commonName: 'tikv',
          dns: isIP(newInstance.host) || newInstance.host === 'localhost' ? ['localhost'] : ['localhost', newInstance.host],
          ips: isIP(newInstance.host) && newInstance.host !== '127.0.0.1' ? ['127.0.0.1', newInstance.host] : ['127.0.0.1'],
        }
      : undefined,
  };
}
