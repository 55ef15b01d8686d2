/** Pure arithmetic over what the prober and tiseal's --stats-file recorded. */
import type { RestartTiming, StepTiming } from '../src/util/run-stats';
import type { Tick } from './prober';

export interface OutageInterval {
  from: number;
  to: number;
  ms: number;
  /** What was down at some point in the interval. */
  pdDown: boolean;
  tidbDown: boolean;
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
  /** Largest gap between the starts of two ticks: the measurement's resolution. */
  resolutionMs: number;
}

/**
 * Unanswered intervals: from the start of the first failed tick to the start of the next answered
 * one (a run that never recovered ends at the last tick's end).
 */
export function outageIntervals(ticks: Tick[], steps: StepTiming[] = []): OutageSummary {
  const sorted = [...ticks].sort((a, b) => a.t0 - b.t0);
  const intervals: OutageInterval[] = [];
  let open: OutageInterval | undefined;
  for (const t of sorted) {
    if (!t.ok) {
      if (!open) open = { from: t.t0, to: t.t1, ms: 0, pdDown: false, tidbDown: false, firstError: t.error, steps: [] };
      open.to = t.t1;
      open.pdDown ||= !t.pd;
      open.tidbDown ||= !t.tidb;
    } else if (open) {
      open.to = t.t0;
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
  for (let i = 1; i < sorted.length; i++) resolutionMs = Math.max(resolutionMs, sorted[i].t0 - sorted[i - 1].t0);
  return {
    totalMs: intervals.reduce((a, iv) => a + iv.ms, 0),
    longestMs: Math.max(0, ...intervals.map((iv) => iv.ms)),
    intervals,
    ticks: sorted.length,
    failedTicks: sorted.filter((t) => !t.ok).length,
    resolutionMs,
  };
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
