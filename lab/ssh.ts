/**
 * The lab's own SSH use, through the system OpenSSH client: key generation, host key scanning
 * (known_hosts), and running scripts on hosts as `tidb` with strict host key checking.
 */
import * as fs from 'fs';
import * as net from 'net';
import { run, RunResult } from './sys';

export interface SshTarget {
  identityFile: string;
  knownHostsFile: string;
  user: string;
}

/** Create an ed25519 key pair (no passphrase) unless one exists. */
export async function ensureKeypair(file: string): Promise<string> {
  if (!fs.existsSync(file) || !fs.existsSync(`${file}.pub`)) {
    fs.rmSync(file, { force: true });
    fs.rmSync(`${file}.pub`, { force: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tiseal-lab', '-f', file]);
  }
  fs.chmodSync(file, 0o600);
  return fs.readFileSync(`${file}.pub`, 'utf8').trim();
}

/** Resolves true once something accepts TCP connections on host:port. */
export function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** known_hosts lines for one host (all key types sshd offers), or [] when it is not answering yet. */
export async function scanHostKeys(host: string, port = 22): Promise<string[]> {
  const r = await run('ssh-keyscan', ['-T', '3', '-p', String(port), host], { allowFailure: true, timeoutMs: 10_000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

export function sshArgs(t: SshTarget, host: string, port = 22): string[] {
  return [
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${t.knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'ConnectTimeout=5',
    '-o', 'LogLevel=ERROR',
    '-i', t.identityFile,
    '-p', String(port),
    `${t.user}@${host}`,
  ];
}

/** Run `command` on `host` (no login shell); `input` becomes its stdin. */
export function sshRun(t: SshTarget, host: string, command: string, opts: { input?: string; timeoutMs?: number; allowFailure?: boolean } = {}): Promise<RunResult> {
  return run('ssh', [...sshArgs(t, host), command], { input: opts.input, timeoutMs: opts.timeoutMs ?? 120_000, allowFailure: opts.allowFailure });
}

/** Run a bash script as root (`sudo -n bash -s`) on `host`. */
export function sshSudoScript(t: SshTarget, host: string, script: string, opts: { timeoutMs?: number; allowFailure?: boolean } = {}): Promise<RunResult> {
  return sshRun(t, host, 'sudo -n /bin/bash -s', { input: script, ...opts });
}
