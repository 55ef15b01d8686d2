/**
 * `tls enable --schedule stop-all` (TiUP's order) on the lab, and what `--stats-file` records:
 * every component is stopped, last tier first, before any starts; one SSH connection per host.
 * Checked against systemd's own timestamps on the hosts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import type { RunStatsReport } from '../../src/util/run-stats';
import { describeLab, ensureLab, sshOk } from './helpers';
import { expectPlainCluster, expectTlsCluster } from './expect-cluster';
import { labTopology, runTiseal } from './tiseal';

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

  it('plans the stop of everything before the tiers start', async () => {
    const dry = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--dry-run', '--schedule', 'stop-all']);
    expect(dry.code).toBe(0);
    const plan = dry.stdout.slice(dry.stdout.indexOf('The plan:'));
    expect(plan.indexOf('Stop every component that must restart')).toBeGreaterThan(0);
    expect(plan.indexOf('Stop every component')).toBeLessThan(plan.indexOf('Restart pd'));
    expect(plan).toMatch(/would stop tidb-4000\.service on 10\.77\.0\.14.*\n(.*\n)*.*would stop tikv-20160\.service/);
  });

  it('stops every component, last tier first, before starting any; one SSH connection per host', async () => {
    const statsFile = path.join(dir, 'enable.json');
    const r = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes', '--schedule', 'stop-all', '--stats-file', statsFile]);
    if (r.code !== 0) throw new Error(`tls enable exited ${r.code}:\n${r.stdout.slice(-2000)}\n${r.stderr}`);
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
    const stats = JSON.parse(fs.readFileSync(statsFile, 'utf8')) as RunStatsReport;
    expect(stats).toMatchObject({ command: 'tls enable', exitCode: 0 });
    const ids = stats.steps.map((s) => s.id);
    expect(ids.indexOf('stop-all')).toBeGreaterThan(ids.indexOf('stage'));
    expect(ids.indexOf('stop-all')).toBeLessThan(ids.indexOf('restart-pd'));
    expect(stats.restarts).toHaveLength(labTopology(info).instances.length - 2); // the 2 PDs scaled in rejoin instead
    for (const x of stats.restarts) {
      expect(x.stoppedAt).toBeLessThanOrEqual(Math.min(...stats.restarts.map((y) => y.issuedAt)));
      expect(x.healthyAt).toBeGreaterThan(x.issuedAt);
    }
    expect(stats.ssh.hosts).toBe(info.hosts.length);
    expect(stats.ssh.maxHandshakesPerHost).toBe(1);
    expect(stats.ssh.execs).toBeGreaterThan(0);
  });

  it('rolls back with the default schedule', async () => {
    const r = await runTiseal(info, ['tls', 'disable', info.topologyFile, '--yes']);
    if (r.code !== 0) throw new Error(`tls disable exited ${r.code}:\n${r.stderr}`);
    await expectPlainCluster(info);
  });
});
