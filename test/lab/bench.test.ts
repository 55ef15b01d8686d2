/**
 * `npm run bench` on the lab, as a smoke test of its harness (the numbers are not judged here:
 * benchmarks are not timed tests). What is checked are facts: both schedules ran, the prober saw
 * the cluster, one SSH connection per host, no unanswered probe outside the restart steps, and the
 * scale hosts leave nothing behind.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { benchOutage } from '../../bench/outage';
import { benchScale } from '../../bench/scale';
import { loadTopology } from '../../src/topology';
import { describeLab, ensureLab } from './helpers';

jest.setTimeout(10 * 60_000);

describeLab('the benchmark harness on the lab', () => {
  let work: string;
  beforeAll(async () => {
    await ensureLab();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-bench-test-'));
  }, 15 * 60_000);
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  // One schedule (the default): the harness is the same for every schedule, and stop-all's tier
  // order on the lab is tls-schedule.test.ts's subject (a second schedule here cost CI ~100 s).
  it('measures the physical limit and the outage of a schedule with the SQL tick prober; the cluster goes unanswered only while components restart', async () => {
    const o = await benchOutage({ rounds: 1, schedules: ['overlap'], limit: true, converge: 0, workDir: work, log: () => undefined });
    // every instance restarted once, the PD leader last (its restart is the election)
    const l = o.limit!;
    expect(l.restarts.map((r) => `${r.unit}@${r.host}`).sort()).toEqual(loadTopology(o.info.topologyFile).instances.map((i) => `${i.unit}@${i.host}`).sort());
    expect(l.restarts.findIndex((r) => r.pdLeader)).toBe(l.restarts.length - 1);
    for (const r of l.restarts) expect(r.ms).toBeGreaterThan(0);
    expect(l.election.ms).toBeGreaterThan(0);
    expect(l.ms).toBe(Math.max(...l.restarts.map((r) => r.ms)) + l.election.ms);
    expect(o.runs.map((r) => r.schedule)).toEqual(['overlap']);
    for (const r of o.runs) {
      expect(r.outage.ticks).toBeGreaterThan(30);
      expect(r.ticks.length).toBeGreaterThanOrEqual(r.outage.ticks); // every raw tick is kept
      // overlap starts every tier at once: one critical tier
      expect(r.critical.tiers.map((t) => t.tier)).toEqual(['overlap']);
      for (const t of r.critical.tiers) expect(t.slowest.ms).toBeGreaterThan(0);
      expect(r.stats.ssh.maxHandshakesPerHost).toBe(1);
      // Once PD changes scheme a plaintext TiDB gets no timestamp: a SQL client always sees an outage.
      expect(r.outage.intervals.length).toBeGreaterThan(0);
      // It starts when components restart; through SQL it lasts until TiDB has its regions' leaders
      // again, which can be after the restart steps (peer-urls, scale-out), so only its start is pinned.
      const first = r.outage.intervals[0];
      const atStart = r.stats.steps.filter((st) => st.startAt <= first.from && (st.endAt ?? Infinity) > first.from).map((st) => st.id);
      if (!atStart.some((st) => /^(restart-|stop-all$)/.test(st))) throw new Error(`${r.schedule}: first unanswered tick during ${atStart.join(', ')}: ${first.firstError}`);
    }
    expect(o.disables).toHaveLength(1);
  });

  it('runs tls status over sshd-only hosts in network namespaces and removes them afterwards', async () => {
    const s = await benchScale({ sizes: [2, 4], repeat: 1, concurrency: 5, workDir: work, log: () => undefined });
    expect(s.runs.map((r) => [r.hosts, r.handshakesPerHost])).toEqual([
      [2, 1],
      [4, 1],
    ]);
    for (const r of s.runs) expect(r.peakRssMb.median).toBeGreaterThan(10);
    // The SSH floor ran on the same hosts at the same width: one `true` per host, its own CPU measured.
    expect(s.floor!.map((f) => [f.hosts, f.concurrency, f.execs])).toEqual([
      [2, 5, 2],
      [4, 5, 4],
    ]);
    for (const f of s.floor!) expect(f.cpuMs!.median).toBeGreaterThan(0);
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toMatch(/^tsb-/m);
    expect(spawnSync('ip', ['link', 'show', 'tsbr0']).status).not.toBe(0);
    expect(spawnSync('pgrep', ['-f', path.join(work, 'netns')]).status).toBe(1); // no sshd of ours left
  });
});
