/**
 * The SQL tick prober (sql-tick-prober.ts) in its own process, so that the benchmark's own work
 * (ssh, polling PD) never delays a tick and passes for an outage. The parent sees the ticks as they
 * end and can wait for one that matches.
 */
import * as path from 'path';
import { repoRoot } from '../lab/options';
import { sleep } from '../src/util/concurrency';
import { spawnProber, type ProberChild } from './prober-child';
import type { SqlTick, TickProberConfig } from './sql-tick-prober';

export class TickProberProcess {
  private proc?: ProberChild;
  private readonly received: SqlTick[] = [];

  /** `script`: the compiled sql-tick-prober.js (default: the build's, dist/bench). */
  constructor(private readonly cfg: TickProberConfig, private readonly script = path.join(repoRoot(), 'dist', 'bench', 'sql-tick-prober.js')) {}

  start(): this {
    this.proc = spawnProber<SqlTick>('sql-tick-prober', this.script, this.cfg, (t) => this.received.push(t));
    return this;
  }

  /** Ticks ended so far (in the order they ended). */
  ticks(): SqlTick[] {
    return this.received;
  }

  /** The first ended tick scheduled at or after `since` that satisfies `pred`. */
  async waitTick(what: string, since: number, pred: (t: SqlTick) => boolean, timeoutMs = 120_000): Promise<SqlTick> {
    await this.started();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.filter((t) => t.at >= since && pred(t)).sort((a, b) => a.n - b.n)[0];
      if (hit) return hit;
      if (Date.now() > deadline) {
        const last = this.received[this.received.length - 1];
        throw new Error(`sql-tick-prober: no tick ${what} within ${timeoutMs / 1000} s (last: ${last ? lastError(last) : 'no ticks'})`);
      }
      await sleep(50);
    }
  }

  /** The last `n` ticks were all answered (the cluster serves before a run is measured, and after). */
  async answering(n = 10, timeoutMs = 60_000): Promise<void> {
    await this.started();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const last = [...this.received].sort((a, b) => a.n - b.n).slice(-n);
      if (last.length === n && last.every((t) => t.answered)) return;
      await sleep(50);
    }
    const bad = this.received.filter((t) => !t.answered).slice(-1)[0];
    throw new Error(`sql-tick-prober: the cluster did not answer ${n} ticks in a row within ${timeoutMs / 1000} s: ${bad ? lastError(bad) : 'no ticks'}`);
  }

  /** SIGTERM; resolves with every tick, in order, once the ticks in flight have ended. */
  async stop(): Promise<SqlTick[]> {
    if (!this.proc) throw new Error('sql-tick-prober: not started');
    this.proc.child.kill('SIGTERM');
    const code = await this.proc.exited;
    if (code !== 0) throw new Error(`sql-tick-prober exited (${code}): ${this.proc.stderr().trim()}`);
    return [...this.received].sort((a, b) => a.n - b.n);
  }

  private started(): Promise<void> {
    if (!this.proc) throw new Error('sql-tick-prober: not started');
    return this.proc.ready;
  }
}

const lastError = (t: SqlTick): string => (t.answered ? 'answered' : t.backends.map((b) => `${b.backend}: ${b.error ?? 'ok'}`).join('; '));
