/**
 * Light hosts for fan-out benchmarks (lab notes, recipe B): one network namespace per host, a veth
 * into a bridge, and a real sshd with its own host key, its own process table (unshare -p) and its
 * own deploy dir (bind mount in its own mount namespace). No systemd: enough for the SSH layer.
 * Everything is created under names with the `tsb` prefix and removed by `down()` (sshd by PID).
 * 200 hosts come up in seconds: the links are made by one `ip -batch`, each host's inner side and
 * sshd by its own shell, host keys are generated in parallel.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { mapLimit } from '../src/util/concurrency';

const BRIDGE = 'tsbr0';
const PREFIX = '10.79.0';
export const MAX_HOSTS = 200;

function sh(cmd: string, args: string[], allowFail = false, input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout || '').trim() || `exit ${r.status}`}`);
  return r.stdout ?? '';
}

/** Many `ip` commands in one process (a spawn each costs more than the command at 200 hosts). */
const ipBatch = (lines: string[], allowFail = false) => (lines.length ? sh('ip', allowFail ? ['-force', '-batch', '-'] : ['-batch', '-'], allowFail, lines.join('\n') + '\n') : '');

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim() || `exit ${code}`}`))));
  });
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

/** Remove whatever an earlier (killed) benchmark left: processes in our namespaces (by PID), namespaces, the bridge. */
export function sweep(): void {
  const names = sh('ip', ['netns', 'list'], true)
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => /^tsb-\d+$/.test(n));
  for (const name of names) {
    for (const pid of sh('ip', ['netns', 'pids', name], true).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  ipBatch(names.map((n) => `netns del ${n}`), true); // takes each namespace's veth with it
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
  if (n < 1 || n > MAX_HOSTS) throw new Error(`1..${MAX_HOSTS} hosts`);
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

  const hosts = Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    const dir = path.join(workDir, 'hosts', String(i));
    return { i, ns: nsName(i), ip: `${PREFIX}.${10 + i}`, dir, deploy: path.join(dir, 'deploy') };
  });
  const children: ChildProcess[] = [];
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
    await mapLimit(hosts, 8, async (h) => {
      fs.mkdirSync(h.deploy, { recursive: true });
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(h.dir, 'host_key')]);
      // sshd's own limits (MaxStartups 10:30:100, MaxSessions 10) as on a real host: never kinder.
      fs.writeFileSync(
        path.join(h.dir, 'sshd_config'),
        [
          `ListenAddress ${h.ip}`,
          'Port 22',
          `HostKey ${path.join(h.dir, 'host_key')}`,
          `PidFile ${path.join(h.dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${authorized}`,
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
          'Subsystem sftp internal-sftp',
          'LogLevel ERROR',
          '',
        ].join('\n'),
      );
    });
    ipBatch([
      `link add ${BRIDGE} type bridge`,
      `addr add ${PREFIX}.1/24 dev ${BRIDGE}`,
      `link set ${BRIDGE} up`,
      ...hosts.flatMap((h) => [`netns add ${h.ns}`, `link add tsb${h.i}h type veth peer name tsb${h.i}n netns ${h.ns}`, `link set tsb${h.i}h master ${BRIDGE} up`]),
    ]);
    for (const h of hosts) {
      const script = [
        `ip addr add ${h.ip}/24 dev tsb${h.i}n`,
        `ip link set tsb${h.i}n up`,
        'ip link set lo up',
        `mount --bind ${h.deploy} ${deployDir}`,
        ...rcBinds,
        `exec /usr/sbin/sshd -D -e -f ${path.join(h.dir, 'sshd_config')}`,
      ].join(' && ');
      const child = spawn('ip', ['netns', 'exec', h.ns, 'unshare', '-m', '-p', '-f', '--kill-child', '--mount-proc', 'sh', '-c', script], {
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) => {
        if (code) process.stderr.write(`bench host ${h.ip}: sshd exited ${code}: ${err.trim()}\n`);
      });
      children.push(child);
    }
    await Promise.all(hosts.map((h) => waitPort(h.ip, 22, 30_000)));
  } catch (e) {
    await down();
    throw e;
  }
  const knownHostsFile = path.join(workDir, 'known_hosts');
  const known = hosts.map((h) => `${h.ip} ${fs.readFileSync(path.join(h.dir, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ')}`);
  fs.writeFileSync(knownHostsFile, known.join('\n') + '\n');
  return { ips: hosts.map((h) => h.ip), identityFile, knownHostsFile, deployDir, hostDirs: hosts.map((h) => h.deploy), down };
}
