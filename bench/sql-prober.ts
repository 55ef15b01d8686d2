/**
 * The SQL prober: an application behind a TCP load balancer (HAProxy-like) over N TiDBs. Workers
 * write a key (`REPLACE INTO test.kv`) and read it back (`SELECT v FROM test.kv WHERE k=…`), one
 * statement at a time, each sent round-robin to a backend that is up, over a small pool per backend.
 * A connection error (refused, reset, lost, timed out) takes that backend out (HAProxy's
 * `observe layer4` + `on-error mark-down`) and the statement is retried on another one; a down
 * backend is health-checked (a login and `SELECT 1`, like `option mysql-check`) every `checkMs`
 * and comes back after `rise` passes in a row (HAProxy's inter/rise). A statement fails only when no
 * backend could run it, when the server answered it with an SQL error (a load balancer does not
 * retry those), or when a read does not return what this worker last wrote. Every statement is recorded.
 *
 * Library (SqlProber) and a process: node sql-prober.js '<json SqlProberConfig>' prints
 * {"ready":true}, one line per statement ({"record":…}) and backend event ({"event":…}) as they
 * happen, then {"report":…} on SIGTERM. Tests and the benchmark use the process
 * (sql-prober-process.ts): in a process of its own, no synchronous work of the caller (an execSync
 * ssh check) can stall its timers and pass for an outage.
 */
import * as mysql from 'mysql2';
import { emitLine, runProberMain, stopSignal } from './prober-main';

export interface SqlProberConfig {
  /** host:port of every TiDB behind the balancer */
  backends: string[];
  user?: string;
  password?: string;
  /**
   * TLS to the backends (verified against `ca`); plaintext when absent. `preferred`: TLS when the
   * server offers it, else plaintext (MySQL clients' default --ssl-mode=PREFERRED), so one application
   * outlives SQL TLS being switched on, required and switched off.
   */
  ssl?: { ca: string; preferred?: boolean };
  /** statements in flight at once, one per worker (default 2) */
  workers?: number;
  /** pause between a worker's statements (default 20 ms) */
  pauseMs?: number;
  /** idle connections kept per backend (default 2) */
  poolSize?: number;
  /** connect and statement timeout (default 3000 ms) */
  timeoutMs?: number;
  /** health check interval of a down backend (default 1000 ms, HAProxy: 2000) */
  checkMs?: number;
  /** passed checks in a row before a down backend is used again (default 2, as HAProxy) */
  rise?: number;
  /** prefix of the keys written (default `sqlprobe-<pid>`) */
  keyPrefix?: string;
}

export interface Attempt {
  backend: string;
  error: string;
}

export interface StatementRecord {
  n: number;
  worker: number;
  op: 'replace' | 'select';
  key: string;
  /** ms since the epoch */
  t0: number;
  t1: number;
  ok: boolean;
  /** the backend that ran it */
  backend?: string;
  /** backends that failed it first (connection errors), in order */
  retries: Attempt[];
  error?: string;
}

export interface BackendEvent {
  t: number;
  backend: string;
  state: 'down' | 'up';
  reason: string;
}

export interface SqlProbeReport {
  statements: number;
  failed: number;
  /** connection errors seen on any backend (statements and health checks); each one took its backend out */
  connectionErrors: number;
  /** statements that ran on another backend after a connection error */
  retried: number;
  perBackend: Record<string, number>;
  events: BackendEvent[];
  records: StatementRecord[];
}

interface Backend {
  addr: string;
  host: string;
  port: number;
  up: boolean;
  passes: number;
  idle: mysql.Connection[];
}

/**
 * mysql2 marks errors of the connection itself fatal (ECONNREFUSED, PROTOCOL_CONNECTION_LOST,
 * timeouts, a login refused); an SQL error answered on a working connection is not, and has a SQLSTATE.
 */
const isConnectionError = (e: unknown): boolean => (e as { fatal?: boolean }).fatal === true || typeof (e as { sqlState?: unknown }).sqlState !== 'string';
/** As the mysql client prints a server error (`ERROR 9005 (HY000): …`), else the socket error's code and message. */
const errText = (e: unknown): string => {
  const x = e as { code?: string; errno?: number; sqlState?: string; message?: string };
  if (typeof x.sqlState === 'string') return `ERROR ${x.errno} (${x.sqlState}): ${x.message}`;
  return x.code && !x.message?.includes(x.code) ? `${x.code}: ${x.message}` : x.message || String(e);
};
const sqlString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface SqlProberHooks {
  onRecord?: (r: StatementRecord) => void;
  onEvent?: (e: BackendEvent) => void;
}

/** A probe connection to one TiDB: the prober's user, its timeout for the connect, TLS verified against `ssl.ca` when given. */
export function connectionOptions(b: { host: string; port: number }, cfg: { user?: string; password?: string; timeoutMs?: number; ssl?: { ca: string } }): mysql.ConnectionOptions {
  return {
    host: b.host,
    port: b.port,
    user: cfg.user ?? 'root',
    password: cfg.password ?? '',
    connectTimeout: cfg.timeoutMs,
    ssl: cfg.ssl ? { ca: cfg.ssl.ca, rejectUnauthorized: true } : undefined,
  };
}

/** Resolves once the last `n` of `records` (a growing list) all succeeded; names the last failure on timeout. */
export async function lastAnswered(records: StatementRecord[], n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const last = records.slice(-n);
    if (last.length === n && last.every((r) => r.ok)) return;
    await sleep(50);
  }
  const bad = records.filter((r) => !r.ok).slice(-1)[0];
  throw new Error(`sql-prober: the backends did not answer ${n} statements in a row: ${bad?.error ?? 'no statements'}`);
}

export class SqlProber {
  private readonly cfg: Required<Omit<SqlProberConfig, 'ssl' | 'password'>> & Pick<SqlProberConfig, 'ssl' | 'password'>;
  private readonly backends: Backend[];
  private readonly records: StatementRecord[] = [];
  private readonly events: BackendEvent[] = [];
  private connectionErrors = 0;
  private rr = 0;
  private n = 0;
  private stopping = false;
  private running: Promise<void>[] = [];
  private readonly open = new Set<mysql.Connection>();

  constructor(cfg: SqlProberConfig, private readonly hooks: SqlProberHooks = {}) {
    if (!cfg.backends.length) throw new Error('sql-prober: no backends');
    this.cfg = { user: 'root', workers: 2, pauseMs: 20, poolSize: 2, timeoutMs: 3000, checkMs: 1000, rise: 2, keyPrefix: `sqlprobe-${process.pid}`, ...cfg };
    this.backends = cfg.backends.map((addr) => {
      const i = addr.lastIndexOf(':');
      const port = Number(addr.slice(i + 1));
      if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`sql-prober: backend ${JSON.stringify(addr)} is not host:port`);
      return { addr, host: addr.slice(0, i), port, up: true, passes: 0, idle: [] };
    });
  }

  start(): void {
    for (let w = 0; w < this.cfg.workers; w++) this.running.push(this.worker(w));
    this.running.push(this.healthChecks());
  }

  /** The last `n` statements all succeeded (the backends are answering before a run is measured). */
  answering(n = 10, timeoutMs = 30_000): Promise<void> {
    return lastAnswered(this.records, n, timeoutMs);
  }

  /** Every backend is in rotation again (after a run: its end is then inside the report). */
  async allUp(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.backends.some((b) => !b.up)) {
      if (Date.now() > deadline) throw new Error(`sql-prober: still down after ${timeoutMs} ms: ${this.backends.filter((b) => !b.up).map((b) => b.addr).join(', ')}`);
      await sleep(50);
    }
  }

  async stop(): Promise<SqlProbeReport> {
    this.stopping = true;
    await Promise.all(this.running);
    for (const c of this.open) c.destroy();
    this.open.clear();
    return this.report();
  }

  report(): SqlProbeReport {
    const perBackend: Record<string, number> = Object.fromEntries(this.backends.map((b) => [b.addr, 0]));
    for (const r of this.records) if (r.backend) perBackend[r.backend]++;
    return {
      statements: this.records.length,
      failed: this.records.filter((r) => !r.ok).length,
      connectionErrors: this.connectionErrors,
      retried: this.records.filter((r) => r.ok && r.retries.length > 0).length,
      perBackend,
      events: [...this.events],
      records: [...this.records].sort((a, b) => a.n - b.n),
    };
  }

  private async worker(w: number): Promise<void> {
    let i = 0;
    while (!this.stopping) {
      const key = `${this.cfg.keyPrefix}-${w}-${i % 8}`;
      const value = `${w}:${i}:${Date.now()}`;
      const put = await this.statement(w, 'replace', key, `REPLACE INTO test.kv (k, v) VALUES (${sqlString(key)}, ${sqlString(value)})`);
      await sleep(this.cfg.pauseMs);
      // Read back only what is known to be written; a lost write then shows as a wrong value.
      await this.statement(w, 'select', key, `SELECT v FROM test.kv WHERE k = ${sqlString(key)}`, put.ok ? value : undefined);
      await sleep(this.cfg.pauseMs);
      i++;
    }
  }

  private async statement(worker: number, op: StatementRecord['op'], key: string, sql: string, expect?: string): Promise<StatementRecord> {
    const rec: StatementRecord = { n: this.n++, worker, op, key, t0: Date.now(), t1: 0, ok: false, retries: [] };
    const tried = new Set<Backend>();
    for (;;) {
      const b = this.pick(tried);
      if (!b) {
        rec.error = `no backend could run it (${rec.retries.length ? rec.retries.map((a) => `${a.backend}: ${a.error}`).join('; ') : 'every backend is down'})`;
        break;
      }
      tried.add(b);
      let conn: mysql.Connection | undefined;
      try {
        conn = b.idle.pop() ?? (await this.connect(b));
        const rows = await this.query(conn, sql);
        if (b.idle.length < this.cfg.poolSize) b.idle.push(conn);
        else this.close(conn);
        rec.backend = b.addr;
        if (op === 'select' && expect !== undefined) {
          const v = (rows as Array<{ v?: unknown }>)[0]?.v;
          const got = Buffer.isBuffer(v) ? v.toString('utf8') : v;
          if (got !== expect) {
            rec.error = `read back ${JSON.stringify(got)}, expected ${JSON.stringify(expect)}`;
            break;
          }
        }
        rec.ok = true;
        break;
      } catch (e) {
        if (conn) this.close(conn);
        if (!isConnectionError(e)) {
          rec.backend = b.addr;
          rec.error = errText(e);
          break;
        }
        this.connectionErrors++;
        rec.retries.push({ backend: b.addr, error: errText(e) });
        this.markDown(b, errText(e));
      }
    }
    rec.t1 = Date.now();
    this.records.push(rec);
    this.hooks.onRecord?.(rec);
    return rec;
  }

  /** Round-robin over the backends that are up and not yet tried for this statement. */
  private pick(tried: Set<Backend>): Backend | undefined {
    for (let k = 0; k < this.backends.length; k++) {
      const b = this.backends[(this.rr + k) % this.backends.length];
      if (b.up && !tried.has(b)) {
        this.rr = (this.rr + k + 1) % this.backends.length;
        return b;
      }
    }
    return undefined;
  }

  private markDown(b: Backend, reason: string): void {
    b.passes = 0;
    for (const c of b.idle.splice(0)) this.close(c);
    if (!b.up) return;
    b.up = false;
    this.event({ t: Date.now(), backend: b.addr, state: 'down', reason });
  }

  private event(e: BackendEvent): void {
    this.events.push(e);
    this.hooks.onEvent?.(e);
  }

  private async healthChecks(): Promise<void> {
    while (!this.stopping) {
      await Promise.all(
        this.backends
          .filter((b) => !b.up)
          .map(async (b) => {
            let conn: mysql.Connection | undefined;
            try {
              conn = await this.connect(b);
              await this.query(conn, 'SELECT 1');
              if (++b.passes >= this.cfg.rise && !b.up) {
                b.up = true;
                this.event({ t: Date.now(), backend: b.addr, state: 'up', reason: `${b.passes} checks passed` });
              }
            } catch (e) {
              this.connectionErrors++;
              this.markDown(b, errText(e));
            } finally {
              if (conn) this.close(conn);
            }
          }),
      );
      await sleep(this.cfg.checkMs);
    }
  }

  private connect(b: Backend, plain = false): Promise<mysql.Connection> {
    return new Promise((resolve, reject) => {
      const conn = mysql.createConnection(connectionOptions(b, plain ? { ...this.cfg, ssl: undefined } : this.cfg));
      this.open.add(conn);
      // A connection the server closes while idle reports here; without a listener it would throw.
      conn.on('error', () => this.close(conn));
      conn.once('connect', () => resolve(conn));
      conn.once('error', (e: Error & { code?: string }) => {
        // PREFERRED: the greeting offered no TLS, so the same login goes plaintext (no connection error).
        if (!plain && this.cfg.ssl?.preferred && e.code === 'HANDSHAKE_NO_SSL_SUPPORT') {
          this.close(conn);
          this.connect(b, true).then(resolve, reject);
        } else reject(e);
      });
    });
  }

  private query(conn: mysql.Connection, sql: string): Promise<unknown> {
    return new Promise((resolve, reject) => conn.query({ sql, timeout: this.cfg.timeoutMs }, (err, rows) => (err ? reject(err) : resolve(rows))));
  }

  private close(conn: mysql.Connection): void {
    dropConnection(this.open, this.backends, conn);
  }
}

/** Forgets a connection (the open set, every backend's idle list) and destroys it. */
export function dropConnection(open: Set<mysql.Connection>, backends: ReadonlyArray<{ idle: mysql.Connection[] }>, conn: mysql.Connection): void {
  open.delete(conn);
  for (const b of backends) {
    const i = b.idle.indexOf(conn);
    if (i >= 0) b.idle.splice(i, 1);
  }
  conn.destroy();
}

async function main(): Promise<void> {
  const prober = new SqlProber(JSON.parse(process.argv[2]) as SqlProberConfig, { onRecord: (record) => emitLine({ record }), onEvent: (event) => emitLine({ event }) });
  prober.start();
  emitLine({ ready: true, pid: process.pid });
  await stopSignal();
  emitLine({ report: await prober.stop() });
}

if (require.main === module) runProberMain('sql-prober', main);
