import { tlsPaths } from '../components';
import type { Instance } from '../topology/types';
import { mapLimit, readConcurrency } from '../util/concurrency';
import { executorFor, TlsContext } from './context';
import { keyFilesOf } from './certs/key-backups';
import { CERT_ROLES } from './certs/stage';

/** Every path tiseal reads or writes as root for an instance (files, and the dirs it creates). */
export function rootPathsOf(inst: Instance): string[] {
  const paths = [...inst.configFiles, inst.runScript, `${inst.deployDir}/backup`, ...keyFilesOf(inst)];
  if (CERT_ROLES.has(inst.role)) {
    const p = tlsPaths(inst);
    paths.push(p.ca, p.cert);
  }
  if (inst.role === 'pd' && inst.dataDir) paths.push(inst.dataDir);
  return [...new Set(paths)];
}

/**
 * Preflight: walk every such path as root the way the writes will (UnsafeRemotePathError on a
 * symlink another user could have planted), so a planted link stops the run before PD is scaled
 * in, not half-way.
 */
export async function checkRootPaths(ctx: Pick<TlsContext, 'topology' | 'pool' | 'opts'>): Promise<void> {
  // One root-side script per host (a process start per command is what a run pays for on a host).
  const byHost = new Map<string, Instance[]>();
  for (const inst of ctx.topology.instances) {
    const k = `${inst.manageHost ?? inst.host}:${inst.sshPort ?? ''}`;
    byHost.set(k, [...(byHost.get(k) ?? []), inst]);
  }
  await mapLimit([...byHost.values()], readConcurrency(ctx.opts), async (insts) => {
    const exec = await executorFor(ctx, insts[0]);
    await exec.statMany([...new Set(insts.flatMap(rootPathsOf))]);
  });
}
