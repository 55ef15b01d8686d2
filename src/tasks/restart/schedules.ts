import { restartTiers } from '../../components';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import type { Instance } from '../../topology/types';
import { executorFor, TlsContext } from '../context';
import { probeInstance } from '../facts';
import { newestMtimeUs, systemctl, unitStates } from '../remote';
import { waitHealthy } from './health';
import { runStats } from '../../util/run-stats';
import { tiupReady, tiupSystemctl } from './tiup-ready';

/**
 * Why an instance must restart to reach the wanted state (and whether systemd has a process for it
 * to stop), or undefined when it already runs it.
 */
export async function restartReason(ctx: TlsContext, inst: Instance): Promise<{ why: string; running: boolean } | undefined> {
  const exec = await executorFor(ctx, inst);
  const unit = (await unitStates(exec, [inst.unit])).get(inst.unit);
  if (!unit || unit.activeState !== 'active') {
    return { why: `unit is ${unit?.activeState ?? 'missing'}`, running: unit !== undefined && unit.activeState !== 'inactive' && unit.activeState !== 'failed' };
  }
  const probe = await probeInstance(ctx, inst);
  const wantKind = ctx.want === 'on' ? 'tls' : 'plain';
  if (probe && probe.kind !== 'closed' && probe.kind !== wantKind) return { why: `serves ${probe.kind === 'tls' ? 'TLS' : 'plaintext'}`, running: true };
  if ((await newestMtimeUs(exec, [...inst.configFiles, inst.runScript])) > unit.activeEnterUs) return { why: 'config changed since it started', running: true };
  return undefined;
}

export const kept = (c: TlsContext, roles: string[]) => {
  const removed = new Set(c.removedPds.map((p) => p.id + '@' + p.host));
  return c.topology.instances.filter((i) => roles.includes(i.role) && !removed.has(i.id + '@' + i.host));
};

/**
 * TiUP's schedule (`--schedule stop-all`), as `tiup cluster tls` runs it: operator.Restart = Stop
 * then Start (pkg/cluster/operation/action.go). Stop walks ComponentsByStopOrder (the start order
 * reversed, pkg/cluster/spec/spec.go), each component's instances in parallel, each with TiUP's
 * `systemctl daemon-reload && systemctl stop`. Here: every component that must restart. The tier
 * steps then start them in ComponentsByStartOrder with TiUP's Ready waits (tiup-restart.ts).
 * Skipped on resume once done: re-deciding would stop tiers that were already started again.
 */
export function stopAllStep(ctx: Pick<TlsContext, 'topology'>): Step<TlsContext> {
  const tiers = restartTiers(ctx.topology.instances).reverse();
  return {
    id: 'stop-all',
    title: 'Stop every component that must restart, last tier first (schedule stop-all)',
    resume: 'skip-if-done',
    async decide(c: TlsContext) {
      const perTier = await Promise.all(
        tiers.map(async ({ roles }) => {
          const insts = kept(c, roles);
          const reasons = await Promise.all(insts.map(async (i) => [i, await restartReason(c, i)] as const));
          return { roles, todo: reasons.filter(([, r]) => r?.running).map(([i]) => i) };
        }),
      );
      const todo = perTier.filter((t) => t.todo.length > 0);
      if (todo.length === 0) return noop('nothing runs that must restart');
      return {
        actions: todo.map(({ roles, todo: insts }) => ({
          title: `stop ${insts.map((i) => `${i.unit} on ${i.host}`).join(', ')} (${roles.join('/')})`,
          run: async () => {
            await Promise.all(
              insts.map(async (inst) => {
                runStats.stopIssued(inst);
                await tiupSystemctl(await executorFor(c, inst), 'stop', inst.unit);
                runStats.stopped(inst);
              }),
            );
          },
        })),
      };
    },
  };
}

/**
 * One step per tier, in TiUP's start order. `tiers`: each tier's instances restart in parallel and
 * the next tier waits for tiseal's health gate. `stop-all` (after stopAllStep): TiUP's Start, each
 * instance `daemon-reload && start` (or restart, on a resume that finds it running) and TiUP's Ready
 * wait; the last tier then waits for tiseal's health gate over everything, which TiUP has not.
 * `overlap`: the overlap step restarted everything already; these find nothing to do unless a
 * resume needs them.
 */
export function restartTierSteps(ctx: Pick<TlsContext, 'topology' | 'flags'>): Step<TlsContext>[] {
  const tiup = ctx.flags.schedule === 'stop-all';
  return restartTiers(ctx.topology.instances).map(({ roles }, index, all) => ({
    id: `restart-${roles.join('+')}`,
    title: `Restart ${roles.join(', ')} (tier ${index + 1} of ${all.length}), gated on ${tiup ? "TiUP's Ready wait" : 'health'}`,
    async decide(c: TlsContext) {
      const insts = kept(c, roles);
      const reasons = await Promise.all(insts.map(async (i) => [i, await restartReason(c, i)] as const));
      const todo = reasons.flatMap(([inst, r]) => (r ? [{ inst, why: r.why, running: r.running }] : []));
      if (todo.length === 0) return noop(`every ${roles.join('/')} already runs with TLS ${c.want}`);
      return {
        concurrency: todo.length,
        actions: todo.map(({ inst, why, running }) => ({
          title: `${tiup && !running ? 'start' : 'restart'} ${inst.unit} on ${inst.host} (${why})`,
          run: async () => {
            runStats.restartIssued(inst, roles.join('+'));
            const exec = await executorFor(c, inst);
            if (tiup && !running) await tiupSystemctl(exec, 'start', inst.unit);
            else await systemctl(exec, 'restart', inst.unit);
          },
        })),
      };
    },
    async verify(c: TlsContext) {
      const insts = kept(c, roles);
      if (!tiup) return waitHealthy(c, insts, { tls: c.want === 'on' });
      await Promise.all(
        insts.map(async (inst) => {
          await tiupReady(await executorFor(c, inst), inst, { tls: c.want === 'on' ? c.clientTls : undefined });
          runStats.healthy(inst);
        }),
      );
      if (index === all.length - 1) await waitHealthy(c, kept(c, all.flatMap((t) => t.roles)), { tls: c.want === 'on' });
    },
  }));
}
