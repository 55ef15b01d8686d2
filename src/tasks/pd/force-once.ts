import type { Action, Step } from '../../engine/step';
import { noop } from '../../engine/step';
import type { Executor } from '../../ssh/executor';
import { pdInstances } from '../../topology';
import type { Instance } from '../../topology/types';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { shq } from '../../util/shell';
import { executorFor, TlsContext } from '../context';
import { readRemoteText, systemctl, writeWithBackup } from '../remote';
import { deployOwner } from '../certs/stage';

/**
 * `--force-new-cluster` is never written where it outlives the moment it is needed: a PD started
 * with it by its normal unit after members were added again would drop them all and split the
 * cluster. tiseal runs the forced start as a transient systemd unit (`systemd-run`, kept under
 * /run, gone at reboot) from a copy of the run script in root's /run/tiseal, and then starts the
 * normal unit. What a killed run can leave — the transient unit still running, its script, or the
 * flag in run_pd.sh (tiseal before this change wrote it there) — is found and repaired by the first
 * step of every changing verb, and reported by `tls status` and `audit`.
 */

/** The transient unit that runs `pd`'s forced start. */
export const forceUnit = (pd: Instance): string => `tiseal-force-${pd.unit.replace(/\.service$/, '')}.service`;
/** The forced copy of the run script: root's, on tmpfs. */
export const forceScript = (pd: Instance): string => `/run/tiseal/${pd.unit.replace(/\.service$/, '')}-force-new-cluster.sh`;

/** The run script without a `--force-new-cluster \` line (what TiUP renders). */
export function withoutForceNewCluster(script: string): string {
  return script
    .split('\n')
    .filter((l) => !/^\s*--force-new-cluster\s*\\?\s*$/.test(l))
    .join('\n');
}

export interface ForceLeftovers {
  /** run_pd.sh starts PD with --force-new-cluster. */
  scriptFlag: boolean;
  /** The transient forced unit is active (a run was killed during a recovery). */
  transientActive: boolean;
  /** The forced script copy is still in /run/tiseal. */
  staleCopy: boolean;
}

export async function readForceLeftovers(exec: Executor, pd: Instance): Promise<ForceLeftovers> {
  const script = (await readRemoteText(exec, pd.runScript)) ?? '';
  const r = await exec.exec(`systemctl show -p ActiveState --value ${shq(forceUnit(pd))}; if [ -e ${shq(forceScript(pd))} ]; then echo copy; fi`, { sudo: true, allowFailure: true });
  const lines = r.stdout.split('\n').map((l) => l.trim());
  return {
    scriptFlag: withoutForceNewCluster(script) !== script,
    transientActive: ['active', 'activating', 'reloading', 'deactivating'].includes(lines[0] ?? ''),
    staleCopy: lines.includes('copy'),
  };
}

/** The words `tls status` and `audit` use, or undefined when nothing is left. */
export function forceLeftoverProblem(pd: Instance, l: ForceLeftovers): string | undefined {
  const what = [
    l.scriptFlag && `${pd.runScript} starts PD with --force-new-cluster (its next restart drops every other member)`,
    l.transientActive && `${forceUnit(pd)} runs PD with --force-new-cluster (a quorum recovery was interrupted)`,
  ].filter(Boolean);
  return what.length ? `${what.join('; ')}; any changing tiseal verb on this cluster repairs it` : undefined;
}

/** Stop the forced transient unit, drop its script copy, start the normal unit. */
export async function endForcedRun(exec: Executor, pd: Instance): Promise<void> {
  await exec.exec(`systemctl stop ${shq(forceUnit(pd))}; rm -f ${shq(forceScript(pd))}`, { sudo: true, allowFailure: true, timeoutMs: 120_000 });
  await systemctl(exec, 'start', pd.unit);
}

export const forceLeftoversStep: Step<TlsContext> = {
  id: 'pd-force-leftovers',
  title: 'Repair what an interrupted PD quorum recovery left (--force-new-cluster in run_pd.sh or a forced PD still running)',
  async decide(ctx) {
    const found = await mapLimit(pdInstances(ctx.topology), readConcurrency(ctx.opts), async (pd) => {
      const exec = await executorFor(ctx, pd);
      return { pd, exec, left: await readForceLeftovers(exec, pd) };
    });
    const actions: Action[] = [];
    for (const { pd, exec, left } of found) {
      if (left.scriptFlag) {
        actions.push({
          title: `remove --force-new-cluster from ${pd.runScript} on ${pd.host}`,
          run: async () => {
            const script = (await readRemoteText(exec, pd.runScript)) ?? '';
            await writeWithBackup(exec, pd.runScript, withoutForceNewCluster(script), { deployDir: pd.deployDir, runId: ctx.runId, mode: 0o755, owner: deployOwner(ctx) });
            return 'removed; PD keeps running (its current process is not restarted)';
          },
        });
      }
      if (left.transientActive || left.staleCopy) {
        actions.push({
          title: left.transientActive ? `stop ${forceUnit(pd)} on ${pd.host} (a forced PD of an interrupted recovery) and start ${pd.unit}` : `remove ${forceScript(pd)} on ${pd.host}`,
          run: async () => {
            if (!left.transientActive) {
              await exec.exec(`rm -f ${shq(forceScript(pd))}`, { sudo: true });
              return 'removed';
            }
            // The membership was already rewritten by the forced start; the normal unit takes over from it.
            await endForcedRun(exec, pd);
            return `${pd.unit} started in its place`;
          },
        });
      }
    }
    return actions.length ? { concurrency: 1, actions } : noop('no --force-new-cluster in any run_pd.sh, no forced PD running');
  },
};
