import type { GlobalOptions } from '../options';
import { clusterNameFor } from '../options';
import { SshPool } from '../ssh';
import type { ExecutorPool } from '../ssh/executor';
import { ClusterDir } from '../state/cluster-dir';
import { loadTopology } from '../topology';
import type { Topology } from '../topology/types';

/** Everything a cluster command needs: the parsed topology, its local state dir and one SSH pool. */
export async function openCluster(topologyFile: string, opts: GlobalOptions): Promise<{ topology: Topology; cluster: ClusterDir; pool: ExecutorPool; close: () => Promise<void> }> {
  const topology = loadTopology(topologyFile);
  const cluster = new ClusterDir(opts.stateDir, clusterNameFor(topologyFile, opts.clusterName));
  cluster.ensure();
  const pool = new SshPool({
    user: opts.sshUser ?? topology.global.user,
    port: opts.sshPort,
    identityFiles: opts.identityFiles,
    knownHostsFile: opts.knownHosts,
    acceptNewHostKeys: opts.acceptNewHostKeys,
    sshConfigFile: opts.sshConfig,
  });
  return { topology, cluster, pool, close: () => pool.closeAll() };
}
