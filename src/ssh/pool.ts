/**
 * One SSH connection per host:port for a whole run, shared by every task. Concurrent callers
 * for the same host wait on the same pending connect; ProxyJump hops are shared the same way.
 */
import type { Duplex } from 'stream';
import { SshError } from '../errors';
import { planAuth } from './auth';
import { connectError, openConnection, type ConnectParams, type ConnectTarget } from './connect';
import type { ExecutorPool } from './executor';
import { resolveSshOptions, localUserName, type ResolvedSshOptions, type SshOptions } from './options';
import { loadHostConfig, type JumpHost, type ResolvedHostConfig } from './sshConfig';
import { SshExecutor } from './sshExecutor';

export interface SshHostStats {
  host: string;
  port: number;
  /** True for a ProxyJump hop. */
  jump?: boolean;
  /** SSH handshakes made to this host (1 per run when connection reuse works). */
  handshakes: number;
  /** Time spent in TCP connect + SSH handshake + login, all handshakes together. */
  connectMs: number;
  execs: number;
  /** Wire bytes sent / received, SSH framing included. */
  bytesUp: number;
  bytesDown: number;
  /** Sum of exec round trips. */
  rttTotalMs: number;
}

/** Where and how to reach one host, after ~/.ssh/config and options are applied. */
export interface ResolvedTarget {
  /** Host as named by the caller (topology). */
  host: string;
  hostName: string;
  port: number;
  user: string;
  /** Where `user` came from, for messages (`--ssh-user`, `~/.ssh/config:12 (User)`, …). */
  userSource: string;
  configIdentityFiles: string[];
  proxyJump: JumpHost[];
}

interface HostRecord {
  host: string;
  port: number;
  jump: boolean;
  handshakes: number;
  connectMs: number;
  executors: SshExecutor[];
  /** Counters of released executors (dropped so their memory goes). */
  released: { execs: number; bytesUp: number; bytesDown: number; rttTotalMs: number };
}

export class SshPool implements ExecutorPool {
  readonly options: ResolvedSshOptions;
  private readonly targets = new Map<string, Promise<SshExecutor>>();
  private readonly jumps = new Map<string, Promise<SshExecutor>>();
  private readonly records = new Map<string, HostRecord>();
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(options: SshOptions = {}) {
    this.options = resolveSshOptions(options);
  }

  /**
   * Apply precedence: explicit port > options.port > ssh config Port > 22; like OpenSSH, the
   * command line's user (options.user) > ssh config User > the default (topology user) > local user.
   */
  resolveTarget(host: string, port?: number): ResolvedTarget {
    const cfg = this.hostConfig(host);
    const o = this.options;
    const [user, userSource] =
      o.user !== undefined ? [o.user, '--ssh-user']
      : cfg.user !== undefined ? [cfg.user, `User in ${cfg.userFrom ?? o.sshConfigFile}`]
      : o.defaultUser !== undefined ? [o.defaultUser, o.defaultUserSource ?? 'the default user']
      : [localUserName(), 'the local user name'];
    return {
      host,
      hostName: cfg.hostName ?? host,
      port: port ?? o.port ?? cfg.port ?? 22,
      user,
      userSource,
      configIdentityFiles: cfg.identityFiles,
      proxyJump: cfg.proxyJump,
    };
  }

  private hostConfig(host: string): ResolvedHostConfig {
    try {
      return loadHostConfig(this.options.sshConfigFile, host);
    } catch (err) {
      throw new SshError(host, `${this.options.sshConfigFile}: ${(err as Error).message}`, 'fix the ssh config file, or pass --ssh-config to use another one', err);
    }
  }

  async get(host: string, port?: number): Promise<SshExecutor> {
    if (this.closed) throw new SshError(host, 'the SSH pool is already closed', 'this is a bug in tiseal: a task ran after the run finished');
    const t = this.resolveTarget(host, port);
    const key = `${host}:${t.port}`;
    const existing = this.targets.get(key);
    if (existing) {
      const ex = await existing;
      if (!ex.isClosed) return ex;
      if (this.targets.get(key) === existing) this.targets.delete(key); // lost: reconnect once asked again
      return this.get(host, port);
    }
    const pending = this.connectTarget(t);
    this.targets.set(key, pending);
    pending.catch(() => {
      if (this.targets.get(key) === pending) this.targets.delete(key); // let a later call retry
    });
    return pending;
  }

  private record(key: string, host: string, port: number, jump: boolean): HostRecord {
    let r = this.records.get(key);
    if (!r) {
      r = { host, port, jump, handshakes: 0, connectMs: 0, executors: [], released: { execs: 0, bytesUp: 0, bytesDown: 0, rttTotalMs: 0 } };
      this.records.set(key, r);
    }
    return r;
  }

  private async open(
    host: string,
    ct: ConnectTarget,
    configIdentityFiles: string[],
    via: SshExecutor | undefined,
    rec: HostRecord,
  ): Promise<SshExecutor> {
    const auth = planAuth({
      label: ct.label,
      username: ct.user,
      explicitFiles: this.options.identityFiles,
      configFiles: configIdentityFiles,
      agent: this.options.agent,
    });
    const params: ConnectParams = {
      auth,
      knownHostsFile: this.options.knownHostsFile,
      acceptNewHostKeys: this.options.acceptNewHostKeys,
      readyTimeoutMs: this.options.readyTimeoutMs,
      keepaliveIntervalMs: this.options.keepaliveIntervalMs,
      via: via?.label,
    };
    if (via) {
      let sock: Duplex;
      try {
        sock = await via.forwardOut(ct.hostName, ct.port);
      } catch (err) {
        throw connectError(ct, err as Error, params);
      }
      params.sock = sock;
    }
    rec.handshakes++;
    const t0 = performance.now();
    const conn = await openConnection(ct, params).finally(() => (rec.connectMs += performance.now() - t0));
    const ex = new SshExecutor({ host, user: ct.user, label: ct.label, connection: conn, concurrency: this.options.concurrency });
    rec.executors.push(ex);
    return ex;
  }

  private async connectTarget(t: ResolvedTarget): Promise<SshExecutor> {
    const via = t.proxyJump.length ? await this.jumpChain(t.proxyJump) : undefined;
    const label = t.hostName === t.host ? `${t.host}:${t.port}` : `${t.host} (${t.hostName}:${t.port})`;
    const rec = this.record(`${t.host}:${t.port}`, t.host, t.port, false);
    return this.open(t.host, { label, hostName: t.hostName, port: t.port, user: t.user, userSource: t.userSource }, t.configIdentityFiles, via, rec);
  }

  /** Connect (or reuse) each hop in order, each through the previous one; returns the last hop. */
  private async jumpChain(hops: JumpHost[]): Promise<SshExecutor> {
    let via: SshExecutor | undefined;
    let chainKey = '';
    for (const hop of hops) {
      const cfg = this.hostConfig(hop.host);
      const hostName = cfg.hostName ?? hop.host;
      const port = hop.port ?? cfg.port ?? 22;
      // Like OpenSSH, a hop's user comes from the ProxyJump spec or its own config, not --ssh-user.
      const user = hop.user ?? cfg.user ?? localUserName();
      const userSource = hop.user !== undefined ? 'the ProxyJump spec' : cfg.user !== undefined ? `User in ${cfg.userFrom ?? this.options.sshConfigFile}` : 'the local user name';
      chainKey += `${chainKey ? '>' : ''}${user}@${hostName}:${port}`;
      const key = chainKey;
      const prev = via;
      let pending = this.jumps.get(key);
      if (pending) {
        const ex = await pending;
        if (ex.isClosed) pending = undefined;
      }
      if (!pending) {
        const rec = this.record(`jump:${key}`, hostName, port, true);
        const p = this.open(hop.host, { label: `jump host ${user}@${hostName}:${port}`, hostName, port, user, userSource }, cfg.identityFiles, prev, rec);
        this.jumps.set(key, p);
        p.catch(() => {
          if (this.jumps.get(key) === p) this.jumps.delete(key);
        });
        pending = p;
      }
      via = await pending;
    }
    return via!;
  }

  stats(): SshHostStats[] {
    return [...this.records.values()].map((r) => {
      const s: SshHostStats = { host: r.host, port: r.port, handshakes: r.handshakes, connectMs: Math.round(r.connectMs), ...r.released };
      if (r.jump) s.jump = true;
      for (const ex of r.executors) {
        s.execs += ex.execs;
        s.bytesUp += ex.counters.bytesUp;
        s.bytesDown += ex.counters.bytesDown;
        s.rttTotalMs += ex.rttTotalMs;
      }
      return s;
    });
  }

  async release(host: string, port?: number): Promise<void> {
    const key = `${host}:${this.resolveTarget(host, port).port}`;
    const pending = this.targets.get(key);
    if (!pending) return;
    this.targets.delete(key);
    const ex = await pending.catch(() => undefined);
    if (!ex) return;
    // The caller goes on without waiting for the goodbye; closeAll() waits for it.
    const closing = ex.close().finally(() => this.closing.delete(closing));
    this.closing.add(closing);
    const rec = this.records.get(key);
    if (rec) {
      rec.executors = rec.executors.filter((e) => e !== ex);
      rec.released.execs += ex.execs;
      rec.released.bytesUp += ex.counters.bytesUp;
      rec.released.bytesDown += ex.counters.bytesDown;
      rec.released.rttTotalMs += ex.rttTotalMs;
    }
  }

  /** Close every connection: targets first, then the jump hosts they tunnel through. */
  async closeAll(): Promise<void> {
    this.closed = true;
    const settle = async (ps: Iterable<Promise<SshExecutor>>) => {
      await Promise.all([...ps].map((p) => p.then((ex) => ex.close(), () => undefined)));
    };
    await settle(this.targets.values());
    this.targets.clear();
    await Promise.all(this.closing);
    const hops = [...this.jumps.entries()].sort((a, b) => b[0].length - a[0].length); // innermost hop first
    for (const [, p] of hops) await settle([p]);
    this.jumps.clear();
  }
}

/** One-off connection outside a pool; closing it also closes its jump hosts. */
export async function connectSsh(host: string, options: SshOptions = {}, port?: number): Promise<SshExecutor> {
  const pool = new SshPool(options);
  try {
    const ex = await pool.get(host, port);
    ex.onClose(() => pool.closeAll());
    return ex;
  } catch (err) {
    await pool.closeAll();
    throw err;
  }
}
