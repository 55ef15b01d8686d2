/**
 * Run the real tiseal CLI (bin/tiseal.js → dist/) against the lab, as an operator would: its own
 * process, no terminal, the lab's key, known_hosts and state dir. Lab tests and benchmarks use it.
 */
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import type { LabInfo } from './index';
import { repoRoot } from './options';

const BIN = path.join(repoRoot(), 'bin', 'tiseal.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** This process's environment without TISEAL_* settings, so a run sees only the flags it is given. */
export function envWithoutTiseal(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('TISEAL_')) delete env[k];
  return env;
}

export function tisealEnv(info: LabInfo): NodeJS.ProcessEnv {
  return { ...envWithoutTiseal(), TISEAL_IDENTITY_FILE: info.identityFile, TISEAL_KNOWN_HOSTS: info.knownHostsFile, TISEAL_SSH_USER: info.user, TISEAL_STATE_DIR: info.stateDir, NO_COLOR: '1' };
}

/** Start tiseal; resolves when it exits. `onSpawn` gets the child (to kill it). */
export function runTiseal(info: LabInfo, args: string[], opts: { onSpawn?: (c: ChildProcess) => void; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: tisealEnv(info), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 8 * 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    opts.onSpawn?.(child);
  });
}

export const clusterName = (info: LabInfo) => path.basename(info.topologyFile).replace(/\.ya?ml$/, '');
export const clusterDir = (info: LabInfo) => path.join(info.stateDir, 'clusters', clusterName(info));
export const tlsFiles = (info: LabInfo) => {
  const d = path.join(clusterDir(info), 'tls');
  return { ca: path.join(d, 'ca.crt'), caKey: path.join(d, 'ca.key'), cert: path.join(d, 'client.crt'), key: path.join(d, 'client.key') };
};

