/**
 * Light hosts for fan-out benchmarks (lab notes, recipe B): one network namespace per host, a veth
 * into a bridge, and a real sshd with its own host key, its own process table (unshare -p) and its
 * own deploy dir (bind mount in its own mount namespace). No systemd: enough for the SSH layer.
 * Everything is created under names with the `tsb` prefix and removed by `down()` (sshd by PID).
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';

const BRIDGE = 'tsbr0';
const PREFIX = '10.79.0';

function sh(cmd: string, args: string[], allowFail = false): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout || '').trim() || `exit ${r.status}`}`);
  return r.stdout ?? '';
}

export interface NetnsHosts {
  ips: string[];
  identityFile: string;
  knownHostsFile: string;
  /** The path every host sees its own deploy dir at. */
  deployDir: string;
  /** Each host's deploy dir on this machine (index = host). */
  hostDirs: string[];
  down(): Promise<void>;
}

export function netnsAvailable(): { ok: boolean; reason?: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (network namespaces)' };
  for (const bin of ['/usr/sbin/sshd', '/usr/bin/ssh-keygen', '/usr/bin/unshare']) if (!fs.existsSync(bin)) return { ok: false, reason: `${bin} is missing` };
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return { ok: false, reason: '`ip netns` does not work here' };
  return { ok: true };
}

const nsName = (i: number) => `tsb-${i}`;

/** Remove whatever an earlier (killed) benchmark left: namespaces, veths, the bridge. */
export function sweep(): void {
  for (const line of sh('ip', ['netns', 'list'], true).split('\n')) {
    const name = line.split(' ')[0];
    if (/^tsb-\d+$/.test(name)) {
      for (const pid of sh('ip', ['netns', 'pids', name], true).split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      sh('ip', ['netns', 'del', name], true);
    }
  }
  sh('ip', ['link', 'del', BRIDGE], true);
}

async function waitPort(ip: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: ip, port, timeout: 500 });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
      s.once('timeout', () => (s.destroy(), resolve(false)));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${ip}:${port} did not come up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function netnsUp(n: number, workDir: string): Promise<NetnsHosts> {
  if (n < 1 || n > 200) throw new Error('1..200 hosts');
  sweep();
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege separation dir (made by its unit, which never ran here)
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true });
  const identityFile = path.join(workDir, 'id_ed25519');
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tiseal-bench', '-f', identityFile]);
  const authorized = path.join(workDir, 'authorized_keys');
  fs.copyFileSync(`${identityFile}.pub`, authorized);
  fs.chmodSync(authorized, 0o600);
  const deployDir = path.join(workDir, 'deploy');
  fs.mkdirSync(deployDir);
  // Root's interactive rc files (pyenv and the like) would cost every exec 100 ms: hosts get empty ones.
  const emptyRc = path.join(workDir, 'empty-rc');
  fs.writeFileSync(emptyRc, '');
  const rcBinds = ['/root/.bashrc', '/root/.profile', '/root/.bash_profile'].filter((f) => fs.existsSync(f)).map((f) => `mount --bind ${emptyRc} ${f}`);

  sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  sh('ip', ['addr', 'add', `${PREFIX}.1/24`, 'dev', BRIDGE]);
  sh('ip', ['link', 'set', BRIDGE, 'up']);

  const children: ChildProcess[] = [];
  const ips: string[] = [];
  const hostDirs: string[] = [];
  const known: string[] = [];
  const down = async () => {
    for (const c of children) {
      try {
        if (c.pid) process.kill(-c.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    sweep();
  };
  try {
    for (let i = 1; i <= n; i++) {
      const ns = nsName(i);
      const ip = `${PREFIX}.${10 + i}`;
      const dir = path.join(workDir, 'hosts', String(i));
      const hostDeploy = path.join(dir, 'deploy');
      fs.mkdirSync(hostDeploy, { recursive: true });
      sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
      known.push(`${ip} ${fs.readFileSync(path.join(dir, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ')}`);
      fs.writeFileSync(
        path.join(dir, 'sshd_config'),
        [
          `ListenAddress ${ip}`,
          'Port 22',
          `HostKey ${path.join(dir, 'host_key')}`,
          `PidFile ${path.join(dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${authorized}`,
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
          'MaxSessions 64',
          'MaxStartups 200',
          'Subsystem sftp internal-sftp',
          'LogLevel ERROR',
          '',
        ].join('\n'),
      );
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['link', 'add', `tsb${i}h`, 'type', 'veth', 'peer', 'name', `tsb${i}n`, 'netns', ns]);
      sh('ip', ['link', 'set', `tsb${i}h`, 'master', BRIDGE, 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', `tsb${i}n`]);
      sh('ip', ['-n', ns, 'link', 'set', `tsb${i}n`, 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      const script = [`mount --bind ${hostDeploy} ${deployDir}`, ...rcBinds, `exec /usr/sbin/sshd -D -e -f ${path.join(dir, 'sshd_config')}`].join(' && ');
      const child = spawn('ip', ['netns', 'exec', ns, 'unshare', '-m', '-p', '-f', '--kill-child', '--mount-proc', 'sh', '-c', script], {
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) => {
        if (code) process.stderr.write(`bench host ${ip}: sshd exited ${code}: ${err.trim()}\n`);
      });
      children.push(child);
      ips.push(ip);
      hostDirs.push(hostDeploy);
    }
    await Promise.all(ips.map((ip) => waitPort(ip, 22, 15_000)));
  } catch (e) {
    await down();
    throw e;
  }
  const knownHostsFile = path.join(workDir, 'known_hosts');
  fs.writeFileSync(knownHostsFile, known.join('\n') + '\n');
  return { ips, identityFile, knownHostsFile, deployDir, hostDirs, down };
}
