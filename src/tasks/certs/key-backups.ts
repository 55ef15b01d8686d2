import type { Action, Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { tlsPaths } from '../../components';
import { encryptionConfigFile, masterKeyPath, previousKeyPath } from '../../components/encryption';
import type { Instance } from '../../topology/types';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { executorFor, TlsContext } from '../context';
import { backupPathOf } from '../remote';
import { CERT_ROLES } from './stage';

/** Private keys an instance can hold on its host (leaf key, encryption master keys). */
export function keyFilesOf(inst: Instance): string[] {
  const files: string[] = [];
  if (CERT_ROLES.has(inst.role)) files.push(tlsPaths(inst).key);
  if (encryptionConfigFile(inst) !== undefined) files.push(masterKeyPath(inst), previousKeyPath(inst));
  return files;
}

/**
 * Last step of every run that replaces keys: the backups it made of private keys are deleted
 * once the run is done and verified (a key that was replaced must not live on in a backup).
 * Other backups (configs, scripts, certificates) are kept.
 */
export const purgeKeyBackupsStep: Step<TlsContext> = {
  id: 'purge-key-backups',
  title: "Delete this run's backups of replaced private keys (the run is done and verified)",
  async decide(ctx) {
    const planned = await mapLimit(ctx.topology.instances, readConcurrency(ctx.opts), async (inst): Promise<Action | undefined> => {
      const exec = await executorFor(ctx, inst);
      const found: string[] = [];
      for (const key of keyFilesOf(inst)) {
        const backup = backupPathOf(inst.deployDir, ctx.runId, key);
        if ((await exec.stat(backup, { sudo: true })).exists) found.push(backup);
      }
      if (found.length === 0) return undefined;
      return {
        title: `delete ${found.join(', ')} on ${inst.host} (backed-up private keys; the run is verified)`,
        run: async () => {
          for (const f of found) await exec.remove(f);
          ctx.notes.push(`deleted ${found.length} backed-up private key${found.length > 1 ? 's' : ''} of this run on ${inst.host} (the run is verified)`);
        },
      };
    });
    const actions = planned.filter((a): a is Action => a !== undefined);
    return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('this run backed up no private key');
  },
};
