import * as path from 'path';
import type { Executor } from '../ssh/executor';
import { RemoteFileError, UnsafeRemotePathError } from '../ssh/errors';
import { logTailScript } from '../ssh/remoteScripts';
import { shq } from '../util/shell';
import { terminalSafe } from '../util/terminal';

/** Read a remote text file, or undefined when it does not exist. */
export async function readRemoteText(exec: Executor, file: string): Promise<string | undefined> {
  // One round trip, not stat then read: the root-side read tells a missing file apart (ENOENT).
  try {
    return (await exec.get(file, { sudo: true })).toString('utf8');
  } catch (e) {
    if (e instanceof RemoteFileError && !(e instanceof UnsafeRemotePathError) && e.code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Where a run keeps its backup of `file`: `<deploy>/backup/tiseal-<run>/<path relative to deploy>`. */
export function backupPathOf(deployDir: string, runId: string, file: string): string {
  const rel = path.posix.relative(deployDir, file);
  return path.posix.join(deployDir, 'backup', `tiseal-${runId}`, rel.startsWith('..') ? file.replace(/^\//, '') : rel);
}

/**
 * Replace a remote file the safe way: copy the current one into the run's backup dir (once per
 * run: a resumed run does not overwrite the original backup; key material 0600 in root's 0700
 * dirs), then write atomically with mode/owner, in one root-side round trip (`dir` made first when
 * given). Nothing follows a symlink (see remoteScripts).
 */
export async function writeWithBackup(
  exec: Executor,
  file: string,
  content: string | Buffer,
  opts: { deployDir: string; runId: string; mode: number; owner: string; dir?: { owner: string; mode: number } },
): Promise<void> {
  await exec.replace(content, file, { backup: backupPathOf(opts.deployDir, opts.runId, file), private: opts.mode === 0o600, mode: opts.mode, owner: opts.owner, dir: opts.dir });
}

/** Newest mtime (µs since the epoch, to compare with systemd's timestamps) among files; missing files count as 0. */
export async function newestMtimeUs(exec: Executor, files: string[]): Promise<number> {
  const r = await exec.exec(`stat -c %Y ${files.map(shq).join(' ')} 2>/dev/null; true`, { sudo: true, allowFailure: true });
  return Math.max(0, ...r.stdout.trim().split('\n').filter(Boolean).map((s) => Number(s) * 1e6));
}

export async function systemctl(exec: Executor, action: 'restart' | 'stop' | 'start', unit: string): Promise<void> {
  // daemon-reload only when the unit file changed on disk: a reload costs every restart ~0.1 s.
  const u = shq(unit);
  await exec.exec(`if [ "$(systemctl show -p NeedDaemonReload --value ${u})" = yes ]; then systemctl daemon-reload; fi; systemctl ${action} ${u}`, { sudo: true, timeoutMs: 180_000 });
}

export interface UnitState {
  loadState: string;
  activeState: string;
  /** e.g. running, auto-restart (crash loop), failed */
  subState: string;
  nRestarts: number;
  /** Microseconds since epoch when the unit last became active (0 if never). */
  activeEnterUs: number;
  mainPid: number;
}

/** `systemctl show` for several units in one round trip. */
export async function unitStates(exec: Executor, units: string[]): Promise<Map<string, UnitState>> {
  const out = new Map<string, UnitState>();
  if (units.length === 0) return out;
  const r = await exec.exec(`systemctl show -p Id -p LoadState -p ActiveState -p SubState -p NRestarts -p ActiveEnterTimestamp -p MainPID --timestamp=unix ${units.map(shq).join(' ')}`, { allowFailure: true });
  for (const block of r.stdout.split(/\n\s*\n/)) {
    const kv = Object.fromEntries(block.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    if (!kv.Id) continue;
    const ts = /@(\d+)/.exec(kv.ActiveEnterTimestamp ?? '');
    out.set(kv.Id, { loadState: kv.LoadState, activeState: kv.ActiveState, subState: kv.SubState ?? '', nRestarts: Number(kv.NRestarts ?? 0), activeEnterUs: ts ? Number(ts[1]) * 1e6 : 0, mainPid: Number(kv.MainPID ?? 0) });
  }
  return out;
}

/** Last lines of an instance's log (for failure messages); root reads them without following a symlink, every name quoted. */
export async function logTail(exec: Executor, files: string[], lines = 15): Promise<string> {
  const r = await exec.exec(logTailScript(files, lines), { sudo: true, allowFailure: true });
  return terminalSafe(r.stdout.trim());
}
