/**
 * Key material in tiseal's backups (`<deploy_dir>/backup/tiseal-*`): private keys and master
 * keys must be 0600 files in 0700 directories, owned by root or the deploy user.
 */
import * as path from 'path';
import { shq } from '../util/shell';

/** Lists every entry under each `<deploy>/backup/tiseal-*` (NUL records: `D|F mode owner path`, `K path` for key material). */
export function backupScanScript(deployDirs: string[]): string {
  const dirs = deployDirs.map((d) => shq(path.posix.join(d, 'backup'))).join(' ');
  return `set -u
export LC_ALL=C
for b in ${dirs}; do
  [ -d "$b" ] && [ ! -L "$b" ] || continue
  find "$b" -mindepth 1 -maxdepth 12 -path "$b/tiseal-*" \\( -type d -printf 'D %m %u %p\\0' -o -type f -printf 'F %m %u %p\\0' \\) 2>/dev/null
  find "$b" -mindepth 2 -maxdepth 12 -path "$b/tiseal-*" -type f -size -65537c -print0 2>/dev/null |
    xargs -0r grep -lZE -e '-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----' -e '^[0-9a-fA-F]{64}$' 2>/dev/null | sed -z 's/^/K /'
done
exit 0
`;
}

export interface BackupProblem {
  file: string;
  why: string;
}

/** Judge the listing: each key file 0600, every directory from `tiseal-*` down to it 0700, owners allowed. */
export function judgeBackups(stdout: string, allowedOwners: string[]): { keys: string[]; problems: BackupProblem[] } {
  const entries = new Map<string, { type: 'D' | 'F'; mode: number; owner: string }>();
  const keys: string[] = [];
  for (const rec of stdout.split('\0')) {
    const m = /^([DF]) ([0-7]+) (\S+) (.+)$/s.exec(rec);
    if (m) entries.set(m[4], { type: m[1] as 'D' | 'F', mode: parseInt(m[2], 8), owner: m[3] });
    else if (rec.startsWith('K ')) keys.push(rec.slice(2));
  }
  const problems: BackupProblem[] = [];
  for (const key of keys.sort()) {
    const why: string[] = [];
    const f = entries.get(key);
    if (f && (f.mode & 0o077) !== 0) why.push(`mode ${f.mode.toString(8).padStart(4, '0')}`);
    if (f && !allowedOwners.includes(f.owner)) why.push(`owned by ${f.owner}`);
    // every directory between <deploy>/backup and the file
    for (let d = path.posix.dirname(key); /\/backup\/tiseal-[^/]+(\/|$)/.test(d); d = path.posix.dirname(d)) {
      const e = entries.get(d);
      if (e && (e.mode & 0o077) !== 0) why.push(`in ${d} (mode ${e.mode.toString(8).padStart(4, '0')})`);
      if (e && !allowedOwners.includes(e.owner)) why.push(`in ${d} (owned by ${e.owner})`);
    }
    if (why.length) problems.push({ file: key, why: why.join(', ') });
  }
  return { keys, problems };
}
