/**
 * The SQL tick prober against the TiDB emulator's MySQL server, in-process on 127.0.0.1: two TiDBs
 * sharing one store (as two TiDBs share TiKV). A tick is answered when any TiDB wrote and read back
 * its value; one TiDB down still answers, both down or a wrong read does not; a stalled TiDB does
 * not hold up the next ticks.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SqlTickProber, type SqlTick, type TickProberConfig } from '../../bench/sql-tick-prober';
import { TickProberProcess } from '../../bench/sql-tick-prober-process';
import { addr, store, tidbFleet } from '../support/mysql-tidb';
import { transpileBenchScripts } from '../support/bench-scripts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cfg = (backends: string[], over: Partial<TickProberConfig> = {}): TickProberConfig => ({ backends, intervalMs: 50, timeoutMs: 1000, keyPrefix: 'unit', ...over });

/**
 * A tick start time after which every tick began after the caller's change: a tick's time is its
 * scheduled start, and a timer may fire a millisecond early, in the millisecond the change is made.
 */
const after = () => Date.now() + 5;

/** Ticks ended so far, in order, once at least `n` of them have ended after `since`. */
async function ticksAfter(p: SqlTickProber, since: number, n: number, timeoutMs = 5000): Promise<SqlTick[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = p.done().filter((t) => t.at >= since).sort((a, b) => a.n - b.n);
    if (got.length >= n) return got;
    if (Date.now() > deadline) throw new Error(`only ${got.length} ticks after ${timeoutMs} ms`);
    await sleep(20);
  }
}

describe('the SQL tick prober', () => {
  const fleet = tidbFleet();
  let prober: SqlTickProber | undefined;
  const tidb = fleet.start;
  afterEach(async () => {
    await prober?.stop();
    prober = undefined;
    await fleet.stopAll();
  });

  it('answers every tick on a healthy cluster, with each TiDB writing its own key with the tick number', async () => {
    const kv = store();
    const [a, b] = [await tidb(kv), await tidb(kv)];
    prober = new SqlTickProber(cfg([addr(a), addr(b)]));
    prober.start();
    const got = await ticksAfter(prober, 0, 10);
    const all = await prober.stop();
    prober = undefined;
    expect(all.map((t) => t.n)).toEqual([...Array(all.length).keys()]);
    expect(got.every((t) => t.answered && t.backends.every((x) => x.ok && x.error === undefined))).toBe(true);
    expect(all[0].backends.map((x) => x.backend)).toEqual([addr(a), addr(b)]);
    const last = all[all.length - 1];
    expect(kv.data.get(`unit-0-${last.n}`)).toBe(String(last.n));
    expect(kv.data.get(`unit-1-${last.n}`)).toBe(String(last.n));
    // scheduled every 50 ms, not one after another
    for (let i = 1; i < all.length; i++) expect(all[i].at - all[i - 1].at).toBeGreaterThanOrEqual(45);
    expect(all.every((t) => t.end >= t.at)).toBe(true);
  });

  it('still answers with one TiDB down, and reconnects to it when it is back', async () => {
    const kv = store();
    const [a, b] = [await tidb(kv), await tidb(kv)];
    prober = new SqlTickProber(cfg([addr(a), addr(b)]));
    prober.start();
    await ticksAfter(prober, 0, 3);
    await a.stop();
    const down = await ticksAfter(prober, after(), 5);
    expect(down.every((t) => t.answered)).toBe(true);
    expect(down.every((t) => !t.backends[0].ok && /ECONNREFUSED|closed|lost/i.test(t.backends[0].error!))).toBe(true);
    expect(down.every((t) => t.backends[1].ok)).toBe(true);
    await a.start();
    const back = await ticksAfter(prober, Date.now() + 100, 3);
    expect(back.every((t) => t.backends[0].ok)).toBe(true);
  });

  it('does not answer a tick when every TiDB fails, whether refused or answering with an SQL error', async () => {
    const kv = store();
    const [a, b] = [await tidb(kv), await tidb(kv)];
    prober = new SqlTickProber(cfg([addr(a), addr(b)]));
    prober.start();
    await ticksAfter(prober, 0, 3);
    kv.failPuts = true;
    const pdGone = await ticksAfter(prober, after(), 3);
    expect(pdGone.every((t) => !t.answered)).toBe(true);
    expect(pdGone[0].backends.map((x) => x.error)).toEqual(['ERROR 9001 (HY000): PD server timeout', 'ERROR 9001 (HY000): PD server timeout']);
    kv.failPuts = false;
    await Promise.all([a.stop(), b.stop()]);
    const refused = await ticksAfter(prober, after(), 3);
    expect(refused.every((t) => !t.answered && t.backends.every((x) => !x.ok && /ECONNREFUSED/.test(x.error!)))).toBe(true);
  });

  it('does not answer a tick that read back something else than it wrote', async () => {
    const kv = store();
    const a = await tidb(kv);
    prober = new SqlTickProber(cfg([addr(a)]));
    prober.start();
    await ticksAfter(prober, 0, 2);
    kv.corrupt = 'other';
    const wrong = await ticksAfter(prober, after(), 3);
    expect(wrong.every((t) => !t.answered)).toBe(true);
    expect(wrong[0].backends[0].error).toBe(`read back "other", wrote "${wrong[0].n}"`);
  });

  it('keeps ticking on time while a TiDB stalls, and times the stalled statements out', async () => {
    const kv = store();
    const a = await tidb(kv);
    prober = new SqlTickProber(cfg([addr(a)], { timeoutMs: 400, maxInFlight: 20 }));
    prober.start();
    await ticksAfter(prober, 0, 2);
    kv.stallMs = 2000;
    const from = after();
    await sleep(600);
    kv.stallMs = 0;
    // Ticks were started every 50 ms while earlier ones hung: none waited for another.
    await sleep(600); // the last stalled tick has timed out (400 ms) by now
    const during = (await ticksAfter(prober, from, 8)).filter((t) => t.at < from + 500);
    expect(during.length).toBeGreaterThanOrEqual(8);
    // A tick that waited for a stalled one would start ≥ 400 ms late; 300 leaves room for a loaded machine.
    for (let i = 1; i < during.length; i++) expect(during[i].at - during[i - 1].at).toBeLessThan(300);
    // Whichever statement of the tick met the stall (the write, its read-back, or the connect) timed out.
    const errors = during.map((t) => `${t.answered ? 'answered' : t.backends[0].error}`);
    expect(errors.filter((e) => !/^(REPLACE|SELECT|connect): timed out after 400 ms$/.test(e))).toEqual([]);
    expect(during.every((t) => t.end - t.at < 1000)).toBe(true);
    const recovered = await ticksAfter(prober, Date.now() + 50, 3);
    expect(recovered.every((t) => t.answered)).toBe(true);
  });

  it('sends a stalled TiDB no more statements at once than its pool allows, even after they timed out; the other ticks fail on it at once', async () => {
    const kv = store();
    const a = await tidb(kv);
    prober = new SqlTickProber(cfg([addr(a)], { timeoutMs: 300, maxInFlight: 2 }));
    prober.start();
    await ticksAfter(prober, 0, 2);
    kv.stallMs = 3000;
    const from = after();
    await sleep(800); // past the timeout: the server still works on the two statements, their connections stay busy
    const reached = kv.stalledPuts;
    const fast = prober.done().filter((t) => t.at >= from && t.end - t.at < 100);
    expect(reached).toBe(2);
    expect(fast.length).toBeGreaterThanOrEqual(8);
    expect(fast.filter((t) => t.answered || t.backends[0].error !== '2 statements in flight on this TiDB, none answered yet').map((t) => JSON.stringify({ ...t, at: t.at - from }))).toEqual([]);
    expect(prober.done().filter((t) => t.backends[0].error === 'REPLACE: timed out after 300 ms')).toHaveLength(2);
    kv.stallMs = 0;
  });

  it('gives up a connection whose statement the server has not answered after 12 timeouts, and uses the slot again', async () => {
    const kv = store();
    const a = await tidb(kv);
    prober = new SqlTickProber(cfg([addr(a)], { timeoutMs: 100, maxInFlight: 1 }));
    prober.start();
    await ticksAfter(prober, 0, 2);
    kv.stallMs = 5000;
    await sleep(1000);
    expect(kv.stalledPuts).toBe(1);
    await sleep(600); // 1.2 s: the first connection is closed, the next tick sends its statement
    expect(kv.stalledPuts).toBe(2);
    kv.stallMs = 0;
  });

  it('refuses a backend that is not host:port', () => {
    expect(() => new SqlTickProber({ backends: ['10.0.0.1'] })).toThrow('sql-tick-prober: backend "10.0.0.1" is not host:port');
    expect(() => new SqlTickProber({ backends: [] })).toThrow('sql-tick-prober: no backends');
  });
});

describe('the SQL tick prober as its own process (what the benchmark runs)', () => {
  let dir: string;
  let script: string;
  const fleet = tidbFleet();
  beforeAll(() => {
    dir = transpileBenchScripts(['prober-main', 'sql-prober', 'sql-tick-prober']);
    script = path.join(dir, 'sql-tick-prober.js');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await fleet.stopAll();
  });

  it('streams every tick, finds the first answered one after an outage, and returns them all in order on stop', async () => {
    const a = await fleet.start(store());
    const p = new TickProberProcess(cfg([addr(a)]), script).start();
    await p.answering(5, 10_000);
    await a.stop();
    const stopped = Date.now();
    const firstDown = await p.waitTick('unanswered', stopped, (t) => !t.answered, 5000);
    await expect(p.answering(3, 300)).rejects.toThrow(/did not answer 3 ticks in a row within 0.3 s: 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    await a.start();
    const restarted = Date.now();
    const back = await p.waitTick('answered', stopped, (t) => t.answered, 5000);
    expect(back.at).toBeGreaterThan(firstDown.at);
    expect(back.end).toBeGreaterThanOrEqual(restarted);
    const all = await p.stop();
    expect(all.map((t) => t.n)).toEqual([...Array(all.length).keys()]);
    expect(all.some((t) => !t.answered) && all[all.length - 1].answered).toBe(true);
  });

  it('says why when the process cannot run', async () => {
    const p = new TickProberProcess({ backends: ['nohost'] }, script).start();
    await expect(p.answering(1)).rejects.toThrow(/sql-tick-prober exited \(1\) before it was ready: sql-tick-prober: backend "nohost" is not host:port/);
    await expect(p.stop()).rejects.toThrow(/exited \(1\)/);
  });
});
