import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { UsageError } from '../errors';
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

/** A store restarted under PD's evict-leader scheduler (src/tasks/restart/evict-leaders.ts), or why not. */
export interface EvictionTiming {
  host: string;
  unit: string;
  /** ms since the epoch: the eviction began (or was skipped). */
  at: number;
  skipped?: string;
  storeId?: string;
  addedByTiseal?: boolean;
  leadersBefore?: number;
  /** Leaders PD still counted on the store when it was restarted (> 0: timed out). */
  leadersAtRestart?: number;
  evictMs?: number;
  timedOut?: boolean;
  removedAt?: number;
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
  /** Absent in stats files written before leader eviction. */
  evictions?: EvictionTiming[];
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
  private readonly evictions: EvictionTiming[] = [];

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

  /** The returned record is filled in as the eviction goes on. */
  eviction(e: Omit<EvictionTiming, 'at'>): EvictionTiming {
    const r = { ...e, at: Date.now() };
    this.evictions.push(r);
    return r;
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
      evictions: this.evictions,
    };
  }

  /**
   * Temp file (random name, O_EXCL: never through a planted symlink) + rename, in a directory that
   * must exist: no mkdir -p (it spins forever under /proc).
   */
  write(file: string, command: string, exitCode?: number): void {
    const target = path.resolve(file);
    checkStatsFile(target);
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fd = fs.openSync(tmp, 'wx', 0o644);
      try {
        fs.writeSync(fd, JSON.stringify(this.report(command, exitCode), null, 2) + '\n');
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, target);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw new UsageError(`cannot write --stats-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'give a file in a directory you can write');
    }
  }
}

/** statfs f_type of proc, sysfs, cgroup2, debugfs, securityfs: kernel interfaces, not storage. */
const PSEUDO_FS = new Set([0x9fa0, 0x62656572, 0x63677270, 0x64626720, 0x73636673]);

/**
 * `--stats-file` must be a regular file (or nothing yet) in an existing directory of a real file
 * system: renaming over /dev/null or a symlink, or writing under /proc, is refused up front.
 */
export function checkStatsFile(file: string): void {
  const bad = (why: string) => new UsageError(`invalid --stats-file ${file}: ${why}`, 'give a path to a regular file in an existing directory you can write, e.g. --stats-file ./stats.json');
  const target = path.resolve(file);
  const dir = path.dirname(target);
  let d: fs.Stats | undefined;
  try {
    d = fs.statSync(dir, { throwIfNoEntry: false });
  } catch (e) {
    throw bad(`${dir} cannot be used (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!d) throw bad(`the directory ${dir} does not exist`);
  if (!d.isDirectory()) throw bad(`${dir} is not a directory`);
  const st = fs.lstatSync(target, { throwIfNoEntry: false });
  if (st && !st.isFile()) throw bad(st.isDirectory() ? 'it is a directory' : 'it exists and is not a regular file');
  try {
    if (PSEUDO_FS.has(Number(fs.statfsSync(dir).type))) throw bad(`${dir} is on a pseudo file system`);
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw bad(`${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * The CLI writes the stats at the end of every run. A command that failed keeps its own error:
 * a stats failure then only adds a warning (unless it is the same complaint).
 */
export function writeStatsFile(file: string, command: string, exitCode: number | undefined, failure?: unknown): void {
  try {
    runStats.write(file, command, exitCode);
  } catch (e) {
    if (failure === undefined) throw e;
    if (failure instanceof Error && failure.message === (e as Error).message) return;
    process.stderr.write(`warning: ${(e as Error).message}\n`);
  }
}

/** One CLI invocation is one run: the process-wide recorder. */
export const runStats = new RunStats();
