/**
 * The outage prober as an application sees the cluster: every `intervalMs` a tick; in each tick,
 * against EACH TiDB, `REPLACE INTO test.kv` of this backend's key with the tick number, then
 * `SELECT v FROM test.kv WHERE k = …` on the same connection. A tick is answered when any TiDB did
 * both and read back what it wrote. Ticks are independent: each takes an idle connection of the
 * backend or opens one (a tick still waiting on a stalled TiDB never holds up the next), a
 * connection that failed is dropped (the next tick reconnects), and every connect and statement
 * has a timeout. A TiDB goes on working on a statement whose client gave up, so a connection stays
 * busy until its statement is answered, and like an application's pool at most `maxInFlight`
 * connections per TiDB are busy: a stalled TiDB is not sent ten new statements a second while it
 * cannot answer the old ones, and a tick that finds them all busy fails on that TiDB at once.
 *
 * Library (SqlTickProber) and a process: node sql-tick-prober.js '<json TickProberConfig>' prints
 * {"ready":true}, then one JSON tick per line as each tick ends; on SIGTERM it starts no new tick,
 * waits for those in flight and exits. Imports only mysql2 (the unit test transpiles it alone).
 */
import * as mysql from 'mysql2';
import { emitLine, runProberMain, stopSignal } from './prober-main';
import { connectionOptions, dropConnection } from './sql-prober';

export interface TickProberConfig {
  /** host:port of every TiDB's MySQL port */
  backends: string[];
  user?: string;
  password?: string;
  /** TLS to the backends (verified against `ca`); plaintext when absent */
  ssl?: { ca: string };
  /** default 100 ms */
  intervalMs?: number;
  /** connect and per-statement timeout (default 5000 ms) */
  timeoutMs?: number;
  /** prefix of the keys written (default `tick-<pid>`) */
  keyPrefix?: string;
  /** connections per TiDB busy at once (default timeout ÷ interval: ticks fail for it only once statements time out) */
  maxInFlight?: number;
}

export interface BackendAttempt {
  backend: string;
  ok: boolean;
  /** connect (when needed) + REPLACE + SELECT, or until the failure */
  ms: number;
  error?: string;
}

export interface SqlTick {
  n: number;
  /** ms since the epoch: when the tick was scheduled, and when its last backend finished */
  at: number;
  end: number;
  answered: boolean;
  backends: BackendAttempt[];
}

/** Keys cycle so a table never grows; a tick 256 intervals old has long timed out (3 × timeout < 256 × interval by default). */
const KEY_SLOTS = 256;
const IDLE_PER_BACKEND = 4;
/** A statement the server has not answered after this many timeouts loses its connection. */
const HARD_LIMIT = 12;

const sqlString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
/** As the mysql client prints a server error, else the socket error's code and message. */
const errText = (e: unknown): string => {
  const x = e as { code?: string; errno?: number; sqlState?: string; message?: string };
  if (typeof x.sqlState === 'string') return `ERROR ${x.errno} (${x.sqlState}): ${x.message}`;
  return x.code && !x.message?.includes(x.code) ? `${x.code}: ${x.message}` : x.message || String(e);
};

interface Backend {
  addr: string;
  host: string;
  port: number;
  idle: mysql.Connection[];
  /** connections taken by a tick (being opened or running its statements) */
  busy: number;
}

export class SqlTickProber {
  private readonly cfg: Required<Omit<TickProberConfig, 'ssl' | 'password'>> & Pick<TickProberConfig, 'ssl' | 'password'>;
  private readonly backends: Backend[];
  private readonly open = new Set<mysql.Connection>();
  private readonly pending = new Map<mysql.Connection, Set<(e: Error) => void>>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly ticks: SqlTick[] = [];
  private timer?: NodeJS.Timeout;
  private n = 0;
  private stopping = false;

  constructor(cfg: TickProberConfig, private readonly onTick: (t: SqlTick) => void = () => undefined) {
    if (!cfg.backends.length) throw new Error('sql-tick-prober: no backends');
    const intervalMs = cfg.intervalMs ?? 100;
    const timeoutMs = cfg.timeoutMs ?? 5000;
    this.cfg = { user: 'root', keyPrefix: `tick-${process.pid}`, maxInFlight: Math.ceil(timeoutMs / intervalMs), ...cfg, intervalMs, timeoutMs };
    this.backends = cfg.backends.map((addr) => {
      const i = addr.lastIndexOf(':');
      const port = Number(addr.slice(i + 1));
      if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`sql-tick-prober: backend ${JSON.stringify(addr)} is not host:port`);
      return { addr, host: addr.slice(0, i), port, idle: [], busy: 0 };
    });
  }

  start(): void {
    let next = Date.now();
    const fire = () => {
      if (this.stopping) return;
      const p = this.tick(this.n++, next);
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
      next += this.cfg.intervalMs;
      // A late timer (busy machine) starts the next tick now rather than bursting to catch up.
      if (next < Date.now()) next = Date.now();
      this.timer = setTimeout(fire, next - Date.now());
    };
    fire();
  }

  /** Ticks that have ended, in the order they ended. */
  done(): SqlTick[] {
    return [...this.ticks];
  }

  /** No new tick; the ones in flight end (each bounded by the timeouts). */
  async stop(): Promise<SqlTick[]> {
    this.stopping = true;
    clearTimeout(this.timer);
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
    for (const c of this.open) c.destroy();
    this.open.clear();
    return [...this.ticks].sort((a, b) => a.n - b.n);
  }

  private async tick(n: number, at: number): Promise<void> {
    const backends = await Promise.all(this.backends.map((b, i) => this.attempt(b, `${this.cfg.keyPrefix}-${i}-${n % KEY_SLOTS}`, String(n))));
    const t: SqlTick = { n, at, end: Date.now(), answered: backends.some((b) => b.ok), backends };
    this.ticks.push(t);
    this.onTick(t);
  }

  /**
   * One TiDB's part of a tick. The answer counts only within the timeout of each step, but a
   * statement that timed out keeps its connection busy until the server answers it (or
   * HARD_LIMIT × timeout passes): the server is still working on it, and the pool bound holds.
   */
  private attempt(b: Backend, key: string, value: string): Promise<BackendAttempt> {
    const t0 = Date.now();
    const res = (ok: boolean, error?: string): BackendAttempt => ({ backend: b.addr, ok, ms: Date.now() - t0, ...(error !== undefined ? { error } : {}) });
    if (b.busy >= this.cfg.maxInFlight) return Promise.resolve(res(false, `${b.busy} statements in flight on this TiDB, none answered yet`));
    b.busy++;
    return new Promise<BackendAttempt>((answer) => {
      let timer: NodeJS.Timeout | undefined;
      let answered = false;
      const finish = (r: BackendAttempt) => {
        clearTimeout(timer);
        if (!answered) answer(r);
        answered = true;
      };
      const step = (what: string) => {
        clearTimeout(timer);
        timer = setTimeout(() => finish(res(false, `${what}: timed out after ${this.cfg.timeoutMs} ms`)), this.cfg.timeoutMs);
      };
      let conn: mysql.Connection | undefined;
      const hard = setTimeout(() => conn && this.close(conn), HARD_LIMIT * this.cfg.timeoutMs);
      void (async () => {
        step('connect');
        conn = b.idle.pop() ?? (await this.connect(b));
        step('REPLACE');
        await this.query(conn, `REPLACE INTO test.kv (k, v) VALUES (${sqlString(key)}, ${sqlString(value)})`);
        step('SELECT');
        const rows = (await this.query(conn, `SELECT v FROM test.kv WHERE k = ${sqlString(key)}`)) as Array<{ v?: unknown }>;
        this.release(b, conn);
        const v = rows[0]?.v;
        const got = Buffer.isBuffer(v) ? v.toString('utf8') : v;
        finish(got === value ? res(true) : res(false, `read back ${JSON.stringify(got ?? null)}, wrote ${JSON.stringify(value)}`));
      })()
        .catch((e: unknown) => {
          // An SQL error leaves the connection usable; anything else (refused, reset, closed) drops it.
          if (conn && (e as { fatal?: boolean }).fatal !== true && typeof (e as { sqlState?: unknown }).sqlState === 'string') this.release(b, conn);
          else if (conn) this.close(conn);
          finish(res(false, errText(e)));
        })
        .finally(() => {
          clearTimeout(hard);
          b.busy--;
        });
    });
  }

  private release(b: Backend, conn: mysql.Connection): void {
    if (!this.stopping && b.idle.length < IDLE_PER_BACKEND) b.idle.push(conn);
    else this.close(conn);
  }

  private connect(b: Backend): Promise<mysql.Connection> {
    return new Promise((resolve, reject) => {
      const conn = mysql.createConnection(connectionOptions(b, this.cfg));
      this.open.add(conn);
      // mysql2's connectTimeout covers the TCP connect; a server that accepts and never greets is bounded here.
      const timer = setTimeout(() => {
        this.close(conn);
        reject(Object.assign(new Error(`connect: no handshake after ${this.cfg.timeoutMs} ms`), { code: 'ETIMEDOUT', fatal: true }));
      }, this.cfg.timeoutMs);
      // A connection the server closes while idle reports here; without a listener it would throw.
      conn.on('error', () => this.close(conn));
      conn.once('connect', () => (clearTimeout(timer), resolve(conn)));
      conn.once('error', (e: Error) => (clearTimeout(timer), reject(e)));
    });
  }

  private query(conn: mysql.Connection, sql: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // mysql2's destroy() never calls back a pending query: close() rejects it instead.
      const waiting = this.pending.get(conn) ?? new Set<(e: Error) => void>();
      this.pending.set(conn, waiting.add(reject));
      conn.query(sql, (err, rows) => {
        waiting.delete(reject);
        if (err) reject(err);
        else resolve(rows);
      });
    });
  }

  private close(conn: mysql.Connection): void {
    for (const reject of this.pending.get(conn) ?? []) reject(Object.assign(new Error('connection closed by the prober'), { fatal: true }));
    this.pending.delete(conn);
    dropConnection(this.open, this.backends, conn);
  }
}

async function main(): Promise<void> {
  const prober = new SqlTickProber(JSON.parse(process.argv[2]) as TickProberConfig, (t) => emitLine(t));
  emitLine({ ready: true, pid: process.pid });
  prober.start();
  await stopSignal();
  await prober.stop();
}

if (require.main === module) runProberMain('sql-tick-prober', main);
