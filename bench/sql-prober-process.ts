/**
 * The SQL prober (sql-prober.ts) run as its own process, with the library's interface: start,
 * answering, allUp, stop → report. The caller (a lab test, the benchmark) may then block its own
 * event loop (execSync ssh checks) without the prober's timers firing late and a stall of the
 * caller being counted as failed statements.
 */
import * as path from 'path';
import { repoRoot } from '../lab/options';
import { sleep } from '../src/util/concurrency';
import { spawnProber, type ProberChild } from './prober-child';
import { lastAnswered, type BackendEvent, type SqlProbeReport, type SqlProberConfig, type StatementRecord } from './sql-prober';

type Line = { record: StatementRecord } | { event: BackendEvent } | { report: SqlProbeReport };

export class SqlProberProcess {
  private proc?: ProberChild;
  private readonly records: StatementRecord[] = [];
  private readonly down = new Set<string>();
  private report?: Promise<SqlProbeReport>;

  /** `script`: the compiled sql-prober.js (default: the build's, dist/bench, wherever this runs from). */
  constructor(private readonly cfg: SqlProberConfig, private readonly script = path.join(repoRoot(), 'dist', 'bench', 'sql-prober.js')) {}

  start(): void {
    let onReport!: (r: SqlProbeReport) => void;
    const proc = spawnProber<Line>('sql-prober', this.script, this.cfg, (msg) => {
      if ('record' in msg) this.records.push(msg.record);
      else if ('event' in msg) {
        if (msg.event.state === 'down') this.down.add(msg.event.backend);
        else this.down.delete(msg.event.backend);
      } else if ('report' in msg) onReport(msg.report);
    });
    this.proc = proc;
    // `exited` comes after stdout was read to its end, so a report line printed before exit has won.
    this.report = Promise.race([
      new Promise<SqlProbeReport>((r) => (onReport = r)),
      proc.exited.then((code) => Promise.reject(new Error(`sql-prober exited (${code}) without a report: ${proc.stderr().trim()}`))),
    ]);
    this.report.catch(() => undefined);
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
    if (!this.proc || !this.report) throw new Error('sql-prober: not started');
    this.proc.child.kill('SIGTERM');
    return this.report;
  }

  private started(): Promise<void> {
    if (!this.proc) throw new Error('sql-prober: not started');
    return this.proc.ready;
  }
}
