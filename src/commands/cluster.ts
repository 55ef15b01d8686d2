import { buildTaskList } from '../engine/runner';
import { runRecord } from '../util/run-record';
import type { Step } from '../engine/step';
import { TisealError, UsageError } from '../errors';
import type { GlobalOptions } from '../options';
import { PdClient } from '../pd/client';
import type { CertStore } from '../pki';
import type { Journal } from '../state/journal';
import type { ClusterLock } from '../state/lock';
import type { TlsContext } from '../tasks/context';
import { preflightStep, type PreflightScope } from '../tasks/preflight';
import { pdInstances } from '../topology';
import type { ClientTls } from '../util/http';
import { checkLocalFiles, clusterNameFor } from '../options';
import { SshPool } from '../ssh';
import type { ExecutorPool } from '../ssh/executor';
import { ClusterDir } from '../state/cluster-dir';
import { readMeta } from '../state/meta';
import { loadTopology } from '../topology';
import { runStats } from '../util/run-stats';
import type { Topology } from '../topology/types';

export interface OpenedCluster {
  topology: Topology;
  cluster: ClusterDir;
  pool: ExecutorPool;
  close: () => Promise<void>;
}

/** Everything a cluster command needs: the parsed topology, its local state dir and one SSH pool. */
export async function openCluster(topologyFile: string, opts: GlobalOptions): Promise<OpenedCluster> {
  checkLocalFiles(opts);
  const topology = loadTopology(topologyFile);
  const cluster = new ClusterDir(opts.stateDir, clusterNameFor(topologyFile, opts.clusterName));
  cluster.ensure();
  const pool = new SshPool({
    user: opts.sshUser,
    defaultUser: topology.global.user,
    defaultUserSource: `topology global.user in ${topologyFile}`,
    port: opts.sshPort,
    identityFiles: opts.identityFiles,
    knownHostsFile: opts.knownHosts,
    acceptNewHostKeys: opts.acceptNewHostKeys,
    sshConfigFile: opts.sshConfig,
  });
  runStats.watchPool(pool);
  return { topology, cluster, pool, close: () => pool.closeAll() };
}

/** What a changing verb holds while it runs: its lock, its SSH pool's close, the RSA key pool it started (if any). */
export interface RunHold {
  lock: Pick<ClusterLock, 'release'>;
  close: () => Promise<void>;
  keyPool?: { close(): Promise<void> };
}

/**
 * The end of every changing verb, called from its `finally`: the notes of a run that went through
 * (`notes`, undefined otherwise), one `note:` line each on stdout; then, whatever happened, the
 * key pool stopped, the lock released and the SSH pool closed, in that order.
 */
export async function endRun(hold: RunHold, notes?: string[]): Promise<void> {
  for (const n of notes ?? []) process.stdout.write(`note: ${n}\n`);
  await hold.keyPool?.close();
  hold.lock.release();
  await hold.close();
}

/** Without a terminal nobody can answer the prompt: ask for --yes (or --dry-run) up front. */
export function requireConfirmable(opts: GlobalOptions): void {
  if (!opts.yes && !opts.dryRun && !opts.interactive) {
    throw new UsageError('no terminal to ask for confirmation', 'pass --yes (or TISEAL_YES=1) to run without a prompt, or --dry-run to only see the plan');
  }
}

/** tiseal's client TLS material for a cluster whose CA it holds (`extraCaPem` is trusted too). */
export function storedClientTls(store: CertStore, client = store.hasCA() ? store.loadClient() : null, extraCaPem = ''): ClientTls | undefined {
  if (!client || !store.hasCA()) return undefined;
  return { ca: store.loadCA({ allowExpired: true }).bundlePem + extraCaPem, cert: client.certPem, key: client.keyPem };
}

/**
 * Why PD must be called over https only (meta.json records TLS on), or undefined. Only a TLS
 * switch (disable, or resuming an interrupted switch) may meet PD on http.
 */
export function recordedTls(cluster: ClusterDir): string | undefined {
  let meta;
  try {
    meta = readMeta(cluster.metaFile);
  } catch {
    return undefined; // preflight reports an unreadable meta.json; this is only a tightening
  }
  return meta?.enableTls ? `${cluster.metaFile} records the cluster as TLS (enable_tls)` : undefined;
}

/** The context every step of a cluster command works with. */
export function newContext(
  base: { topology: Topology; cluster: ClusterDir; pool: ExecutorPool; opts: GlobalOptions },
  run: Pick<TlsContext, 'want' | 'runId' | 'clientTls' | 'flags' | 'resuming'> & { switchingTls?: boolean },
): TlsContext {
  const { topology } = base;
  const { switchingTls, ...rest } = run;
  runRecord.noteRun(run.runId, base.cluster.name);
  return {
    ...base,
    ...rest,
    pd: new PdClient(pdInstances(topology).map((p) => `${p.host}:${p.ports.client_port}`), run.clientTls, { tlsOnly: switchingTls ? undefined : recordedTls(base.cluster) }),
    user: topology.global.user,
    removedPds: [],
    notes: [],
  };
}

/**
 * Run (or, with --dry-run, describe) a command's steps. A failure keeps its own suggestion or gets
 * the way on (`again`); a dry run prints the plan. Returns whether the steps were applied.
 */
export async function runSteps(steps: Step<TlsContext>[], ctx: TlsContext, again: string, journal?: { journal: Journal; doneBefore?: Set<string> }): Promise<boolean> {
  const plan: string[] = [];
  try {
    await buildTaskList(steps, { dryRun: ctx.opts.dryRun, journal: ctx.opts.dryRun ? undefined : journal?.journal, doneBefore: journal?.doneBefore, plan, renderer: ctx.opts.json ? 'silent' : undefined }).run(ctx);
  } catch (e) {
    const err = e instanceof TisealError ? e : new TisealError((e as Error).message, { cause: e });
    throw new TisealError(err.message, { suggestion: err.suggestion ?? again, cause: e });
  }
  if (ctx.opts.dryRun) process.stdout.write(`\nDry run: nothing was changed. The plan:\n${plan.join('\n')}\n`);
  return !ctx.opts.dryRun;
}

/** Read-only preflight; warnings are printed, errors stop the command before any change. */
export async function preflight(ctx: TlsContext, resuming: boolean, scope?: PreflightScope): Promise<void> {
  await buildTaskList([preflightStep(resuming, scope)], { dryRun: false, renderer: ctx.opts.json ? 'silent' : undefined }).run(ctx);
  for (const p of ctx.problems ?? []) process.stderr.write(`warning: ${p.where}: ${p.message}\n`);
}
