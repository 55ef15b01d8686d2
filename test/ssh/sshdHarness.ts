/**
 * A real OpenSSH server for tests: its own host keys, authorized keys and config in a temp dir,
 * listening on a free loopback port, stopped by PID. Log lines (stderr, `-e`) are kept so tests
 * can count logins (`Accepted publickey`) on the server side.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

export const SSHD = '/usr/sbin/sshd';

/** Why the sshd tests cannot run here, or undefined when they can. */
export function sshdUnavailableReason(): string | undefined {
  if (!fs.existsSync(SSHD)) return `${SSHD} is missing (install openssh-server)`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not running as root (sshd tests log in as root)';
  return undefined;
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function keygen(file: string, type: 'ed25519' | 'rsa' | 'ecdsa' = 'ed25519', passphrase = ''): string {
  const args = ['-q', '-t', type, '-N', passphrase, '-C', `tiseal-test-${type}`, '-f', file];
  if (type === 'rsa') args.splice(1, 0, '-b', '2048');
  execFileSync('ssh-keygen', args, { stdio: 'ignore' });
  return file;
}

export interface Sshd {
  port: number;
  address: string;
  pid: number;
  dir: string;
  /** Host key files (private) by type. */
  hostKeys: Record<string, string>;
  /** Client private key authorized for every user. */
  clientKey: string;
  authorizedKeysFile: string;
  /** `[address]:port type base64` lines for each host key. */
  knownHostsLines(): string[];
  log(): string;
  /** Number of successful logins so far. */
  accepted(): number;
  stop(): Promise<void>;
}

export interface SshdOptions {
  address?: string;
  hostKeyTypes?: Array<'ed25519' | 'rsa' | 'ecdsa'>;
  logLevel?: string;
  extraConfig?: string[];
  /** Where ports come from (default freePort): lets a test hand out a taken one first. */
  pickPort?: (address: string) => Promise<number>;
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-sshd-'));
  try {
    return await launch(dir, opts);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** How often sshd is started again when another process bound its port first. */
const PORT_TRIES = 5;

async function launch(dir: string, opts: SshdOptions): Promise<Sshd> {
  const address = opts.address ?? '127.0.0.1';
  const hostKeys: Record<string, string> = {};
  for (const t of opts.hostKeyTypes ?? ['ed25519']) hostKeys[t] = keygen(path.join(dir, `host_${t}`), t);
  const clientKey = keygen(path.join(dir, 'client_ed25519'));
  const authorizedKeysFile = path.join(dir, 'authorized_keys');
  fs.writeFileSync(authorizedKeysFile, fs.readFileSync(`${clientKey}.pub`), { mode: 0o644 });
  // sshd reads AuthorizedKeysFile with the login user's rights: let non-root test users in.
  fs.chmodSync(dir, 0o755);
  const sftpServer = fs.existsSync('/usr/lib/openssh/sftp-server') ? '/usr/lib/openssh/sftp-server' : 'internal-sftp';
  const config = (port: number): string[] => [
    `ListenAddress ${address}:${port}`,
    ...Object.values(hostKeys).map((k) => `HostKey ${k}`),
    `AuthorizedKeysFile ${authorizedKeysFile}`,
    'UsePAM no',
    'StrictModes no',
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    `LogLevel ${opts.logLevel ?? 'INFO'}`,
    `Subsystem sftp ${sftpServer}`,
    ...(opts.extraConfig ?? []),
  ];
  const configFile = path.join(dir, 'sshd_config');
  // sshd refuses to start without its privilege separation directory (normally made by the service unit).
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  // sshd must be given its port: one picked free can be bound by another process before sshd binds
  // it ("Bind to port … failed: Address already in use", then "Cannot bind any address", exit 255);
  // sshd is then started again on another port.
  const start = async (port: number): Promise<{ child: ChildProcess; exited: Promise<void>; log: () => string } | 'port-taken'> => {
    fs.writeFileSync(configFile, config(port).join('\n') + '\n');
    const child: ChildProcess = spawn(...sshdCommand(dir, configFile), { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString('utf8');
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 30_000;
    while (!log.includes('Server listening on')) {
      if (child.exitCode !== null || Date.now() > deadline) {
        if (child.exitCode === null) child.kill('SIGKILL');
        await exited;
        if (/Address already in use/.test(log)) return 'port-taken';
        throw new Error(`sshd did not start (exit ${child.exitCode}): ${log}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return { child, exited, log: () => log };
  };
  let port = 0;
  let started: Awaited<ReturnType<typeof start>> = 'port-taken';
  for (let attempt = 1; started === 'port-taken'; attempt++) {
    if (attempt > PORT_TRIES) throw new Error(`sshd could not bind a port on ${address} in ${PORT_TRIES} tries`);
    port = await (opts.pickPort ?? freePort)(address);
    started = await start(port);
  }
  const { child, exited } = started;
  const log = started.log;
  const pid = child.pid!;
  return {
    port,
    address,
    pid,
    dir,
    hostKeys,
    clientKey,
    authorizedKeysFile,
    knownHostsLines: () =>
      Object.values(hostKeys).map((k) => {
        const [type, b64] = fs.readFileSync(`${k}.pub`, 'utf8').trim().split(/\s+/);
        return `[${address}]:${port} ${type} ${b64}`;
      }),
    log,
    accepted: () => (log().match(/Accepted publickey for /g) ?? []).length,
    async stop() {
      if (child.exitCode === null) {
        process.kill(pid, 'SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * sshd runs every command through the login user's shell, and Debian's bash reads ~/.bashrc for
 * commands sshd runs: a machine whose root ~/.bashrc runs `pyenv init` (0.5 s a shell here, 2.5 s
 * under load) made "100 concurrent commands" time out. These tests are about the SSH layer, so
 * sshd gets a private mount namespace where root's ~/.bashrc is an empty file; the same PID is
 * sshd (`exec`), still stopped by PID. What a heavy shell costs tiseal on real hosts is a
 * benchmark's business (bench/), not these tests'.
 */
function sshdCommand(dir: string, configFile: string): [string, string[]] {
  const rc = '/root/.bashrc';
  if (process.getuid?.() !== 0 || !fs.existsSync(rc) || !fs.existsSync('/usr/bin/unshare')) return [SSHD, ['-D', '-e', '-f', configFile]];
  const empty = path.join(dir, 'empty-bashrc');
  fs.writeFileSync(empty, '', { mode: 0o644 });
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  return ['/usr/bin/unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', `mount --bind ${q(empty)} ${rc} && exec ${q(SSHD)} -D -e -f ${q(configFile)}`]];
}

/** Wait until `pred` holds (sshd writes its log lines asynchronously). */
export async function waitFor(pred: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return pred();
}
