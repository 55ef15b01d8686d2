/**
 * Outage window of `tls enable` on the lab as an application sees it, for each restart schedule in
 * the same run: tiseal's default (overlap), its tiers, and TiUP's (stop-all), with a SQL tick
 * prober (sql-tick-prober.ts, its own process) writing and reading through every TiDB every 100 ms.
 * In the same run, before the first enable: the physical limit (limit.ts); after the rounds:
 * N enable + disable runs in a row with the default schedule (convergence).
 */
import * as fs from 'fs';
import * as path from 'path';
import { labReset, labUp, type LabInfo } from '../lab';
import { runTiseal } from '../lab/tiseal-run';
import { loadTopology } from '../src/topology';
import type { RunStatsReport } from '../src/util/run-stats';
import type { Schedule } from './args';
import { criticalPath, outageIntervals, ticksWithin, type CriticalPath, type OutageSummary, type PhysicalLimit } from './analysis';
import { measureLimit } from './limit';
import { benchEviction, type EvictionBench } from './eviction';
import type { SqlTick, TickProberConfig } from './sql-tick-prober';
import { TickProberProcess } from './sql-tick-prober-process';

export type { Schedule };

export interface OutageRun {
  schedule: Schedule;
  round: number;
  wallMs: number;
  outage: OutageSummary;
  critical: CriticalPath;
  stats: RunStatsReport;
  /** Every tick of the run, from the prober's first to the streak that closed the run. */
  ticks: SqlTick[];
}

export interface ConvergencePhase {
  wallMs: number;
  outage: OutageSummary;
}

export interface ConvergenceRun {
  run: number;
  ok: boolean;
  enable?: ConvergencePhase;
  disable?: ConvergencePhase;
  /** What went wrong, when not ok */
  failure?: string;
}

export interface Convergence {
  asked: number;
  runs: ConvergenceRun[];
}

export interface OutageBench {
  runs: OutageRun[];
  /** `tls disable` runs between the enables (wall time, SSH cost). */
  disables: RunStatsReport[];
  limit?: PhysicalLimit;
  convergence?: Convergence;
  /** `encrypt enable` (leaders evicted) next to the limit's store restarts (none evicted). */
  eviction?: EvictionBench;
}

export function tickProberConfig(info: LabInfo): TickProberConfig {
  const tidbs = loadTopology(info.topologyFile).instances.filter((i) => i.role === 'tidb');
  return { backends: tidbs.map((i) => `${i.host}:${i.port}`), intervalMs: 100, timeoutMs: 5000, keyPrefix: `bench-${process.pid}` };
}

/** Run tiseal on the lab's topology with --stats-file and return what it recorded; other exit codes are a benchmark failure. */
export async function tisealWithStats(info: LabInfo, args: string[], statsFile: string, okCodes: number[] = [0]): Promise<RunStatsReport> {
  const r = await runTiseal(info, [...args, info.topologyFile, '--stats-file', statsFile]);
  if (r.code === null || !okCodes.includes(r.code)) throw new Error(`tiseal ${args.join(' ')} exited ${r.code ?? r.signal}:\n${r.stderr.slice(-3000)}`);
  return JSON.parse(fs.readFileSync(statsFile, 'utf8')) as RunStatsReport;
}

/** The last line tiseal printed on stderr (its one-line error), for a failed run. */
const lastLine = (text: string) => text.trim().split('\n').filter(Boolean).pop() ?? '';

/**
 * The cluster answers again after a run: its end is then inside the ticks. Generous: statements
 * sent during the outage can stay in TiDB's backoff for minutes and hold the prober's connections.
 */
const settled = (p: TickProberProcess) => p.answering(10, 300_000);

export async function benchOutage(o: { rounds: number; schedules: readonly Schedule[]; limit: boolean; converge: number; eviction?: boolean; workDir: string; log: (m: string) => void }): Promise<OutageBench & { info: LabInfo }> {
  o.log('lab: up (reuses running hosts), then a fresh plaintext cluster');
  const up = await labUp({ log: o.log });
  if (!up.deployed) await labReset({ log: o.log });
  else {
    // A fresh deploy keeps tiseal's state dir, where an interrupted earlier run may have recorded TLS on.
    fs.rmSync(up.stateDir, { recursive: true, force: true });
    fs.mkdirSync(up.stateDir, { recursive: true });
  }
  const info: LabInfo = up;
  const bench: OutageBench = { runs: [], disables: [] };
  if (o.limit) {
    const prober = new TickProberProcess(tickProberConfig(info)).start();
    try {
      o.log('limit: every instance restarted once on the plaintext cluster, then the PD leader');
      bench.limit = await measureLimit({ info, prober, log: o.log });
    } finally {
      await prober.stop();
    }
  }
  for (let round = 1; round <= o.rounds; round++) {
    for (const schedule of o.schedules) {
      const prober = new TickProberProcess(tickProberConfig(info)).start();
      let stats: RunStatsReport;
      let ticks: SqlTick[];
      try {
        await settled(prober);
        o.log(`round ${round}: tls enable --schedule ${schedule}`);
        stats = await tisealWithStats(info, ['tls', 'enable', '--yes', '--schedule', schedule], path.join(o.workDir, `enable-${schedule}-${round}.json`));
        await settled(prober);
      } finally {
        ticks = await prober.stop();
      }
      const during = ticksWithin(ticks, Date.parse(stats.startedAt));
      bench.runs.push({ schedule, round, wallMs: stats.wallMs, outage: outageIntervals(during, stats.steps), critical: criticalPath(stats.restarts), stats, ticks });
      o.log(`round ${round}: tls disable (back to plaintext for the next run)`);
      bench.disables.push(await tisealWithStats(info, ['tls', 'disable', '--yes'], path.join(o.workDir, `disable-${schedule}-${round}.json`)));
    }
  }
  if (o.converge > 0) bench.convergence = await converge(info, o.converge, o.workDir, o.log);
  if (o.eviction) {
    // Last: it leaves the stores encrypted (the next benchmark run resets the lab).
    const prober = new TickProberProcess(tickProberConfig(info)).start();
    try {
      bench.eviction = await benchEviction({ info, prober, limit: bench.limit, run: tisealWithStats, workDir: o.workDir, log: o.log });
    } finally {
      await prober.stop();
    }
  }
  return { ...bench, info };
}

/**
 * `tls enable` + `tls disable` with tiseal's default schedule, `n` times in a row; each must exit 0
 * and the cluster answer SQL afterwards. The first failure ends the series (the cluster's state is
 * then not a plaintext start any more).
 */
async function converge(info: LabInfo, n: number, workDir: string, log: (m: string) => void): Promise<Convergence> {
  const runs: ConvergenceRun[] = [];
  for (let run = 1; run <= n; run++) {
    const prober = new TickProberProcess(tickProberConfig(info)).start();
    const r: ConvergenceRun = { run, ok: false };
    runs.push(r);
    try {
      await settled(prober);
      for (const verb of ['enable', 'disable'] as const) {
        log(`convergence ${run}/${n}: tls ${verb}`);
        const file = path.join(workDir, `converge-${verb}-${run}.json`);
        const res = await runTiseal(info, ['tls', verb, '--yes', info.topologyFile, '--stats-file', file]);
        if (res.code !== 0) throw new Error(`tls ${verb} exited ${res.code ?? res.signal}: ${lastLine(res.stderr)}`);
        const stats = JSON.parse(fs.readFileSync(file, 'utf8')) as RunStatsReport;
        await settled(prober).catch((e: Error) => {
          throw new Error(`no SQL answer after tls ${verb}: ${e.message}`);
        });
        const from = Date.parse(stats.startedAt);
        r[verb] = { wallMs: stats.wallMs, outage: outageIntervals(ticksWithin(prober.ticks(), from), stats.steps) };
      }
      r.ok = true;
    } catch (e) {
      r.failure = (e as Error).message;
    } finally {
      await prober.stop().catch(() => undefined);
    }
    if (!r.ok) {
      log(`convergence ${run}/${n}: FAILED: ${r.failure}`);
      break;
    }
  }
  return { asked: n, runs };
}
