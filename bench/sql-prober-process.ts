/**
 * The SQL prober (sql-prober.ts) run as its own process, with the library's interface: start,
 * answering, allUp, stop → report. The caller (a lab test, the benchmark) may then block its own
 * event loop (execSync ssh checks) without the prober's timers firing late and a stall of the
 * caller being counted as failed statements.
 */
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';
import { repoRoot } from '../lab/options';
import { lastAnswered, type BackendEvent, type SqlProbeReport, type SqlProberConfig, type StatementRecord } from './sql-prober';

type Line = { ready: true; pid: number } | { record: StatementRecord } | { event: BackendEvent } | { report: SqlProbeReport };

export class SqlProberProcess {
  private child?: ChildProcess;
  private readonly records: StatementRecord[] = [];
  private readonly down = new Set<string>();
  private ready?: Promise<void>;
  private report?: Promise<SqlProbeReport>;
  private stderr = '';

  /** `script`: the compiled sql-prober.js (default: the build's, dist/bench, wherever this runs from). */
  constructor(private readonly cfg: SqlProberConfig, private readonly script = path.join(repoRoot(), 'dist', 'bench', 'sql-prober.js')) {}

  start(): void {
    const child = spawn(process.execPath, [this.script, JSON.stringify(this.cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString('utf8')).slice(-4000)));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let onReady!: () => void;
    let onReport!: (r: SqlProbeReport) => void;
    this.ready = Promise.race([
      new Promise<void>((r) => (onReady = r)),
      exited.then((code) => Promise.reject(new Error(`sql-prober exited (${code}) before it was ready: ${this.stderr.trim()}`))),
    ]);
    this.report = Promise.race([
      new Promise<SqlProbeReport>((r) => (onReport = r)),
      exited.then(async (code) => {
        await new Promise((r) => setImmediate(r)); // a report line read just before exit wins the race
        throw new Error(`sql-prober exited (${code}) without a report: ${this.stderr.trim()}`);
      }),
    ]);
    this.ready.catch(() => undefined);
    this.report.catch(() => undefined);
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      const msg = JSON.parse(l) as Line;
      if ('ready' in msg) onReady();
      else if ('record' in msg) this.records.push(msg.record);
      else if ('event' in msg) {
        if (msg.event.state === 'down') this.down.add(msg.event.backend);
        else this.down.delete(msg.event.backend);
      } else if ('report' in msg) onReport(msg.report);
    });
  }

  /** The last `n` statements all succeeded (the backends are answering before a run is measured). */
  async answering(n = 10, timeoutMs = 30_000): Promise<void> {
    await this.started();
    await lastAnswered(this.records, n, timeoutMs);
  }

  /** Every backend is in rotation again (after a run: its end is then inside the report). */
  async allUp(timeoutMs = 30_000): Promise<void> {
    await this.started();
    const deadline = Date.now() + timeoutMs;
    while (this.down.size > 0) {
      if (Date.now() > deadline) throw new Error(`sql-prober: still down after ${timeoutMs} ms: ${[...this.down].join(', ')}`);
      await sleep(50);
    }
  }

  /** SIGTERM; the prober finishes the statements in flight and prints its report. */
  async stop(): Promise<SqlProbeReport> {
    if (!this.child || !this.report) throw new Error('sql-prober: not started');
    this.child.kill('SIGTERM');
    return this.report;
  }

  private started(): Promise<void> {
    if (!this.ready) throw new Error('sql-prober: not started');
    return this.ready;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
