import { parseArgs } from '../../bench/args';
import { renderResults, type BenchResults } from '../../bench/report';
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

describe('bench arguments', () => {
  it('defaults to every part with the sizes the issue asks for', () => {
    expect(parseArgs([])).toMatchObject({ only: ['outage', 'ssh', 'certs', 'scale'], leaves: 200, forgeLeaves: 200, sizes: [8, 16, 32, 48], rounds: 2 });
    expect(parseArgs(['--only', 'certs', '--leaves', '20', '--sizes', '2,4'])).toMatchObject({ only: ['certs'], leaves: 20, sizes: [2, 4] });
  });
  it('refuses unknown parts, flags and non-numbers', () => {
    expect(() => parseArgs(['--only', 'speed'])).toThrow(/--only takes outage,ssh,certs,scale/);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown flag '--fast'/);
    expect(() => parseArgs(['--leaves', 'many'])).toThrow(/--leaves wants a positive integer/);
  });
});
