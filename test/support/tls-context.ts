import * as path from 'path';
import type { GlobalOptions } from '../../src/options';
import { PdClient } from '../../src/pd/client';
import { FakePool } from '../../src/ssh/fake';
import { ClusterDir } from '../../src/state/cluster-dir';
import type { TlsContext, TlsFlags } from '../../src/tasks/context';
import { pdInstances, type Topology } from '../../src/topology';

/** What a test may set: every TlsContext field, with the options, the cluster dir and the flags given in parts. */
export type FakeTlsContextOptions = Partial<Omit<TlsContext, 'opts' | 'cluster' | 'flags' | 'facts'>> & {
  topology: Topology;
  /** the state dir the cluster dir and opts.stateDir live under (default /nonexistent) */
  stateDir?: string;
  /** the cluster's name (default lab) */
  cluster?: string;
  /** merged over every option off, { stateDir, concurrency: 4 } */
  opts?: Partial<GlobalOptions>;
  /** merged over { certDays: 365, caDays: 3650, keyType: 'ecdsa' } */
  flags?: Partial<TlsFlags>;
  facts?: unknown;
};

/**
 * The TlsContext a step sees in a unit test, built as one object literal typed TlsContext: a field
 * added to TlsContext without a default here is a compile error, not a silent undefined. By
 * default: want on, PD scaled in to its first member, no PD to call, the cluster dir under
 * `stateDir`; any field can be overridden (`keepPd: undefined, removedPds: []` for a context
 * before the scale-in).
 */
export function fakeTlsContext(o: FakeTlsContextOptions): TlsContext {
  const { stateDir = '/nonexistent', cluster = 'lab', opts, flags, facts, ...fields } = o;
  const pds = pdInstances(o.topology);
  const ctx: TlsContext = {
    want: 'on',
    runId: 'r1',
    topology: o.topology,
    opts: { yes: false, dryRun: false, identityFiles: [], knownHosts: path.join(stateDir, 'known_hosts'), acceptNewHostKeys: false, stateDir, concurrency: 4, json: false, interactive: false, tiupMeta: false, ...opts },
    cluster: new ClusterDir(stateDir, cluster),
    pool: new FakePool(), // no host arranged: any use fails loudly
    pd: new PdClient([], undefined),
    user: 'tidb',
    keepPd: pds[0],
    removedPds: pds.slice(1),
    flags: { certDays: 365, caDays: 3650, keyType: 'ecdsa', ...flags },
    ...(facts ? { facts: facts as TlsContext['facts'] } : {}),
    notes: [],
    resuming: false,
  };
  return { ...ctx, ...fields };
}
