/**
 * The SQL tick prober (sql-tick-prober.ts) in its own process, so that the benchmark's own work
 * (ssh, polling PD) never delays a tick and passes for an outage. The parent sees the ticks as they
 * end and can wait for one that matches.
 */
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';
import { repoRoot } from '../lab/options';
import type { SqlTick, TickProberConfig } from './sql-tick-prober';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class TickProberProcess {
  private child?: ChildProcess;
  private readonly received: SqlTick[] = [];
  private ready?: Promise<void>;
  private exited?: Promise<number | null>;
  private stderr = '';

  /** `script`: the compiled sql-tick-prober.js (default: the build's, dist/bench). */
  constructor(private readonly cfg: TickProberConfig, private readonly script = path.join(repoRoot(), 'dist', 'bench', 'sql-tick-prober.js')) {}

  start(): this {
    const child = spawn(process.execPath, [this.script, JSON.stringify(this.cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString('utf8')).slice(-4000)));
    const lines = readline.createInterface({ input: child.stdout! });
    const closed = new Promise<void>((r) => lines.once('close', () => r()));
    // Exit counts once stdout is read to its end: the last ticks are in `received` by then.
    this.exited = Promise.all([new Promise<number | null>((r) => child.on('exit', (code) => r(code))), closed]).then(([code]) => code);
    let onReady!: () => void;
    this.ready = Promise.race([
      new Promise<void>((r) => (onReady = r)),
      this.exited.then((code) => Promise.reject(new Error(`sql-tick-prober exited (${code}) before it was ready: ${this.stderr.trim()}`))),
    ]);
    this.ready.catch(() => undefined);
    lines.on('line', (l) => {
      const msg = JSON.parse(l) as SqlTick | { ready: true };
      if ('ready' in msg) onReady();
      else this.received.push(msg);
    });
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
    if (!this.child || !this.exited) throw new Error('sql-tick-prober: not started');
    this.child.kill('SIGTERM');
    const code = await this.exited;
    if (code !== 0) throw new Error(`sql-tick-prober exited (${code}): ${this.stderr.trim()}`);
    return [...this.received].sort((a, b) => a.n - b.n);
  }

  private started(): Promise<void> {
    if (!this.ready) throw new Error('sql-tick-prober: not started');
    return this.ready;
  }
}

const lastError = (t: SqlTick): string => (t.answered ? 'answered' : t.backends.map((b) => `${b.backend}: ${b.error ?? 'ok'}`).join('; '));
