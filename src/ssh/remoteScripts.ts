/**
 * Shell snippets the SSH executor runs on hosts. Pure functions so the exact commands are
 * unit-tested; every value goes through `shq`.
 */
import { shq } from '../util/shell';

export const STAT_FORMAT = '%f %s %u %g %Y %U %G';

/** `stat` with a fixed locale so its error text can be recognised. */
export function statCommand(remotePath: string): string {
  return `LC_ALL=C stat -L -c ${shq(STAT_FORMAT)} -- ${shq(remotePath)}`;
}

export interface ParsedStat {
  isFile: boolean;
  isDirectory: boolean;
  mode: number;
  size: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  owner?: string;
  group?: string;
}

export function parseStatOutput(out: string): ParsedStat {
  const f = out.trim().split(/\s+/);
  if (f.length < 5) throw new Error(`unexpected stat output: ${JSON.stringify(out)}`);
  const raw = parseInt(f[0], 16);
  const type = raw & 0o170000;
  return {
    isFile: type === 0o100000,
    isDirectory: type === 0o040000,
    mode: raw & 0o7777,
    size: Number(f[1]),
    uid: Number(f[2]),
    gid: Number(f[3]),
    mtimeMs: Number(f[4]) * 1000,
    owner: f[5] && f[5] !== 'UNKNOWN' ? f[5] : undefined,
    group: f[6] && f[6] !== 'UNKNOWN' ? f[6] : undefined,
  };
}

export function octal(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

/**
 * Root-side half of a sudo/owner put: the content was staged by the login user at `stage`;
 * install it with mode/owner into `tmp` beside the target and rename over it, so readers see
 * the old or the new file, never a partial one. Without explicit mode/owner an existing
 * target's are kept (a replaced config stays readable by its service user).
 */
export function installScript(p: { stage: string; tmp: string; target: string; mode?: number; owner?: string; atomic: boolean }): string {
  const lines = ['set -e', 'LC_ALL=C; export LC_ALL', `stage=${shq(p.stage)}`, `dst=${shq(p.target)}`];
  lines.push(p.atomic ? `tmp=${shq(p.tmp)}` : 'tmp=$dst');
  lines.push(p.atomic ? `trap 'rm -f -- "$stage" "$tmp"' EXIT` : `trap 'rm -f -- "$stage"' EXIT`);
  lines.push(`mode=${p.mode === undefined ? '0644' : octal(p.mode)}`, 'own=');
  if (p.mode === undefined || p.owner === undefined) {
    lines.push('if [ -e "$dst" ]; then');
    if (p.mode === undefined) lines.push('  mode=0$(stat -L -c %a -- "$dst")');
    if (p.owner === undefined) lines.push('  own=$(stat -L -c %u:%g -- "$dst")');
    lines.push('fi');
  }
  if (p.owner !== undefined) lines.push(`own=${shq(p.owner)}`);
  lines.push('install -m "$mode" -- "$stage" "$tmp"');
  lines.push('if [ -n "$own" ]; then chown -- "$own" "$tmp"; fi');
  if (p.atomic) lines.push('mv -f -- "$tmp" "$dst"');
  return lines.join('\n');
}
