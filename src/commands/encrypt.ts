import * as fs from 'fs';
import { METHODS, Method } from '../components/encryption';
import type { Step } from '../engine/step';
import { PreflightError, UsageError } from '../errors';
import type { GlobalOptions } from '../options';
import { CertStore } from '../pki';
import { encryptDisableSteps, encryptEnableSteps, encryptRotateSteps } from '../plans/encrypt';
import { readMeta } from '../state/meta';
import { ClusterLock } from '../state/lock';
import type { TlsContext } from '../tasks/context';
import { checkMasterKeyText, localKeys, readStoresEncryption, recoverLocalKeys, storeInstances, storesMidChange } from '../tasks/encrypt';
import { endRun, newContext, openCluster, preflight, requireConfirmable, runSteps, storedClientTls } from './cluster';
import { confirm } from './prompt';
import { tlsFlags } from './tls/switch';
import { parseVersion, versionAtLeast } from '../util/version';

type Verb = 'enable' | 'disable' | 'rotate-key';

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
  requireConfirmable(opts);
  const { topology, cluster, pool, close } = await openCluster(topologyFile, opts);
  const lock = new ClusterLock(cluster.lockFile);
  try {
    if (!opts.dryRun) lock.acquire(`tiseal encrypt ${verb} ${topologyFile}`);
    // want 'off': preflight's TLS-only TiFlash version check does not apply to encryption.
    const ctx = newContext({ topology, cluster, pool, opts }, { want: 'off', runId: `encrypt-${Date.now()}`, clientTls: storedClientTls(new CertStore(opts.stateDir, cluster.name)), flags: tlsFlags({ transferTimeout: flags.transferTimeout }), resuming: false });
    // Re-running enable on an encrypted cluster converges it: a store that cannot open its data
    // (say, a key replaced by hand) is what it repairs, so such a store is a warning there.
    // A killed run (no journal needed): the stores show a restart owed where encryption is configured.
    const midChange = storesMidChange((await readStoresEncryption(ctx).catch(() => undefined)) ?? []);
    if (midChange) process.stdout.write(`note: ${midChange}\n`);
    const converging = (verb === 'enable' && readMeta(cluster.metaFile)?.encryption?.enabled === true) || midChange !== undefined;
    ctx.resuming = converging;
    await preflight(ctx, converging, { clusterTls: false }); // TiKV/TiFlash only: other roles are not touched
    if (storeInstances(ctx).length === 0) throw new PreflightError(`${topologyFile}: no TiKV or TiFlash instance to encrypt`, { suggestion: 'check the topology' });
    const versionText = topology.componentVersions.tikv ?? topology.clusterVersion ?? ctx.facts?.pdVersion;
    const version = parseVersion(versionText);
    if (versionAtLeast(versionText, [4, 0, 0]) === false) {
      throw new PreflightError(`the cluster runs v${version!.join('.')}: TiKV 3.x only has [security] cipher-file, which cannot be turned on for an existing cluster (nor off)`, { suggestion: 'upgrade to v4.0 or later first; nothing was changed' });
    }
    if (method === 'sm4-ctr' && versionAtLeast(versionText, [6, 3, 0]) === false) throw new UsageError(`sm4-ctr needs TiKV v6.3.0 or later (cluster: v${version!.join('.')})`, 'use --method aes256-ctr');
    const keys = localKeys(ctx);
    const recovered = await recoverLocalKeys(ctx, await readStoresEncryption(ctx), opts.dryRun, verb === 'enable' ? givenKey : undefined);
    if (recovered) process.stdout.write(`note: ${recovered}\n`);
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
    if (!(await runSteps(steps, ctx, `fix the cause and re-run \`tiseal encrypt ${verb} ${topologyFile}\` (it resumes)`))) return 0;
    for (const n of ctx.notes) process.stdout.write(`note: ${n}\n`);
    process.stdout.write(verb === 'enable' ? `Encryption at rest is on (${method}); master key in ${keys.current}. Data written before is encrypted as it is compacted.\n` : verb === 'disable' ? 'Encryption at rest is off for new data.\n' : 'Master key rotated; the old key is no longer configured anywhere.\n');
    return 0;
  } finally {
    await endRun({ lock, close });
  }
}

export const enable = (f: string, flags: Record<string, unknown>, o: GlobalOptions) => runEncrypt('enable', f, flags, o);
export const disable = (f: string, flags: Record<string, unknown>, o: GlobalOptions) => runEncrypt('disable', f, flags, o);
export const rotateKey = (f: string, flags: Record<string, unknown>, o: GlobalOptions) => runEncrypt('rotate-key', f, flags, o);
