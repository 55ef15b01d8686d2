import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import type * as tls from 'tls';
import { httpRequest, sleep } from '../common/http';
import { Json, parseJsonLossless } from '../common/json';
import type { Logger } from '../common/log';
import type { PdConfig } from './config';

/**
 * The real etcd under the PD emulator. Its peer side is PD's peer port (real raft, real peer TLS
 * from PD's [security]); its client side listens on a private loopback port, and the emulator's
 * client port forwards gRPC and `/v3/*` to it. The advertised client URLs are PD's, so
 * `member list` shows what a real PD shows.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * The TCP ports a process listens on at 127.0.0.1 (Linux: its socket inodes in /proc/<pid>/fd
 * matched against /proc/<pid>/net/tcp).
 */
export function loopbackListenPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  const ports: number[] = [];
  for (const line of fs.readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st … inode; 0100007F = 127.0.0.1 (little-endian), 0A = LISTEN
    if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9])) continue;
    const [addr, port] = f[1].split(':');
    if (addr === '0100007F') ports.push(parseInt(port, 16));
  }
  return ports;
}

/** How often a start is tried again when another process took etcd's client port first. */
const PORT_TRIES = 5;

export class GatewayError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** etcd's JSON gateway (`POST /v3/...`), reached locally or through another PD's client URL. */
export class Gateway {
  constructor(readonly baseUrl: string, private readonly tlsOpts?: () => tls.ConnectionOptions) {}

  async call(p: string, body: unknown = {}, timeoutMs = 5000): Promise<Record<string, Json>> {
    const res = await httpRequest(this.baseUrl + p, {
      method: 'POST',
      body: JSON.stringify(body),
      tls: this.tlsOpts?.(),
      timeoutMs,
    });
    let j: Json;
    try {
      j = parseJsonLossless(res.body);
    } catch {
      throw new GatewayError(`etcd gateway ${p}: ${res.status} ${res.body.trim()}`, res.status);
    }
    if (res.status !== 200) {
      const o = j as Record<string, Json>;
      throw new GatewayError(String(o.error ?? o.message ?? res.body.trim()), res.status);
    }
    return j as Record<string, Json>;
  }

  async put(key: string, value: string | Buffer): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value) });
  }

  async get(key: string): Promise<Buffer | undefined> {
    const r = await this.call('/v3/kv/range', { key: b64(key) });
    const kvs = (r.kvs as Record<string, Json>[] | undefined) ?? [];
    return kvs.length ? Buffer.from(String(kvs[0].value ?? ''), 'base64') : undefined;
  }

  async getWithRevision(key: string): Promise<{ value?: Buffer; modRevision: string }> {
    const r = await this.call('/v3/kv/range', { key: b64(key) });
    const kvs = (r.kvs as Record<string, Json>[] | undefined) ?? [];
    if (!kvs.length) return { modRevision: '0' };
    return { value: Buffer.from(String(kvs[0].value ?? ''), 'base64'), modRevision: String(kvs[0].mod_revision) };
  }

  async prefix(prefix: string): Promise<{ key: string; value: Buffer }[]> {
    const r = await this.call('/v3/kv/range', { key: b64(prefix), range_end: b64(prefixEnd(prefix)) });
    const kvs = (r.kvs as Record<string, Json>[] | undefined) ?? [];
    return kvs.map((kv) => ({ key: Buffer.from(String(kv.key), 'base64').toString('utf8'), value: Buffer.from(String(kv.value ?? ''), 'base64') }));
  }

  async deleteKey(key: string): Promise<void> {
    await this.call('/v3/kv/deleterange', { key: b64(key) });
  }

  /** Put only if the key's mod_revision is still `modRevision` ("0" = key absent). */
  async putIf(key: string, modRevision: string, value: string | Buffer): Promise<boolean> {
    const compare =
      modRevision === '0'
        ? { key: b64(key), target: 'CREATE', create_revision: '0' }
        : { key: b64(key), target: 'MOD', mod_revision: modRevision };
    const r = await this.call('/v3/kv/txn', { compare: [compare], success: [{ request_put: { key: b64(key), value: b64(value) } }] });
    return r.succeeded === true;
  }

  async members(): Promise<EtcdMember[]> {
    const r = await this.call('/v3/cluster/member/list', {});
    return ((r.members as Record<string, Json>[] | undefined) ?? []).map((m) => ({
      id: BigInt(String(m.ID)),
      name: String(m.name ?? ''),
      peerURLs: (m.peerURLs as string[] | undefined) ?? [],
      clientURLs: (m.clientURLs as string[] | undefined) ?? [],
      isLearner: m.isLearner === true,
    }));
  }

  async status(): Promise<{ memberId: bigint; leaderId: bigint; clusterId: bigint }> {
    const r = await this.call('/v3/maintenance/status', {});
    const h = r.header as Record<string, Json>;
    return { memberId: BigInt(String(h.member_id)), leaderId: BigInt(String(r.leader ?? '0')), clusterId: BigInt(String(h.cluster_id)) };
  }
}

export interface EtcdMember {
  id: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export function b64(v: string | Buffer): string {
  return (typeof v === 'string' ? Buffer.from(v, 'utf8') : v).toString('base64');
}

function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix, 'utf8');
  b[b.length - 1] += 1;
  return b;
}

export interface EtcdStart {
  cfg: PdConfig;
  initialCluster: string;
  initialClusterState: 'new' | 'existing';
  log: Logger;
  peerAllowedCN?: string;
  forceNewCluster?: boolean;
  /** Test seam (the emulators never set it): where the client port comes from, default freePort. */
  pickPort?: () => Promise<number>;
}

export class EtcdProcess {
  child?: ChildProcess;
  clientUrl = '';
  gateway!: Gateway;
  private exited = false;
  exitPromise!: Promise<number | null>;

  /**
   * etcd needs its client port on the command line (its JSON gateway dials the listen address as
   * written, so port 0 does not do): a free port is picked, and another process can bind it before
   * etcd does. That etcd exits with "address already in use" and is started again on another port;
   * nothing is asked of the port before /proc shows this etcd listening there, so another etcd on
   * it never answers for this one.
   */
  async start(o: EtcdStart): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const port = await (o.pickPort ?? freePort)();
      const outcome = await this.startOn(o, port);
      if (outcome === 'started') return;
      if (attempt >= PORT_TRIES) throw new Error(`etcd could not bind a client port in ${PORT_TRIES} tries (last 127.0.0.1:${port}: address already in use)`);
      o.log.warn('embedded etcd lost its client port to another process, trying another', { port: String(port) });
    }
  }

  private async startOn(o: EtcdStart, port: number): Promise<'started' | 'port-taken'> {
    this.exited = false;
    this.clientUrl = `http://127.0.0.1:${port}`;
    this.gateway = new Gateway(this.clientUrl);
    const { cfg } = o;
    const args = [
      `--name=${cfg.name}`,
      `--data-dir=${cfg.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${cfg.advertiseClientUrls.join(',')}`,
      `--listen-peer-urls=${cfg.peerUrls.join(',')}`,
      `--initial-advertise-peer-urls=${cfg.advertisePeerUrls.join(',')}`,
      `--initial-cluster=${o.initialCluster}`,
      `--initial-cluster-state=${o.initialClusterState}`,
      '--initial-cluster-token=pd-cluster',
      '--logger=zap',
      '--log-outputs=stderr',
      `--log-level=${process.env.TISEAL_ETCD_LOG_LEVEL || 'warn'}`,
      '--auto-compaction-mode=periodic',
      '--auto-compaction-retention=1h',
    ];
    if (o.forceNewCluster) args.push('--force-new-cluster');
    const s = cfg.security;
    if (s.cert && s.key) {
      args.push(`--peer-cert-file=${s.cert}`, `--peer-key-file=${s.key}`);
      if (s.ca) args.push(`--peer-trusted-ca-file=${s.ca}`, '--peer-client-cert-auth');
      if (o.peerAllowedCN) args.push(`--peer-cert-allowed-cn=${o.peerAllowedCN}`);
    }
    fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
    const bin = process.env.TISEAL_ETCD_BIN || '/usr/bin/etcd';
    o.log.info('starting embedded etcd', { bin, client: this.clientUrl, peer: cfg.peerUrls.join(','), state: o.initialClusterState });
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: path.resolve('.') });
    this.child = child;
    let portTaken = false;
    const pipe = (stream: NodeJS.ReadableStream | null): void => {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          // etcd binds its listeners first (embed.StartEtcd): "listen tcp 127.0.0.1:<port>: bind: address already in use"
          if (line.includes(`listen tcp 127.0.0.1:${port}: bind: address already in use`)) portTaken = true;
          o.log.raw(`[etcd] ${line}`);
          buf = buf.slice(nl + 1);
        }
      });
    };
    pipe(child.stdout);
    pipe(child.stderr);
    this.exitPromise = new Promise((resolve) =>
      child.on('exit', (code) => {
        this.exited = true;
        resolve(code);
      }),
    );
    // Until this etcd listens on the port, nothing there is asked (it could be someone else's).
    for (;;) {
      if (this.exited) {
        const code = await this.exitPromise;
        if (portTaken) return 'port-taken';
        throw new Error(`etcd exited with code ${code}`);
      }
      let mine = false;
      try {
        mine = loopbackListenPorts(child.pid!).includes(port);
      } catch {
        /* not there yet, or gone: the exit check above tells */
      }
      if (mine) break;
      await sleep(20);
    }
    // Wait until etcd's client listener answers (quorum is not needed for maintenance/status).
    for (;;) {
      if (this.exited) throw new Error(`etcd exited with code ${await this.exitPromise}`);
      try {
        await this.gateway.status();
        return 'started';
      } catch {
        await sleep(100);
      }
    }
  }

  get running(): boolean {
    return !!this.child && !this.exited;
  }

  async stop(): Promise<void> {
    if (!this.child || this.exited) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), 5000);
    await this.exitPromise;
    clearTimeout(t);
  }
}
