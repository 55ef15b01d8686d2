import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LockError } from '../../src/errors';
import { Journal } from '../../src/state/journal';
import { ClusterLock } from '../../src/state/lock';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-state-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ClusterLock', () => {
  it('is exclusive and released', () => {
    const a = new ClusterLock(path.join(dir, 'lock'));
    a.acquire('tls enable');
    expect(fs.statSync(path.join(dir, 'lock')).mode & 0o777).toBe(0o600);
    const b = new ClusterLock(path.join(dir, 'lock'));
    expect(() => b.acquire('tls disable')).toThrow(/another tiseal run holds the lock.*tls enable/);
    a.release();
    expect(fs.existsSync(path.join(dir, 'lock'))).toBe(false);
    b.acquire('tls disable');
    b.release();
  });
  it('reports a stale lock from a dead process with how to clear it', () => {
    // a real process that has exited: its pid is free
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    fs.writeFileSync(path.join(dir, 'lock'), JSON.stringify({ pid: Number(dead), host: os.hostname(), started: 'earlier', command: 'tls enable' }));
    try {
      new ClusterLock(path.join(dir, 'lock')).acquire('tls enable');
      throw new Error('expected LockError');
    } catch (e) {
      expect(e).toBeInstanceOf(LockError);
      expect((e as LockError).message).toMatch(/stale lock.*no longer running/);
      expect((e as LockError).suggestion).toContain(`rm ${path.join(dir, 'lock')}`);
    }
  });
});

describe('Journal', () => {
  it('finds the open run and its done steps, survives a torn last line', () => {
    const f = path.join(dir, 'journal.jsonl');
    const j = new Journal(f);
    j.append({ type: 'run-start', op: 'enable', runId: 'r1', at: 't' });
    j.append({ type: 'step-start', step: 'scale-in', at: 't' });
    j.append({ type: 'step-done', step: 'scale-in', at: 't' });
    j.append({ type: 'step-start', step: 'stage', at: 't' });
    fs.appendFileSync(f, '{"type":"step-do'); // crash mid-write
    const open = new Journal(f).openRun();
    expect(open?.op).toBe('enable');
    expect([...(open?.done ?? [])]).toEqual(['scale-in']);
    expect(open?.started.has('stage')).toBe(true);
  });
  it('has no open run after run-done', () => {
    const f = path.join(dir, 'journal.jsonl');
    const j = new Journal(f);
    j.append({ type: 'run-start', op: 'enable', runId: 'r1', at: 't' });
    j.append({ type: 'run-done', op: 'enable', runId: 'r1', at: 't' });
    expect(new Journal(f).openRun()).toBeUndefined();
  });
});
