/**
 * SshExecutor and SshPool against a real sshd started by this file (root login on loopback).
 * Checks go through independent tools where it matters: the local filesystem (the "remote"
 * host is this machine), pgrep, and sshd's own log of logins.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RemoteCommandError } from '../../src/errors';
import { shq } from '../../src/util/shell';
import { checkSudo, CommandTimeoutError, RemoteFileError, SshPool, UnsafeRemotePathError, type SshExecutor, type SshOptions } from '../../src/ssh';
import { sshdUnavailableReason, startSshd, waitFor, type Sshd } from './sshdHarness';
import { describeUnless } from '../support/skip-or-fail';

jest.setTimeout(60_000);

const reason = sshdUnavailableReason();
if (reason) console.log(`skipping sshd tests: ${reason}`);
const d = describeUnless(reason);

d('SshExecutor against a real sshd', () => {
  let sshd: Sshd;
  let work: string;
  let opts: SshOptions;
  let pool: SshPool;
  let ex: SshExecutor;

  beforeAll(async () => {
    sshd = await startSshd();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-ssh-work-'));
    const kh = path.join(work, 'known_hosts');
    fs.writeFileSync(kh, sshd.knownHostsLines().join('\n') + '\n');
    opts = { user: 'root', port: sshd.port, identityFiles: [sshd.clientKey], knownHostsFile: kh, sshConfigFile: false, agent: false };
    pool = new SshPool(opts);
    ex = await pool.get('127.0.0.1');
  });

  afterAll(async () => {
    await pool?.closeAll();
    await sshd?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('exec returns stdout, stderr and the exit code', async () => {
    const r = await ex.exec('echo out; echo err >&2; exit 0');
    expect(r).toEqual({ stdout: 'out\n', stderr: 'err\n', code: 0 });
    const f = await ex.exec('echo partial; echo boom >&2; exit 3', { allowFailure: true });
    expect(f).toEqual({ stdout: 'partial\n', stderr: 'boom\n', code: 3 });
  });

  test('a non-zero exit throws RemoteCommandError naming host, command, code and stderr tail', async () => {
    const err = await ex.exec('echo one >&2; echo two >&2; exit 7').catch((e) => e);
    expect(err).toBeInstanceOf(RemoteCommandError);
    expect(err.host).toBe('127.0.0.1');
    expect(err.code).toBe(7);
    expect(err.command).toBe('echo one >&2; echo two >&2; exit 7');
    expect(err.stderr).toBe('one\ntwo\n');
    expect(err.message).toContain('exited 7');
    expect(err.message).toContain('one | two');
  });

  test('commands run in a non-login shell (no profile sourced)', async () => {
    // root's shell here is bash: a login shell would report login_shell on and $0 starting with "-".
    const r = await ex.exec('echo "$0"; shopt -q login_shell && echo login || echo nologin');
    const [zero, login] = r.stdout.trim().split('\n');
    expect(zero.startsWith('-')).toBe(false);
    expect(login).toBe('nologin');
  });

  test('stdin is passed byte for byte, then EOF', async () => {
    const data = Buffer.from([0, 1, 2, 255, 10, 65, 66]);
    const r = await ex.exec('od -An -tu1 | tr -s " " " "', { stdin: data });
    expect(r.stdout.trim()).toBe('0 1 2 255 10 65 66');
    const t = await ex.exec('cat', { stdin: 'hello\n' });
    expect(t.stdout).toBe('hello\n');
    const none = await ex.exec('cat'); // no stdin: EOF at once instead of hanging
    expect(none.stdout).toBe('');
  });

  test('timeout kills the remote command and throws a clear error', async () => {
    const secs = `${700 + (process.pid % 200)}.${Date.now() % 1000}`;
    const err = await ex.exec(`sleep ${secs}; echo never`, { timeoutMs: 600 }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect(err.message).toContain('timed out after 600ms');
    expect(err.timeoutMs).toBe(600);
    // Independent check on this machine (the host): no process left from that command.
    const left = spawnSyncOut('pgrep', ['-f', `sleep ${secs}`]);
    expect(left).toBe('');
    // The connection is still usable afterwards.
    expect((await ex.exec('echo alive')).stdout).toBe('alive\n');
  });

  test('timeout also kills a sudo command (and its children)', async () => {
    const secs = `${900 + (process.pid % 90)}.${Date.now() % 1000}`;
    const err = await ex.exec(`sh -c 'sleep ${secs}'; echo never`, { sudo: true, timeoutMs: 500 }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect(spawnSyncOut('pgrep', ['-f', `sleep ${secs}`])).toBe('');
  });

  test('sudo runs as root through sudo -n', async () => {
    expect((await ex.exec('id -u', { sudo: true })).stdout.trim()).toBe('0');
    expect((await ex.exec('sudo -n id -u')).stdout.trim()).toBe('0');
    // The whole command line runs under sudo, pipes included.
    expect((await ex.exec('id -u | tr 0 z', { sudo: true })).stdout.trim()).toBe('z');
    await expect(checkSudo(ex)).resolves.toBeUndefined();
  });

  test.each([
    ['spaces', 'a b  c'],
    ['single quotes', "it's 'quoted'"],
    ['double quotes', 'say "hi"'],
    ['command substitution', '$(touch CANARY) `touch CANARY`'],
    ['semicolon and ampersand', 'x; touch CANARY && touch CANARY'],
    ['globs and variables', '* $HOME ${PATH} ~'],
    ['newline', 'line1\nline2'],
  ])('values with %s are passed literally (no injection), with and without sudo', async (_name, template) => {
    const canary = path.join(work, `canary-${Math.random().toString(36).slice(2)}`);
    const value = template.replace(/CANARY/g, canary);
    for (const sudo of [false, true]) {
      const r = await ex.exec(`printf '%s' ${shq(value)}`, { sudo });
      expect(r.stdout).toBe(value);
    }
    expect(fs.existsSync(canary)).toBe(false);
  });

  test('atomic put with mode and owner: content intact, replaced by rename, no temp left', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'put-'));
    const target = path.join(dir, 'tikv.pem');
    fs.writeFileSync(target, 'old content\n');
    const oldIno = fs.statSync(target).ino;
    const content = Buffer.concat([Buffer.from('-----BEGIN KEY-----\n'), Buffer.alloc(70_000, 0x41), Buffer.from('\n')]);
    await ex.put(content, target, { mode: 0o600, owner: 'nobody:nogroup', sudo: true });
    const st = fs.statSync(target);
    expect(st.mode & 0o7777).toBe(0o600);
    expect(st.uid).toBe(Number(execFileSync('id', ['-u', 'nobody']).toString().trim()));
    expect(st.gid).toBe(Number(execFileSync('getent', ['group', 'nogroup']).toString().split(':')[2]));
    expect(fs.readFileSync(target).equals(content)).toBe(true);
    expect(st.ino).not.toBe(oldIno); // a new inode renamed over the old one, not a rewrite in place
    expect(fs.readdirSync(dir)).toEqual(['tikv.pem']);
    expect(rootStageFiles()).toEqual([]);
  });

  test('put keeps the mode and owner of the file it replaces when none is given', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'keep-'));
    const target = path.join(dir, 'pd.toml');
    fs.writeFileSync(target, 'a = 1\n', { mode: 0o640 });
    fs.chmodSync(target, 0o640);
    fs.chownSync(target, 65534, 65534);
    await ex.put('a = 2\n', target, { sudo: true });
    let st = fs.statSync(target);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, 65534, 65534]);
    expect(fs.readFileSync(target, 'utf8')).toBe('a = 2\n');
    await ex.put('a = 3\n', target); // SFTP path keeps the mode too
    st = fs.statSync(target);
    expect(st.mode & 0o7777).toBe(0o640);
    expect(fs.readFileSync(target, 'utf8')).toBe('a = 3\n');
    // A new file gets 0644.
    await ex.put('new\n', path.join(dir, 'fresh'));
    expect(fs.statSync(path.join(dir, 'fresh')).mode & 0o7777).toBe(0o644);
    expect(fs.readdirSync(dir).sort()).toEqual(['fresh', 'pd.toml']);
  });

  test('put into a missing directory fails with RemoteFileError ENOENT and leaves nothing behind', async () => {
    const target = path.join(work, 'no-such-dir', 'f.conf');
    for (const sudo of [false, true]) {
      const err = await ex.put('x', target, { sudo }).catch((e) => e);
      expect(err).toBeInstanceOf(RemoteFileError);
      expect(err.code).toBe('ENOENT');
      expect(err.message).toContain(`cannot write ${target}`);
    }
    expect(rootStageFiles()).toEqual([]);
  });

  test('put of a local file, and non-atomic put rewrites in place', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'local-'));
    const local = path.join(dir, 'src.bin');
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    fs.writeFileSync(local, data);
    const target = path.join(dir, 'dst.bin');
    await ex.put({ localPath: local }, target, { mode: 0o644 });
    expect(fs.readFileSync(target).equals(data)).toBe(true);
    const ino = fs.statSync(target).ino;
    await ex.put('small', target, { atomic: false });
    expect(fs.readFileSync(target, 'utf8')).toBe('small');
    expect(fs.statSync(target).ino).toBe(ino);
    await ex.put('sudo small', target, { atomic: false, sudo: true, mode: 0o600 });
    expect(fs.readFileSync(target, 'utf8')).toBe('sudo small');
    expect(fs.statSync(target).mode & 0o7777).toBe(0o600);
  });

  test('a concurrent reader never sees a partial file during atomic puts', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'race-'));
    const target = path.join(dir, 'big.conf');
    const A = Buffer.alloc(400_000, 0x61);
    const B = Buffer.alloc(400_000, 0x62);
    fs.writeFileSync(target, A);
    const reader = spawn(process.execPath, [
      '-e',
      `const fs=require('fs');const t=${JSON.stringify(target)};let n=0,bad=0;const end=Date.now()+2500;
       while(Date.now()<end){let b;try{b=fs.readFileSync(t)}catch(e){bad++;continue}n++;
       if(b.length!==400000||(b[0]!==b[399999])||b.indexOf(b[0]===97?98:97)!==-1)bad++;}
       process.stdout.write(JSON.stringify({n,bad}));`,
    ]);
    let out = '';
    reader.stdout.on('data', (c) => (out += c));
    const done = new Promise((r) => reader.on('exit', r));
    let puts = 0;
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      await ex.put(puts % 2 ? A : B, target);
      await ex.put(puts % 2 ? B : A, target, { sudo: true });
      puts += 2;
    }
    await done;
    const { n, bad } = JSON.parse(out);
    expect(puts).toBeGreaterThan(4);
    expect(n).toBeGreaterThan(0);
    expect(bad).toBe(0);
  });

  test('get reads files (binary-safe), with and without sudo; missing files reject with ENOENT', async () => {
    const f = path.join(work, 'get.bin');
    const data = Buffer.from([0, 255, 1, 10, 13, 0, 7]);
    fs.writeFileSync(f, data, { mode: 0o600 });
    expect((await ex.get(f)).equals(data)).toBe(true);
    expect((await ex.get(f, { sudo: true })).equals(data)).toBe(true);
    for (const sudo of [false, true]) {
      const err = await ex.get(path.join(work, 'nope'), { sudo }).catch((e) => e);
      expect(err).toBeInstanceOf(RemoteFileError);
      expect(err.code).toBe('ENOENT');
    }
  });

  test('as root, put/get/stat/ensureDir/backup never follow a symlink the deploy user planted; one-line error naming host and path', async () => {
    const d = fs.mkdtempSync(path.join(work, 'deploy-'));
    fs.chmodSync(d, 0o755);
    fs.chownSync(d, 65534, 65534);
    const victim = fs.mkdtempSync(path.join(work, 'etc-'));
    fs.chmodSync(victim, 0o755);
    fs.writeFileSync(path.join(victim, 'shadow'), 'root:secret\n', { mode: 0o600 });
    const look = () => [victim, path.join(victim, 'shadow')].map((p) => { const st = fs.lstatSync(p); return `${st.uid} ${st.mode.toString(8)} ${st.isFile() ? fs.readFileSync(p, 'utf8') : fs.readdirSync(p).join(',')}`; }).join('|');
    const before = look();
    const plant = (link: string, target: string) => { fs.symlinkSync(target, link); fs.lchownSync(link, 65534, 65534); };
    plant(path.join(d, 'conf'), victim);
    plant(path.join(d, 'key.pem'), path.join(victim, 'shadow'));
    const attempts: Array<[string, () => Promise<unknown>]> = [
      [path.join(d, 'conf'), () => ex.put('x = 1\n', path.join(d, 'conf', 'pd.toml'), { mode: 0o644, owner: 'nobody:nogroup', sudo: true })],
      [path.join(d, 'key.pem'), () => ex.put('KEY', path.join(d, 'key.pem'), { mode: 0o600, owner: 'nobody:nogroup', sudo: true })],
      [path.join(d, 'key.pem'), () => ex.get(path.join(d, 'key.pem'), { sudo: true })],
      [path.join(d, 'conf'), () => ex.stat(path.join(d, 'conf', 'shadow'), { sudo: true })],
      [path.join(d, 'conf'), () => ex.ensureDir(path.join(d, 'conf'), { owner: 'nobody:nogroup', mode: 0o755 })],
      [path.join(d, 'key.pem'), () => ex.backup(path.join(d, 'key.pem'), path.join(d, 'backup', 'tiseal-r', 'key.pem'), { private: true })],
    ];
    for (const [where, attempt] of attempts) {
      const err = (await attempt().then(() => undefined, (e: unknown) => e)) as UnsafeRemotePathError;
      expect(err).toBeInstanceOf(UnsafeRemotePathError);
      expect(err.message).toBe(`127.0.0.1: refusing ${where}: is a symlink (tiseal runs as root and never follows a path another user controls)`);
      expect(err.suggestion).toContain(where);
    }
    expect(look()).toBe(before);
    expect(fs.existsSync(path.join(d, 'backup'))).toBe(false);
  });

  test('stat reports files, directories and missing paths like the local stat', async () => {
    const f = path.join(work, 'stat.txt');
    fs.writeFileSync(f, 'twelve bytes');
    fs.chmodSync(f, 0o640);
    for (const sudo of [false, true]) {
      const s = await ex.stat(f, { sudo });
      const local = fs.statSync(f);
      expect(s).toMatchObject({ exists: true, isFile: true, isDirectory: false, mode: 0o640, size: 12, uid: 0, gid: 0, owner: 'root', group: 'root' });
      expect(s.mtimeMs).toBe(Math.floor(local.mtimeMs / 1000) * 1000);
      const dir = await ex.stat(work, { sudo });
      expect(dir).toMatchObject({ exists: true, isFile: false, isDirectory: true });
      const missing = await ex.stat(path.join(work, 'missing', 'x'), { sudo });
      expect(missing.exists).toBe(false);
    }
  });

  test('one connection serves 100 concurrent commands (pool reuse; one login on the server)', async () => {
    const reusePool = new SshPool(opts);
    const before = sshd.accepted();
    try {
      const results = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const e = await reusePool.get('127.0.0.1');
          return (await e.exec(`echo ${i}`)).stdout;
        }),
      );
      expect(results).toEqual(Array.from({ length: 100 }, (_, i) => `${i}\n`));
      const [s] = reusePool.stats();
      expect(s).toMatchObject({ host: '127.0.0.1', port: sshd.port, handshakes: 1, execs: 100 });
      expect(s.bytesUp).toBeGreaterThan(0);
      expect(s.bytesDown).toBeGreaterThan(0);
      expect(s.rttTotalMs).toBeGreaterThan(0);
      await waitFor(() => sshd.accepted() > before);
      expect(sshd.accepted() - before).toBe(1);
      // The same executor object is handed out every time.
      expect(await reusePool.get('127.0.0.1')).toBe(await reusePool.get('127.0.0.1', sshd.port));
    } finally {
      await reusePool.closeAll();
    }
    await expect(reusePool.get('127.0.0.1')).rejects.toThrow(/closed/);
  });

  test('a closed executor rejects further calls with SshError', async () => {
    const p = new SshPool(opts);
    const e = await p.get('127.0.0.1');
    await p.closeAll();
    await expect(e.exec('true')).rejects.toThrow(/connection lost/);
  });
});

/** Staged uploads of root logins left in /tmp (other test files stage as other users). */
function rootStageFiles(): string[] {
  return fs.readdirSync('/tmp').filter((n) => {
    try {
      return n.startsWith('.tiseal-stage-') && fs.statSync(path.join('/tmp', n)).uid === 0;
    } catch {
      return false;
    }
  });
}

function spawnSyncOut(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return ''; // pgrep exits 1 when nothing matches
  }
}
