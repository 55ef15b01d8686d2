import { CertError, PreflightError, UsageError } from '../../errors';
import type { GlobalOptions } from '../../options';
import { CertStore } from '../../pki';
import { rotateCaSteps, rotateSteps } from '../../plans/rotate';
import { ClusterLock } from '../../state/lock';
import { factKey } from '../../tasks/facts';
import { endRun, newContext, openCluster, preflight, requireConfirmable, runSteps, storedClientTls } from '../cluster';
import { confirm } from '../prompt';
import { tlsFlags } from './switch';
import { adoptTiupCa } from '../../tiup/adopt';
import { caKeyProblem, readHostCa, rotationCaProblem } from '../../tasks/certs/host-ca';
import { recoverLocalCaMove } from '../../tasks/certs/rotate-ca';
import { startKeyPool } from '../../tasks/certs/issue';

/** `tiseal tls rotate`: reissue every leaf from the cluster CA and let components reload them. */
export async function run(topologyFile: string, rawFlags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  const flags = tlsFlags(rawFlags);
  requireConfirmable(opts);
  const { topology, cluster, pool, close } = await openCluster(topologyFile, opts);
  const lock = new ClusterLock(cluster.lockFile);
  // RSA leaf keys are made on all cores while the checks and preflight read the hosts.
  const keyPool = startKeyPool(topology, flags.keyType);
  let notes: string[] | undefined; // set once the run went through
  try {
    const store = new CertStore(opts.stateDir, cluster.name);
    const adopted = await adoptTiupCa(store, opts);
    if (adopted) process.stdout.write(`note: ${adopted.note}\n`);
    if (!store.hasCA() && adopted) throw new CertError(`--dry-run: TiUP's CA ${adopted.tiup.tiup.caCert} is not adopted yet, so there is no plan to show`, { suggestion: `run \`tiseal tls status ${topologyFile}\` once (it adopts TiUP's CA into ${store.dir}), then the dry run again` });
    if (!opts.dryRun) lock.acquire(`tiseal tls rotate ${topologyFile}`);
    const recovered = await recoverLocalCaMove({ pool, topology }, opts.stateDir, cluster.name, opts.dryRun);
    if (recovered) process.stdout.write(`note: ${recovered}\n`);
    // Another machine, a lost state dir: name the CA the hosts trust (by fingerprint) and where its files are.
    const hostCa = store.hasCA() ? undefined : await readHostCa({ pool, topology }).catch(() => undefined);
    if (hostCa) throw caKeyProblem(store, hostCa, { name: `tls rotate${rawFlags.ca ? ' --ca' : ''}`, topologyFile, stateDir: opts.stateDir, cluster: cluster.name })!;
    if (!store.hasCA()) throw new CertError(`no CA for cluster '${cluster.name}' in ${store.dir}`, { suggestion: 'turn TLS on with `tiseal tls enable` first (or point --state-dir at the directory that holds the CA)' });
    const ca = store.loadCA();
    // An interrupted `--ca` move: servers may already present (or only accept) the new CA's certificates.
    const next = new CertStore(opts.stateDir, cluster.name, 'tls-next');
    const nextCa = next.hasCA() ? next.loadCA() : undefined;
    // The hosts' CA bundle tells the phase of a CA move: refuse a CA whose key this machine lacks, naming it.
    const trusted = await readHostCa({ pool, topology }).catch(() => undefined);
    const lacking = trusted && rotationCaProblem(store, next, trusted, { name: `tls rotate${rawFlags.ca ? ' --ca' : ''}`, topologyFile, cluster: cluster.name });
    if (lacking) throw lacking;
    const clientTls = storedClientTls(store, (nextCa && next.loadClient()) || store.loadClient(), nextCa?.bundlePem);
    if (nextCa && !rawFlags.ca) throw new UsageError(`a move to the CA '${nextCa.info.subjectCN}' is not finished (${next.dir})`, 'finish it first: tiseal tls rotate --ca (it resumes)');
    const ctx = newContext({ topology, cluster, pool, opts }, { want: 'on', runId: `rotate-${Date.now()}`, clientTls, flags, resuming: false });
    ctx.keyPool = keyPool;
    await preflight(ctx, false, { clusterTls: true, caChecked: true }); // rotationCaProblem above knows a move's new CA too
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
    const { steps } = rawFlags.ca ? rotateCaSteps(opts.stateDir, cluster.name) : rotateSteps();
    if (!(await runSteps(steps, ctx, `fix the cause and re-run \`tiseal tls rotate${rawFlags.ca ? ' --ca' : ''} ${topologyFile}\` (it resumes)`))) return 0;
    process.stdout.write(`Certificates rotated for cluster '${cluster.name}'.\n`);
    notes = ctx.notes;
    return 0;
  } finally {
    await endRun({ keyPool, lock, close }, notes);
  }
}
