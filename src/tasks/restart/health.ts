import { COMPONENTS, HealthContext } from '../../components';
import { StepError } from '../../errors';
import type { Instance } from '../../topology/types';
import { backoffDelays, sleep } from '../../util/concurrency';
import { executorFor, TlsContext } from '../context';
import { logTail, unitStates } from '../remote';
import { runStats } from '../../util/run-stats';

/** Wait until every instance is healthy (over TLS when the cluster is on TLS); name the first laggard on timeout. */
export async function waitHealthy(ctx: TlsContext, instances: Instance[], opts: { timeoutMs?: number; tls: boolean }): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let pending = instances;
  let reasons = new Map<Instance, string>();
  const delay = backoffDelays(100, 500);
  for (;;) {
    const hc: HealthContext = { pd: ctx.pd, tls: opts.tls ? ctx.clientTls : undefined };
    if (pending.some((i) => i.role === 'tikv' || i.role === 'tiflash')) {
      try {
        hc.stores = await ctx.pd.stores();
      } catch {
        hc.stores = [];
      }
    }
    const results = await Promise.all(pending.map(async (i) => [i, await COMPONENTS[i.role].health(i, hc)] as const));
    reasons = new Map(results.filter(([, r]) => r !== true).map(([i, r]) => [i, r as string]));
    for (const [i, r] of results) if (r === true) runStats.healthy(i);
    pending = [...reasons.keys()];
    if (pending.length === 0) return;
    // A unit that systemd is restarting in a loop will not get healthy by waiting: fail now.
    for (const inst of pending) {
      const u = (await unitStates(await executorFor(ctx, inst), [inst.unit])).get(inst.unit);
      if (u && (u.activeState === 'failed' || u.subState === 'auto-restart')) {
        throw await unhealthyError(ctx, inst, `${inst.unit} keeps exiting (systemd: ${u.activeState}/${u.subState}${u.nRestarts ? `, ${u.nRestarts} restarts` : ""}); last reason: ${reasons.get(inst)}`, []);
      }
    }
    if (Date.now() >= deadline) break;
    await sleep(delay());
  }
  const [inst, why] = [...reasons.entries()][0];
  throw await unhealthyError(ctx, inst, `not healthy after ${Math.round((opts.timeoutMs ?? 120_000) / 1000)} s: ${why}`, pending.slice(1));
}

/** The error a failed gate shows: host, unit, why, and the tail of the component's log. */
async function unhealthyError(ctx: TlsContext, inst: Instance, why: string, others: Instance[]): Promise<StepError> {
  const exec = await executorFor(ctx, inst);
  const tail = await logTail(exec, [`${inst.logDir}/${logName(inst)}`, `${inst.logDir}/${logName(inst).replace(/\.log$/, '_stderr.log')}`]).catch(() => '');
  return new StepError(`${inst.host} ${inst.unit}: ${why}${others.length ? ` (also: ${others.map((i) => `${i.host} ${i.unit}`).join(', ')})` : ''}${tail ? `\n${tail}` : ''}`, {
    suggestion: `fix it (journalctl -u ${inst.unit} on ${inst.host}) and re-run the same command to resume, or run \`tiseal tls disable\` to roll back`,
  });
}

export function logName(inst: Instance): string {
  const names: Record<string, string> = { pd: 'pd.log', tikv: 'tikv.log', tidb: 'tidb.log', tiflash: 'tiflash.log', cdc: 'cdc.log', pump: 'pump.log', drainer: 'drainer.log', tiproxy: 'tiproxy.log' };
  return names[inst.role] ?? `${inst.role}.log`;
}
