/**
 * Outage window of `tls enable` on the lab, for tiseal's schedule (tiers) and TiUP's (stop-all),
 * in the same run: a prober process watches PD and TiDB while tiseal works, and tiseal's own
 * --stats-file gives the restart times the critical path is computed from.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as readline from 'readline';
import { labReset, labUp, type LabInfo } from '../lab';
import { repoRoot } from '../lab/options';
import { runTiseal, tlsFiles } from '../lab/tiseal-run';
import { loadTopology } from '../src/topology';
import type { RunStatsReport } from '../src/util/run-stats';
import { criticalPath, outageIntervals, type CriticalPath, type OutageSummary } from './analysis';
import type { ProberConfig, Tick } from './prober';

export type Schedule = 'tiers' | 'stop-all';

export interface OutageRun {
  schedule: Schedule;
  round: number;
  wallMs: number;
  outage: OutageSummary;
  critical: CriticalPath;
  stats: RunStatsReport;
}

export interface OutageBench {
  runs: OutageRun[];
  /** `tls disable` runs between the enables (wall time, SSH cost). */
  disables: RunStatsReport[];
}

class Prober {
  private readonly child: ChildProcess;
  readonly ticks: Tick[] = [];
  private readonly ready: Promise<void>;
  private readonly exited: Promise<void>;

  constructor(cfg: ProberConfig) {
    this.child = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'bench', 'prober.js'), JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: this.child.stdout! });
    let onReady!: () => void;
    this.ready = new Promise((r) => (onReady = r));
    lines.on('line', (l) => {
      const msg = JSON.parse(l) as Tick | { ready: true };
      if ('ready' in msg) onReady();
      else this.ticks.push(msg);
    });
    this.exited = new Promise((r) => this.child.on('exit', () => r()));
  }

  /** Ready and answered `n` ticks in a row: the cluster is up before we measure. */
  async answering(n = 5, timeoutMs = 60_000): Promise<void> {
    await this.ready;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const last = this.ticks.slice(-n);
      if (last.length === n && last.every((t) => t.ok)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the prober got no answer from the cluster before the run: ${this.ticks.slice(-1)[0]?.error ?? 'no ticks'}`);
  }

  async stop(): Promise<Tick[]> {
    this.child.kill('SIGTERM');
    await this.exited;
    return this.ticks;
  }
}

function proberConfig(info: LabInfo): ProberConfig {
  const topo = loadTopology(info.topologyFile);
  const f = tlsFiles(info);
  return {
    pd: topo.instances.filter((i) => i.role === 'pd').map((i) => `${i.host}:${i.ports.client_port}`),
    tidbStatus: topo.instances.filter((i) => i.role === 'tidb').map((i) => `${i.host}:${i.ports.status_port}`),
    tls: { ca: f.ca, cert: f.cert, key: f.key },
    intervalMs: 100,
    timeoutMs: 800,
  };
}

/** Run tiseal on the lab's topology with --stats-file and return what it recorded; other exit codes are a benchmark failure. */
export async function tisealWithStats(info: LabInfo, args: string[], statsFile: string, okCodes: number[] = [0]): Promise<RunStatsReport> {
  const r = await runTiseal(info, [...args, info.topologyFile, '--stats-file', statsFile]);
  if (r.code === null || !okCodes.includes(r.code)) throw new Error(`tiseal ${args.join(' ')} exited ${r.code ?? r.signal}:\n${r.stderr.slice(-3000)}`);
  return JSON.parse(fs.readFileSync(statsFile, 'utf8')) as RunStatsReport;
}

export async function benchOutage(o: { rounds: number; workDir: string; log: (m: string) => void }): Promise<OutageBench & { info: LabInfo }> {
  o.log('lab: up (reuses running hosts), then a fresh plaintext cluster');
  const up = await labUp({ log: o.log });
  if (!up.deployed) await labReset({ log: o.log });
  const info: LabInfo = up;
  const runs: OutageRun[] = [];
  const disables: RunStatsReport[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const schedule of ['tiers', 'stop-all'] as Schedule[]) {
      const prober = new Prober(proberConfig(info));
      let stats: RunStatsReport;
      let ticks: Tick[];
      try {
        await prober.answering();
        o.log(`round ${round}: tls enable --schedule ${schedule}`);
        stats = await tisealWithStats(info, ['tls', 'enable', '--yes', '--schedule', schedule], path.join(o.workDir, `enable-${schedule}-${round}.json`));
        await new Promise((r) => setTimeout(r, 2000)); // an outage right at the end must be seen ending
      } finally {
        ticks = await prober.stop();
      }
      const from = Date.parse(stats.startedAt);
      const during = ticks.filter((t) => t.t0 >= from);
      runs.push({ schedule, round, wallMs: stats.wallMs, outage: outageIntervals(during, stats.steps), critical: criticalPath(stats.restarts), stats });
      o.log(`round ${round}: tls disable (back to plaintext for the next run)`);
      disables.push(await tisealWithStats(info, ['tls', 'disable', '--yes'], path.join(o.workDir, `disable-${schedule}-${round}.json`)));
    }
  }
  return { runs, disables, info };
}
