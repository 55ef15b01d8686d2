import { parseArgs } from '../../bench/args';
import { mergeResults, renderResults, resultsJson, type BenchResults } from '../../bench/report';
import type { ScaleRun } from '../../bench/scale';
import { outageIntervals, criticalPath, physicalLimit } from '../../bench/analysis';
import type { RunStatsReport } from '../../src/util/run-stats';
import type { OutageBench, OutageRun, Schedule } from '../../bench/outage';
import type { SqlTick } from '../../bench/sql-tick-prober';

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

/** A run whose only outage is `outageMs` long: ticks at 0, 100, then unanswered until `outageMs + 100`. */
function run(schedule: Schedule, outageMs: number, round = 1): OutageRun {
  const at = [0, 100, 100 + outageMs, 200 + outageMs];
  const ticks: SqlTick[] = at.map((t, n) => ({ n, at: t, end: t + 5, answered: n !== 1, backends: [{ backend: '10.0.0.1:4000', ok: n !== 1, ms: 5, ...(n === 1 ? { error: 'ERROR 9001 (HY000): PD server timeout' } : {}) }] }));
  const restarts = [{ host: 'h', unit: 'pd-2379.service', role: 'pd', tier: 'pd', issuedAt: 0, healthyAt: 900 }];
  return { schedule, round, wallMs: 20000, outage: outageIntervals(ticks), critical: criticalPath(restarts), stats: stats({ restarts }), ticks };
}

const limit = (restartMs: number, electionMs: number) =>
  physicalLimit(
    [
      { role: 'tikv', host: '10.0.0.3', unit: 'tikv-20160.service', judged: 'serving+sql', stopIssuedAt: 0, restartedAt: 10, servingAt: 500, answeredAt: restartMs, ms: restartMs },
      { role: 'cdc', host: '10.0.0.4', unit: 'cdc-8300.service', judged: 'port', stopIssuedAt: 0, restartedAt: 10, servingAt: 300, ms: 300 },
    ],
    { pd: 'pd-10.0.0.1-2379', host: '10.0.0.1', stopIssuedAt: 0, answeredAt: electionMs, ms: electionMs },
  );

describe('bench report: outage', () => {
  const base: BenchResults = { date: '2026-11-22T10:00:00.000Z', machine: 'Linux x64, 2 × CPU', args: parseArgs([]) };
  const ssh = [{ command: 'tls enable', wallMs: 1, hosts: 5, handshakes: 5, maxHandshakesPerHost: 1, execs: 3, rttTotalMs: 4, connectTotalMs: 5 }];

  it('states the machine and date, the three schedules, the limit and both goals met', () => {
    const outage: OutageBench = {
      runs: [run('overlap', 2000), run('tiers', 5000), run('stop-all', 6000), run('overlap', 3000, 2), run('tiers', 5000, 2), run('stop-all', 4000, 2)],
      disables: [],
      limit: limit(2000, 1500),
    };
    const md = renderResults({ ...base, outage, ssh });
    expect(md).toMatch(/^# tiseal benchmark results/);
    expect(md).toContain('Machine: Linux x64, 2 × CPU');
    expect(md).toContain('2026-11-22');
    expect(md).toContain('| overlap | 2 | 20.00 s | 3.00 s | 1 | 3.00 s | 1 of 4 |');
    expect(md).toContain('- stop-all: median outage 5.00 s over 2 round(s).');
    expect(md).toContain('| tikv-20160.service | 10.0.0.3 | serving again, then the first answered tick | 2000 ms |');
    expect(md).toContain('**Limit: 3.50 s** = slowest single restart (tikv-20160.service on 10.0.0.3, 2000 ms) + one election (1500 ms).');
    expect(md).toContain("- overlap ÷ stop-all (TiUP's schedule): 2.50 s ÷ 5.00 s = **0.50**; goal ≤ 0.5 — **met**.");
    expect(md).toContain('- overlap ÷ physical limit: 2.50 s ÷ 3.50 s = **0.71**; goal ≤ 1.5 — **met**.');
    expect(md).toMatch(/\| overlap #1 \| 0\.10 s → 2\.10 s \| 2000 ms \| 1 \|  \| 10\.0\.0\.1:4000: ERROR 9001 \(HY000\): PD server timeout \|/);
    expect(md).toMatch(/one connection per host, as required/);
  });

  it('says by how much a goal is missed, and when something was not measured', () => {
    const md = renderResults({ ...base, outage: { runs: [run('overlap', 4000), run('stop-all', 6000)], disables: [], limit: limit(1000, 1000) }, ssh });
    expect(md).toContain("- overlap ÷ stop-all (TiUP's schedule): 4.00 s ÷ 6.00 s = **0.67**; goal ≤ 0.5 — **missed by 0.17** (1.00 s over).");
    expect(md).toContain('- overlap ÷ physical limit: 4.00 s ÷ 2.00 s = **2.00**; goal ≤ 1.5 — **missed by 0.50** (1.00 s over).');
    const partial = renderResults({ ...base, outage: { runs: [run('tiers', 4000), run('stop-all', 6000)], disables: [] }, ssh });
    expect(partial).toContain('- overlap was not measured in this run: no goal judged.');
    const noLimit = renderResults({ ...base, outage: { runs: [run('overlap', 4000)], disables: [] }, ssh: [{ ...ssh[0], handshakes: 10, maxHandshakesPerHost: 2 }] });
    expect(noLimit).toContain('- stop-all was not measured in this run.');
    expect(noLimit).toContain('- the physical limit was not measured in this run.');
    expect(noLimit).toMatch(/MORE THAN ONE/);
  });

  it('reports convergence: all runs, or which failed and why', () => {
    const phase = (wallMs: number, outageMs: number) => ({ wallMs, outage: run('overlap', outageMs).outage });
    const ok = (r: number) => ({ run: r, ok: true, enable: phase(30000, 2000), disable: phase(25000, 3000) });
    const all = renderResults({ ...base, outage: { runs: [], disables: [], convergence: { asked: 2, runs: [ok(1), ok(2)] } } });
    expect(all).toContain('**2 of 2 converged.**');
    expect(all).toContain('| 2 | 30.00 s | 2.00 s | 25.00 s | 3.00 s | ok |');
    const failed = renderResults({ ...base, outage: { runs: [], disables: [], convergence: { asked: 3, runs: [ok(1), { run: 2, ok: false, enable: phase(30000, 2000), failure: 'tls disable exited 1: error: 10.0.0.1: PD | refused' }] } } });
    expect(failed).toContain('**1 of 3 converged**: run 2 failed (tls disable exited 1: error: 10.0.0.1: PD / refused); the 1 after it were not run.');
    expect(failed).toContain('| 2 | 30.00 s | 2.00 s | - | - | tls disable exited 1: error: 10.0.0.1: PD / refused |');
  });

  it('reports the rolling store restarts with eviction next to the same stores restarted without', () => {
    const evictions = [
      { host: '10.0.0.3', unit: 'tikv-20160.service', at: 0, storeId: '1', addedByTiseal: true, leadersBefore: 2, leadersAtRestart: 0, evictMs: 1000 },
      { host: '10.0.0.5', unit: 'tiflash-9000.service', at: 0, skipped: 'store 21 leads no region' },
    ];
    const withEv = { wallMs: 30000, outage: run('overlap', 0).outage, evictions };
    const text = renderResults({ ...base, outage: { runs: [], disables: [], eviction: { withEviction: withEv, withoutEviction: [{ host: '10.0.0.3', unit: 'tikv-20160.service', ms: 11900 }] } } });
    expect(text).toContain('## Rolling store restarts: with and without leader eviction');
    expect(text).toContain(`- With eviction: \`encrypt enable\` 30.00 s, **${(withEv.outage.totalMs / 1000).toFixed(2)} s of SQL outage**`);
    expect(text).toContain('- Without eviction: tikv-20160.service @ 10.0.0.3 11900 ms from stop to the SQL client answered again.');
    expect(text).toContain('| tikv-20160.service @ 10.0.0.3 | 2 → 0 | 1000 ms | no |');
    expect(text).toContain('| tiflash-9000.service @ 10.0.0.5 | skipped: store 21 leads no region | - | no |');
  });

  it('writes results.json with one line per tick, and reads back the same', () => {
    const r: BenchResults = { ...base, outage: { runs: [run('overlap', 2000)], disables: [] } };
    const text = resultsJson(r);
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(r)));
    const tickLines = text.split('\n').filter((l) => /^\s*\{"n":\d+,"at":/.test(l));
    expect(tickLines).toHaveLength(4);
    expect(text).toMatch(/"ticks": 4,/); // the summary's count stays a number
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

  it('sets tiseal against the SSH floor measured on the same hosts, and says when the floor alone misses the goal', () => {
    const floor = (wall200: number) => [row(50, 700, 60, 32), row(200, wall200, 61, 32)];
    const over = renderResults({ ...base, scale: { ...scale(5200), floor: floor(4000) } });
    expect(over).toMatch(/The SSH floor alone \(below\) took 4\.00 s for 200 hosts, machine CPU 8\.00 s: on this machine no fan-out .* gets under 3\.00 s\. tiseal took 1\.30 × the floor\./);
    expect(over).toMatch(/\| 200 \| 32 \| 4000 ms \| 3999 ms – 4001 ms \| 2000 ms \| 8000 ms \| 1\.30 × \| 0 ms \|/);
    expect(over).toMatch(/\| 50 \| 32 \| 700 ms .* \| 1\.29 × \|/);
    const under = renderResults({ ...base, scale: { ...scale(5200), floor: floor(1200) } });
    expect(under).toMatch(/The SSH floor \(below\) took 1\.20 s for 200 hosts, under the goal: the 4\.00 s above it are tiseal's own work\./);
    expect(renderResults({ ...base, scale: { ...scale(2500), floor: floor(1200) } })).not.toMatch(/The SSH floor/);
    expect(over).not.toMatch(/cluster was up/);
    expect(renderResults({ ...base, scale: { ...scale(5200), labUp: true } })).toMatch(/\*\*The lab's cluster was up during this part\*\*/);
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
  it('measures the three schedules, and convergence 20 times in a full run only unless asked', () => {
    expect(parseArgs([])).toMatchObject({ schedules: ['overlap', 'tiers', 'stop-all'], converge: 20 });
    expect(parseArgs(['--only', 'outage'])).toMatchObject({ converge: 0 });
    expect(parseArgs(['--only', 'outage', '--converge', '2', '--schedules', 'tiers,stop-all'])).toMatchObject({ converge: 2, schedules: ['tiers', 'stop-all'] });
    expect(parseArgs(['--converge', '0']).converge).toBe(0);
    expect(() => parseArgs(['--schedules', 'fast'])).toThrow("--schedules takes overlap,tiers,stop-all; got 'fast'");
    expect(() => parseArgs(['--converge', '-1'])).toThrow("--converge wants a number of runs (0 for none), got '-1'");
  });
  it('refuses unknown parts, flags and non-numbers', () => {
    expect(() => parseArgs(['--only', 'speed'])).toThrow(/--only takes outage,ssh,certs,scale/);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown flag '--fast'/);
    expect(() => parseArgs(['--leaves', 'many'])).toThrow(/--leaves wants a positive integer/);
  });
});
