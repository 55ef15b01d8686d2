/**
 * The parent side of a prober run as its own process (sql-prober-process.ts,
 * sql-tick-prober-process.ts): `node <script> '<config json>'`, JSON lines on its stdout, the first
 * `{"ready":true}`, the rest handed to `onLine`; the last 4000 characters of its stderr kept for
 * the error messages.
 */
import { ChildProcess, spawn } from 'child_process';
import * as readline from 'readline';

export interface ProberChild {
  child: ChildProcess;
  /** Rejects, naming the prober and quoting its stderr, when it exits before it was ready. */
  ready: Promise<void>;
  /** The exit code, once the process exited and its stdout was read to the end (every line handled). */
  exited: Promise<number | null>;
  stderr: () => string;
}

export function spawnProber<L>(name: string, script: string, cfg: unknown, onLine: (msg: L) => void): ProberChild {
  const child = spawn(process.execPath, [script, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-4000)));
  const lines = readline.createInterface({ input: child.stdout! });
  const closed = new Promise<void>((r) => lines.once('close', () => r()));
  const exited = Promise.all([new Promise<number | null>((r) => child.on('exit', (code) => r(code))), closed]).then(([code]) => code);
  let onReady!: () => void;
  const ready = Promise.race([
    new Promise<void>((r) => (onReady = r)),
    exited.then((code) => Promise.reject(new Error(`${name} exited (${code}) before it was ready: ${stderr.trim()}`))),
  ]);
  ready.catch(() => undefined);
  lines.on('line', (l) => {
    const msg = JSON.parse(l) as L | { ready: true };
    if (typeof msg === 'object' && msg !== null && 'ready' in msg) onReady();
    else onLine(msg as L);
  });
  return { child, ready, exited, stderr: () => stderr };
}
