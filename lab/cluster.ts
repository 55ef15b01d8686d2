/** Deploy + start in TiUP's order + wait healthy, and the wipe-and-redeploy used by `reset`. */
import type { Topology } from '../src/topology/types';
import { deployHosts, startRole, wipeHosts } from './deploy';
import { enablePlacementRules, waitPdReady, waitStatus, waitStoresUp } from './health';
import { hasMonitoring, startMonitoring } from './monitoring';
import type { SshTarget } from './ssh';

export interface DeployTimings {
  wipeMs?: number;
  deployMs: number;
  startMs: number;
}

const STEP_TIMEOUT_MS = 120_000; // TiUP waits up to 120 s per instance

/** Start pd → tikv → tidb → tiflash → cdc, each role in parallel, waiting for each to be ready. */
async function startComponents(topo: Topology, ssh: SshTarget, log: (m: string) => void): Promise<void> {
  const has = (r: string): boolean => topo.instances.some((i) => i.role === r);
  if (has('pd')) {
    log('starting PD');
    await startRole(topo, 'pd', ssh);
    await waitPdReady(topo, STEP_TIMEOUT_MS);
  }
  if (has('tikv')) {
    log('starting TiKV');
    const kv = await startRole(topo, 'tikv', ssh);
    await waitStoresUp(topo, kv, STEP_TIMEOUT_MS);
  }
  if (has('pump')) {
    log('starting Pump');
    await waitStatus(await startRole(topo, 'pump', ssh), 'port', 8250, STEP_TIMEOUT_MS);
  }
  if (has('tidb')) {
    log('starting TiDB');
    const db = await startRole(topo, 'tidb', ssh);
    await waitStatus(db, 'status_port', 10080, STEP_TIMEOUT_MS);
  }
  if (has('tiflash')) {
    log('starting TiFlash');
    await enablePlacementRules(topo);
    const tf = await startRole(topo, 'tiflash', ssh);
    await waitStoresUp(topo, tf, STEP_TIMEOUT_MS);
  }
  if (has('drainer')) {
    log('starting Drainer');
    await waitStatus(await startRole(topo, 'drainer', ssh), 'port', 8249, STEP_TIMEOUT_MS);
  }
  if (has('cdc')) {
    log('starting TiCDC');
    const cdc = await startRole(topo, 'cdc', ssh);
    await waitStatus(cdc, 'port', 8300, STEP_TIMEOUT_MS);
  }
}

/** Components in TiUP's order; monitoring (TiUP starts it last) needs none of them, so the lab starts it alongside and saves its wait. */
export async function startCluster(topo: Topology, ssh: SshTarget, log: (m: string) => void): Promise<void> {
  if (!hasMonitoring(topo)) return startComponents(topo, ssh, log);
  log('starting node_exporter, blackbox_exporter and Prometheus');
  await Promise.all([startComponents(topo, ssh, log), startMonitoring(topo, ssh, STEP_TIMEOUT_MS)]);
}

/** Lay out a fresh plaintext cluster and start it. With `wipe`, first remove whatever runs there. */
export async function deployCluster(topo: Topology, ssh: SshTarget, opts: { version: string; wipe: boolean; log: (m: string) => void }): Promise<DeployTimings> {
  let wipeMs: number | undefined;
  if (opts.wipe) {
    const t0 = Date.now();
    opts.log('stopping and wiping the cluster on every host');
    await wipeHosts(topo, ssh);
    wipeMs = Date.now() - t0;
  }
  const t1 = Date.now();
  opts.log('deploying plaintext cluster files (TiUP layout)');
  await deployHosts(topo, ssh, opts.version);
  const deployMs = Date.now() - t1;
  const t2 = Date.now();
  await startCluster(topo, ssh, opts.log);
  return { wipeMs, deployMs, startMs: Date.now() - t2 };
}
