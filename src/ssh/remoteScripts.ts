/**
 * Shell snippets the SSH executor runs on hosts. Pure functions so the exact commands are
 * unit-tested; every value goes through `shq`.
 *
 * Root works inside directories the deploy user owns, and that user can rename, replace or
 * symlink any entry there at any moment. So the root-side scripts never resolve a path the
 * deploy user controls in one go: `tiseal_cd` walks it one component at a time from `/`,
 * refusing a symlink unless root planted it (root owns the link and its directory, nobody else
 * can write that directory) and checking after each `cd` that `..` is the directory it came
 * from (so a component swapped mid-walk is caught). Afterwards the shell's cwd *is* that
 * directory, whatever happens to its name, and only names relative to `.` are used.
 */
import * as path from 'path';
import { shq } from '../util/shell';

export const STAT_FORMAT = '%f %s %u %g %Y %U %G';

/** Exit status and stderr tag of a refused path (a symlink, or a component swapped mid-walk). */
export const UNSAFE_EXIT = 40;
export const UNSAFE_TAG = 'tiseal-unsafe-path:';
/** Exit status and stderr tag of a missing path (or a component that is not a directory). */
export const MISSING_EXIT = 41;
export const MISSING_TAG = 'tiseal-missing:';

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

/** Split an absolute path into its directory and last name (`/` has no name). */
export function splitPath(remotePath: string): { dir: string; name: string } {
  const norm = path.posix.normalize(remotePath);
  if (!path.posix.isAbsolute(norm) || remotePath.split('/').includes('..')) throw new Error(`not an absolute path without "..": ${remotePath}`);
  const stripped = norm.length > 1 ? norm.replace(/\/+$/, '') : norm;
  return { dir: path.posix.dirname(stripped), name: stripped === '/' ? '' : path.posix.basename(stripped) };
}

/** Functions every root-side script starts with (POSIX sh + coreutils). Every step that matters
 * ends in `|| exit`, so they stay safe when called where `set -e` is off (`… || true`). */
const PRELUDE = [
  'set -eu',
  'LC_ALL=C; export LC_ALL',
  'umask 077',
  `tiseal_refuse() { printf '${UNSAFE_TAG} %s: %s\\n' "$1" "$2" >&2; exit ${UNSAFE_EXIT}; }`,
  `tiseal_missing() { printf '${MISSING_TAG} %s\\n' "$1" >&2; exit ${MISSING_EXIT}; }`,
  // A symlink only root could have made: root owns it and its directory, nobody else can write there.
  'tiseal_rootlink() { [ "$(stat -c %u -- "$1")" = 0 ] && [ "$(stat -c %u .)" = 0 ] && [ $(( 0$(stat -c %a .) & 022 )) -eq 0 ]; }',
  // `_up` is the device:inode of the directory the walk stands in. After each `cd`, one `stat` of
  // `..` and `.` checks where it came from and records where it is now: one process per component.
  'tiseal_came_from() {',
  '  _ids=$(stat -c %d:%i .. .) || exit 1',
  `  [ "\${_ids%%[!0-9:]*}" = "$_up" ] || tiseal_refuse "$1" 'was replaced while tiseal walked the path'`,
  '  _up=${_ids##*[!0-9:]}',
  '}',
  'tiseal_cd() {',
  '  cd / || exit 1',
  '  _at= _rest=${1#/} _up=$(stat -c %d:%i .) || exit 1',
  '  while [ -n "$_rest" ]; do',
  '    case $_rest in */*) _c=${_rest%%/*}; _rest=${_rest#*/};; *) _c=$_rest; _rest=;; esac',
  `    case $_c in ''|.) continue;; ..) tiseal_refuse "$1" 'has ".." in it';; esac`,
  '    _at=$_at/$_c',
  '    if [ -L "$_c" ]; then',
  `      tiseal_rootlink "$_c" || tiseal_refuse "$_at" 'is a symlink'`,
  '      cd -P -- "$_c" || exit 1',
  '      _up=$(stat -c %d:%i .) || exit 1',
  '      continue',
  '    fi',
  '    if [ ! -e "$_c" ] && [ $# -ge 3 ]; then',
  `      mkdir -m "$3" -- "$_c" || { [ ! -L "$_c" ] || tiseal_refuse "$_at" 'is a symlink'; exit 1; }`,
  '      cd -P -- "$_c" || exit 1',
  '      tiseal_came_from "$_at"',
  '      chown -- "$2" . || exit 1',
  '      continue',
  '    fi',
  '    [ -d "$_c" ] || tiseal_missing "$_at"',
  '    cd -P -- "$_c" || exit 1',
  '    tiseal_came_from "$_at"',
  '  done',
  '}',
  `tiseal_leaf() { [ ! -L "./$1" ] || tiseal_refuse "$2" 'is a symlink'; }`,
  // Files root creates by name must sit in a directory only root can change.
  `tiseal_rootdir() { [ "$(stat -c %u .)" = 0 ] && [ $(( 0$(stat -c %a .) & 022 )) -eq 0 ] || tiseal_refuse "$1" 'is writable by a user other than root'; }`,
].join('\n');

function script(lines: string[]): string {
  return [PRELUDE, ...lines].join('\n');
}

/** `stat` of a path as root, never through a symlink (exit 41 when missing). */
export function safeStatScript(remotePath: string): string {
  const { dir, name } = splitPath(remotePath);
  if (!name) return script([`stat -c ${shq(STAT_FORMAT)} /`]);
  return script([`tiseal_cd ${shq(dir)}`, `tiseal_leaf ${shq(name)} ${shq(remotePath)}`, `[ -e ./${shq(name)} ] || tiseal_missing ${shq(remotePath)}`, `stat -c ${shq(STAT_FORMAT)} -- ./${shq(name)}`]);
}

/**
 * `stat` of several paths as root in one script, each walked like safeStatScript in its own
 * subshell: a line `<index> <stat>` per path, `<index> -` when missing; a refused path stops the
 * script with its tag (exit 40).
 */
export function safeStatManyScript(paths: string[]): string {
  return script(
    paths.map((p, i) => {
      const { dir, name } = splitPath(p);
      const body = name
        ? `tiseal_cd ${shq(dir)}; tiseal_leaf ${shq(name)} ${shq(p)}; [ -e ./${shq(name)} ] || tiseal_missing ${shq(p)}; _o=$(stat -c ${shq(STAT_FORMAT)} -- ./${shq(name)}) || exit 1`
        : `_o=$(stat -c ${shq(STAT_FORMAT)} /) || exit 1`;
      // errexit is off inside `( … ) || …`: every step above exits on failure itself.
      return `( ${body}; echo "${i} $_o" ) || { _st=$?; [ "$_st" -eq ${MISSING_EXIT} ] || exit "$_st"; echo '${i} -'; }`;
    }),
  );
}

/** The bytes of a regular file as root; `iflag=nofollow` also catches a symlink swapped in after the check. */
export function safeReadScript(remotePath: string): string {
  const { dir, name } = splitPath(remotePath);
  const n = `./${shq(name)}`;
  return script([
    `tiseal_cd ${shq(dir)}`,
    `tiseal_leaf ${shq(name)} ${shq(remotePath)}`,
    `[ -e ${n} ] || tiseal_missing ${shq(remotePath)}`,
    `[ ! -d ${n} ] || { echo ${shq(`${remotePath}: Is a directory`)} >&2; exit 1; }`,
    // A FIFO (or device) planted in place of a file would block the read forever.
    `[ -f ${n} ] || { echo ${shq(`${remotePath}: not a regular file`)} >&2; exit 1; }`,
    // nonblock: a FIFO swapped in after the check opens without waiting for a writer.
    `dd if=${n} iflag=nofollow,nonblock bs=65536 status=none`,
  ]);
}

/**
 * Root-side half of a sudo/owner put: the content arrives on stdin. It is written, chowned and
 * chmodded inside a fresh root-only (0700) directory made in the target directory (same
 * filesystem; nobody but root can add, swap or chown anything in it), then renamed over the
 * target: rename(2) replaces the name itself, never what a symlink there points at, and readers
 * see the old or the new file, never a partial one. `..` of that directory is always the target
 * directory: moving a directory to another parent needs write permission on it, which only root
 * has. Without explicit mode/owner an existing target's are kept.
 */
export function installScript(p: { target: string; mode?: number; owner?: string }): string {
  return script(installLines(p));
}

function installLines(p: { target: string; mode?: number; owner?: string }): string[] {
  const { dir, name } = splitPath(p.target);
  const n = shq(name);
  return [
    `tiseal_cd ${shq(dir)}`,
    `tiseal_leaf ${n} ${shq(p.target)}`,
    `[ ! -d ./${n} ] || { echo ${shq(`${p.target}: Is a directory`)} >&2; exit 1; }`,
    `mode=${p.mode === undefined ? '' : octal(p.mode)} own=${p.owner === undefined ? '' : shq(p.owner)}`,
    `if [ -e ./${n} ] && { [ -z "$mode" ] || [ -z "$own" ]; }; then`,
    `  _was=$(stat -c '%a %u:%g' -- ./${n})`,
    '  [ -n "$mode" ] || mode=0${_was% *}',
    '  [ -n "$own" ] || own=${_was#* }',
    'fi',
    '[ -n "$mode" ] || mode=0644',
    '[ -n "$own" ] || own=0:0',
    // tiseal_cd left the device:inode of the directory it stands in in $_up.
    '_d=$_up',
    '_s=$(mktemp -d ./.tiseal-XXXXXXXX)',
    `trap 'if [ -n "\${_in:-}" ]; then rm -f ./new; cd ..; fi; rmdir -- "$_s" 2>/dev/null || true' EXIT`,
    'cd -P -- "$_s"',
    '_in=1',
    // One stat for both: `..` must be the directory we came from, `.` root's own 0700 dir.
    `[ "$(stat -c '%d:%i %u:%a' .. . | { read -r up _; read -r _ me; echo "$up $me"; })" = "$_d 0:700" ] || tiseal_refuse ${shq(dir)}/"$_s" 'was replaced while tiseal used it'`,
    'cat > ./new',
    'chown -- "$own" ./new',
    'chmod -- "$mode" ./new',
    `mv -T -- ./new ../${n}`,
    'cd .. && _in=',
  ];
}

/** Make a directory as root (missing components too, handed to `owner`), never through a symlink. */
export function ensureDirScript(dir: string, owner: string, mode: number): string {
  return script(ensureDirLines(dir, owner, mode));
}

function ensureDirLines(dir: string, owner: string, mode: number): string[] {
  splitPath(dir);
  return [`tiseal_cd ${shq(dir)} ${shq(owner)} ${octal(mode)}`, `chown -- ${shq(owner)} .`, `chmod -- ${octal(mode)} .`];
}

/**
 * Copy `file` into `backup` unless it is missing or a backup is already there (a resumed run
 * keeps the first one). Both ends are reached with `tiseal_cd`; the bytes pass through a
 * root-only temp dir outside every deploy-user directory. Backup dirs are created root-owned
 * 0700; the copy keeps owner, mode and mtime, except that `private` (key material) is 0600.
 * Prints `backed-up` when it made one.
 */
export function backupScript(file: string, backup: string, opts: { private: boolean }): string {
  return script(backupLines(file, backup, opts));
}

function backupLines(file: string, backup: string, opts: { private: boolean }): string[] {
  const src = splitPath(file);
  const dst = splitPath(backup);
  const sn = shq(src.name);
  const dn = shq(dst.name);
  return [
    '_t=$(mktemp -d)',
    `trap 'rm -rf -- "$_t"' EXIT`,
    `[ "$(stat -c %u:%a "$_t")" = 0:700 ] || tiseal_refuse "$_t" 'is not a private temp dir'`,
    // A missing directory (41) is a missing file: nothing to back up. Every step exits on failure
    // itself, as errexit is off inside a subshell followed by ||.
    '(',
    `  tiseal_cd ${shq(src.dir)}`,
    `  tiseal_leaf ${sn} ${shq(file)}`,
    `  [ -e ./${sn} ] || exit 0`,
    `  [ -f ./${sn} ] || { echo ${shq(`${file}: not a regular file`)} >&2; exit 1; }`,
    `  stat -c '%a %u:%g %Y' -- ./${sn} > "$_t/data.meta" || exit 1`,
    `  dd if=./${sn} of="$_t/data" iflag=nofollow,nonblock bs=65536 status=none || exit 1`,
    `  mv -- "$_t/data.meta" "$_t/meta" || exit 1`,
    `) || { _st=$?; [ "$_st" -eq ${MISSING_EXIT} ] && exit 0; exit "$_st"; }`,
    '[ -e "$_t/meta" ] || exit 0',
    '(',
    `  tiseal_cd ${shq(dst.dir)} 0:0 0700`,
    `  tiseal_rootdir ${shq(dst.dir)}`,
    `  if [ -e ./${dn} ] || [ -L ./${dn} ]; then exit 0; fi`,
    '  read -r mode own mtime < "$_t/meta"',
    opts.private ? '  mode=600' : '  :',
    '  _n=$(mktemp ./.tiseal-backup-XXXXXXXX)',
    '  cat "$_t/data" > "$_n"',
    '  chown -- "$own" "$_n"',
    '  chmod -- "0$mode" "$_n"',
    '  touch -m -d "@$mtime" -- "$_n"',
    `  mv -T -- "$_n" ./${dn}`,
    '  echo backed-up',
    ')',
  ];
}

/**
 * ensureDir (optional), backup and install of one file in a single root-side script: one sudo,
 * one shell, one channel instead of three (a file replaced costs a host one process start per
 * command, and stage replaces dozens). Each earlier part runs in its own subshell, so its `exit 0`
 * (nothing to back up) and its cwd stay there and a failure stops the script before the install.
 * The content arrives on stdin, read only by the install part.
 */
export function replaceScript(p: { target: string; backup: string; private: boolean; mode?: number; owner?: string; dir?: { owner: string; mode: number } }): string {
  const { dir } = splitPath(p.target);
  return script([
    ...(p.dir ? ['(', ...ensureDirLines(dir, p.dir.owner, p.dir.mode), ')'] : []),
    '(',
    ...backupLines(p.target, p.backup, { private: p.private }),
    ')',
    ...installLines(p),
  ]);
}

/** `rm -rf` of a path as root without following a symlink on the way (the last name itself may be one: rm removes the link). */
export function removeScript(remotePath: string): string {
  const { dir, name } = splitPath(remotePath);
  if (!name) throw new Error('refusing to remove /');
  return script([`tiseal_cd ${shq(dir)}`, `rm -rf -- ./${shq(name)}`]);
}

/** The last `lines` lines of each readable log (at most its last 256 KiB), each headed `== <file>`. */
export function logTailScript(files: string[], lines: number): string {
  const parts = files.map((f) => {
    const { dir, name } = splitPath(f);
    const n = `./${shq(name)}`;
    return [
      `( exec 2>/dev/null; tiseal_cd ${shq(dir)}`,
      `  [ -f ${n} ] && [ ! -L ${n} ] || exit 0`,
      `  printf '== %s\\n' ${shq(f)}`,
      `  size=$(stat -c %s -- ${n}); skip=$(( size > 262144 ? size - 262144 : 0 ))`,
      `  dd if=${n} iflag=nofollow,nonblock,skip_bytes skip=$skip bs=65536 status=none | tail -n ${Math.max(1, Math.floor(lines))}`,
      ') || true',
    ].join('\n');
  });
  return script(parts);
}
