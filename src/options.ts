import * as os from 'os';
import * as path from 'path';
import { UsageError } from './errors';

/** Options shared by every command that talks to a cluster. CLI flags win over TISEAL_* env vars. */
export interface GlobalOptions {
  yes: boolean;
  dryRun: boolean;
  identityFiles: string[];
  sshUser?: string;
  sshPort?: number;
  knownHosts: string;
  acceptNewHostKeys: boolean;
  sshConfig?: string;
  stateDir: string;
  clusterName?: string;
  concurrency: number;
  json: boolean;
  /** True when a human can answer prompts (stdin and stdout are terminals). */
  interactive: boolean;
}

export function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

export function parsePositiveInt(value: string, flag: string, max = 65535): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(`invalid value for ${flag}: '${value}' (expected an integer 1..${max})`);
  }
  return Number(value);
}

/** Commander's parsed option bag → GlobalOptions. */
export function toGlobalOptions(raw: Record<string, unknown>): GlobalOptions {
  const ids = raw.identityFile as string[] | string | undefined;
  const identityFiles = (Array.isArray(ids) ? ids : ids ? String(ids).split(path.delimiter) : []).filter(Boolean).map(expandHome);
  return {
    yes: Boolean(raw.yes),
    dryRun: Boolean(raw.dryRun),
    identityFiles,
    sshUser: raw.sshUser as string | undefined,
    sshPort: raw.sshPort === undefined ? undefined : parsePositiveInt(String(raw.sshPort), '--ssh-port'),
    knownHosts: expandHome((raw.knownHosts as string | undefined) ?? '~/.ssh/known_hosts'),
    acceptNewHostKeys: Boolean(raw.acceptNewHostKeys),
    sshConfig: raw.sshConfig ? expandHome(String(raw.sshConfig)) : undefined,
    stateDir: path.resolve(expandHome((raw.stateDir as string | undefined) ?? '~/.tiseal')),
    clusterName: raw.clusterName as string | undefined,
    concurrency: raw.concurrency === undefined ? 5 : parsePositiveInt(String(raw.concurrency), '--concurrency', 256),
    json: Boolean(raw.json),
    interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
  };
}

/** Default cluster name: the topology file's base name without extension (`prod.yaml` → `prod`). */
export function clusterNameFor(topologyFile: string, explicit?: string): string {
  const name = explicit ?? path.basename(topologyFile).replace(/\.(ya?ml)$/i, '');
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new UsageError(`invalid cluster name '${name}'`, 'use letters, digits, dot, dash and underscore, e.g. --cluster-name prod');
  }
  return name;
}
