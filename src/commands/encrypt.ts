import * as fs from 'fs';
import { METHODS, Method } from '../components/encryption';
import { buildTaskList } from '../engine/runner';
import type { Step } from '../engine/step';
import { PreflightError, TisealError, UsageError } from '../errors';
import type { GlobalOptions } from '../options';
import { CertStore } from '../pki';
import { PdClient } from '../pd/client';
import { encryptDisableSteps, encryptEnableSteps, encryptRotateSteps } from '../plans/encrypt';
import { readMeta } from '../state/meta';
import { ClusterLock } from '../state/lock';
import { pdInstances } from '../topology';
import type { TlsContext } from '../tasks/context';
import { checkMasterKeyText, localKeys, storeInstances } from '../tasks/encrypt';
import { preflightStep } from '../tasks/preflight';
import { openCluster } from './cluster';
import { confirm } from './prompt';
import { tlsFlags } from './tls-switch';

type Verb = 'enable' | 'disable' | 'rotate-key';

function versionOf(v: string | undefined): [number, number, number] | undefined {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}
const below = (v: [number, number, number] | undefined, min: [number, number, number]) => v !== undefined && (v[0] !== min[0] ? v[0] < min[0] : v[1] !== min[1] ? v[1] < min[1] : v[2] < min[2]);

async function runEncrypt(verb: Verb, topologyFile: string, flags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  const method = (flags.method ?? 'aes256-ctr') as Method;
  if (verb !== 'disable' && !(METHODS as readonly string[]).includes(method)) throw new UsageError(`invalid --method '${method}'`, `use one of: ${METHODS.join(', ')}`);
  const keyFile = flags.masterKeyFile as string | undefined;
  let givenKey: string | undefined;
  if (keyFile) {
    try {
      givenKey = checkMasterKeyText(fs.readFileSync(keyFile, 'utf8'), keyFile);
    } catch (e) {
      throw new UsageError((e as Error).message, (e as { suggestion?: string }).suggestion ?? 'check the path of --master-key-file');
    }
  }
  if (!opts.yes && !opts.dryRun && !opts.interactive) throw new UsageError('no terminal to ask for confirmation', 'pass --yes (or TISEAL_YES=1) to run without a prompt, or --dry-run to only see the plan');
  const { topology, cluster, pool, close } = await openCluster(topologyFile, opts);
  const lock = new ClusterLock(cluster.lockFile);
  try {
    if (!opts.dryRun) lock.acquire(`tiseal encrypt ${verb} ${topologyFile}`);
    const store = new CertStore(opts.stateDir, cluster.name);
    const client = store.hasCA() ? store.loadClient() : null;
    const clientTls = client ? { ca: store.loadCA({ allowExpired: true }).bundlePem, cert: client.certPem, key: client.keyPem } : undefined;
    const ctx: TlsContext = {
      want: 'off', // only used by preflight's TLS-specific version check, which does not apply here
      runId: `encrypt-${Date.now()}`,
      topology,
      opts,
      cluster,
      pool,
      pd: new PdClient(pdInstances(topology).map((p) => `${p.host}:${p.ports.client_port}`), clientTls),
      user: topology.global.user,
      clientTls,
      removedPds: [],
      flags: tlsFlags({}),
      notes: [],
      resuming: false,
    };
    const renderer = opts.json ? 'silent' : undefined;
    // Re-running enable on an encrypted cluster converges it: a store that cannot open its data
    // (say, a key replaced by hand) is what it repairs, so such a store is a warning there.
    const converging = verb === 'enable' && readMeta(cluster.metaFile)?.encryption?.enabled === true;
    ctx.resuming = converging;
    await buildTaskList([preflightStep(converging)], { dryRun: false, renderer }).run(ctx);
    for (const p of ctx.problems ?? []) process.stderr.write(`warning: ${p.where}: ${p.message}\n`);
    if (storeInstances(ctx).length === 0) throw new PreflightError(`${topologyFile}: no TiKV or TiFlash instance to encrypt`, { suggestion: 'check the topology' });
    const version = versionOf(topology.componentVersions.tikv ?? topology.clusterVersion ?? ctx.facts?.pdVersion);
    if (below(version, [4, 0, 0])) {
      throw new PreflightError(`the cluster runs v${version!.join('.')}: TiKV 3.x only has [security] cipher-file, which cannot be turned on for an existing cluster (nor off)`, { suggestion: 'upgrade to v4.0 or later first; nothing was changed' });
    }
    if (method === 'sm4-ctr' && below(version, [6, 3, 0])) throw new UsageError(`sm4-ctr needs TiKV v6.3.0 or later (cluster: v${version!.join('.')})`, 'use --method aes256-ctr');
    const keys = localKeys(ctx);
    if ((verb === 'rotate-key' || verb === 'disable') && !fs.existsSync(keys.current)) {
      throw new PreflightError(`no master key for cluster '${cluster.name}' in ${keys.current}`, { suggestion: 'encryption was not enabled by tiseal for this cluster: run `tiseal encrypt enable` first' });
    }
    const meta = readMeta(cluster.metaFile);
    const current = (meta?.encryption?.method ?? method) as Method;
    const steps: Step<TlsContext>[] = verb === 'enable' ? encryptEnableSteps(method, givenKey) : verb === 'disable' ? encryptDisableSteps() : encryptRotateSteps(current === 'plaintext' ? method : current, givenKey);
    const stores = storeInstances(ctx).map((i) => `${i.id}@${i.host}`).join(', ');
    const question =
      verb === 'enable'
        ? `Encrypt data at rest (${method}) on ${stores}: master key pushed to each, one store restarted at a time (no outage). Data written before is encrypted only as it is compacted.\n  Proceed?`
        : verb === 'disable'
          ? `Turn encryption at rest OFF on ${stores}: new data is written in plaintext and existing files are decrypted as they are compacted; the master key stays configured so old files stay readable. One store restarted at a time.\n  Proceed?`
          : `Rotate the master key on ${stores}: the current key becomes previous-master-key, one store restarted at a time, then the old key is forgotten.\n  Proceed?`;
    if (!opts.yes && !opts.dryRun && !(await confirm(question))) {
      process.stdout.write('Nothing was changed.\n');
      return 1;
    }
    const plan: string[] = [];
    try {
      await buildTaskList(steps, { dryRun: opts.dryRun, plan, renderer }).run(ctx);
    } catch (e) {
      const err = e instanceof TisealError ? e : new TisealError((e as Error).message, { cause: e });
      throw new TisealError(err.message, { suggestion: err.suggestion ?? `fix the cause and re-run \`tiseal encrypt ${verb} ${topologyFile}\` (it resumes)`, cause: e });
    }
    if (opts.dryRun) {
      process.stdout.write(`\nDry run: nothing was changed. The plan:\n${plan.join('\n')}\n`);
      return 0;
    }
    process.stdout.write(verb === 'enable' ? `Encryption at rest is on (${method}); master key in ${keys.current}. Data written before is encrypted as it is compacted.\n` : verb === 'disable' ? 'Encryption at rest is off for new data.\n' : 'Master key rotated; the old key is no longer configured anywhere.\n');
    return 0;
  } finally {
    lock.release();
    await close();
  }
}

export const enable = (f: string, flags: Record<string, unknown>, o: GlobalOptions) => runEncrypt('enable', f, flags, o);
export const disable = (f: string, flags: Record<string, unknown>, o: GlobalOptions) => runEncrypt('disable', f, flags, o);
export const rotateKey = (f: string, flags: Record<string, unknown>, o: GlobalOptions) => runEncrypt('rotate-key', f, flags, o);
