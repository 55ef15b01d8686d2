import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TisealError } from '../../src/errors';
import { captureOutput } from '../support/capture';
import { RunStats, writeStatsFile } from '../../src/util/run-stats';

const pd = { host: '10.0.0.1', unit: 'pd-2379.service', role: 'pd' };

describe('RunStats', () => {
  it('records a restart from issue to its first healthy check, ignoring health checks of instances it did not restart', () => {
    const s = new RunStats();
    s.healthy(pd); // a preflight check: no restart yet
    s.restartIssued(pd, 'pd');
    s.healthy(pd);
    const first = s.report('tls enable').restarts[0];
    s.healthy(pd); // later checks do not move it
    expect(s.report('tls enable').restarts).toEqual([first]);
    expect(first.healthyAt).toBeGreaterThanOrEqual(first.issuedAt);
    s.healthy({ host: '10.0.0.9', unit: 'tikv-20160.service' });
    expect(s.report('x').restarts).toHaveLength(1);
  });

  it('keeps the stop of a stop-all schedule with the start that follows it', () => {
    const s = new RunStats();
    s.stopIssued(pd);
    expect(s.report('x').restarts).toEqual([]); // stopped, not yet restarted
    s.stopped(pd);
    s.restartIssued(pd, 'pd');
    const [r] = s.report('x').restarts;
    expect(r.stopIssuedAt).toBeDefined();
    expect(r.stoppedAt).toBeGreaterThanOrEqual(r.stopIssuedAt!);
    expect(r.issuedAt).toBeGreaterThanOrEqual(r.stoppedAt!);
    expect(r.tier).toBe('pd');
  });

  it('times steps and sums SSH statistics over every pool it watches', () => {
    const s = new RunStats();
    s.stepStart('stage');
    s.stepEnd('stage', 'done');
    s.stepSkipped('never-started');
    s.stepStart('scale-out');
    s.stepEnd('scale-out', 'failed');
    s.stepEnd('scale-out', 'failed'); // a second failing action of the same step
    const host = (h: string, handshakes: number) => ({ host: h, port: 22, handshakes, connectMs: 40, execs: 10, bytesUp: 1, bytesDown: 2, rttTotalMs: 25 });
    s.watchPool({ stats: () => [host('a', 1), host('b', 1)] });
    s.watchPool({ stats: () => [host('c', 2)] });
    s.watchPool({}); // a pool without statistics (the fake)
    const r = s.report('tls status', 0);
    expect(r.steps.map((x) => [x.id, x.outcome])).toEqual([
      ['stage', 'done'],
      ['never-started', 'skipped'],
      ['scale-out', 'failed'],
    ]);
    expect(r.steps[0].endAt).toBeGreaterThanOrEqual(r.steps[0].startAt);
    expect(r.ssh).toMatchObject({ hosts: 3, handshakes: 4, maxHandshakesPerHost: 2, execs: 30, rttTotalMs: 75, connectTotalMs: 120 });
    expect(r.maxRssKb).toBeGreaterThan(1000);
    expect(r).toMatchObject({ command: 'tls status', exitCode: 0 });
  });

  it('writes its report atomically as JSON', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-stats-'));
    try {
      const file = path.join(dir, 'stats.json');
      new RunStats().write(file, 'audit', 1);
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ command: 'audit', exitCode: 1 });
      expect(fs.readdirSync(dir)).toEqual(['stats.json']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never writes through a symlink planted at a predictable temp name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-stats-'));
    try {
      const file = path.join(dir, 'stats.json');
      const victim = path.join(dir, 'victim');
      fs.writeFileSync(victim, 'precious');
      for (let pid = process.pid - 2; pid <= process.pid + 2; pid++) fs.symlinkSync(victim, `${file}.tmp-${pid}`);
      new RunStats().write(file, 'audit', 0);
      expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
      expect(JSON.parse(fs.readFileSync(file, 'utf8')).command).toBe('audit');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails fast with the path on a pseudo file system or a missing directory (no mkdir -p spinning under /proc)', () => {
    const t0 = Date.now();
    for (const file of ['/proc/tiseal-nope/stats.json', '/proc/stats.json', path.join(os.tmpdir(), 'tiseal-no-such-dir', 'x', 'stats.json')]) {
      expect(() => new RunStats().write(file, 'audit', 0)).toThrow(TisealError);
      expect(() => new RunStats().write(file, 'audit', 0)).toThrow(file);
    }
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a stats file that cannot be written never hides the error of a failed command', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-stats-'));
    try {
      const file = path.join(dir, 'gone', 'stats.json');
      const failed = await captureOutput(() => writeStatsFile(file, 'tls enable', 1, new TisealError('PD is down')));
      expect(failed.err).toMatch(/^warning: .*--stats-file.*gone/);
      expect(() => writeStatsFile(file, 'tls enable', 0)).toThrow(/--stats-file/); // a successful command reports it
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
