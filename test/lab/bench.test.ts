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
import { describeLab, ensureLab } from './helpers';

jest.setTimeout(10 * 60_000);

describeLab('the benchmark harness on the lab', () => {
  let work: string;
  beforeAll(async () => {
    await ensureLab();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-bench-test-'));
  }, 15 * 60_000);
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('measures the outage of both schedules; the cluster goes unanswered only while components restart', async () => {
    const o = await benchOutage({ rounds: 1, workDir: work, log: () => undefined });
    expect(o.runs.map((r) => r.schedule)).toEqual(['tiers', 'stop-all']);
    for (const r of o.runs) {
      expect(r.outage.ticks).toBeGreaterThan(30);
      // every tier tiseal restarts, in TiUP's order (monitoring last: the lab runs Debian's Prometheus)
      expect(r.critical.tiers.map((t) => t.tier)).toEqual(['pd', 'tikv', 'tidb', 'tiflash', 'cdc', 'prometheus']);
      for (const t of r.critical.tiers) expect(t.slowest.ms).toBeGreaterThan(0);
      expect(r.stats.ssh.maxHandshakesPerHost).toBe(1);
      // PD is a single member while it restarts: the prober always sees that.
      expect(r.outage.intervals.some((iv) => iv.pdDown)).toBe(true);
      for (const iv of r.outage.intervals) {
        if (!iv.steps.every((s) => /^(restart-|stop-all$)/.test(s))) throw new Error(`${r.schedule}: unanswered ${iv.ms} ms during ${iv.steps.join(', ')}: ${iv.firstError}`);
      }
    }
    expect(o.disables).toHaveLength(2);
  });

  it('runs tls status over sshd-only hosts in network namespaces and removes them afterwards', async () => {
    const s = await benchScale({ sizes: [2, 4], repeat: 1, concurrency: 5, workDir: work, log: () => undefined });
    expect(s.runs.map((r) => [r.hosts, r.handshakesPerHost])).toEqual([
      [2, 1],
      [4, 1],
    ]);
    for (const r of s.runs) expect(r.peakRssMb.median).toBeGreaterThan(10);
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toMatch(/^tsb-/m);
    expect(spawnSync('ip', ['link', 'show', 'tsbr0']).status).not.toBe(0);
    expect(spawnSync('pgrep', ['-f', path.join(work, 'netns')]).status).toBe(1); // no sshd of ours left
  });
});
