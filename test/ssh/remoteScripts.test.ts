/** The shell snippets the SSH executor sends, run here with the local sh and checked with stat. */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { installScript, isSudoPasswordError, octal, parseStatOutput, statCommand, wrapSudo } from '../../src/ssh';
import { shq } from '../../src/util/shell';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-scripts-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sh = (script: string) => spawnSync('sh', ['-c', script], { encoding: 'utf8' });

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

(isRoot ? describe : describe.skip)('installScript (as root, like sudo would run it)', () => {
  const stage = (content: string) => {
    const s = path.join(dir, `.stage-${Math.random().toString(36).slice(2)}`);
    fs.writeFileSync(s, content, { mode: 0o600 });
    return s;
  };

  test('new file: explicit mode and owner, temp renamed over, stage removed', () => {
    const target = path.join(dir, 'new.pem');
    const s = stage('PEM');
    const r = sh(installScript({ stage: s, tmp: path.join(dir, '.new.pem.tmp'), target, mode: 0o600, owner: 'nobody:nogroup', atomic: true }));
    expect(r.status).toBe(0);
    const st = fs.statSync(target);
    expect(st.mode & 0o7777).toBe(0o600);
    expect(execFileSync('stat', ['-c', '%U:%G', target]).toString().trim()).toBe('nobody:nogroup');
    expect(fs.readFileSync(target, 'utf8')).toBe('PEM');
    expect(fs.existsSync(s)).toBe(false);
    expect(fs.existsSync(path.join(dir, '.new.pem.tmp'))).toBe(false);
  });

  test('existing file: mode and owner kept when not given; new inode', () => {
    const target = path.join(dir, 'keep.toml');
    fs.writeFileSync(target, 'old');
    fs.chmodSync(target, 0o640);
    fs.chownSync(target, 65534, 65534);
    const ino = fs.statSync(target).ino;
    const r = sh(installScript({ stage: stage('new'), tmp: path.join(dir, '.keep.tmp'), target, atomic: true }));
    expect(r.status).toBe(0);
    const st = fs.statSync(target);
    expect([st.mode & 0o7777, st.uid, st.gid, fs.readFileSync(target, 'utf8')]).toEqual([0o640, 65534, 65534, 'new']);
    expect(st.ino).not.toBe(ino);
  });

  test('a failure (missing directory) leaves no stage or temp behind and exits non-zero', () => {
    const s = stage('x');
    const tmp = path.join(dir, 'nodir', '.t');
    const r = sh(installScript({ stage: s, tmp, target: path.join(dir, 'nodir', 'f'), atomic: true }));
    expect(r.status).not.toBe(0);
    expect(fs.existsSync(s)).toBe(false);
  });

  test('values are quoted: paths with spaces and quotes', () => {
    const sub = path.join(dir, "we'ird $(dir)");
    fs.mkdirSync(sub);
    const target = path.join(sub, 'a b.conf');
    const r = sh(installScript({ stage: stage('q'), tmp: path.join(sub, '.a b.tmp'), target, mode: 0o644, atomic: true }));
    expect(r.status).toBe(0);
    expect(fs.readdirSync(sub)).toEqual(['a b.conf']);
    expect(sh(`cat ${shq(target)}`).stdout).toBe('q');
  });

  test('non-atomic install writes the target directly', () => {
    const target = path.join(dir, 'direct');
    const r = sh(installScript({ stage: stage('d'), tmp: 'unused', target, mode: 0o600, atomic: false }));
    expect(r.status).toBe(0);
    expect(fs.readFileSync(target, 'utf8')).toBe('d');
    expect(fs.statSync(target).mode & 0o7777).toBe(0o600);
  });
});
