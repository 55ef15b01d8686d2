/**
 * Process and filesystem helpers for the lab (runs as root on the machine).
 * Everything destructive here refuses to touch paths that still have mounts below them.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolve on non-zero exit instead of rejecting. */
  allowFailure?: boolean;
}

export class CommandFailed extends Error {
  constructor(readonly argv: string[], readonly result: RunResult) {
    const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join(' | ');
    super(`\`${argv.join(' ')}\` exited ${result.code === null ? '(killed)' : result.code}${tail ? `: ${tail}` : ''}`);
  }
}

/** Run a program (no shell) and collect its output. */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) {
      timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    }
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      const result = { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code };
      if (code !== 0 && !opts.allowFailure) reject(new CommandFailed([file, ...args], result));
      else resolve(result);
    });
    child.stdin.on('error', () => undefined); // the program may exit without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `fn` until it returns a non-undefined value or the deadline passes. */
export async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      const why = lastErr instanceof Error ? `: ${lastErr.message}` : '';
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

/** Mount points (decoded) from /proc/self/mountinfo. */
export function mountPoints(): string[] {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
}

export function isMountPoint(p: string): boolean {
  const abs = path.resolve(p);
  return mountPoints().includes(abs);
}

/** Mounts at or below `p`. */
export function mountsUnder(p: string): string[] {
  const abs = path.resolve(p);
  return mountPoints().filter((m) => m === abs || m.startsWith(abs + '/'));
}

/** `rm -rf` that refuses when anything is still mounted inside (a bind of /dev or /proc would be deleted through). */
export function removeTree(p: string): void {
  if (!fs.existsSync(p)) return;
  const busy = mountsUnder(p);
  if (busy.length > 0) throw new Error(`refusing to remove ${p}: still mounted: ${busy.join(', ')}`);
  fs.rmSync(p, { recursive: true, force: true });
}

/** Write a file atomically (temp + rename). */
export function writeFileAtomic(file: string, content: string | Buffer, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

/** Is `pid` alive (and not a zombie)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat): guards against PID reuse. */
export function pidStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function which(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, program);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}
