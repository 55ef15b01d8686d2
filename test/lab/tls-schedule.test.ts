/**
 * The restart schedules on the lab, checked against systemd's own timestamps on the hosts and seen
 * by an application (the SQL prober, its own process, on TiDB's MySQL port):
 * - `tls enable --schedule stop-all` (TiUP's operator.Restart): every component stopped, last tier
 *   first, before any starts; what `--stats-file` records; one SSH connection per host;
 * - `tls disable` with the default schedule (overlap): everything stopped at once, PD started first,
 *   the rest only after PD's start; the application sees one outage window, from the stops until
 *   TiDB answers again.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import type { RunStatsReport } from '../../src/util/run-stats';
import { describeLab, ensureLab, sshOk, waitUntil } from './helpers';
import { expectPlainCluster, expectTlsCluster } from './expect-cluster';
import { labTopology, runTiseal } from './tiseal';
import { SqlProberProcess } from '../../bench/sql-prober-process';
import type { SqlProbeReport } from '../../bench/sql-prober';

const TIDB = '10.77.0.14';

/** The SQL outage as the application saw it: first failed statement → first one answered after the last failure. */
function sqlOutage(rep: SqlProbeReport): { from: number; to: number } | undefined {
  const failed = rep.records.filter((r) => !r.ok);
  if (failed.length === 0) return undefined;
  const last = Math.max(...failed.map((r) => r.t1));
  const next = rep.records.filter((r) => r.ok && r.t1 > last).sort((a, b) => a.t1 - b.t1)[0];
  return { from: Math.min(...failed.map((r) => r.t0)), to: next?.t1 ?? last };
}

/**
 * Statements a worker got answered between its own first and last failure: any means that worker
 * saw two outages, not one (the window check alone holds for any input). Per worker, because each
 * works on its own key, so its own region: two regions may elect at different moments.
 */
function answeredInsideOutage(records: SqlProbeReport['records']): SqlProbeReport['records'] {
  const out: SqlProbeReport['records'] = [];
  for (const w of new Set(records.map((r) => r.worker))) {
    const mine = records.filter((r) => r.worker === w);
    const failed = mine.filter((r) => !r.ok);
    if (failed.length === 0) continue;
    const from = Math.min(...failed.map((r) => r.t0));
    const to = Math.max(...failed.map((r) => r.t1));
    out.push(...mine.filter((r) => r.ok && r.t0 > from && r.t1 < to));
  }
  return out;
}

/** Run tiseal with the SQL prober running throughout; the prober's report and tiseal's stats. */
async function probed(info: LabInfo, args: string[], statsFile: string): Promise<{ rep: SqlProbeReport; stats: RunStatsReport }> {
  const prober = new SqlProberProcess({ backends: [`${TIDB}:4000`], workers: 2, pauseMs: 20, timeoutMs: 3000, keyPrefix: 'lab-schedule' });
  prober.start();
  let rep: SqlProbeReport;
  try {
    await prober.answering(10);
    const r = await runTiseal(info, [...args, '--stats-file', statsFile]);
    if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}:\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    await prober.answering(10, 60_000); // the outage, if any, has ended inside the report
  } finally {
    rep = await prober.stop();
  }
  return { rep, stats: JSON.parse(fs.readFileSync(statsFile, 'utf8')) as RunStatsReport };
}

jest.setTimeout(10 * 60_000);

/** Monotonic µs (one kernel clock for every container) at which each unit last stopped and started. */
function unitTimes(info: LabInfo): Map<string, { inactiveAt: number; activeAt: number }> {
  const t = labTopology(info);
  const out = new Map<string, { inactiveAt: number; activeAt: number }>();
  for (const h of t.hosts) {
    const units = t.instances.filter((i) => i.host === h.host).map((i) => i.unit);
    const r = sshOk(info, h.host, `systemctl show -p Id -p InactiveEnterTimestampMonotonic -p ActiveEnterTimestampMonotonic ${units.join(' ')}`);
    for (const block of r.trim().split(/\n\s*\n/)) {
      const get = (k: string) => Number(new RegExp(`${k}=(\\d+)`).exec(block)?.[1] ?? 0);
      out.set(`${/Id=(.*)/.exec(block)![1]}@${h.host}`, { inactiveAt: get('InactiveEnterTimestampMonotonic'), activeAt: get('ActiveEnterTimestampMonotonic') });
    }
  }
  return out;
}

describeLab('tls enable --schedule stop-all on the lab', () => {
  let info: LabInfo;
  let dir: string;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-schedule-'));
  }, 15 * 60_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('plans the stop of everything before the tiers start (stop-all), and overlap by default', async () => {
    const def = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--dry-run']);
    expect(def.code).toBe(0);
    expect(def.stdout).toMatch(/Restart every component at once: stop all, start PD, start the rest as soon as PD listens/);
    expect(def.stdout).toMatch(/would start tikv-20160\.service@10\.77\.0\.11.*\(all at once\)/);
    const dry = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--dry-run', '--schedule', 'stop-all']);
    expect(dry.code).toBe(0);
    const plan = dry.stdout.slice(dry.stdout.indexOf('The plan:'));
    expect(plan.indexOf('Stop every component that must restart')).toBeGreaterThan(0);
    expect(plan.indexOf('Stop every component')).toBeLessThan(plan.indexOf('Restart pd'));
    expect(plan).toMatch(/would stop tidb-4000\.service on 10\.77\.0\.14.*\n(.*\n)*.*would stop tikv-20160\.service/);
  });

  it('stops every component, last tier first, before starting any; one SSH connection per host', async () => {
    const statsFile = path.join(dir, 'enable.json');
    const { rep, stats } = await probed(info, ['tls', 'enable', info.topologyFile, '--yes', '--schedule', 'stop-all'], statsFile);
    expectTlsCluster(info);

    // systemd's view: the last stop came before the first start
    const times = [...unitTimes(info).entries()];
    const lastStop = Math.max(...times.map(([, t]) => t.inactiveAt));
    const firstStart = Math.min(...times.map(([, t]) => t.activeAt));
    expect(lastStop).toBeLessThan(firstStart);
    const stoppedAt = (unit: string) => Math.max(...times.filter(([k]) => k.startsWith(unit)).map(([, t]) => t.inactiveAt));
    expect(stoppedAt('tidb-4000')).toBeLessThan(stoppedAt('tikv-20160'));
    expect(stoppedAt('tikv-20160')).toBeLessThan(stoppedAt('pd-2379'));

    // tiseal's own record agrees, and it used one connection per host
    expect(stats).toMatchObject({ command: 'tls enable', exitCode: 0 });
    const ids = stats.steps.map((s) => s.id);
    expect(ids.indexOf('stop-all')).toBeGreaterThan(ids.indexOf('stage'));
    expect(ids.indexOf('stop-all')).toBeLessThan(ids.indexOf('restart-pd'));
    expect(ids).not.toContain('restart-overlap');
    expect(stats.restarts).toHaveLength(labTopology(info).instances.length - 2); // the 2 PDs scaled in rejoin instead
    for (const x of stats.restarts) {
      expect(x.stoppedAt).toBeLessThanOrEqual(Math.min(...stats.restarts.map((y) => y.issuedAt)));
      expect(x.healthyAt).toBeGreaterThan(x.issuedAt);
    }
    expect(stats.ssh.hosts).toBe(info.hosts.length);
    expect(stats.ssh.maxHandshakesPerHost).toBe(1);
    expect(stats.ssh.execs).toBeGreaterThan(0);
    const w = sqlOutage(rep);
    expect(w).toBeDefined(); // TiUP's schedule stops TiDB: the application sees it
    report('tls enable --schedule stop-all', rep, stats, stats.restarts.find((x) => x.role === 'tidb')!.healthyAt);
  });

  it("the application's path on the TLS cluster: mariadb REPLACE and SELECT work, with every PD stopped TiDB answers 9001 PD server timeout, and works again once PD is back", async () => {
    const sql = (q: string) => spawnSync('mariadb', ['-h', TIDB, '-P', '4000', '-u', 'root', '--connect-timeout=5', '-N', '-B', '-e', q], { encoding: 'utf8', timeout: 60_000 });
    const q = (v: string) => `REPLACE INTO test.kv (k, v) VALUES ('lab-schedule', '${v}'); SELECT v FROM test.kv WHERE k = 'lab-schedule'`;
    // The regions may still be electing after the switch (every store restarted): TiDB answers once they have leaders.
    await waitUntil('SQL through TiDB on the TLS cluster', 60_000, () => (sql(q('on-tls')).stdout === 'on-tls\n' ? true : undefined), 1000);
    const pds = labTopology(info).instances.filter((i) => i.role === 'pd');
    try {
      for (const pd of pds) sshOk(info, pd.host, `sudo -n systemctl stop ${pd.unit}`);
      const r = sql(q('no-pd'));
      // (mariadb echoes the failed statement between dashes first)
      expect(`${r.status} ${r.stderr.trim().split('\n').pop()}`).toMatch(/^1 ERROR 9001 \(HY000\) at line 1: PD server timeout: /);
    } finally {
      for (const pd of pds) sshOk(info, pd.host, `sudo -n systemctl start ${pd.unit}`);
    }
    await waitUntil('SQL again with PD back', 60_000, () => (sql(q('pd-back')).stdout === 'pd-back\n' ? true : undefined), 1000);
  });

  it('rolls back with the default schedule (overlap): all stopped at once, PD started first, one SQL outage window from the stops until TiDB is back', async () => {
    const statsFile = path.join(dir, 'disable.json');
    const { rep, stats } = await probed(info, ['tls', 'disable', info.topologyFile, '--yes'], statsFile);
    await expectPlainCluster(info);
    const ids = stats.steps.map((s) => s.id);
    expect(ids.indexOf('restart-overlap')).toBe(ids.indexOf('stage') + 1);

    // systemd's view: every stop before any start, and PD's start before every other start
    const kept = stats.restarts; // what this run restarted (the scaled-in PDs rejoin later)
    expect(kept).toHaveLength(labTopology(info).instances.length - 2);
    const times = unitTimes(info);
    const t = (x: { unit: string; host: string }) => times.get(`${x.unit}@${x.host}`)!;
    expect(Math.max(...kept.map((x) => t(x).inactiveAt))).toBeLessThan(Math.min(...kept.map((x) => t(x).activeAt)));
    const pd = kept.find((x) => x.role === 'pd')!;
    for (const x of kept.filter((y) => y.role !== 'pd')) expect(`${x.unit}@${x.host} started after PD: ${t(x).activeAt > t(pd).activeAt}`).toBe(`${x.unit}@${x.host} started after PD: true`);
    // tiseal waited for PD's port before starting the others
    for (const x of kept.filter((y) => y.role !== 'pd')) expect(x.issuedAt).toBeGreaterThan(pd.issuedAt);

    // The application's view: one outage, beginning with the stops and ending once TiDB is back and
    // the regions have leaders again: all stores restarted together, so every region elects after its
    // randomized election timeout, [10, 20) ticks of 1 s (raft-rs; TiKV's defaults), which no health
    // gate of tiseal's waits for. Bound: TiDB back + 20 s + the prober's 3 s statement timeout.
    const w = sqlOutage(rep);
    expect(w).toBeDefined();
    const firstStop = Math.min(...kept.map((x) => x.stopIssuedAt!));
    const tidbBack = kept.find((x) => x.role === 'tidb')!.healthyAt!;
    expect(w!.from).toBeGreaterThanOrEqual(firstStop - 3000); // a statement in flight at the stop fails too
    expect(w!.from).toBeLessThan(tidbBack);
    expect(w!.to).toBeGreaterThan(tidbBack);
    expect(w!.to).toBeLessThan(tidbBack + 23_000);
    expect(rep.records.filter((r) => !r.ok && (r.t1 < w!.from || r.t0 > w!.to))).toEqual([]);
    // One outage, not two: no worker got an answer between its failures. (The check can fail: a
    // failure, an answer, a failure of one worker is two outages.)
    const rec = (t0: number, ok: boolean) => ({ n: t0, worker: 0, op: 'select' as const, key: 'k', t0, t1: t0 + 1, ok, retries: [] });
    expect(answeredInsideOutage([rec(0, false), rec(10, true), rec(20, false)])).toHaveLength(1);
    expect(answeredInsideOutage(rep.records)).toEqual([]);
    report('tls disable (overlap)', rep, stats, tidbBack);
  });
});

function report(what: string, rep: SqlProbeReport, stats: RunStatsReport, tidbBack?: number): void {
  const w = sqlOutage(rep);
  const iso = (ms: number) => new Date(ms).toISOString().slice(11, 23);
  const firstStop = Math.min(...stats.restarts.map((x) => x.stopIssuedAt ?? x.issuedAt));
  process.stdout.write(
    `sql prober, ${what}: ${rep.statements} statements, ${rep.failed} failed; ` +
      (w ? `outage ${iso(w.from)} → ${iso(w.to)} (${w.to - w.from} ms); first stop ${iso(firstStop)}${tidbBack ? `, TiDB healthy ${iso(tidbBack)}` : ''}` : 'no outage') + '\n',
  );
}
