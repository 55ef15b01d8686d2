import { FakePool } from '../../src/ssh/fake';
import type { Instance, Topology } from '../../src/topology';
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

/** The TlsContext a step sees on those fake hosts (test/support/tls-context.ts). */
export { fakeTlsContext } from './tls-context';
