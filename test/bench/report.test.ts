import { parseArgs } from '../../bench/args';
import { mergeResults, renderResults, type BenchResults } from '../../bench/report';
import type { ScaleRun } from '../../bench/scale';
import { outageIntervals, criticalPath } from '../../bench/analysis';
import type { RunStatsReport } from '../../src/util/run-stats';
import type { OutageRun } from '../../bench/outage';

const stats = (over: Partial<RunStatsReport> = {}): RunStatsReport => ({
  command: 'tls enable',
  startedAt: new Date(0).toISOString(),
  wallMs: 20000,
  maxRssKb: 80000,
  cpuUserMs: 1,
  cpuSystemMs: 1,
  ssh: { hosts: 5, handshakes: 5, maxHandshakesPerHost: 1, execs: 300, rttTotalMs: 4000, connectTotalMs: 300, perHost: [] },
  steps: [],
  restarts: [],
  ...over,
});

function run(schedule: 'tiers' | 'stop-all', outageMs: number, restartMs: number): OutageRun {
  const ticks = [0, 1, 2, 3].map((i) => ({ t0: i * outageMs, t1: i * outageMs + 5, ok: i !== 1, pd: i !== 1, tidb: true }));
  const restarts = [{ host: 'h', unit: 'pd-2379.service', role: 'pd', tier: 'pd', issuedAt: 0, healthyAt: restartMs }];
  return { schedule, round: 1, wallMs: 20000, outage: outageIntervals(ticks), critical: criticalPath(restarts), stats: stats({ restarts }) };
}

describe('bench report', () => {
  const base: BenchResults = { date: '2026-11-22T10:00:00.000Z', machine: 'Linux x64, 2 × CPU', args: parseArgs([]) };

  it('states the machine, the date and whether each goal was met', () => {
    const md = renderResults({
      ...base,
      outage: { runs: [run('tiers', 1000, 1000), run('stop-all', 4000, 1000)], disables: [] },
      ssh: [{ command: 'tls enable', wallMs: 1, hosts: 5, handshakes: 5, maxHandshakesPerHost: 1, execs: 3, rttTotalMs: 4, connectTotalMs: 5 }],
    });
    expect(md).toMatch(/^# tiseal benchmark results/);
    expect(md).toContain('Machine: Linux x64, 2 × CPU');
    expect(md).toContain('2026-11-22');
    expect(md).toMatch(/1\.00 × the critical path: goal ≤ 1\.2 × — \*\*met\*\*/);
    expect(md).toMatch(/tiseal ÷ TiUP schedule \(median outage\): \*\*0\.25\*\*/);
    expect(md).toMatch(/one connection per host, as required/);
  });

  it('says so when a goal is missed', () => {
    const md = renderResults({
      ...base,
      outage: { runs: [run('tiers', 2000, 1000)], disables: [] },
      ssh: [{ command: 'audit', wallMs: 1, hosts: 5, handshakes: 10, maxHandshakesPerHost: 2, execs: 3, rttTotalMs: 4, connectTotalMs: 5 }],
    });
    expect(md).toMatch(/2\.00 × the critical path: goal ≤ 1\.2 × — \*\*NOT met\*\*/);
    expect(md).toMatch(/MORE THAN ONE/);
  });
});

describe('bench report: scale', () => {
  const base: BenchResults = { date: '2026-11-22T10:00:00.000Z', machine: 'Linux x64, 2 × CPU', args: parseArgs(['--only', 'scale']) };
  const d = (median: number) => ({ n: 3, min: median - 1, median, max: median + 1 });
  const row = (hosts: number, wallMs: number, rssMb: number, concurrency?: number): ScaleRun => ({ hosts, concurrency, wall: d(wallMs), peakRssMb: d(rssMb), cpuMs: d(hosts * 10), machineCpuMs: d(hosts * 40), handshakesPerHost: 1, execs: hosts + 1 });
  const scale = (wall200: number) => ({ runs: [row(50, 900, 70), row(100, 1600, 72), row(200, wall200, 75)], sweep: [row(200, 4000, 74, 5), row(200, wall200, 76, 50)], defaultConcurrency: 32, cores: 2, fit: { msPerHost: 10, baseMs: 100, r2: 0.99 } });

  it('judges the 200-host goal, shows how RSS grows per host and the width sweep', () => {
    const met = renderResults({ ...base, scale: scale(2500) });
    expect(met).toMatch(/200 hosts at default \(32\): 2\.50 s; goal under 3\.00 s — \*\*met\*\*\./);
    expect(met).toMatch(/peak RSS 70\.0 MiB at 50 hosts, 75\.0 MiB at 200 \(1\.07 × for 4\.0 × the hosts; 34 KiB per extra host\)/);
    expect(met).toMatch(/Width sweep, 200 hosts/);
    expect(met).toMatch(/\| 5 \| 4000 ms \| 3999 ms – 4001 ms \| 2000 ms \| 8000 ms \| 74\.0 MiB \|/);
    const missed = renderResults({ ...base, scale: scale(5200) });
    expect(missed).toMatch(/5\.20 s; goal under 3\.00 s — \*\*NOT met\*\*\. tiseal's own CPU was 2\.00 s of it; the machine was busy 8\.00 s of CPU time on 2 cores/);
  });

  it('a run of some parts keeps the others, with their arguments and dates', () => {
    const prev: BenchResults = { date: '2026-11-01T00:00:00.000Z', machine: 'm', args: parseArgs(['--rounds', '4', '--sizes', '8,16']), certs: [], scale: scale(9000) };
    const fresh: BenchResults = { ...base, scale: scale(2500) };
    const m = mergeResults(prev, fresh);
    expect(m.args).toMatchObject({ only: ['outage', 'ssh', 'certs', 'scale'], rounds: 4, sizes: [50, 100, 200] });
    expect(m.certs).toBe(prev.certs);
    expect(m.scale).toBe(fresh.scale);
    expect(m.partDates).toEqual({ outage: prev.date, ssh: prev.date, certs: prev.date, scale: fresh.date });
    expect(renderResults(m)).toMatch(/Measured: outage 2026-11-01, ssh 2026-11-01, certs 2026-11-01, scale 2026-11-22/);
    expect(mergeResults(prev, { ...fresh, args: parseArgs([]) })).toEqual({ ...fresh, args: parseArgs([]) }); // everything re-run: nothing kept
  });
});

describe('bench arguments', () => {
  it('defaults to every part with the sizes the issue asks for', () => {
    expect(parseArgs([])).toMatchObject({ only: ['outage', 'ssh', 'certs', 'scale'], leaves: 200, forgeLeaves: 200, sizes: [50, 100, 200], sweep: [5, 10, 25, 50, 100, 200], rounds: 2 });
    expect(parseArgs([]).concurrency).toBeUndefined(); // tiseal's own read-only default
    expect(parseArgs(['--only', 'certs', '--leaves', '20', '--sizes', '2,4'])).toMatchObject({ only: ['certs'], leaves: 20, sizes: [2, 4] });
  });
  it('refuses unknown parts, flags and non-numbers', () => {
    expect(() => parseArgs(['--only', 'speed'])).toThrow(/--only takes outage,ssh,certs,scale/);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown flag '--fast'/);
    expect(() => parseArgs(['--leaves', 'many'])).toThrow(/--leaves wants a positive integer/);
  });
});
