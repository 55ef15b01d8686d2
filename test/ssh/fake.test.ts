import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RemoteCommandError, SshError } from '../../src/errors';
import { CommandTimeoutError, FakeExecutor, FakePool, RemoteFileError, checkSudo, lexShell } from '../../src/ssh';
import { shq } from '../../src/util/shell';

describe('FakeExecutor files', () => {
  test('put/get/stat round trip, recorded in calls', async () => {
    let now = 1_700_000_000_123;
    const ex = new FakeExecutor('10.0.0.1', { now: () => now });
    ex.addDir('/tidb-deploy/pd-2379/conf', { owner: 'tidb' });
    await ex.put('name = "pd"\n', '/tidb-deploy/pd-2379/conf/pd.toml', { mode: 0o640 });
    now += 5000;
    expect((await ex.get('/tidb-deploy/pd-2379/conf/pd.toml')).toString()).toBe('name = "pd"\n');
    expect(await ex.stat('/tidb-deploy/pd-2379/conf/pd.toml')).toEqual({
      exists: true,
      isFile: true,
      isDirectory: false,
      mode: 0o640,
      size: 12,
      uid: 1000,
      gid: 1000,
      owner: 'tidb',
      group: 'tidb',
      mtimeMs: 1_700_000_000_000,
    });
    expect(await ex.stat('/tidb-deploy/pd-2379/conf')).toMatchObject({ exists: true, isDirectory: true });
    expect(await ex.stat('/nope')).toMatchObject({ exists: false });
    expect(ex.calls.map((c) => c.op)).toEqual(['put', 'get', 'stat', 'stat', 'stat']);
    expect(ex.calls[0]).toMatchObject({ op: 'put', path: '/tidb-deploy/pd-2379/conf/pd.toml', opts: { mode: 0o640 } });
  });

  test('atomic put replaces the inode and keeps the old mode; non-atomic rewrites in place', async () => {
    const ex = new FakeExecutor('h', { user: 'tidb' });
    ex.addDir('/d', { owner: 'tidb' });
    ex.addFile('/d/f', 'v1', { mode: 0o600, owner: 'tidb' });
    const ino = ex.entry('/d/f')!.ino;
    await ex.put('v2', '/d/f');
    expect(ex.file('/d/f')).toMatchObject({ mode: 0o600, owner: 'tidb' });
    expect(ex.entry('/d/f')!.ino).not.toBe(ino);
    const ino2 = ex.entry('/d/f')!.ino;
    await ex.put('v3', '/d/f', { atomic: false, mode: 0o644 });
    expect(ex.file('/d/f')).toMatchObject({ mode: 0o644, ino: ino2 });
    expect(ex.readText('/d/f')).toBe('v3');
  });

  test('sudo put: owner as given (group root unless given), else the replaced file\'s, else root', async () => {
    const ex = new FakeExecutor('h');
    ex.addDir('/etc/tidb');
    await ex.put('a', '/etc/tidb/one', { sudo: true });
    expect(ex.file('/etc/tidb/one')).toMatchObject({ owner: 'root', group: 'root', mode: 0o644 });
    await ex.put('b', '/etc/tidb/two', { owner: 'tidb', mode: 0o600 });
    expect(ex.file('/etc/tidb/two')).toMatchObject({ owner: 'tidb', group: 'root', mode: 0o600 });
    await ex.put('c', '/etc/tidb/two', { owner: 'tidb:tidb' });
    expect(ex.file('/etc/tidb/two')).toMatchObject({ owner: 'tidb', group: 'tidb', mode: 0o600 });
    ex.addFile('/etc/tidb/three', 'x', { owner: 'tidb', group: 'tidb', mode: 0o640 });
    await ex.put('y', '/etc/tidb/three', { sudo: true });
    expect(ex.file('/etc/tidb/three')).toMatchObject({ owner: 'tidb', group: 'tidb', mode: 0o640, content: Buffer.from('y') });
  });

  test('permissions: the login user cannot write root places or read 0600 root files without sudo', async () => {
    const ex = new FakeExecutor('h', { user: 'tidb' });
    ex.addFile('/etc/ssl/key.pem', 'secret', { mode: 0o600 });
    ex.addFile('/etc/ssl/ca.pem', 'public');
    await expect(ex.put('x', '/etc/ssl/new.pem')).rejects.toMatchObject({ code: 'EACCES' });
    await expect(ex.get('/etc/ssl/key.pem')).rejects.toMatchObject({ code: 'EACCES' });
    expect((await ex.get('/etc/ssl/ca.pem')).toString()).toBe('public');
    expect((await ex.get('/etc/ssl/key.pem', { sudo: true })).toString()).toBe('secret');
    await ex.put('x', '/etc/ssl/new.pem', { sudo: true });
    await expect(ex.put('x', '/no/such/dir/f')).rejects.toBeInstanceOf(RemoteFileError);
    await expect(ex.get('/etc/ssl/nope')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(ex.get('/etc/ssl')).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(ex.put('x', '/etc/ssl', { sudo: true })).rejects.toMatchObject({ code: 'EISDIR' });
  });

  test('put of a local file reads it', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-fake-'));
    try {
      fs.writeFileSync(path.join(tmp, 'ca.crt'), 'CERT');
      const ex = new FakeExecutor('h', { user: 'root' });
      await ex.put({ localPath: path.join(tmp, 'ca.crt') }, '/root/ca.crt');
      expect(ex.readText('/root/ca.crt')).toBe('CERT');
      expect(ex.calls[0]).toMatchObject({ op: 'put', content: Buffer.from('CERT') });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('without passwordless sudo every sudo operation fails like the real executor', async () => {
    const ex = new FakeExecutor('10.0.0.2', { sudo: false });
    for (const op of [() => ex.exec('id -u', { sudo: true }), () => ex.put('x', '/etc/x', { sudo: true }), () => ex.get('/etc/x', { sudo: true }), () => ex.stat('/etc/x', { sudo: true })]) {
      const err = await op().catch((e) => e);
      expect(err).toBeInstanceOf(RemoteCommandError);
      expect(err.suggestion).toContain('NOPASSWD');
    }
    await expect(checkSudo(ex)).rejects.toThrow(/a password is required/);
    await expect(checkSudo(new FakeExecutor('ok'))).resolves.toBeUndefined();
  });
});

describe('FakeExecutor exec', () => {
  test('handlers: RegExp with match, predicate, latest registration wins, replies of each shape', async () => {
    const ex = new FakeExecutor('h');
    ex.onExec(/^systemctl is-active (\S+)$/, (_cmd, { match }) => `active ${match![1]}\n`);
    ex.onExec((c) => c.startsWith('curl'), () => ({ stdout: '{"ok":true}', code: 0 }));
    ex.onExec(/^systemctl is-active tikv-20160/, async () => ({ stdout: 'failed\n', code: 3 }));
    expect((await ex.exec('systemctl is-active pd-2379')).stdout).toBe('active pd-2379\n');
    expect(await ex.exec('systemctl is-active tikv-20160', { allowFailure: true })).toEqual({ stdout: 'failed\n', stderr: '', code: 3 });
    const err = await ex.exec('systemctl is-active tikv-20160').catch((e) => e);
    expect(err).toBeInstanceOf(RemoteCommandError);
    expect(err.code).toBe(3);
    expect((await ex.exec('curl -s http://x')).stdout).toBe('{"ok":true}');
    ex.onExec(/^restart$/, () => undefined);
    expect(await ex.exec('restart', { sudo: true })).toEqual({ stdout: '', stderr: '', code: 0 });
    expect(ex.commands()).toEqual([
      'systemctl is-active pd-2379',
      'systemctl is-active tikv-20160',
      'systemctl is-active tikv-20160',
      'curl -s http://x',
      'sudo restart',
    ]);
  });

  test('stdin reaches the handler and is recorded', async () => {
    const ex = new FakeExecutor('h');
    let seen = '';
    ex.onExec(/^tee /, (_c, { stdin, sudo }) => {
      seen = `${sudo}:${stdin?.toString()}`;
    });
    await ex.exec('tee /x', { stdin: 'data', sudo: true });
    expect(seen).toBe('true:data');
    expect(ex.calls[0]).toEqual({ op: 'exec', command: 'tee /x', sudo: true, stdin: 'data', timeoutMs: undefined });
  });

  test('timeoutMs rejects a handler that never answers with CommandTimeoutError', async () => {
    const ex = new FakeExecutor('h');
    ex.onExec(/^hang$/, () => new Promise(() => undefined));
    const err = await ex.exec('hang', { timeoutMs: 20 }).catch((e) => e);
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect(err.message).toContain('timed out after 20ms');
  });

  test('an unhandled command fails loudly instead of pretending', async () => {
    const ex = new FakeExecutor('h');
    await expect(ex.exec('systemctl restart pd-2379')).rejects.toThrow(/no handler for `systemctl restart pd-2379`/);
    await expect(ex.exec('cat /etc/passwd | wc -l')).rejects.toThrow(/no handler/); // pipes are not built in
    await expect(ex.exec('echo $(id)')).rejects.toThrow(/no handler/);
  });

  test('built-ins: mkdir, test/[ ], cat, mv, cp, rm, chmod, chown and && || ;', async () => {
    const ex = new FakeExecutor('h', { user: 'tidb' });
    const dir = '/tidb-deploy/tikv 20160/tls'; // a space: quoting must survive
    await ex.exec(`mkdir -p ${shq(dir)}`, { sudo: true });
    expect(ex.entry(dir)).toMatchObject({ kind: 'dir', owner: 'root', mode: 0o755 });
    await expect(ex.exec(`mkdir ${shq(dir)}/x`)).rejects.toThrow(/Permission denied/);
    await ex.exec(`chown tidb:tidb ${shq(dir)} && chmod 700 ${shq(dir)}`, { sudo: true });
    expect(ex.entry(dir)).toMatchObject({ owner: 'tidb', group: 'tidb', mode: 0o700 });
    await ex.put('KEY', `${dir}/tikv.key`, { mode: 0o600 });
    expect((await ex.exec(`test -f ${shq(`${dir}/tikv.key`)}`, { allowFailure: true })).code).toBe(0);
    expect((await ex.exec(`[ -e ${shq(`${dir}/nope`)} ]`, { allowFailure: true })).code).toBe(1);
    expect((await ex.exec(`test ! -e ${shq(`${dir}/nope`)}`, { allowFailure: true })).code).toBe(0);
    expect((await ex.exec(`test -d ${shq(dir)} && echo yes`).catch((e) => e)).message).toMatch(/no handler/); // echo is not built in
    expect((await ex.exec(`cat ${shq(`${dir}/tikv.key`)}`)).stdout).toBe('KEY');
    await ex.exec(`cp -p ${shq(`${dir}/tikv.key`)} ${shq(`${dir}/tikv.key.bak`)}`);
    expect(ex.file(`${dir}/tikv.key.bak`)).toMatchObject({ mode: 0o600, content: Buffer.from('KEY') });
    await ex.exec(`mv -f ${shq(`${dir}/tikv.key.bak`)} ${shq(`${dir}/old.key`)}`);
    expect(ex.entry(`${dir}/tikv.key.bak`)).toBeUndefined();
    expect(ex.readText(`${dir}/old.key`)).toBe('KEY');
    await ex.exec(`rm -f ${shq(`${dir}/old.key`)} ${shq(`${dir}/never-existed`)}`);
    expect(ex.entry(`${dir}/old.key`)).toBeUndefined();
    const r = await ex.exec(`rm ${shq(`${dir}/missing`)} || chmod 640 ${shq(`${dir}/tikv.key`)}; test -e /`);
    expect(r.code).toBe(0);
    expect(ex.file(`${dir}/tikv.key`)!.mode).toBe(0o640);
    await expect(ex.exec(`chown root ${shq(`${dir}/tikv.key`)}`)).rejects.toThrow(/Operation not permitted/);
    await expect(ex.exec('false && chmod 600 /etc')).rejects.toMatchObject({ code: 1 });
  });

  test('lexShell handles POSIX quoting and refuses shell syntax it does not model', () => {
    expect(lexShell(`a 'b c' "d \\"e\\"" f\\ g`)).toEqual([{ word: 'a' }, { word: 'b c' }, { word: 'd "e"' }, { word: 'f g' }]);
    expect(lexShell(shq("it's"))).toEqual([{ word: "it's" }]);
    expect(lexShell('a&&b;c || d')).toEqual([{ word: 'a' }, { op: '&&' }, { word: 'b' }, { op: ';' }, { word: 'c' }, { op: '||' }, { word: 'd' }]);
    for (const bad of ['a | b', 'a > f', 'echo $HOME', 'echo `id`', 'ls *', "unterminated 'quote", 'a &']) expect(lexShell(bad)).toBeNull();
  });
});

describe('FakeExecutor built-ins agree with a real shell', () => {
  // The same scripts run by sh in a temp dir and by the fake (as root); trees and outputs must match.
  const scripts: string[] = [
    'mkdir -p B/a/b && mkdir -m 0700 B/p && test -d B/a/b',
    'mkdir -p B/d && cp -p B/f B/d/g && chmod 600 B/d/g && mv B/d/g B/h && cat B/h B/f',
    'cp B/f B/copy; chmod 640 B/copy; cp B/f B/copy; cat B/copy',
    'rm -f B/none B/f; test -e B/f || mkdir B/gone && rm -r B/gone',
    'mkdir B/f',
    'test -e B/f || mkdir B/x && mkdir B/y',
    'test -e B/none && mkdir B/x || mkdir B/y',
    'mv B/f B/sub/x',
    'chown nobody:nogroup B/f && test -s B/f && [ -f B/f ]',
    'cat B/nope; test -e B/f',
    'mkdir -p B/t && mv B/f B/t && cat B/t/f',
    "mkdir -p 'B/with space' && cp -p B/f 'B/with space/it'\"'\"'s' && cat 'B/with space/it'\"'\"'s'",
  ];
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-fake-sh-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const tree = (list: Array<{ p: string; kind: string; mode: number; content?: string; owner?: string }>) =>
    list.sort((a, b) => a.p.localeCompare(b.p));

  test.each(scripts)('%s', async (script) => {
    const base = fs.mkdtempSync(path.join(tmp, 'case-'));
    const B = path.join(base, 'B');
    fs.mkdirSync(B);
    fs.writeFileSync(path.join(B, 'f'), 'hello\n', { mode: 0o644 });
    fs.chmodSync(path.join(B, 'f'), 0o644);
    const real = spawnSync('sh', ['-c', script.replace(/B\//g, `${B}/`)], { cwd: base });
    const fake = new FakeExecutor('h', { user: 'root' });
    fake.addDir('/w/B');
    fake.addFile('/w/B/f', 'hello\n', { mode: 0o644 });
    const f = await fake.exec(script.replace(/B\//g, '/w/B/'), { allowFailure: true });
    expect(f.code === 0).toBe(real.status === 0);
    expect(f.stdout).toBe(real.stdout.toString());

    const realTree: Parameters<typeof tree>[0] = [];
    const walk = (dir: string) => {
      for (const name of fs.readdirSync(dir)) {
        const p = path.join(dir, name);
        const st = fs.statSync(p);
        const owner = execFileSync('stat', ['-c', '%U', p]).toString().trim();
        realTree.push({ p: path.relative(base, p), kind: st.isDirectory() ? 'dir' : 'file', mode: st.mode & 0o7777, owner, ...(st.isFile() ? { content: fs.readFileSync(p, 'utf8') } : {}) });
        if (st.isDirectory()) walk(p);
      }
    };
    walk(B);
    const fakeTree: Parameters<typeof tree>[0] = [...fake.files.entries()]
      .filter(([p]) => p.startsWith('/w/B/'))
      .map(([p, e]) => ({ p: path.relative('/w', p), kind: e.kind, mode: e.mode, owner: e.owner, ...(e.kind === 'file' ? { content: e.content.toString() } : {}) }));
    expect(tree(fakeTree)).toEqual(tree(realTree));
  });
});

describe('FakePool', () => {
  test('one executor per host:port, set up once, closed by closeAll', async () => {
    let setups = 0;
    const pool = new FakePool((ex) => {
      setups++;
      ex.addFile('/etc/hostname', ex.host);
    });
    const a = await pool.get('10.0.0.1');
    expect(await pool.get('10.0.0.1')).toBe(a);
    expect(await pool.get('10.0.0.1', 2222)).not.toBe(a);
    expect(pool.host('10.0.0.1')).toBe(a);
    expect(setups).toBe(2);
    expect(pool.gets.get('10.0.0.1:22')).toBe(2);
    expect((await a.get('/etc/hostname')).toString()).toBe('10.0.0.1');
    await pool.closeAll();
    expect(a.closed).toBe(true);
    await expect(a.exec('true')).rejects.toBeInstanceOf(SshError);
    await expect(pool.get('10.0.0.1')).rejects.toBeInstanceOf(SshError);
    expect(a.calls[a.calls.length - 2]).toEqual({ op: 'close' });
  });

  test('defaults apply to every host', async () => {
    const pool = new FakePool(undefined, { user: 'root', sudo: false });
    const ex = await pool.get('h');
    expect(ex.user).toBe('root');
    await expect(ex.exec('true', { sudo: true })).rejects.toThrow(RemoteCommandError);
  });
});

describe('FakeExecutor models root never following a planted symlink (like remoteScripts)', () => {
  it('refuses a deploy-user symlink on the way or at the end, follows one root planted, and backs up keys 0600 in root 0700 dirs', async () => {
    const { FakeExecutor: Fake, UnsafeRemotePathError: Unsafe } = await import('../../src/ssh');
    const ex = new Fake('h1');
    ex.addDir('/d/pd', { owner: 'tidb', mode: 0o755 });
    ex.addFile('/etc/ssh/key', 'SECRET', { mode: 0o600 });
    ex.addSymlink('/d/pd/conf', '/etc/ssh');
    ex.addSymlink('/d/pd/k.pem', '/etc/ssh/key');
    for (const op of [() => ex.put('x', '/d/pd/conf/x', { sudo: true }), () => ex.get('/d/pd/k.pem', { sudo: true }), () => ex.stat('/d/pd/conf/key', { sudo: true }), () => ex.ensureDir('/d/pd/conf', { owner: 'tidb:tidb', mode: 0o755 }), () => ex.backup('/d/pd/k.pem', '/d/pd/backup/k.pem')]) {
      await expect(op()).rejects.toBeInstanceOf(Unsafe);
    }
    expect([ex.entry('/etc/ssh')!.owner, ex.readText('/etc/ssh/key')]).toEqual(['root', 'SECRET']);
    await ex.remove('/d/pd/conf'); // rm removes the link itself
    expect([ex.entry('/d/pd/conf'), ex.readText('/etc/ssh/key')]).toEqual([undefined, 'SECRET']);
    // a link root planted in a root-only directory is followed
    ex.addDir('/srv', { mode: 0o755 });
    ex.addSymlink('/srv/deploy', '/d/pd', { owner: 'root' });
    await ex.put('a = 1', '/srv/deploy/x.toml', { sudo: true, owner: 'tidb:tidb' });
    ex.addFile('/d/pd/tls/pd.pem', 'OLD', { owner: 'tidb', mode: 0o644 });
    expect(await ex.backup('/d/pd/tls/pd.pem', '/d/pd/backup/tiseal-r/tls/pd.pem', { private: true })).toBe(true);
    expect(await ex.backup('/d/pd/tls/pd.pem', '/d/pd/backup/tiseal-r/tls/pd.pem', { private: true })).toBe(false);
    expect([ex.file('/d/pd/backup/tiseal-r/tls/pd.pem')!.mode, ex.entry('/d/pd/backup/tiseal-r')!.mode, ex.entry('/d/pd/backup')!.owner]).toEqual([0o600, 0o700, 'root']);
  });
});
