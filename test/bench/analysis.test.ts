import { criticalPath, distribution, linearFit, outageIntervals, physicalLimit, singleRestartMs, ticksWithin, verdict, type InstanceRestart } from '../../bench/analysis';
import type { SqlTick } from '../../bench/sql-tick-prober';
import type { RestartTiming } from '../../src/util/run-stats';

const A = '10.0.0.1:4000';
const B = '10.0.0.2:4000';

/** Ticks every 100 ms from t=0 over two TiDBs; `down` lists the ticks each TiDB failed ('a', 'b' or 'both'). */
function ticks(n: number, down: Record<number, 'a' | 'b' | 'both'>): SqlTick[] {
  return Array.from({ length: n }, (_, i) => {
    const d = down[i];
    const a = d === 'a' || d === 'both' ? { backend: A, ok: false, ms: 5, error: 'ERROR 9001 (HY000): PD server timeout' } : { backend: A, ok: true, ms: 5 };
    const b = d === 'b' || d === 'both' ? { backend: B, ok: false, ms: 5, error: 'connect ECONNREFUSED' } : { backend: B, ok: true, ms: 5 };
    return { n: i, at: i * 100, end: i * 100 + 20, answered: a.ok || b.ok, backends: [a, b] };
  });
}

describe('outageIntervals', () => {
  it('measures from the first unanswered tick to the next answered one; one TiDB answering is enough', () => {
    const o = outageIntervals(ticks(20, { 2: 'a', 3: 'both', 4: 'both', 5: 'both', 8: 'b', 12: 'both' }));
    expect(o.intervals.map((iv) => [iv.from, iv.to, iv.ms, iv.ticks])).toEqual([
      [300, 600, 300, 3],
      [1200, 1300, 100, 1],
    ]);
    expect(o.intervals[0].firstError).toBe(`${A}: ERROR 9001 (HY000): PD server timeout; ${B}: connect ECONNREFUSED`);
    expect(o).toMatchObject({ totalMs: 400, longestMs: 300, ticks: 20, failedTicks: 4, resolutionMs: 100 });
  });

  it('names one error once when every TiDB got it', () => {
    const t = ticks(3, { 1: 'both' });
    t[1].backends[1].error = t[1].backends[0].error;
    expect(outageIntervals(t).intervals[0].firstError).toBe('every TiDB: ERROR 9001 (HY000): PD server timeout');
  });

  it('takes ticks in the order they were scheduled (they end out of order), and ends an outage that never recovered at the last end', () => {
    const t = ticks(6, { 4: 'both', 5: 'both' });
    t[4].end = 900; // a tick that hung until its timeout
    const o = outageIntervals([...t].reverse());
    expect(o.intervals).toHaveLength(1);
    expect(o.intervals[0]).toMatchObject({ from: 400, to: 900, ms: 500, ticks: 2 });
  });

  it('names the steps that overlapped each interval', () => {
    const steps = [
      { id: 'stage', startAt: 0, endAt: 250 },
      { id: 'restart-pd', startAt: 250, endAt: 700 },
      { id: 'restart-tidb', startAt: 1100, endAt: 1500 },
      { id: 'never-ended', startAt: 1900 },
    ];
    const o = outageIntervals(ticks(20, { 3: 'both', 12: 'both', 19: 'both' }), steps);
    expect(o.intervals.map((iv) => iv.steps)).toEqual([['restart-pd'], ['restart-tidb'], ['never-ended']]);
  });

  it('reports no outage for a cluster that always answered', () => {
    expect(outageIntervals(ticks(10, { 3: 'a', 4: 'b' }))).toMatchObject({ totalMs: 0, longestMs: 0, intervals: [], failedTicks: 0 });
    expect(outageIntervals([])).toMatchObject({ totalMs: 0, ticks: 0, resolutionMs: 0 });
  });

  it('keeps the ticks scheduled within a run', () => {
    expect(ticksWithin(ticks(10, {}), 300, 500).map((t) => t.n)).toEqual([3, 4, 5]);
    expect(ticksWithin(ticks(10, {}), 850).map((t) => t.n)).toEqual([9]);
  });
});

describe('physical limit and goals', () => {
  const r = (unit: string, ms: number, over: Partial<InstanceRestart> = {}): InstanceRestart => ({ role: unit.split('-')[0], host: '10.0.0.1', unit, judged: 'port', stopIssuedAt: 0, restartedAt: 10, ms, ...over });
  const election = { pd: 'pd-1', host: '10.0.0.1', stopIssuedAt: 0, answeredAt: 1800, ms: 1800 };

  it('is the slowest single restart plus one PD leader election', () => {
    const l = physicalLimit([r('pd-2379.service', 900), r('tikv-20160.service', 2600, { host: '10.0.0.3' }), r('tidb-4000.service', 1200)], election);
    expect(l.slowest).toEqual({ unit: 'tikv-20160.service', host: '10.0.0.3', ms: 2600 });
    expect(l.ms).toBe(4400);
    expect(() => physicalLimit([], election)).toThrow('limit: no restart measured');
  });

  it('judges a ratio against its goal and says by how much it was missed', () => {
    expect(verdict(2000, 5000, 0.5)).toEqual({ ratio: 0.4, goal: 0.5, met: true });
    expect(verdict(2500, 5000, 0.5)).toEqual({ ratio: 0.5, goal: 0.5, met: true });
    const missed = verdict(6000, 3000, 1.5);
    expect(missed).toMatchObject({ ratio: 2, met: false, missedByMs: 1500 });
    expect(missed.missedBy).toBeCloseTo(0.5);
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
