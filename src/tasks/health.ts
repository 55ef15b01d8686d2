import { COMPONENTS, HealthContext } from '../components';
import { StepError } from '../errors';
import type { Instance } from '../topology/types';
import { sleep } from '../util/concurrency';
import { executorFor, TlsContext } from './context';
import { logTail } from './remote';

/** Wait until every instance is healthy (over TLS when the cluster is on TLS); name the first laggard on timeout. */
export async function waitHealthy(ctx: TlsContext, instances: Instance[], opts: { timeoutMs?: number; tls: boolean }): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let pending = instances;
  let reasons = new Map<Instance, string>();
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
    pending = [...reasons.keys()];
    if (pending.length === 0) return;
    if (Date.now() >= deadline) break;
    await sleep(1000);
  }
  const [inst, why] = [...reasons.entries()][0];
  const exec = await executorFor(ctx, inst);
  const tail = await logTail(exec, [`${inst.logDir}/${logName(inst)}`, `${inst.logDir}/${logName(inst).replace(/\.log$/, '_stderr.log')}`]).catch(() => '');
  throw new StepError(
    `${inst.host} ${inst.unit}: not healthy after ${Math.round((opts.timeoutMs ?? 120_000) / 1000)} s: ${why}${pending.length > 1 ? ` (also: ${pending.slice(1).map((i) => `${i.host} ${i.unit}`).join(', ')})` : ''}${tail ? `\n${tail}` : ''}`,
    { suggestion: `fix it (journalctl -u ${inst.unit} on ${inst.host}) and re-run the same command to resume, or run \`tiseal tls disable\` to roll back` },
  );
}

export function logName(inst: Instance): string {
  const names: Record<string, string> = { pd: 'pd.log', tikv: 'tikv.log', tidb: 'tidb.log', tiflash: 'tiflash.log', cdc: 'cdc.log', pump: 'pump.log', drainer: 'drainer.log', tiproxy: 'tiproxy.log' };
  return names[inst.role] ?? `${inst.role}.log`;
}
