import type { ExecutorPool, Executor } from '../ssh/executor';
import type { GlobalOptions } from '../options';
import type { PdClient } from '../pd/client';
import type { ClusterDir } from '../state/cluster-dir';
import type { Instance, Topology } from '../topology/types';
import type { ClientTls } from '../util/http';
import type { ClusterFacts, Problem } from './cluster-facts';

/** Shared state of one `tls enable|disable` run, filled step by step. */
export interface TlsContext {
  want: 'on' | 'off';
  runId: string;
  topology: Topology;
  opts: GlobalOptions;
  cluster: ClusterDir;
  pool: ExecutorPool;
  pd: PdClient;
  /** Deploy user that owns the files on hosts (topology global.user). */
  user: string;
  /** Client TLS material for talking to the cluster once TLS is on (tiseal's own client cert). */
  clientTls?: ClientTls;
  /** The PD member kept while PD is scaled in to one. */
  keepPd?: Instance;
  /** PDs that are (to be) removed during the switch and re-added after. */
  removedPds: Instance[];
  /** Members the scale-in step decided to remove in this run (later steps plan with them gone). */
  plannedRemovals?: Set<string>;
  /** Extra options from the command line. */
  flags: TlsFlags;
  /** CA bundle PEM pushed to hosts as tls/ca.crt (the CA key never leaves this machine). */
  caBundlePem?: string;
  /** Is the certificate found on a host still good for this instance (set by the certificates step)? */
  leafStillGood?: (inst: Instance, certPem: string) => boolean;
  /** CN allow-list for an instance's callers under --verify-cn (undefined: no CN check). */
  allowedCn?: (inst: Instance) => string[] | undefined;
  /** Issues a leaf for an instance (set by the certificates step); `current`: the certificate it replaces (its key type is kept without --key-type). */
  issueLeaf?: (inst: Instance, current?: string) => Promise<{ certPem: string; keyPem: string }>;
  /** RSA keys generated on worker threads while preflight runs (started by the command). */
  keyPool?: import('../pki').KeySource;
  /** Messages for the final summary. */
  notes: string[];
  /** An interrupted run is being resumed (outages are expected). */
  resuming: boolean;
  facts?: ClusterFacts;
  problems?: Problem[];
}

export interface TlsFlags {
  keepPd?: string;
  caCert?: string;
  caKey?: string;
  caChain?: string;
  verifyCn?: boolean;
  extraSan?: string[];
  certDays: number;
  caDays: number;
  /** --key-type; undefined: new keys RSA, existing leaves keep their type. */
  keyType?: import('../pki').KeyType;
  cleanCertificate?: boolean;
  /**
   * 'overlap' (default): stage everything, stop everything at once, start PD, then all the rest as
   * soon as PD listens. 'tiers': restart tier by tier, each tier in parallel, gated on health.
   * 'stop-all': TiUP's schedule (operator.Restart): stop everything, then start tier by tier with
   * TiUP's Ready waits.
   */
  schedule?: RestartSchedule;
  /** Rolling store restarts: seconds to wait for PD's evict-leader scheduler to empty a store (`--transfer-timeout`, TiUP's default 600). */
  transferTimeoutSec?: number;
}

export const RESTART_SCHEDULES = ['overlap', 'tiers', 'stop-all'] as const;
export const DEFAULT_SCHEDULE: RestartSchedule = 'overlap';
export type RestartSchedule = (typeof RESTART_SCHEDULES)[number];

export function executorFor(ctx: Pick<TlsContext, 'pool'>, inst: Pick<Instance, 'host' | 'manageHost' | 'sshPort'>): Promise<Executor> {
  return ctx.pool.get(inst.manageHost ?? inst.host, inst.sshPort);
}

export const pdEndpoint = (inst: Instance) => `${inst.host}:${inst.ports.client_port}`;
export const where = (inst: Instance) => `${inst.id} @ ${inst.host}`;
