/** Pure arithmetic over what the SQL tick prober and tiseal's --stats-file recorded. */
import type { RestartTiming, StepTiming } from '../src/util/run-stats';
import type { SqlTick } from './sql-tick-prober';

export interface OutageInterval {
  from: number;
  to: number;
  ms: number;
  /** Unanswered ticks in the interval. */
  ticks: number;
  /** What the first unanswered tick got from each TiDB. */
  firstError?: string;
  /** Steps of the tiseal run that overlapped the interval. */
  steps: string[];
}

export interface OutageSummary {
  totalMs: number;
  longestMs: number;
  intervals: OutageInterval[];
  ticks: number;
  failedTicks: number;
  /** Largest gap between two scheduled ticks: the measurement's resolution. */
  resolutionMs: number;
}

/** One line for an unanswered tick: each TiDB's error (identical ones once). */
export function tickError(t: SqlTick): string {
  const errs = t.backends.filter((b) => !b.ok).map((b) => b.error ?? 'failed');
  const distinct = [...new Set(errs)];
  return distinct.length === 1 && t.backends.length > 1 ? `every TiDB: ${distinct[0]}` : t.backends.filter((b) => !b.ok).map((b) => `${b.backend}: ${b.error ?? 'failed'}`).join('; ');
}

/**
 * Unanswered intervals: from the scheduled time of the first unanswered tick to that of the next
 * answered one (a run that never recovered ends at the last tick's end). Ticks end out of order, so
 * they are taken in the order they were scheduled.
 */
export function outageIntervals(ticks: SqlTick[], steps: StepTiming[] = []): OutageSummary {
  const sorted = [...ticks].sort((a, b) => a.n - b.n);
  const intervals: OutageInterval[] = [];
  let open: OutageInterval | undefined;
  for (const t of sorted) {
    if (!t.answered) {
      if (!open) open = { from: t.at, to: t.end, ms: 0, ticks: 0, firstError: tickError(t), steps: [] };
      open.to = Math.max(open.to, t.end);
      open.ticks++;
    } else if (open) {
      open.to = t.at;
      intervals.push(open);
      open = undefined;
    }
  }
  if (open) intervals.push(open);
  for (const iv of intervals) {
    iv.ms = iv.to - iv.from;
    iv.steps = steps.filter((s) => s.startAt < iv.to && (s.endAt ?? Infinity) > iv.from).map((s) => s.id);
  }
  let resolutionMs = 0;
  for (let i = 1; i < sorted.length; i++) resolutionMs = Math.max(resolutionMs, sorted[i].at - sorted[i - 1].at);
  return {
    totalMs: intervals.reduce((a, iv) => a + iv.ms, 0),
    longestMs: Math.max(0, ...intervals.map((iv) => iv.ms)),
    intervals,
    ticks: sorted.length,
    failedTicks: sorted.filter((t) => !t.answered).length,
    resolutionMs,
  };
}

/** The ticks of one run: scheduled from its start (ms since the epoch) to its end, if given. */
export function ticksWithin(ticks: SqlTick[], from: number, to = Infinity): SqlTick[] {
  return ticks.filter((t) => t.at >= from && t.at <= to);
}

export interface CriticalPath {
  totalMs: number;
  tiers: Array<{ tier: string; slowest: { unit: string; host: string; ms: number }; instances: number }>;
}

/** One instance's restart: stop (when stopped separately) plus restart-issued → healthy. */
export function singleRestartMs(r: RestartTiming): number | undefined {
  if (r.healthyAt === undefined) return undefined;
  const stop = r.stopIssuedAt !== undefined && r.stoppedAt !== undefined ? r.stoppedAt - r.stopIssuedAt : 0;
  return stop + (r.healthyAt - r.issuedAt);
}

/** The floor any schedule must pay: tiers restart in order, so the sum of each tier's slowest restart. */
export function criticalPath(restarts: RestartTiming[]): CriticalPath {
  const order: string[] = [];
  const byTier = new Map<string, RestartTiming[]>();
  for (const r of [...restarts].sort((a, b) => a.issuedAt - b.issuedAt)) {
    if (!byTier.has(r.tier)) order.push(r.tier);
    byTier.set(r.tier, [...(byTier.get(r.tier) ?? []), r]);
  }
  const tiers = order.map((tier) => {
    const rs = byTier.get(tier)!;
    const timed = rs.map((r) => ({ r, ms: singleRestartMs(r) })).filter((x): x is { r: RestartTiming; ms: number } => x.ms !== undefined);
    const slow = timed.sort((a, b) => b.ms - a.ms)[0];
    return { tier, slowest: slow ? { unit: slow.r.unit, host: slow.r.host, ms: slow.ms } : { unit: '?', host: '?', ms: 0 }, instances: rs.length };
  });
  return { totalMs: tiers.reduce((a, t) => a + t.slowest.ms, 0), tiers };
}

export interface Distribution {
  n: number;
  min: number;
  median: number;
  max: number;
}

export function distribution(xs: number[]): Distribution {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, min: 0, median: 0, max: 0 };
  const mid = Math.floor(s.length / 2);
  return { n: s.length, min: s[0], median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, max: s[s.length - 1] };
}

/** Least-squares slope/intercept and R² of y over x (linear growth check for the scale bench). */
export function linearFit(points: Array<{ x: number; y: number }>): { slope: number; intercept: number; r2: number } {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  const sxy = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const intercept = my - slope * mx;
  const ssTot = points.reduce((a, p) => a + (p.y - my) ** 2, 0);
  const ssRes = points.reduce((a, p) => a + (p.y - (intercept + slope * p.x)) ** 2, 0);
  return { slope, intercept, r2: ssTot === 0 ? 1 : 1 - ssRes / ssTot };
}

/** One instance restarted on its own (bench/limit.ts). */
export interface InstanceRestart {
  role: string;
  host: string;
  unit: string;
  /** sql: the first tick that TiDB answered; serving+sql: first answered tick once it serves; port: its port answering */
  judged: 'sql' | 'serving+sql' | 'port';
  /** ms since the epoch */
  stopIssuedAt: number;
  /** `systemctl restart` returned: the old process is gone */
  restartedAt: number;
  servingAt?: number;
  answeredAt?: number;
  /** stop issued → back (answeredAt, else servingAt) */
  ms: number;
  /** the PD leader: its restart was also the election */
  pdLeader?: boolean;
}

export interface LeaderElection {
  pd: string;
  host: string;
  stopIssuedAt: number;
  answeredAt: number;
  ms: number;
}

export interface PhysicalLimit {
  restarts: InstanceRestart[];
  election: LeaderElection;
  slowest: { unit: string; host: string; ms: number };
  /** slowest single restart + one PD leader election */
  ms: number;
}

/** No TLS switch can beat the slowest single restart plus one PD leader election. */
export function physicalLimit(restarts: InstanceRestart[], election: LeaderElection): PhysicalLimit {
  if (!restarts.length) throw new Error('limit: no restart measured');
  const slow = [...restarts].sort((a, b) => b.ms - a.ms)[0];
  return { restarts, election, slowest: { unit: slow.unit, host: slow.host, ms: slow.ms }, ms: slow.ms + election.ms };
}

export interface GoalVerdict {
  ratio: number;
  goal: number;
  met: boolean;
  /** ratio − goal when missed */
  missedBy?: number;
  /** what the measured value would have to lose to meet the goal, ms */
  missedByMs?: number;
}

/** `value ÷ reference` against `ratio ≤ goal`. */
export function verdict(valueMs: number, referenceMs: number, goal: number): GoalVerdict {
  const ratio = valueMs / Math.max(1, referenceMs);
  if (ratio <= goal) return { ratio, goal, met: true };
  return { ratio, goal, met: false, missedBy: ratio - goal, missedByMs: valueMs - goal * referenceMs };
}
