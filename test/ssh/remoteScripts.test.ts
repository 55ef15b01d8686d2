/** The shell snippets the SSH executor sends, run here with the local sh and checked with stat. */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { backupScript, ensureDirScript, installScript, replaceScript, safeStatManyScript, isSudoPasswordError, logTailScript, octal, parseStatOutput, removeScript, safeReadScript, safeStatScript, statCommand, wrapSudo } from '../../src/ssh';
import { shq } from '../../src/util/shell';
import { describeUnless } from '../support/skip-or-fail';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-scripts-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sh = (script: string, input = '') => spawnSync('sh', ['-c', script], { encoding: 'utf8', input });

test('wrapSudo runs the whole command line under sh -c, quoted', () => {
  expect(wrapSudo("echo 'a b' | tr a b")).toBe(`sudo -n -- sh -c 'echo '\\''a b'\\'' | tr a b'`);
  // Unwrapping with the local shell gives back the exact command.
  const inner = wrapSudo('printf %s "$(echo x)"; echo ;').replace(/^sudo -n -- /, '');
  expect(sh(inner.replace(/^sh -c /, 'printf %s ')).stdout).toBe('printf %s "$(echo x)"; echo ;');
});

test('isSudoPasswordError recognises sudo refusing to prompt, and nothing else', () => {
  expect(isSudoPasswordError(1, 'sudo: a password is required\n')).toBe(true);
  expect(isSudoPasswordError(1, 'sudo: a terminal is required to read the password; either use the -S option\n')).toBe(true);
  expect(isSudoPasswordError(1, 'sudo: bob is not in the sudoers file.  This incident will be reported.\n')).toBe(true);
  expect(isSudoPasswordError(0, 'sudo: a password is required\n')).toBe(false);
  expect(isSudoPasswordError(1, 'grep: a password is required\n')).toBe(false);
  expect(isSudoPasswordError(1, '')).toBe(false);
});

test('statCommand output parses to the same facts as fs.statSync', () => {
  const f = path.join(dir, "odd name's file");
  fs.writeFileSync(f, '12345');
  fs.chmodSync(f, 0o4751);
  const r = sh(statCommand(f));
  expect(r.status).toBe(0);
  const p = parseStatOutput(r.stdout);
  const st = fs.statSync(f);
  expect(p).toMatchObject({ isFile: true, isDirectory: false, mode: 0o4751, size: 5, uid: st.uid, gid: st.gid, mtimeMs: Math.floor(st.mtimeMs / 1000) * 1000 });
  expect(parseStatOutput(sh(statCommand(dir)).stdout).isDirectory).toBe(true);
  const missing = sh(statCommand(path.join(dir, 'missing')));
  expect(missing.status).not.toBe(0);
  expect(missing.stderr).toMatch(/No such file or directory/);
  expect(octal(0o600)).toBe('0600');
  expect(octal(0o4755)).toBe('04755');
});

const NOBODY = 65534;

/** A deploy dir owned by an ordinary user (nobody), as TiUP leaves it, with conf/ and a config in it. */
function deployDir(): string {
  const base = fs.mkdtempSync(path.join(dir, 'host-'));
  fs.chmodSync(base, 0o755);
  const d = path.join(base, 'deploy');
  fs.mkdirSync(path.join(d, 'conf'), { recursive: true });
  fs.writeFileSync(path.join(d, 'conf', 'pd.toml'), 'a = 1\n', { mode: 0o644 });
  for (const p of [d, path.join(d, 'conf'), path.join(d, 'conf', 'pd.toml')]) fs.chownSync(p, NOBODY, NOBODY);
  return d;
}

/** A root-owned directory with a root-only file: what a planted symlink points root at. */
function canary(): { dir: string; file: string; snapshot: () => string } {
  const c = fs.mkdtempSync(path.join(dir, 'canary-'));
  fs.chmodSync(c, 0o755);
  const file = path.join(c, 'secret');
  fs.writeFileSync(file, 'root only\n', { mode: 0o600 });
  const snapshot = () =>
    [c, ...fs.readdirSync(c).map((n) => path.join(c, n))]
      .map((p) => { const st = fs.lstatSync(p); return `${p} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${st.isFile() ? fs.readFileSync(p, 'utf8') : ''}`; })
      .join('\n');
  return { dir: c, file, snapshot };
}

/** Plant a symlink as the deploy user would (owned by nobody). */
function plant(link: string, target: string): void {
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync(target, link);
  fs.lchownSync(link, NOBODY, NOBODY);
}

const refused = (r: ReturnType<typeof sh>, p: string) => {
  expect(r.status).toBe(40);
  expect(r.stderr).toContain(`tiseal-unsafe-path: ${p}: is a symlink`);
};

describeUnless(isRoot ? undefined : 'not running as root')('root-side scripts (as root, like sudo would run them)', () => {
  test('installScript: content from stdin, explicit mode and owner, renamed over the target, nothing left behind', () => {
    const d = deployDir();
    const target = path.join(d, 'conf', 'pd.toml');
    const ino = fs.statSync(target).ino;
    const r = sh(installScript({ target, mode: 0o600, owner: 'nobody:nogroup' }), 'PEM');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const st = fs.statSync(target);
    expect([st.mode & 0o7777, st.uid, fs.readFileSync(target, 'utf8')]).toEqual([0o600, NOBODY, 'PEM']);
    expect(st.ino).not.toBe(ino);
    expect(fs.readdirSync(path.join(d, 'conf'))).toEqual(['pd.toml']);
  });

  test('installScript keeps an existing file\'s mode and owner when none is given; quotes odd names', () => {
    const d = deployDir();
    const sub = path.join(d, "we'ird $(touch pwned)");
    fs.mkdirSync(sub);
    const target = path.join(sub, 'a b.conf');
    fs.writeFileSync(target, 'old', { mode: 0o640 });
    fs.chmodSync(target, 0o640);
    fs.chownSync(target, NOBODY, NOBODY);
    const r = sh(`cd ${shq(dir)} && ${installScript({ target })}`, 'new');
    expect(r.status).toBe(0);
    const st = fs.statSync(target);
    expect([st.mode & 0o7777, st.uid, st.gid, fs.readFileSync(target, 'utf8')]).toEqual([0o640, NOBODY, NOBODY, 'new']);
    expect(fs.existsSync(path.join(dir, 'pwned'))).toBe(false);
    expect(fs.readdirSync(sub)).toEqual(['a b.conf']);
  });

  test('a directory swapped for a symlink between the check and the cd is caught by the ".." check, and nothing is read', () => {
    const d = deployDir();
    const elsewhere = fs.mkdtempSync(path.join(dir, 'elsewhere-'));
    fs.writeFileSync(path.join(elsewhere, 'pd.toml'), 'root only\n', { mode: 0o600 });
    const target = path.join(d, 'conf', 'pd.toml');
    // The race, made deterministic: a `cd` function (looked up before the builtin) swaps conf/ for a
    // symlink right before the walk's `cd -P -- conf`, after tiseal_cd saw a real directory there.
    const swap = `cd() { if [ "\${3:-}" = conf ] && [ ! -L conf ]; then mv conf conf.orig && ln -s ${shq(elsewhere)} conf; fi; command cd "$@"; }`;
    const r = sh(`${swap}\n${safeReadScript(target)}`);
    expect(fs.lstatSync(path.join(d, 'conf')).isSymbolicLink()).toBe(true); // the swap happened
    expect(r.stdout).toBe('');
    expect(r.status).toBe(40);
    expect(r.stderr).toContain(`tiseal-unsafe-path: ${path.join(d, 'conf')}: was replaced while tiseal walked the path`);
    // Without the swap the same walk reads the file (the check does not refuse an honest path).
    fs.rmSync(path.join(d, 'conf'));
    fs.renameSync(path.join(d, 'conf.orig'), path.join(d, 'conf'));
    expect(sh(safeReadScript(target)).stdout).toBe('a = 1\n');
  });

  test('a missing directory: exit 41 naming it, nothing created', () => {
    const d = deployDir();
    const r = sh(installScript({ target: path.join(d, 'nodir', 'f') }), 'x');
    expect(r.status).toBe(41);
    expect(r.stderr).toContain(`tiseal-missing: ${path.join(d, 'nodir')}`);
    expect(fs.existsSync(path.join(d, 'nodir'))).toBe(false);
  });

  test('symlinks planted by the deploy user in conf/, tls/, scripts/ and backup/ are refused; root-owned files keep owner, mode and content', () => {
    const d = deployDir();
    const c = canary();
    const before = c.snapshot();
    plant(path.join(d, 'conf'), c.dir);
    refused(sh(installScript({ target: path.join(d, 'conf', 'pd.toml'), mode: 0o644, owner: 'nobody:nogroup' }), 'x'), path.join(d, 'conf'));
    refused(sh(ensureDirScript(path.join(d, 'conf'), 'nobody:nogroup', 0o755)), path.join(d, 'conf'));
    refused(sh(safeReadScript(path.join(d, 'conf', 'secret'))), path.join(d, 'conf'));
    refused(sh(safeStatScript(path.join(d, 'conf', 'secret'))), path.join(d, 'conf'));
    refused(sh(removeScript(path.join(d, 'conf', 'secret'))), path.join(d, 'conf'));
    // the last name a symlink: a key file pointing at a root-only file
    fs.mkdirSync(path.join(d, 'tls'));
    fs.chownSync(path.join(d, 'tls'), NOBODY, NOBODY);
    plant(path.join(d, 'tls', 'pd.pem'), c.file);
    refused(sh(installScript({ target: path.join(d, 'tls', 'pd.pem'), mode: 0o600, owner: 'nobody:nogroup' }), 'KEY'), path.join(d, 'tls', 'pd.pem'));
    refused(sh(safeReadScript(path.join(d, 'tls', 'pd.pem'))), path.join(d, 'tls', 'pd.pem'));
    refused(sh(backupScript(path.join(d, 'tls', 'pd.pem'), path.join(d, 'backup', 'tiseal-r', 'tls', 'pd.pem'), { private: true })), path.join(d, 'tls', 'pd.pem'));
    // scripts/ a symlink: ensureDir would have chowned the root dir
    plant(path.join(d, 'scripts'), c.dir);
    refused(sh(ensureDirScript(path.join(d, 'scripts'), 'nobody:nogroup', 0o755)), path.join(d, 'scripts'));
    // the backup dir a symlink
    fs.writeFileSync(path.join(d, 'run.sh'), 'x');
    plant(path.join(d, 'backup'), c.dir);
    refused(sh(backupScript(path.join(d, 'run.sh'), path.join(d, 'backup', 'tiseal-r', 'run.sh'), { private: false })), path.join(d, 'backup'));
    expect(c.snapshot()).toBe(before);
  });

  test('a symlink root planted (root-owned link in a root-only directory) is followed', () => {
    const d = deployDir();
    const rootDir = fs.mkdtempSync(path.join(dir, 'rootlinks-'));
    fs.chmodSync(rootDir, 0o755);
    fs.symlinkSync(d, path.join(rootDir, 'deploy'));
    const r = sh(installScript({ target: path.join(rootDir, 'deploy', 'conf', 'pd.toml') }), 'via link');
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(d, 'conf', 'pd.toml'), 'utf8')).toBe('via link');
    // ...but not when others can write that directory
    fs.chmodSync(rootDir, 0o777);
    refused(sh(installScript({ target: path.join(rootDir, 'deploy', 'conf', 'pd.toml') }), 'x'), path.join(rootDir, 'deploy'));
  });

  test('ensureDirScript creates missing components for the owner; backupScript keeps a key 0600 in root 0700 dirs, once per run', () => {
    const d = deployDir();
    const tls = path.join(d, 'tls');
    expect(sh(ensureDirScript(tls, 'nobody:nogroup', 0o755)).status).toBe(0);
    expect([fs.statSync(tls).uid, fs.statSync(tls).mode & 0o7777]).toEqual([NOBODY, 0o755]);
    const key = path.join(tls, 'pd.pem');
    fs.writeFileSync(key, 'OLD KEY', { mode: 0o644 });
    fs.chmodSync(key, 0o644);
    fs.chownSync(key, NOBODY, NOBODY);
    const backup = path.join(d, 'backup', 'tiseal-r1', 'tls', 'pd.pem');
    const r = sh(backupScript(key, backup, { private: true }));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('backed-up');
    const st = fs.statSync(backup);
    expect([st.mode & 0o7777, st.uid, fs.readFileSync(backup, 'utf8')]).toEqual([0o600, NOBODY, 'OLD KEY']);
    for (const p of [path.join(d, 'backup'), path.join(d, 'backup', 'tiseal-r1'), path.join(d, 'backup', 'tiseal-r1', 'tls')]) {
      expect([fs.statSync(p).uid, fs.statSync(p).mode & 0o7777]).toEqual([0, 0o700]);
    }
    // a second backup in the same run keeps the first; a missing source is no backup
    fs.writeFileSync(key, 'NEW KEY');
    expect(sh(backupScript(key, backup, { private: true })).stdout).toBe('');
    expect(fs.readFileSync(backup, 'utf8')).toBe('OLD KEY');
    expect(sh(backupScript(path.join(tls, 'none'), path.join(d, 'backup', 'tiseal-r1', 'tls', 'none'), { private: false })).status).toBe(0);
    expect(fs.existsSync(path.join(d, 'backup', 'tiseal-r1', 'tls', 'none'))).toBe(false);
    // a backup dir the deploy user can write is refused (root would create files by name in it)
    fs.mkdirSync(path.join(d, 'backup', 'tiseal-r2'), { mode: 0o755 });
    fs.chownSync(path.join(d, 'backup', 'tiseal-r2'), NOBODY, NOBODY);
    const w = sh(backupScript(key, path.join(d, 'backup', 'tiseal-r2', 'pd.pem'), { private: true }));
    expect(w.status).toBe(40);
    expect(w.stderr).toContain('is writable by a user other than root');
  });

  test('replaceScript = ensureDir + backup + install in one script: new dir for the owner, first backup kept 0600, content installed; a refused backup installs nothing', () => {
    const d = deployDir();
    const key = path.join(d, 'tls', 'pd.pem');
    const backup = (run: string) => path.join(d, 'backup', `tiseal-${run}`, 'tls', 'pd.pem');
    const opts = (run: string) => ({ target: key, backup: backup(run), private: true, mode: 0o600, owner: 'nobody:nogroup', dir: { owner: 'nobody:nogroup', mode: 0o755 } });
    // a missing file in a missing dir: the dir is made, nothing to back up, the key written
    let r = sh(replaceScript(opts('r1')), 'KEY 1');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect([fs.statSync(path.dirname(key)).uid, fs.statSync(path.dirname(key)).mode & 0o7777]).toEqual([NOBODY, 0o755]);
    expect(fs.existsSync(backup('r1'))).toBe(false);
    expect([fs.statSync(key).mode & 0o7777, fs.statSync(key).uid, fs.readFileSync(key, 'utf8')]).toEqual([0o600, NOBODY, 'KEY 1']);
    // an existing one: backed up first (0600, root-only dirs), then replaced; the run's first backup is kept
    fs.chmodSync(key, 0o644);
    r = sh(replaceScript(opts('r2')), 'KEY 2');
    expect([r.status, r.stdout.trim()]).toEqual([0, 'backed-up']);
    expect([fs.statSync(backup('r2')).mode & 0o7777, fs.readFileSync(backup('r2'), 'utf8')]).toEqual([0o600, 'KEY 1']);
    expect([fs.statSync(key).mode & 0o7777, fs.readFileSync(key, 'utf8')]).toEqual([0o600, 'KEY 2']);
    expect(sh(replaceScript(opts('r2')), 'KEY 3').status).toBe(0);
    expect([fs.readFileSync(backup('r2'), 'utf8'), fs.readFileSync(key, 'utf8')]).toEqual(['KEY 1', 'KEY 3']);
    expect(fs.readdirSync(path.dirname(key))).toEqual(['pd.pem']);
    // a backup dir the deploy user swapped for a symlink: refused, and the key is not replaced
    const c = canary();
    plant(path.join(d, 'backup', 'tiseal-r3'), c.dir);
    const before = c.snapshot();
    r = sh(replaceScript(opts('r3')), 'KEY 4');
    refused(r, path.join(d, 'backup', 'tiseal-r3'));
    expect(fs.readFileSync(key, 'utf8')).toBe('KEY 3');
    expect(c.snapshot()).toBe(before);
    // a symlinked target dir is refused before anything is made
    plant(path.join(d, 'tls'), c.dir);
    r = sh(replaceScript(opts('r4')), 'KEY 5');
    refused(r, path.join(d, 'tls'));
    expect(c.snapshot()).toBe(before);
    expect(fs.existsSync(path.join(d, 'backup', 'tiseal-r4'))).toBe(false);
  });

  test('safeStatManyScript answers each path as safeStatScript does, in one script; a planted symlink anywhere refuses the lot', () => {
    const d = deployDir();
    const paths = [path.join(d, 'conf', 'pd.toml'), path.join(d, 'conf'), path.join(d, 'conf', 'none'), path.join(d, 'nodir', 'x'), '/'];
    const r = sh(safeStatManyScript(paths));
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('tiseal-missing: '))).toEqual([]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['0', '1', '2', '3', '4']);
    for (const [i, p] of paths.entries()) {
      const one = sh(safeStatScript(p));
      expect(`${i} ${one.status === 41 ? '-' : one.stdout.trim()}`).toBe(lines[i]);
    }
    expect(lines[2]).toBe('2 -');
    expect(parseStatOutput(lines[0].slice(2))).toMatchObject({ isFile: true, uid: NOBODY, mode: 0o644 });
    const c = canary();
    plant(path.join(d, 'conf'), c.dir);
    refused(sh(safeStatManyScript([path.join(d, 'nodir', 'x'), path.join(d, 'conf', 'secret')])), path.join(d, 'conf'));
  });

  test('a FIFO planted in place of a file is never read (it would block root forever): refused at once; the read itself opens without waiting', () => {
    const d = deployDir();
    const conf = path.join(d, 'conf', 'pd.toml');
    fs.rmSync(conf);
    expect(spawnSync('mkfifo', [conf]).status).toBe(0);
    const r = spawnSync('sh', ['-c', safeReadScript(conf)], { encoding: 'utf8', timeout: 10_000 });
    expect(r.error).toBeUndefined(); // not killed by the timeout
    expect([r.status, r.stderr.trim()]).toEqual([1, `${conf}: not a regular file`]);
    const b = spawnSync('sh', ['-c', backupScript(conf, path.join(d, 'backup', 'tiseal-f', 'conf', 'pd.toml'), { private: false })], { encoding: 'utf8', timeout: 10_000 });
    expect([b.error, b.status]).toEqual([undefined, 1]);
    const t = spawnSync('sh', ['-c', logTailScript([conf], 5)], { encoding: 'utf8', timeout: 10_000 });
    expect([t.error, t.status, t.stdout]).toEqual([undefined, 0, '']);
    // A FIFO swapped in between the check and the read: dd's nonblock open returns at once.
    const raw = spawnSync('sh', ['-c', `cd ${shq(path.dirname(conf))} && dd if=./pd.toml iflag=nofollow,nonblock bs=65536 status=none`], { encoding: 'utf8', timeout: 10_000 });
    expect([raw.error, raw.stdout]).toEqual([undefined, '']);
  });

  test('logTailScript: names are never code, symlinked logs are not read, only the tail is printed', () => {
    const d = deployDir();
    const c = canary();
    const logDir = path.join(d, 'log $(touch pwned)`touch pwned2`"');
    fs.mkdirSync(logDir);
    fs.chownSync(logDir, NOBODY, NOBODY);
    fs.writeFileSync(path.join(logDir, 'pd.log'), Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n') + '\n');
    plant(path.join(logDir, 'pd_stderr.log'), c.file);
    const r = sh(`cd ${shq(dir)} && ${logTailScript([path.join(logDir, 'pd.log'), path.join(logDir, 'pd_stderr.log')], 3)}`);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`== ${path.join(logDir, 'pd.log')}\nline 27\nline 28\nline 29\n`);
    expect(fs.existsSync(path.join(dir, 'pwned')) || fs.existsSync(path.join(dir, 'pwned2'))).toBe(false);
    expect(r.stdout).not.toContain('root only');
  });

  test('removeScript removes a tree but not through a symlink; a symlink as the last name is removed itself', () => {
    const d = deployDir();
    const c = canary();
    fs.mkdirSync(path.join(d, 'tls'));
    fs.writeFileSync(path.join(d, 'tls', 'k'), 'k');
    expect(sh(removeScript(path.join(d, 'tls'))).status).toBe(0);
    expect(fs.existsSync(path.join(d, 'tls'))).toBe(false);
    plant(path.join(d, 'tls'), c.dir);
    expect(sh(removeScript(path.join(d, 'tls'))).status).toBe(0);
    expect(fs.existsSync(path.join(d, 'tls'))).toBe(false);
    expect(fs.existsSync(c.file)).toBe(true);
  });
});

describeUnless(isRoot ? undefined : 'not running as root')('backupScript edge cases', () => {
  test('a missing source directory is nothing to back up; an unreadable source fails without a partial backup', () => {
    const d = deployDir();
    const r = sh(backupScript(path.join(d, 'nodir', 'f'), path.join(d, 'backup', 'tiseal-r', 'nodir', 'f'), { private: false }));
    expect([r.status, r.stdout]).toEqual([0, '']);
    expect(fs.existsSync(path.join(d, 'backup'))).toBe(false);
    fs.mkdirSync(path.join(d, 'sub'));
    const f = sh(`mkfifo ${shq(path.join(d, 'sub', 'fifo'))} 2>/dev/null; ${backupScript(path.join(d, 'sub', 'fifo'), path.join(d, 'backup', 'tiseal-r', 'sub', 'fifo'), { private: false })}`);
    expect(f.status).toBe(1);
    expect(f.stderr).toContain('not a regular file');
    expect(fs.existsSync(path.join(d, 'backup', 'tiseal-r', 'sub', 'fifo'))).toBe(false);
  });
});
