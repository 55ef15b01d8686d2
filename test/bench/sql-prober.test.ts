/**
 * The SQL prober against the TiDB emulator's MySQL server, two of them in-process on 127.0.0.1
 * sharing one store (as two TiDBs share TiKV): restarted one at a time it sees no failed statement,
 * both at once it does; SQL errors are failures but take no backend out; a wrong read is a failure.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SqlProber, type SqlProberConfig } from '../../bench/sql-prober';
import { SqlProberProcess } from '../../bench/sql-prober-process';
import { addr, store, Tidb, tidbFleet } from '../support/mysql-tidb';
import { transpileBenchScripts } from '../support/bench-scripts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Free a port: listen on 0, note it, close. Nothing listens there afterwards (connection refused). */
async function refusedPort(): Promise<number> {
  const t = await new Tidb(store()).start();
  await t.stop();
  return t.port;
}

const fast = (backends: string[]): SqlProberConfig => ({ backends, workers: 2, pauseMs: 5, timeoutMs: 1000, checkMs: 100, rise: 2, keyPrefix: 'unit' });

/** Wait until the prober has brought `backend` back (its last event says up). */
async function backUp(p: SqlProber, backend: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ev = p.report().events.filter((e) => e.backend === backend).slice(-1)[0];
    if (ev?.state === 'up') return;
    await sleep(20);
  }
  throw new Error(`${backend} did not come back`);
}

describe('the SQL prober (application behind a load balancer)', () => {
  const fleet = tidbFleet();
  let prober: SqlProber | undefined;
  const tidb = fleet.start;
  afterEach(async () => {
    await prober?.stop();
    prober = undefined;
    await fleet.stopAll();
  });

  it('spreads statements over every backend and records each one', async () => {
    const kv = store();
    const [a, b] = [await tidb(kv), await tidb(kv)];
    prober = new SqlProber(fast([addr(a), addr(b)]));
    prober.start();
    await prober.answering(40);
    const r = await prober.stop();
    prober = undefined;
    expect(r).toMatchObject({ failed: 0, connectionErrors: 0, retried: 0, events: [] });
    expect(r.records.map((x) => x.n)).toEqual([...Array(r.statements).keys()]);
    expect(r.perBackend[addr(a)]).toBeGreaterThan(5);
    expect(r.perBackend[addr(b)]).toBeGreaterThan(5);
    expect(new Set(r.records.map((x) => x.op))).toEqual(new Set(['replace', 'select']));
    expect([...kv.data.keys()].every((k) => /^unit-[01]-[0-7]$/.test(k))).toBe(true);
  });

  // MySQL clients' --ssl-mode=PREFERRED: a server whose greeting offers no TLS gets the same login in plaintext.
  it('ssl.preferred: plaintext when the server offers no TLS, without a connection error; required TLS fails there', async () => {
    const kv = store();
    const a = await tidb(kv);
    const ca = 'unused: no TLS is offered';
    prober = new SqlProber({ ...fast([addr(a)]), ssl: { ca, preferred: true } });
    prober.start();
    await prober.answering(10);
    const r = await prober.stop();
    expect(r).toMatchObject({ failed: 0, connectionErrors: 0 });
    prober = new SqlProber({ ...fast([addr(a)]), ssl: { ca } });
    prober.start();
    await sleep(500);
    const strict = await prober.stop();
    prober = undefined;
    expect(strict.connectionErrors).toBeGreaterThan(0);
  });

  it('sees no failed statement while the backends restart one at a time, and counts the connection errors', async () => {
    const kv = store();
    const [a, b] = [await tidb(kv), await tidb(kv)];
    prober = new SqlProber(fast([addr(a), addr(b)]));
    prober.start();
    await prober.answering(10);
    for (const t of [a, b]) {
      await t.stop();
      await sleep(300); // down long enough for statements and checks to be refused
      await t.start();
      await backUp(prober, addr(t));
      await prober.answering(10);
    }
    const r = await prober.stop();
    prober = undefined;
    expect(r.failed).toBe(0);
    expect(r.connectionErrors).toBeGreaterThan(0);
    expect(r.events.map((e) => `${e.backend} ${e.state}`)).toEqual([`${addr(a)} down`, `${addr(a)} up`, `${addr(b)} down`, `${addr(b)} up`]);
    // statements that ran while a backend was down all went to the other one
    const aDown = r.events[0].t;
    const aUp = r.events[1].t;
    expect(r.records.filter((x) => x.t0 > aDown && x.t1 < aUp).every((x) => x.backend === addr(b))).toBe(true);
  });

  it('counts a statement failed when no backend can run it (both down at once), and recovers after the checks pass', async () => {
    const kv = store();
    const [a, b] = [await tidb(kv), await tidb(kv)];
    prober = new SqlProber(fast([addr(a), addr(b)]));
    prober.start();
    await prober.answering(10);
    await Promise.all([a.stop(), b.stop()]);
    await sleep(300);
    await expect(prober.allUp(150)).rejects.toThrow(`sql-prober: still down after 150 ms: ${addr(a)}, ${addr(b)}`);
    await Promise.all([a.start(), b.start()]);
    await prober.allUp(5000);
    await prober.answering(10);
    const r = await prober.stop();
    prober = undefined;
    const failed = r.records.filter((x) => !x.ok);
    expect(failed.length).toBe(r.failed);
    expect(r.failed).toBeGreaterThan(0);
    expect(failed.every((x) => /^no backend could run it/.test(x.error!))).toBe(true);
    expect(r.connectionErrors).toBeGreaterThanOrEqual(2);
  });

  it('takes a refused backend out and keeps running on the others', async () => {
    const a = await tidb(store());
    const dead = `127.0.0.1:${await refusedPort()}`;
    prober = new SqlProber(fast([dead, addr(a)]));
    prober.start();
    await prober.answering(20);
    const r = await prober.stop();
    prober = undefined;
    expect(r.failed).toBe(0);
    expect(r.perBackend[dead]).toBe(0);
    expect(r.events[0]).toMatchObject({ backend: dead, state: 'down' });
    expect(r.events[0].reason).toMatch(/ECONNREFUSED/);
    expect(r.retried).toBeGreaterThan(0);
  });

  it('fails a statement the server answers with an SQL error without taking the backend out, and a wrong read', async () => {
    const kv = store();
    const a = await tidb(kv);
    prober = new SqlProber({ ...fast([addr(a)]), workers: 1 });
    prober.start();
    await prober.answering(4);
    kv.failPuts = 1;
    kv.corrupt = 'other';
    await sleep(200);
    kv.corrupt = undefined;
    await prober.answering(4);
    const r = await prober.stop();
    prober = undefined;
    expect(r.events).toEqual([]);
    expect(r.connectionErrors).toBe(0);
    const errs = r.records.filter((x) => !x.ok).map((x) => `${x.op} ${x.backend} ${x.error!.replace(/"\d+:\d+:\d+"/, 'V')}`);
    expect(errs).toContain(`replace ${addr(a)} ERROR 9005 (HY000): Region is unavailable`);
    expect(errs).toContain(`select ${addr(a)} read back "other", expected V`);
    expect(r.failed).toBe(errs.length);
  });

  it('refuses a backend that is not host:port', () => {
    expect(() => new SqlProber({ backends: ['10.0.0.1'] })).toThrow('sql-prober: backend "10.0.0.1" is not host:port');
    expect(() => new SqlProber({ backends: [] })).toThrow('sql-prober: no backends');
  });
});

describe('the SQL prober as its own process (what lab tests and the benchmark run)', () => {
  let dir: string;
  let script: string;
  const fleet = tidbFleet();
  beforeAll(() => {
    dir = transpileBenchScripts(['prober-main', 'sql-prober']);
    script = path.join(dir, 'sql-prober.js');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await fleet.stopAll();
  });

  it('streams every statement and backend event, and reports on stop', async () => {
    const kv = store();
    const [a, b] = [await fleet.start(kv), await fleet.start(kv)];
    const p = new SqlProberProcess(fast([addr(a), addr(b)]), script);
    p.start();
    await p.answering(10);
    await a.stop();
    await sleep(300);
    await expect(p.allUp(100)).rejects.toThrow(`sql-prober: still down after 100 ms: ${addr(a)}`);
    await a.start();
    await p.allUp(5000);
    await p.answering(10);
    const r = await p.stop();
    expect(r.failed).toBe(0);
    expect(r.statements).toBeGreaterThanOrEqual(20);
    expect(r.records.map((x) => x.n)).toEqual([...Array(r.statements).keys()]);
    expect(r.events.map((e) => `${e.backend} ${e.state}`)).toEqual([`${addr(a)} down`, `${addr(a)} up`]);
    expect(Object.keys(r.perBackend).sort()).toEqual([addr(a), addr(b)].sort());
  });

  it('says why when the process cannot run', async () => {
    const p = new SqlProberProcess({ backends: ['nohost'] }, script);
    p.start();
    await expect(p.answering(1)).rejects.toThrow(/sql-prober exited \(1\) before it was ready: sql-prober: backend "nohost" is not host:port/);
    await expect(p.stop()).rejects.toThrow(/exited \(1\) without a report/);
  });
});
