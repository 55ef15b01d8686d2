import { criticalPath, distribution, linearFit, outageIntervals, singleRestartMs } from '../../bench/analysis';
import type { Tick } from '../../bench/prober';
import type { RestartTiming } from '../../src/util/run-stats';

/** Ticks every 100 ms from t=0; `down` lists the tick indexes that failed (and what failed). */
function ticks(n: number, down: Record<number, 'pd' | 'tidb' | 'both'>): Tick[] {
  return Array.from({ length: n }, (_, i) => {
    const d = down[i];
    const pd = !(d === 'pd' || d === 'both');
    const tidb = !(d === 'tidb' || d === 'both');
    return { t0: i * 100, t1: i * 100 + 20, ok: pd && tidb, pd, tidb, error: d ? `${d} down` : undefined };
  });
}

describe('outageIntervals', () => {
  it('measures from the first unanswered probe to the next answered one', () => {
    const o = outageIntervals(ticks(20, { 3: 'pd', 4: 'pd', 5: 'both', 12: 'tidb' }));
    expect(o.intervals.map((iv) => [iv.from, iv.to, iv.ms])).toEqual([
      [300, 600, 300],
      [1200, 1300, 100],
    ]);
    expect(o.intervals[0]).toMatchObject({ pdDown: true, tidbDown: true, firstError: 'pd down' });
    expect(o.intervals[1]).toMatchObject({ pdDown: false, tidbDown: true });
    expect(o).toMatchObject({ totalMs: 400, longestMs: 300, ticks: 20, failedTicks: 4, resolutionMs: 100 });
  });

  it('ends an outage that never recovered at the last probe, and sorts probes by time', () => {
    const t = ticks(6, { 4: 'both', 5: 'both' }).reverse();
    const o = outageIntervals(t);
    expect(o.intervals).toHaveLength(1);
    expect(o.intervals[0]).toMatchObject({ from: 400, to: 520, ms: 120 });
  });

  it('names the steps that overlapped each interval', () => {
    const steps = [
      { id: 'stage', startAt: 0, endAt: 250 },
      { id: 'restart-pd', startAt: 250, endAt: 700 },
      { id: 'restart-tidb', startAt: 1100, endAt: 1500 },
      { id: 'never-ended', startAt: 1900 },
    ];
    const o = outageIntervals(ticks(20, { 3: 'pd', 12: 'tidb', 19: 'both' }), steps);
    expect(o.intervals.map((iv) => iv.steps)).toEqual([['restart-pd'], ['restart-tidb'], ['never-ended']]);
  });

  it('reports no outage for a cluster that always answered', () => {
    expect(outageIntervals(ticks(10, {}))).toMatchObject({ totalMs: 0, longestMs: 0, intervals: [], failedTicks: 0 });
    expect(outageIntervals([])).toMatchObject({ totalMs: 0, ticks: 0, resolutionMs: 0 });
  });
});

describe('criticalPath', () => {
  const r = (tier: string, unit: string, issuedAt: number, healthyAt?: number, stop?: [number, number]): RestartTiming => ({
    host: '10.0.0.1',
    unit,
    role: tier,
    tier,
    issuedAt,
    healthyAt,
    ...(stop ? { stopIssuedAt: stop[0], stoppedAt: stop[1] } : {}),
  });

  it('sums the slowest restart of each tier, in the order the tiers ran', () => {
    const cp = criticalPath([r('tikv', 'tikv-a', 5000, 8000), r('pd', 'pd-2379', 1000, 3500), r('tikv', 'tikv-b', 5000, 9000), r('tidb', 'tidb-4000', 10000, 11000)]);
    expect(cp.tiers.map((t) => [t.tier, t.slowest.unit, t.slowest.ms, t.instances])).toEqual([
      ['pd', 'pd-2379', 2500, 1],
      ['tikv', 'tikv-b', 4000, 2],
      ['tidb', 'tidb-4000', 1000, 1],
    ]);
    expect(cp.totalMs).toBe(7500);
  });

  it('adds a separate stop to the restart, and ignores restarts never seen healthy', () => {
    expect(singleRestartMs(r('pd', 'pd', 1000, 1600, [100, 400]))).toBe(900);
    expect(singleRestartMs(r('pd', 'pd', 1000))).toBeUndefined();
    const cp = criticalPath([r('pd', 'pd-a', 0), r('pd', 'pd-b', 0, 700)]);
    expect(cp.tiers[0].slowest).toMatchObject({ unit: 'pd-b', ms: 700 });
  });
});

describe('distribution and linearFit', () => {
  it('gives min, median and max', () => {
    expect(distribution([5, 1, 3])).toEqual({ n: 3, min: 1, median: 3, max: 5 });
    expect(distribution([4, 1, 3, 2])).toEqual({ n: 4, min: 1, median: 2.5, max: 4 });
    expect(distribution([])).toEqual({ n: 0, min: 0, median: 0, max: 0 });
  });

  it('fits a straight line exactly and reports a poor fit for a curve', () => {
    const line = linearFit([8, 16, 32, 48].map((x) => ({ x, y: 200 + 20 * x })));
    expect(line.slope).toBeCloseTo(20);
    expect(line.intercept).toBeCloseTo(200);
    expect(line.r2).toBeCloseTo(1);
    const curve = linearFit([1, 2, 3, 4, 5, 6].map((x) => ({ x, y: (x - 3.5) ** 2 })));
    expect(curve.r2).toBeLessThan(0.5);
  });
});
