import { restartTiers } from '../components';
import type { Step } from '../engine/step';
import { noop } from '../engine/step';
import type { Instance } from '../topology/types';
import { executorFor, TlsContext } from './context';
import { probeInstance } from './facts';
import { systemctl, unitStates } from './remote';
import { waitHealthy } from './health';
import { shq } from '../util/shell';
import { runStats } from '../util/run-stats';

/** Newest mtime (µs) among the files that decide how an instance starts. */
async function configMtimeUs(ctx: TlsContext, inst: Instance): Promise<number> {
  const exec = await executorFor(ctx, inst);
  const files = [...inst.configFiles, inst.runScript];
  const r = await exec.exec(`stat -c %Y ${files.map(shq).join(' ')} 2>/dev/null; true`, { sudo: true, allowFailure: true });
  return Math.max(0, ...r.stdout.trim().split('\n').filter(Boolean).map((s) => Number(s) * 1e6));
}

/** Why an instance must restart to reach the wanted state, or undefined when it already runs it. */
async function restartReason(ctx: TlsContext, inst: Instance): Promise<string | undefined> {
  const exec = await executorFor(ctx, inst);
  const unit = (await unitStates(exec, [inst.unit])).get(inst.unit);
  if (!unit || unit.activeState !== 'active') return `unit is ${unit?.activeState ?? 'missing'}`;
  const probe = await probeInstance(ctx, inst);
  const wantKind = ctx.want === 'on' ? 'tls' : 'plain';
  if (probe && probe.kind !== 'closed' && probe.kind !== wantKind) return `serves ${probe.kind === 'tls' ? 'TLS' : 'plaintext'}`;
  if ((await configMtimeUs(ctx, inst)) > unit.activeEnterUs) return 'config changed since it started';
  return undefined;
}

const kept = (c: TlsContext, roles: string[]) => {
  const removed = new Set(c.removedPds.map((p) => p.id + '@' + p.host));
  return c.topology.instances.filter((i) => roles.includes(i.role) && !removed.has(i.id + '@' + i.host));
};

/**
 * TiUP's schedule (`--schedule stop-all`): stop every component that must restart, last tier
 * first, before any starts. No component ever talks to a peer in the other TLS mode, at the price
 * of an outage from the first stop to the last tier's start. The tier steps then start them.
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
          return { roles, todo: reasons.filter(([, r]) => r !== undefined && !/^unit is (inactive|failed|missing)$/.test(r)).map(([i]) => i) };
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
                await systemctl(await executorFor(c, inst), 'stop', inst.unit);
                runStats.stopped(inst);
              }),
            );
          },
        })),
      };
    },
  };
}

export function restartTierSteps(ctx: Pick<TlsContext, 'topology'>): Step<TlsContext>[] {
  return restartTiers(ctx.topology.instances).map(({ roles }, index, all) => ({
    id: `restart-${roles.join('+')}`,
    title: `Restart ${roles.join(', ')} (tier ${index + 1} of ${all.length}), gated on health`,
    async decide(c: TlsContext) {
      const insts = kept(c, roles);
      const reasons = await Promise.all(insts.map(async (i) => [i, await restartReason(c, i)] as const));
      const todo = reasons.filter(([, r]) => r !== undefined);
      if (todo.length === 0) return noop(`every ${roles.join('/')} already runs with TLS ${c.want}`);
      return {
        concurrency: todo.length,
        actions: todo.map(([inst, why]) => ({
          title: `restart ${inst.unit} on ${inst.host} (${why})`,
          run: async () => {
            runStats.restartIssued(inst, roles.join('+'));
            await systemctl(await executorFor(c, inst), 'restart', inst.unit);
          },
        })),
      };
    },
    async verify(c: TlsContext) {
      const insts = kept(c, roles);
      await waitHealthy(c, insts, { tls: c.want === 'on' });
    },
  }));
}
