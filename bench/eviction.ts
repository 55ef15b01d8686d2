/**
 * What leader eviction buys a rolling store restart (issue #14 §2), on the lab's plaintext cluster
 * with the SQL tick prober running, in the same benchmark run:
 * - with eviction: `tiseal encrypt enable` restarts every TiKV and TiFlash store one at a time,
 *   each after PD's evict-leader scheduler emptied it (TiUP's PreRestart);
 * - without: the physical limit's rows for the same stores (limit.ts restarts each once, one at a
 *   time, no eviction, and waits until it serves again) — a store that led the probed keys' region
 *   leaves it leaderless until the other peers' election timeout runs out.
 * Outage is computed from the ticks as for the schedules (analysis.ts).
 */
import * as path from 'path';
import type { LabInfo } from '../lab';
import type { EvictionTiming, RunStatsReport } from '../src/util/run-stats';
import { outageIntervals, ticksWithin, type OutageSummary, type PhysicalLimit } from './analysis';
import type { TickProberProcess } from './sql-tick-prober-process';

export interface EvictionBench {
  /** `encrypt enable` with eviction: wall, outage over the run, each store's eviction as tiseal recorded it. */
  withEviction: { wallMs: number; outage: OutageSummary; evictions: EvictionTiming[] };
  /** The same stores restarted without eviction (from the physical limit of the same run): ms until the SQL client was answered again. */
  withoutEviction: Array<{ host: string; unit: string; ms: number }>;
}

type Run = (info: LabInfo, args: string[], statsFile: string) => Promise<RunStatsReport>;

export async function benchEviction(o: { info: LabInfo; prober: TickProberProcess; limit?: PhysicalLimit; run: Run; workDir: string; log: (m: string) => void }): Promise<EvictionBench> {
  await o.prober.answering(10, 300_000);
  o.log('eviction: encrypt enable (rolling store restarts, leaders evicted first)');
  const stats = await o.run(o.info, ['encrypt', 'enable', '--yes'], path.join(o.workDir, 'encrypt-enable.json'));
  await o.prober.answering(10, 300_000);
  const ticks = ticksWithin(o.prober.ticks(), Date.parse(stats.startedAt));
  const stores = new Set(['tikv', 'tiflash']);
  return {
    withEviction: { wallMs: stats.wallMs, outage: outageIntervals(ticks, stats.steps), evictions: stats.evictions ?? [] },
    withoutEviction: (o.limit?.restarts ?? []).filter((r) => stores.has(r.role)).map((r) => ({ host: r.host, unit: r.unit, ms: r.ms })),
  };
}
