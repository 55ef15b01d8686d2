import { buildTaskList } from '../engine/runner';
import { CertError, PreflightError, TisealError, UsageError } from '../errors';
import type { GlobalOptions } from '../options';
import { CertStore } from '../pki';
import { PdClient } from '../pd/client';
import { rotateCaSteps, rotateSteps } from '../plans/rotate';
import { ClusterLock } from '../state/lock';
import { pdInstances } from '../topology';
import type { TlsContext } from '../tasks/context';
import { factKey } from '../tasks/facts';
import { preflightStep } from '../tasks/preflight';
import { openCluster } from './cluster';
import { confirm } from './prompt';
import { tlsFlags } from './tls-switch';

/** `tiseal tls rotate`: reissue every leaf from the cluster CA and let components reload them. */
export async function run(topologyFile: string, rawFlags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  const flags = tlsFlags(rawFlags);
  if (!opts.yes && !opts.dryRun && !opts.interactive) {
    throw new UsageError('no terminal to ask for confirmation', 'pass --yes (or TISEAL_YES=1) to run without a prompt, or --dry-run to only see the plan');
  }
  const { topology, cluster, pool, close } = await openCluster(topologyFile, opts);
  const lock = new ClusterLock(cluster.lockFile);
  try {
    const store = new CertStore(opts.stateDir, cluster.name);
    if (!store.hasCA()) throw new CertError(`no CA for cluster '${cluster.name}' in ${store.dir}`, { suggestion: 'turn TLS on with `tiseal tls enable` first (or point --state-dir at the directory that holds the CA)' });
    if (!opts.dryRun) lock.acquire(`tiseal tls rotate ${topologyFile}`);
    const ca = store.loadCA();
    // An interrupted `--ca` move: servers may already present (or only accept) the new CA's certificates.
    const next = new CertStore(opts.stateDir, cluster.name, 'tls-next');
    const nextCa = next.hasCA() ? next.loadCA() : undefined;
    const client = (nextCa && next.loadClient()) || store.loadClient();
    const clientTls = client ? { ca: ca.bundlePem + (nextCa?.bundlePem ?? ''), cert: client.certPem, key: client.keyPem } : undefined;
    if (nextCa && !rawFlags.ca) throw new UsageError(`a move to the CA '${nextCa.info.subjectCN}' is not finished (${next.dir})`, 'finish it first: tiseal tls rotate --ca (it resumes)');
    const ctx: TlsContext = {
      want: 'on',
      runId: `rotate-${Date.now()}`,
      topology,
      opts,
      cluster,
      pool,
      pd: new PdClient(pdInstances(topology).map((p) => `${p.host}:${p.ports.client_port}`), clientTls),
      user: topology.global.user,
      clientTls,
      removedPds: [],
      flags,
      notes: [],
      resuming: false,
    };
    const renderer = opts.json ? 'silent' : undefined;
    await buildTaskList([preflightStep(false)], { dryRun: false, renderer }).run(ctx);
    const notOn = topology.instances.filter((i) => ctx.facts!.instances.get(factKey(i))?.config !== 'on');
    if (notOn.length > 0) {
      throw new PreflightError(`${notOn[0].host} ${notOn[0].unit}: TLS is not on${notOn.length > 1 ? ` (and ${notOn.length - 1} more instance(s))` : ''}; there is nothing to rotate`, { suggestion: 'run `tiseal tls enable` first; nothing was changed' });
    }
    const question = rawFlags.ca
      ? `tiseal will move cluster '${cluster.name}' from '${ca.info.subjectCN}' to a new CA: every host trusts both CAs (rolling restart, one instance at a time), every certificate is reissued from the new CA (no restart), then every host trusts only the new CA (a second rolling restart).\n  Proceed?`
      : `tiseal will issue new certificates from '${ca.info.subjectCN}' for all ${topology.instances.length} instances and replace them in place; no component is restarted unless one fails to reload.\n  Proceed?`;
    if (!opts.yes && !opts.dryRun && !(await confirm(question))) {
      process.stdout.write('Nothing was changed.\n');
      return 1;
    }
    const plan: string[] = [];
    const { steps } = rawFlags.ca ? rotateCaSteps(opts.stateDir, cluster.name) : rotateSteps();
    try {
      await buildTaskList(steps, { dryRun: opts.dryRun, plan, renderer }).run(ctx);
    } catch (e) {
      const err = e instanceof TisealError ? e : new TisealError((e as Error).message, { cause: e });
      throw new TisealError(err.message, { suggestion: err.suggestion ?? `fix the cause and re-run \`tiseal tls rotate ${topologyFile}\``, cause: e });
    }
    if (opts.dryRun) {
      process.stdout.write(`\nDry run: nothing was changed. The plan:\n${plan.join('\n')}\n`);
      return 0;
    }
    process.stdout.write(`Certificates rotated for cluster '${cluster.name}'.\n`);
    for (const n of ctx.notes) process.stdout.write(`note: ${n}\n`);
    return 0;
  } finally {
    lock.release();
    await close();
  }
}
