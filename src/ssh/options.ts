import * as os from 'os';
import * as path from 'path';

/** How to reach hosts; mirrors the CLI flags (`--ssh-user`, `--ssh-port`, `-i`, `--accept-new-host-keys`, …). */
export interface SshOptions {
  /** Login user (`--ssh-user`); beats `User` from ssh config, like `ssh -l`. */
  user?: string;
  /** Login user when neither `user` nor ssh config's `User` names one (tiseal: topology global.user). Default: the local user. */
  defaultUser?: string;
  /** Where `defaultUser` comes from, for messages (e.g. `topology global.user`). */
  defaultUserSource?: string;
  /** Default port when the caller passes none; beats `Port` from ssh config. Default 22. */
  port?: number;
  /** Private keys to offer first (`-i`, repeatable). */
  identityFiles?: string[];
  /** Default ~/.ssh/known_hosts. */
  knownHostsFile?: string;
  /** Trust on first use: record unknown host keys. A changed key is refused regardless. */
  acceptNewHostKeys?: boolean;
  /** Default ~/.ssh/config (used when it exists); `false` disables. */
  sshConfigFile?: string | false;
  /** ssh-agent socket; default $SSH_AUTH_SOCK; `false` disables. */
  agent?: string | false;
  /** Connect + handshake + auth deadline. Default 10 000. */
  readyTimeoutMs?: number;
  /** SSH keepalive interval. Default 15 000 (a dead host is dropped after 3 missed replies). */
  keepaliveIntervalMs?: number;
  /** Simultaneous exec channels per connection (sshd's MaxSessions is 10). Default 8. */
  concurrency?: number;
}

export interface ResolvedSshOptions {
  user?: string;
  defaultUser?: string;
  defaultUserSource?: string;
  port?: number;
  identityFiles: string[];
  knownHostsFile: string;
  acceptNewHostKeys: boolean;
  sshConfigFile?: string;
  agent?: string;
  readyTimeoutMs: number;
  keepaliveIntervalMs: number;
  concurrency: number;
}

export function expandTilde(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

export function resolveSshOptions(o: SshOptions = {}): ResolvedSshOptions {
  const home = os.homedir();
  const agentEnv = process.env.SSH_AUTH_SOCK;
  return {
    user: o.user,
    defaultUser: o.defaultUser,
    defaultUserSource: o.defaultUserSource,
    port: o.port,
    identityFiles: (o.identityFiles ?? []).map(expandTilde),
    knownHostsFile: expandTilde(o.knownHostsFile ?? path.join(home, '.ssh', 'known_hosts')),
    acceptNewHostKeys: o.acceptNewHostKeys ?? false,
    sshConfigFile: o.sshConfigFile === false ? undefined : expandTilde(o.sshConfigFile ?? path.join(home, '.ssh', 'config')),
    agent: o.agent === false ? undefined : o.agent ?? (agentEnv ? agentEnv : undefined),
    readyTimeoutMs: o.readyTimeoutMs ?? 10_000,
    keepaliveIntervalMs: o.keepaliveIntervalMs ?? 15_000,
    concurrency: Math.max(1, o.concurrency ?? 8),
  };
}

export function localUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}
