import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { LocalStateError, LockError } from '../../src/errors';
import { Journal } from '../../src/state/journal';
import { ClusterLock } from '../../src/state/lock';
import { flagsNotRepeated } from '../../src/commands/tls/switch';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-state-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const SRC = path.join(__dirname, '..', '..', 'src');
let compiled: string;
/** src/state/lock.ts (and errors.ts, util/terminal.ts) as plain JS, so a separate node process can hold the lock. */
beforeAll(() => {
  compiled = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-lockjs-'));
  for (const f of ['errors.ts', 'util/terminal.ts', 'state/lock.ts']) {
    const js = ts.transpileModule(fs.readFileSync(path.join(SRC, f), 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020, esModuleInterop: true } }).outputText;
    fs.mkdirSync(path.dirname(path.join(compiled, f)), { recursive: true });
    fs.writeFileSync(path.join(compiled, f.replace(/\.ts$/, '.js')), js);
  }
});
afterAll(() => fs.rmSync(compiled, { recursive: true, force: true }));

/** Another process that takes the lock and holds it until killed. */
async function holder(file: string, command = 'tiseal tls enable prod.yaml'): Promise<ChildProcess> {
  const code = `const { ClusterLock } = require(${JSON.stringify(path.join(compiled, 'state/lock.js'))});
new ClusterLock(${JSON.stringify(file)}).acquire(${JSON.stringify(command)}); process.stdout.write('held\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => String(d).includes('held') && resolve());
    child.on('exit', (c) => reject(new Error(`holder exited ${c}: ${err}`)));
  });
  return child;
}

function lockError(f: () => void): LockError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LockError);
    return e as LockError;
  }
  throw new Error('expected a LockError');
}

describe('ClusterLock', () => {
  it('is exclusive within one process and free again after release', () => {
    const file = path.join(dir, 'lock');
    const a = new ClusterLock(file);
    a.acquire('tls enable');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(lockError(() => new ClusterLock(file).acquire('tls disable')).message).toMatch(/another tiseal run holds the lock.*tls enable/);
    a.release();
    const b = new ClusterLock(file);
    b.acquire('tls disable');
    b.release();
  });

  it('refuses while a live process holds it, naming that process; after SIGKILL the next run takes it without a hand', async () => {
    const file = path.join(dir, 'lock');
    const child = await holder(file);
    try {
      const e = lockError(() => new ClusterLock(file).acquire('tiseal tls disable prod.yaml'));
      expect(e.message).toContain(`pid ${child.pid} on ${os.hostname()}`);
      expect(e.message).toContain('tiseal tls enable prod.yaml');
      expect(e.suggestion).toMatch(/wait/);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const next = new ClusterLock(file);
    next.acquire('tiseal tls enable prod.yaml');
    expect(next.previous?.pid).toBe(child.pid); // the killed run, for the message
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).pid).toBe(process.pid);
    next.release();
  });

  it('takes a lock file left empty (ENOSPC or Ctrl-C right after creation) or unreadable: nobody holds it', () => {
    const file = path.join(dir, 'lock');
    for (const content of ['', '{"pid": 12', '\0\0\0']) {
      fs.writeFileSync(file, content, { mode: 0o600 });
      const l = new ClusterLock(file);
      l.acquire('tls enable');
      l.release();
    }
  });

  it('reports a record of a run on another machine (shared storage) without breaking it', () => {
    const file = path.join(dir, 'lock');
    fs.writeFileSync(file, JSON.stringify({ pid: 4242, host: 'other-admin-box', started: '2026-01-01T00:00:00Z', command: 'tiseal tls enable prod.yaml' }), { mode: 0o600 });
    const e = lockError(() => new ClusterLock(file).acquire('tls enable'));
    expect(e.message).toMatch(/pid 4242 on other-admin-box/);
    expect(e.suggestion).toContain(`rm ${file}`);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).host).toBe('other-admin-box');
  });

  it('does not follow a symlink planted at the lock path, and names a lock path that is a directory', () => {
    const target = path.join(dir, 'target');
    fs.writeFileSync(target, 'precious');
    fs.symlinkSync(target, path.join(dir, 'lock'));
    expect(() => new ClusterLock(path.join(dir, 'lock')).acquire('x')).toThrow(LocalStateError);
    expect(fs.readFileSync(target, 'utf8')).toBe('precious');
    fs.mkdirSync(path.join(dir, 'lockdir'));
    expect(() => new ClusterLock(path.join(dir, 'lockdir')).acquire('x')).toThrow(/lockdir.*directory/);
  });
});

describe('Journal', () => {
  const f = () => path.join(dir, 'journal.jsonl');
  it('finds the open run and its done steps, survives a torn last line', () => {
    const j = new Journal(f());
    j.append({ type: 'run-start', op: 'enable', runId: 'r1', at: 't' });
    j.append({ type: 'step-start', step: 'scale-in', at: 't' });
    j.append({ type: 'step-done', step: 'scale-in', at: 't' });
    j.append({ type: 'step-start', step: 'stage', at: 't' });
    fs.appendFileSync(f(), '{"type":"step-do'); // crash mid-write
    const open = new Journal(f()).openRun();
    expect(open?.op).toBe('enable');
    expect([...(open?.done ?? [])]).toEqual(['scale-in']);
    expect(open?.started.has('stage')).toBe(true);
  });
  it('has no open run after run-done', () => {
    const j = new Journal(f());
    j.append({ type: 'run-start', op: 'enable', runId: 'r1', at: 't' });
    j.append({ type: 'run-done', op: 'enable', runId: 'r1', at: 't' });
    expect(new Journal(f()).openRun()).toBeUndefined();
  });
  it('ignores a null or non-event line and says which line', () => {
    fs.writeFileSync(f(), ['null', '{"type":"run-start","op":"tls-enable","runId":"r1","at":"t"}', '42', '{"type":"step-done"}', ''].join('\n'));
    const j = new Journal(f());
    expect(j.openRun()?.runId).toBe('r1');
    expect(j.problems.join('\n')).toMatch(/line 1\b/);
    expect(j.problems.join('\n')).toMatch(/line 3\b/);
    expect(j.problems.join('\n')).toMatch(/line 4\b/);
  });
  it('cuts a torn tail before the next append, so the appends after a crash are seen', () => {
    fs.writeFileSync(f(), '{"type":"run-start","op":"tls-enable","runId":"r1","at":"t"}\n{"type":"step-st');
    const j = new Journal(f());
    expect(j.problems.join('\n')).toMatch(/line 2.*torn/);
    j.append({ type: 'step-done', step: 'stage', at: 't' });
    j.append({ type: 'run-done', op: 'tls-enable', runId: 'r1', at: 't' });
    const again = new Journal(f());
    expect(again.openRun()).toBeUndefined();
    expect(again.problems).toEqual([]);
    expect(fs.readFileSync(f(), 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
  });
  it('keeps reading past a torn middle line: a later run-done closes the run', () => {
    fs.writeFileSync(
      f(),
      ['{"type":"run-start","op":"tls-enable","runId":"r1","at":"t"}', '{"type":"step-do', '{"type":"run-done","op":"tls-enable","runId":"r1","at":"t"}', ''].join('\n'),
    );
    const j = new Journal(f());
    expect(j.openRun()).toBeUndefined();
    expect(j.problems.join('\n')).toMatch(/line 2/);
  });
  it('names a journal path that is a directory', () => {
    fs.mkdirSync(f());
    expect(() => new Journal(f())).toThrow(LocalStateError);
    expect(() => new Journal(f())).toThrow(/journal\.jsonl.*directory/);
  });
  it('keeps the argv of the open run, so a bare resume can say which flags it no longer has', () => {
    const j = new Journal(f());
    j.append({ type: 'run-start', op: 'tls-enable', runId: 'r1', at: 't', argv: ['tls', 'enable', 'p.yaml', '--verify-cn', '--cert-days=90', '--yes'] });
    const argv = new Journal(f()).openRun()?.argv;
    expect(flagsNotRepeated(argv, ['tls', 'enable', 'p.yaml', '--yes'])).toEqual(['--verify-cn', '--cert-days']);
    expect(flagsNotRepeated(argv, ['tls', 'enable', 'p.yaml', '--yes', '--verify-cn', '--cert-days', '90'])).toEqual([]);
  });
});
