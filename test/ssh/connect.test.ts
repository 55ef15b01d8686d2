/**
 * Connecting: credentials (key types, ssh-agent, passphrase-protected keys), connection errors,
 * ~/.ssh/config aliases, ProxyJump through a second sshd, and non-root users with and without
 * passwordless sudo. Everything runs on loopback against sshd instances started here.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { RemoteCommandError, SshError } from '../../src/errors';
import { checkSudo, connectSsh, RemoteFileError, SshPool, type SshOptions } from '../../src/ssh';
import { freePort, keygen, sshdUnavailableReason, startSshd, waitFor, type Sshd } from './sshdHarness';
import { describeUnless } from '../support/skip-or-fail';

jest.setTimeout(60_000);

const reason = sshdUnavailableReason();
if (reason) console.log(`skipping sshd connect tests: ${reason}`);
const d = describeUnless(reason);

d('connecting to real sshd instances', () => {
  let sshd: Sshd;
  let jump: Sshd;
  let work: string;
  let kh: string;
  let base: SshOptions;

  beforeAll(async () => {
    [sshd, jump] = await Promise.all([startSshd(), startSshd({ logLevel: 'DEBUG1' })]);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-connect-'));
    kh = path.join(work, 'known_hosts');
    fs.writeFileSync(kh, [...sshd.knownHostsLines(), ...jump.knownHostsLines()].join('\n') + '\n');
    base = { user: 'root', port: sshd.port, identityFiles: [sshd.clientKey], knownHostsFile: kh, sshConfigFile: false, agent: false };
  });
  afterAll(async () => {
    await Promise.all([sshd?.stop(), jump?.stop()]);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const echo = async (o: SshOptions, host = '127.0.0.1', port?: number) => {
    const ex = await connectSsh(host, o, port);
    try {
      return (await ex.exec('echo "$(id -un)"')).stdout.trim();
    } finally {
      await ex.close();
    }
  };

  describe('credentials', () => {
    test.each(['ed25519', 'rsa', 'ecdsa'] as const)('a passphrase-less %s identity file logs in', async (type) => {
      const key = keygen(path.join(work, `id_${type}`), type);
      fs.appendFileSync(sshd.authorizedKeysFile, fs.readFileSync(`${key}.pub`));
      expect(await echo({ ...base, identityFiles: [key] })).toBe('root');
    });

    test('the first unusable key does not stop a later one (several -i)', async () => {
      const stranger = keygen(path.join(work, 'stranger'));
      expect(await echo({ ...base, identityFiles: [stranger, sshd.clientKey] })).toBe('root');
    });

    test('a key nobody authorized fails with SshError naming host:port, user and -i', async () => {
      const stranger = keygen(path.join(work, 'stranger2'));
      const err = await echo({ ...base, identityFiles: [stranger] }).catch((e) => e);
      expect(err).toBeInstanceOf(SshError);
      expect(err.message).toContain(`127.0.0.1:${sshd.port}`);
      expect(err.message).toContain('authentication failed for user "root"');
      expect(err.message).toContain(stranger);
      expect(err.suggestion).toContain('-i');
      // The flag that exists (--ssh-user), and where the user came from.
      expect(err.suggestion).toContain('--ssh-user');
      expect(err.suggestion).not.toContain('--user');
      expect(err.suggestion).toContain('now "root", from --ssh-user');
      expect(err.suggestion).toContain('authorized_keys');
    });

    test('a passphrase-protected key without an agent gives a clear error suggesting ssh-agent', async () => {
      const enc = keygen(path.join(work, 'enc'), 'ed25519', 'secret-passphrase');
      const err = await echo({ ...base, identityFiles: [enc] }).catch((e) => e);
      expect(err).toBeInstanceOf(SshError);
      expect(err.message).toContain('passphrase');
      expect(err.suggestion).toContain('ssh-agent');
      expect(err.suggestion).toContain(`ssh-add ${enc}`);
    });

    test('a public key or a missing file passed as identity is reported as such', async () => {
      const pubErr = await echo({ ...base, identityFiles: [`${sshd.clientKey}.pub`] }).catch((e) => e);
      expect(pubErr).toBeInstanceOf(SshError);
      expect(pubErr.message).toContain('public key');
      const missing = await echo({ ...base, identityFiles: [path.join(work, 'nope')] }).catch((e) => e);
      expect(missing).toBeInstanceOf(SshError);
      expect(missing.message).toContain('cannot read identity file');
    });

    describe('ssh-agent', () => {
      let agent: ChildProcess | undefined;
      let sock: string;
      let enc: string;
      beforeAll(async () => {
        sock = path.join(work, 'agent.sock');
        agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
        await waitFor(() => fs.existsSync(sock), 5000);
        // The agent holds the decrypted twin of a passphrase-protected key file.
        enc = keygen(path.join(work, 'agent_enc'), 'ed25519', 'another-passphrase');
        const plain = path.join(work, 'agent_plain');
        fs.copyFileSync(enc, plain);
        fs.chmodSync(plain, 0o600);
        execFileSync('ssh-keygen', ['-p', '-q', '-P', 'another-passphrase', '-N', '', '-f', plain], { stdio: 'ignore' });
        execFileSync('ssh-add', ['-q', plain], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
        fs.appendFileSync(sshd.authorizedKeysFile, fs.readFileSync(`${enc}.pub`));
      });
      afterAll(() => {
        if (agent?.pid && agent.exitCode === null) process.kill(agent.pid, 'SIGTERM');
      });

      test('logs in with a key held by ssh-agent (SSH_AUTH_SOCK)', async () => {
        expect(await echo({ ...base, identityFiles: [], agent: sock })).toBe('root');
      });

      test('with an agent, a passphrase-protected identity file is skipped and the agent used', async () => {
        expect(await echo({ ...base, identityFiles: [enc], agent: sock })).toBe('root');
      });

      test('the default agent comes from SSH_AUTH_SOCK', async () => {
        const saved = process.env.SSH_AUTH_SOCK;
        process.env.SSH_AUTH_SOCK = sock;
        try {
          const { agent: _unused, ...noAgentOption } = base;
          expect(await echo({ ...noAgentOption, identityFiles: [] })).toBe('root');
        } finally {
          if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
          else process.env.SSH_AUTH_SOCK = saved;
        }
      });
    });
  });

  describe('connection errors', () => {
    test('refused: SshError naming host:port, suggesting the address and --ssh-port', async () => {
      const port = await freePort();
      const err = await echo({ ...base, port }).catch((e) => e);
      expect(err).toBeInstanceOf(SshError);
      expect(err.message).toBe(`127.0.0.1:${port}: connection refused`);
      expect(err.suggestion).toContain('--ssh-port');
    });

    test('a server that never speaks SSH: timed out after readyTimeoutMs', async () => {
      const silent = net.createServer(() => undefined);
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
      const port = (silent.address() as net.AddressInfo).port;
      try {
        const err = await echo({ ...base, port, readyTimeoutMs: 400 }).catch((e) => e);
        expect(err).toBeInstanceOf(SshError);
        expect(err.message).toContain(`127.0.0.1:${port}: timed out after 400 ms`);
        expect(err.suggestion).toContain('--ssh-port');
      } finally {
        silent.close();
      }
    });

    test('a failed connect is not cached: the pool retries on the next get', async () => {
      const pool = new SshPool({ ...base, identityFiles: [keygen(path.join(work, 'retry'))] });
      try {
        await expect(pool.get('127.0.0.1')).rejects.toThrow(/authentication failed/);
        fs.appendFileSync(sshd.authorizedKeysFile, fs.readFileSync(path.join(work, 'retry.pub')));
        expect((await (await pool.get('127.0.0.1')).exec('echo again')).stdout).toBe('again\n');
        expect(pool.stats()[0].handshakes).toBe(2);
      } finally {
        await pool.closeAll();
      }
    });
  });

  describe('~/.ssh/config', () => {
    test('an alias resolves HostName, Port, User and IdentityFile; first match wins', async () => {
      const cfg = path.join(work, 'ssh_config');
      fs.writeFileSync(
        cfg,
        [
          'Host tikv-*',
          '  HostName 127.0.0.1',
          `  Port ${sshd.port}`,
          '  User root',
          `  IdentityFile ${sshd.clientKey}`,
          'Host *',
          '  Port 1',
          '  User nobody',
        ].join('\n'),
      );
      const pool = new SshPool({ knownHostsFile: kh, sshConfigFile: cfg, agent: false });
      try {
        const ex = await pool.get('tikv-1');
        expect(ex.host).toBe('tikv-1');
        expect(ex.user).toBe('root');
        expect((await ex.exec('echo hi')).stdout).toBe('hi\n');
        expect(pool.stats()).toEqual([expect.objectContaining({ host: 'tikv-1', port: sshd.port, handshakes: 1 })]);
      } finally {
        await pool.closeAll();
      }
    });

    test('ProxyJump: targets reached through one shared jump connection, chains work too', async () => {
      const cfg = path.join(work, 'ssh_config_jump');
      fs.writeFileSync(
        cfg,
        [
          'Host target target2',
          '  HostName 127.0.0.1',
          `  Port ${sshd.port}`,
          `  ProxyJump root@127.0.0.1:${jump.port}`,
          'Host chained',
          '  HostName 127.0.0.1',
          `  Port ${sshd.port}`,
          `  ProxyJump root@127.0.0.1:${jump.port},ssh://root@127.0.0.1:${jump.port}`,
        ].join('\n'),
      );
      const pool = new SshPool({ user: 'root', identityFiles: [sshd.clientKey, jump.clientKey], knownHostsFile: kh, sshConfigFile: cfg, agent: false });
      const jumpBefore = jump.accepted();
      try {
        const [a, b] = await Promise.all([pool.get('target'), pool.get('target2')]);
        expect((await a.exec('echo via-jump')).stdout).toBe('via-jump\n');
        expect((await b.exec('echo via-jump-2')).stdout).toBe('via-jump-2\n');
        // The jump sshd saw the forwarding requests to the target's port.
        await waitFor(() => (jump.log().match(new RegExp(`target 127\\.0\\.0\\.1 port ${sshd.port}`, 'g')) ?? []).length >= 2);
        expect((jump.log().match(new RegExp(`target 127\\.0\\.0\\.1 port ${sshd.port}`, 'g')) ?? []).length).toBe(2);
        expect(jump.accepted() - jumpBefore).toBe(1);
        const stats = pool.stats();
        expect(stats.filter((s) => s.jump)).toEqual([expect.objectContaining({ host: '127.0.0.1', port: jump.port, handshakes: 1 })]);

        const c = await pool.get('chained');
        expect((await c.exec('echo two-hops')).stdout).toBe('two-hops\n');
        await waitFor(() => jump.accepted() - jumpBefore >= 2);
        // The first hop connection is reused; the second hop is a new login to the jump sshd through it.
        expect(jump.accepted() - jumpBefore).toBe(2);
        expect(jump.log()).toMatch(new RegExp(`target 127\\.0\\.0\\.1 port ${jump.port}`));
      } finally {
        await pool.closeAll();
      }
    });

    test('a host behind ProxyJump logs in as its ssh config User, not as the topology user', async () => {
      const cfg = path.join(work, 'ssh_config_jump_user');
      fs.writeFileSync(cfg, ['Host behind-user', '  HostName 127.0.0.1', `  Port ${sshd.port}`, '  User root', `  ProxyJump root@127.0.0.1:${jump.port}`].join('\n'));
      // defaultUser plays the topology's global.user, which has no account on this sshd.
      const pool = new SshPool({ defaultUser: 'tiseal-no-such-user', identityFiles: [sshd.clientKey, jump.clientKey], knownHostsFile: kh, sshConfigFile: cfg, agent: false });
      try {
        const ex = await pool.get('behind-user');
        expect(ex.user).toBe('root');
        expect((await ex.exec('id -un')).stdout).toBe('root\n');
      } finally {
        await pool.closeAll();
      }
    });

    test('a jump host that cannot reach the target gives a clear SshError', async () => {
      const dead = await freePort();
      const cfg = path.join(work, 'ssh_config_deadjump');
      fs.writeFileSync(cfg, ['Host behind', '  HostName 127.0.0.1', `  Port ${dead}`, `  ProxyJump root@127.0.0.1:${jump.port}`].join('\n'));
      const pool = new SshPool({ user: 'root', identityFiles: [jump.clientKey], knownHostsFile: kh, sshConfigFile: cfg, agent: false });
      try {
        const err = await pool.get('behind').catch((e) => e);
        expect(err).toBeInstanceOf(SshError);
        expect(err.message).toContain(`behind (127.0.0.1:${dead})`);
        expect(err.message).toContain(`jump host root@127.0.0.1:${jump.port} could not open a connection to 127.0.0.1:${dead}: Connection refused`);
      } finally {
        await pool.closeAll();
      }
    });
  });
});

const hasUseradd = fs.existsSync('/usr/sbin/useradd') && fs.existsSync('/usr/sbin/userdel');
const userReason = reason ?? (hasUseradd ? undefined : 'useradd/userdel are not available');
if (!reason && userReason) console.log(`skipping non-root user tests: ${userReason}`);
const du = describeUnless(userReason);

du('non-root login users and sudo', () => {
  const tag = `${process.pid % 100000}`;
  const noSudo = `tiseal-ns${tag}`;
  const withSudo = `tiseal-ws${tag}`;
  const sudoers = `/etc/sudoers.d/tiseal-test-${tag}`;
  let sshd: Sshd;
  let work: string;
  let opts: (user: string) => SshOptions;

  beforeAll(async () => {
    for (const u of [noSudo, withSudo]) {
      // -p '*': no password but not locked (sshd refuses locked accounts when UsePAM is off).
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/sh', '-p', '*', u]);
    }
    fs.writeFileSync(sudoers, `${withSudo} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    execFileSync('visudo', ['-cqf', sudoers]);
    sshd = await startSshd();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-users-'));
    fs.chmodSync(work, 0o755);
    const kh = path.join(work, 'known_hosts');
    fs.writeFileSync(kh, sshd.knownHostsLines().join('\n') + '\n');
    opts = (user) => ({ user, port: sshd.port, identityFiles: [sshd.clientKey], knownHostsFile: kh, sshConfigFile: false, agent: false });
  });

  afterAll(async () => {
    await sshd?.stop();
    fs.rmSync(sudoers, { force: true });
    for (const u of [noSudo, withSudo]) {
      try {
        execFileSync('userdel', [u], { stdio: 'ignore' });
      } catch {
        /* not created */
      }
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const uidOf = (u: string) => Number(execFileSync('id', ['-u', u]).toString().trim());
  const stagedBy = (uid: number) => fs.readdirSync('/tmp').filter((n) => n.startsWith('.tiseal-stage-') && fs.statSync(path.join('/tmp', n)).uid === uid);

  test('a user without passwordless sudo gets a clear RemoteCommandError suggesting NOPASSWD', async () => {
    const ex = await connectSsh('127.0.0.1', opts(noSudo));
    try {
      expect((await ex.exec('id -un')).stdout.trim()).toBe(noSudo);
      for (const allowFailure of [false, true]) {
        const err = await ex.exec('id -u', { sudo: true, allowFailure }).catch((e) => e);
        expect(err).toBeInstanceOf(RemoteCommandError);
        expect(err.host).toBe('127.0.0.1');
        expect(err.stderr).toContain('a password is required');
        expect(err.suggestion).toContain('passwordless sudo');
        expect(err.suggestion).toContain(`${noSudo} ALL=(ALL) NOPASSWD: ALL`);
      }
      await expect(checkSudo(ex)).rejects.toThrow(RemoteCommandError);
      const target = path.join(work, 'root-only.conf');
      const putErr = await ex.put('x', target, { sudo: true }).catch((e) => e);
      expect(putErr).toBeInstanceOf(RemoteCommandError);
      expect(putErr.suggestion).toContain('passwordless sudo');
      expect(fs.existsSync(target)).toBe(false);
      expect(stagedBy(uidOf(noSudo))).toEqual([]);
      // Without sudo, root-owned places stay closed: errors say so.
      const secret = path.join(work, 'secret.key');
      fs.writeFileSync(secret, 'k', { mode: 0o600 });
      const getErr = await ex.get(secret).catch((e) => e);
      expect(getErr).toBeInstanceOf(RemoteFileError);
      expect(getErr.code).toBe('EACCES');
      const writeErr = await ex.put('x', path.join(work, 'nope.conf')).catch((e) => e);
      expect(writeErr).toBeInstanceOf(RemoteFileError);
      expect(writeErr.code).toBe('EACCES');
    } finally {
      await ex.close();
    }
  });

  test('a user with passwordless sudo: root commands, root-owned files, put with owner', async () => {
    const ex = await connectSsh('127.0.0.1', opts(withSudo));
    try {
      expect((await ex.exec('id -u')).stdout.trim()).toBe(String(uidOf(withSudo)));
      expect((await ex.exec('id -u', { sudo: true })).stdout.trim()).toBe('0');
      await expect(checkSudo(ex)).resolves.toBeUndefined();
      const dir = fs.mkdtempSync(path.join(work, 'etc-'));
      fs.chmodSync(dir, 0o755); // root-owned: the login user cannot create files here
      const target = path.join(dir, 'tidb.toml');
      fs.writeFileSync(target, 'old');
      const ino = fs.statSync(target).ino;
      await ex.put('[security]\nssl-ca = "ca.crt"\n', target, { owner: `${withSudo}`, mode: 0o640 });
      const st = fs.statSync(target);
      expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([uidOf(withSudo), 0, 0o640]);
      expect(st.ino).not.toBe(ino);
      expect(fs.readFileSync(target, 'utf8')).toBe('[security]\nssl-ca = "ca.crt"\n');
      expect(fs.readdirSync(dir)).toEqual(['tidb.toml']);
      expect(stagedBy(uidOf(withSudo))).toEqual([]);
      const secret = path.join(dir, 'root.key');
      fs.writeFileSync(secret, 'root secret', { mode: 0o600 });
      expect((await ex.get(secret, { sudo: true })).toString()).toBe('root secret');
      expect(await ex.stat(secret, { sudo: true })).toMatchObject({ exists: true, mode: 0o600, owner: 'root', size: 11 });
    } finally {
      await ex.close();
    }
  });
});
