import { restartTiers } from '../components';
import type { Step } from '../engine/step';
import { noop } from '../engine/step';
import type { Instance } from '../topology/types';
import { executorFor, TlsContext } from './context';
import { probeInstance } from './facts';
import { systemctl, unitStates } from './remote';
import { waitHealthy } from './health';
import { shq } from '../util/shell';

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

export function restartTierSteps(ctx: Pick<TlsContext, 'topology'>): Step<TlsContext>[] {
  return restartTiers(ctx.topology.instances).map(({ roles }, index, all) => ({
    id: `restart-${roles.join('+')}`,
    title: `Restart ${roles.join(', ')} (tier ${index + 1} of ${all.length}), gated on health`,
    async decide(c: TlsContext) {
      const removed = new Set(c.removedPds.map((p) => p.id + '@' + p.host));
      const insts = c.topology.instances.filter((i) => roles.includes(i.role) && !removed.has(i.id + '@' + i.host));
      const reasons = await Promise.all(insts.map(async (i) => [i, await restartReason(c, i)] as const));
      const todo = reasons.filter(([, r]) => r !== undefined);
      if (todo.length === 0) return noop(`every ${roles.join('/')} already runs with TLS ${c.want}`);
      return {
        concurrency: todo.length,
        actions: todo.map(([inst, why]) => ({
          title: `restart ${inst.unit} on ${inst.host} (${why})`,
          run: async () => systemctl(await executorFor(c, inst), 'restart', inst.unit),
        })),
      };
    },
    async verify(c: TlsContext) {
      const removed = new Set(c.removedPds.map((p) => p.id + '@' + p.host));
      const insts = c.topology.instances.filter((i) => roles.includes(i.role) && !removed.has(i.id + '@' + i.host));
      await waitHealthy(c, insts, { tls: c.want === 'on' });
    },
  }));
}
