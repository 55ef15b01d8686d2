import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import type { Instance } from '../../topology/types';
import { waitFor } from '../../util/concurrency';
import { executorFor, pdEndpoint, TlsContext } from '../context';
import { systemctl } from '../remote';

/** A run resumed from the hosts: the PDs preflight found stopped by a killed run (none answers). */
export type HostResumeContext = TlsContext & { pdsToStart?: Instance[] };

/**
 * Every step after this one asks PD first; when a killed run left every PD stopped (the kept one
 * mid-restart, or after `--schedule stop-all`), start the ones preflight chose from the hosts.
 * Started together: stopped members may need each other for a quorum.
 */
export const startPdStep: Step<HostResumeContext> = {
  id: 'start-pd',
  title: 'Start the PD an interrupted run left stopped',
  async decide(ctx) {
    const todo = ctx.pdsToStart ?? [];
    if (todo.length === 0) return noop('PD answers');
    if ((await ctx.pd.members().catch(() => ({ members: [] }))).members.length > 0) return noop('PD answers');
    return {
      actions: [
        {
          title: `start ${todo.map((p) => `${p.unit} on ${p.host}`).join(', ')} (stopped by an interrupted run: decided from the hosts)`,
          run: async () => {
            await Promise.all(todo.map(async (pd) => systemctl(await executorFor(ctx, pd), 'start', pd.unit)));
            const only = todo.map(pdEndpoint);
            await waitFor('PD to answer /pd/api/v1/members', async () => (await ctx.pd.members(only).catch(() => ({ members: [] }))).members.length > 0, { timeoutMs: 90_000, intervalMs: 1000 });
            return 'PD answers';
          },
        },
      ],
    };
  },
};
