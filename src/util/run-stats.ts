import * as fs from 'fs';
import * as path from 'path';
import type { SshHostStats } from '../ssh/pool';

/**
 * What one CLI run measured about itself: SSH cost per host, step times and, for every restart,
 * when it was issued and when the instance answered again. Written with `--stats-file` (the
 * benchmarks read it); recording is a few timestamps, so it is always on.
 */
export interface RestartTiming {
  host: string;
  unit: string;
  role: string;
  /** The restart step (tier) that issued it. */
  tier: string;
  /** ms since the epoch; `stop…` only when the schedule stops everything first. */
  stopIssuedAt?: number;
  stoppedAt?: number;
  issuedAt: number;
  healthyAt?: number;
}

export interface StepTiming {
  id: string;
  startAt: number;
  endAt?: number;
  outcome?: 'done' | 'nothing-to-do' | 'skipped' | 'failed';
}

export interface RunStatsReport {
  command: string;
  exitCode?: number;
  startedAt: string;
  wallMs: number;
  /** Peak resident set of the tiseal process, KiB. */
  maxRssKb: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  ssh: { hosts: number; handshakes: number; maxHandshakesPerHost: number; execs: number; rttTotalMs: number; connectTotalMs: number; perHost: SshHostStats[] };
  steps: StepTiming[];
  restarts: RestartTiming[];
}

interface StatsSource {
  stats?(): SshHostStats[];
}

const key = (host: string, unit: string) => `${unit}@${host}`;

export class RunStats {
  readonly startedAt = Date.now();
  private readonly steps: StepTiming[] = [];
  private readonly restarts = new Map<string, RestartTiming>();
  /** Separate stops (schedule stop-all) not yet followed by their start. */
  private readonly stops = new Map<string, { stopIssuedAt: number; stoppedAt?: number }>();
  private readonly pools: StatsSource[] = [];

  watchPool(pool: StatsSource): void {
    this.pools.push(pool);
  }

  stepStart(id: string): void {
    this.steps.push({ id, startAt: Date.now() });
  }

  /** Closes the step's open record; a step whose several actions fail is recorded failed once. */
  stepEnd(id: string, outcome: 'done' | 'nothing-to-do' | 'failed'): void {
    const s = [...this.steps].reverse().find((x) => x.id === id && x.endAt === undefined);
    if (s) Object.assign(s, { endAt: Date.now(), outcome });
  }

  /** A step the journal says an interrupted run finished: never started here. */
  stepSkipped(id: string): void {
    this.steps.push({ id, startAt: Date.now(), endAt: Date.now(), outcome: 'skipped' });
  }

  stopIssued(inst: { host: string; unit: string }): void {
    this.stops.set(key(inst.host, inst.unit), { stopIssuedAt: Date.now() });
  }

  stopped(inst: { host: string; unit: string }): void {
    const s = this.stops.get(key(inst.host, inst.unit));
    if (s && s.stoppedAt === undefined) s.stoppedAt = Date.now();
  }

  /** A restart (or, after a separate stop, the start), carrying that stop along. */
  restartIssued(inst: { host: string; unit: string; role: string }, tier: string): void {
    const k = key(inst.host, inst.unit);
    const stop = this.stops.get(k);
    this.stops.delete(k);
    this.restarts.set(k, { host: inst.host, unit: inst.unit, role: inst.role, tier, ...stop, issuedAt: Date.now() });
  }

  /** First health check that passed after a restart was issued (other health checks are ignored). */
  healthy(inst: { host: string; unit: string }): void {
    const r = this.restarts.get(key(inst.host, inst.unit));
    if (r && r.healthyAt === undefined) r.healthyAt = Date.now();
  }

  report(command: string, exitCode?: number): RunStatsReport {
    const perHost = this.pools.flatMap((p) => p.stats?.() ?? []);
    const usage = process.resourceUsage();
    const sum = (f: (s: SshHostStats) => number) => Math.round(perHost.reduce((a, s) => a + f(s), 0));
    return {
      command,
      exitCode,
      startedAt: new Date(this.startedAt).toISOString(),
      wallMs: Date.now() - this.startedAt,
      maxRssKb: usage.maxRSS,
      cpuUserMs: Math.round(usage.userCPUTime / 1000),
      cpuSystemMs: Math.round(usage.systemCPUTime / 1000),
      ssh: {
        hosts: perHost.length,
        handshakes: sum((s) => s.handshakes),
        maxHandshakesPerHost: Math.max(0, ...perHost.map((s) => s.handshakes)),
        execs: sum((s) => s.execs),
        rttTotalMs: sum((s) => s.rttTotalMs),
        connectTotalMs: sum((s) => s.connectMs),
        perHost,
      },
      steps: this.steps,
      restarts: [...this.restarts.values()],
    };
  }

  write(file: string, command: string, exitCode?: number): void {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(this.report(command, exitCode), null, 2) + '\n');
    fs.renameSync(tmp, file);
  }
}

/** One CLI invocation is one run: the process-wide recorder. */
export const runStats = new RunStats();
