import type { GlobalOptions } from '../../src/options';
import { PdClient } from '../../src/pd/client';
import { FakePool } from '../../src/ssh/fake';
import { ClusterDir } from '../../src/state/cluster-dir';
import type { TlsContext } from '../../src/tasks/context';
import { pdInstances, type Instance, type Topology } from '../../src/topology';
import { instanceFiles } from '../../lab/deploy';
import { DEFAULT_EMULATED_VERSION } from '../../lab/emulators/common/version';

/**
 * A FakePool whose hosts hold a freshly deployed plaintext cluster with exactly the files the lab
 * deploys (lab/deploy.ts `instanceFiles`: configs, run scripts, units, Prometheus's files), owned
 * as TiUP leaves them: the deploy user's deploy, conf and scripts dirs, root's unit files.
 * `only` picks the instances to lay out (all by default).
 */
export function deployedPool(t: Topology, only: (i: Instance) => boolean = () => true): FakePool {
  const pool = new FakePool();
  const user = t.global.user;
  for (const inst of t.instances.filter(only)) {
    const h = pool.host(inst.host);
    for (const f of instanceFiles(inst, t, DEFAULT_EMULATED_VERSION)) {
      h.addFile(f.path, f.content, { owner: f.owner === 'root' ? 'root' : user, group: f.owner === 'root' ? 'root' : user, mode: f.mode });
    }
    for (const d of [inst.deployDir, `${inst.deployDir}/conf`, `${inst.deployDir}/scripts`]) {
      const e = h.entry(d);
      if (e) e.owner = e.group = user;
    }
  }
  return pool;
}

/**
 * The TlsContext a step sees on those fake hosts: PD scaled in to its first member, no PD to call
 * (the steps under test read and write files), the cluster dir under `stateDir`.
 */
export function fakeTlsContext(o: { want: 'on' | 'off'; topology: Topology; pool: FakePool; stateDir: string; cluster?: string; runId?: string; pd?: TlsContext['pd']; flags?: Partial<TlsContext['flags']>; facts?: unknown }): TlsContext {
  const pds = pdInstances(o.topology);
  return {
    want: o.want,
    runId: o.runId ?? 'r1',
    topology: o.topology,
    opts: { stateDir: o.stateDir, concurrency: 4 } as GlobalOptions,
    cluster: new ClusterDir(o.stateDir, o.cluster ?? 'lab'),
    pool: o.pool,
    pd: o.pd ?? new PdClient([], undefined),
    user: 'tidb',
    keepPd: pds[0],
    removedPds: pds.slice(1),
    flags: { certDays: 365, caDays: 3650, keyType: 'ecdsa', ...o.flags },
    ...(o.facts ? { facts: o.facts as TlsContext['facts'] } : {}),
    notes: [],
    resuming: false,
  };
}
