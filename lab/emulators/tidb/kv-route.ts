import * as crypto from 'crypto';
import * as net from 'net';
import * as tls from 'tls';
import { httpRequest, sleep } from '../common/http';
import { asUint64, Json, parseJsonLossless } from '../common/json';
import type { Logger } from '../common/log';
import { errors, MysqlError } from '../common/mysql-packets';
import type { KvRoute } from '../common/mysql-sql';
import type { PdClient } from '../common/pd-client';
import { clientTlsOptions, splitHostPort, TlsPaths } from '../common/tls';

/**
 * The route every test.kv statement takes, each hop over the cluster TLS TiDB started with
 * (`[security] cluster-ssl-*`):
 * 1. a TSO from the PD leader (followers answer 503; every PD endpoint is tried until the deadline);
 * 2. the key's region from TiDB's region cache, filled from PD (`/pd/api/v1/regions`, `/stores`;
 *    the emulator's key space is sha1(key), see pd/regions.ts), then the request to the region's
 *    leader store.
 * Region errors are handled like client-go's RegionRequestSender (internal/locate/region_request.go)
 * with its Backoffer (config/retry/config.go): NotLeader with a new leader → retry there at once;
 * NotLeader without one (an election) or pointing at a store that just failed → `regionScheduling`
 * backoff (2 ms … 500 ms); a send failure → `tikvRPC` backoff (100 ms … 2 s, equal jitter) and the
 * next peer; other region errors → `regionMiss` (2 ms … 500 ms) and a reload from PD. When the
 * sleeps exceed the budget (20 s, client-go's PrewriteMaxBackoff / getMaxBackoff), the error of the
 * kind that slept longest is returned (retry/backoff.go): `tikvRPC` → 9002 "TiKV server timeout",
 * the region kinds → 9005 "Region is unavailable" (pkg/store/driver/error/error.go ToTiDBErr).
 * PD unreachable or without a leader → 9001 "PD server timeout: …".
 */
const PD_DEADLINE_MS = 5000;
const STORE_TIMEOUT_MS = 3000;
/** client-go's budget (PrewriteMaxBackoff / getMaxBackoff: 20 s). */
export const MAX_BACKOFF_MS = 20000;
const SLOW_MS = 300;

/**
 * The backoff budget: client-go's 20 s, or TISEAL_EMULATOR_KV_BACKOFF_MS for tests that only need
 * the budget spent, not its length (the lab never sets it, so the lab's TiDBs wait as long as TiDB).
 */
export function maxBackoffMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TISEAL_EMULATOR_KV_BACKOFF_MS);
  return Number.isFinite(v) && v > 0 ? v : MAX_BACKOFF_MS;
}

type BackoffKind = 'tikvRPC' | 'regionScheduling' | 'regionMiss';
const BACKOFF: Record<BackoffKind, { base: number; cap: number; jitter: boolean }> = {
  tikvRPC: { base: 100, cap: 2000, jitter: true },
  regionScheduling: { base: 2, cap: 500, jitter: false },
  regionMiss: { base: 2, cap: 500, jitter: false },
};

interface Region {
  id: string;
  start: string;
  end: string;
  peers: string[];
  leader: string;
}

class Backoffer {
  private total = 0;
  private readonly budget = maxBackoffMs();
  private readonly slept: Record<BackoffKind, number> = { tikvRPC: 0, regionScheduling: 0, regionMiss: 0 };
  private readonly attempts: Record<BackoffKind, number> = { tikvRPC: 0, regionScheduling: 0, regionMiss: 0 };

  async backoff(kind: BackoffKind): Promise<void> {
    if (this.total >= this.budget) {
      const longest = (Object.keys(this.slept) as BackoffKind[]).sort((a, b) => this.slept[b] - this.slept[a])[0];
      throw longest === 'tikvRPC' ? errors.tikvServerTimeout() : errors.regionUnavailable();
    }
    const c = BACKOFF[kind];
    const exp = Math.min(c.cap, c.base * 2 ** this.attempts[kind]++);
    const ms = c.jitter ? exp / 2 + Math.random() * (exp / 2) : exp;
    this.slept[kind] += ms;
    this.total += ms;
    await sleep(ms);
  }
}

export class ClusterKvRoute implements KvRoute {
  private regions: Region[] = [];
  private addresses = new Map<string, string>();
  private pdLeader?: string;

  constructor(private readonly pd: PdClient, private readonly paths: TlsPaths | undefined, private readonly log: Logger) {}

  private tlsOpts(): tls.ConnectionOptions | undefined {
    return this.paths ? clientTlsOptions(this.paths) : undefined;
  }

  /**
   * Like the PD client: the member that answered last (the leader, for a TSO) first, as the client
   * keeps its leader's connection (tikv/pd client/pd_service_discovery.go), then the others; back
   * off; give up at the deadline.
   */
  private async pdCall(path: string, method: string, mark?: (what: string) => void): Promise<Json> {
    const deadline = Date.now() + PD_DEADLINE_MS;
    let reason = '';
    for (;;) {
      const order = this.pdLeader ? [this.pdLeader, ...this.pd.endpoints.filter((e) => e !== this.pdLeader)] : this.pd.endpoints;
      for (const ep of order) {
        try {
          const r = await httpRequest(this.pd.urlFor(ep) + path, { method, body: method === 'POST' ? '{}' : undefined, tls: this.tlsOpts(), timeoutMs: 1500 });
          if (r.status === 200) {
            if (method === 'POST') this.pdLeader = ep; // only the leader hands out timestamps
            return parseJsonLossless(r.body);
          }
          reason = `${ep}: ${r.status} ${r.body.trim().replace(/^"|"$/g, '')}`;
        } catch (e) {
          reason = `${ep}: ${(e as Error).message}`;
        }
        mark?.(`pd ${reason.slice(0, 60)}`);
      }
      if (Date.now() + 200 > deadline) throw errors.pdServerTimeout(reason);
      await sleep(200);
    }
  }

  async tso(mark?: (what: string) => void): Promise<bigint> {
    const j = (await this.pdCall('/pd/api/v1/emulator/tso', 'POST', mark)) as Record<string, Json>;
    return asUint64(j.timestamp);
  }

  /** Region cache reload: regions and store addresses from PD. */
  private async reload(): Promise<void> {
    const [rj, sj] = await Promise.all([this.pdCall('/pd/api/v1/regions', 'GET'), this.pdCall('/pd/api/v1/stores', 'GET')]);
    this.regions = (((rj as Record<string, Json>).regions as Record<string, Json>[]) ?? []).map((r) => ({
      id: asUint64(r.id).toString(),
      start: String(r.start_key ?? ''),
      end: String(r.end_key ?? ''),
      peers: ((r.peers as Record<string, Json>[]) ?? []).map((p) => asUint64(p.store_id).toString()),
      leader: (r.leader as Record<string, Json> | undefined)?.store_id !== undefined ? asUint64((r.leader as Record<string, Json>).store_id).toString() : '',
    }));
    this.addresses = new Map(
      (((sj as Record<string, Json>).stores as Record<string, Json>[]) ?? []).map((s) => {
        const st = s.store as Record<string, Json>;
        return [asUint64(st.id).toString(), String(st.address)];
      }),
    );
  }

  private locate(key: string): Region | undefined {
    const h = crypto.createHash('sha1').update(key, 'utf8').digest('hex').toUpperCase();
    return this.regions.find((r) => h >= r.start && (r.end === '' || h < r.end));
  }

  private rpc(store: string, line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const address = this.addresses.get(store);
      if (!address) return reject(new Error(`store ${store} has no address`));
      const { host, port } = splitHostPort(address);
      let sock: net.Socket;
      try {
        const o = this.tlsOpts();
        sock = o ? tls.connect({ host, port, ...o, ALPNProtocols: ['h2'], servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port });
      } catch (e) {
        reject(e);
        return;
      }
      let buf = '';
      const done = (err?: Error, reply?: string): void => {
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve(reply!);
      };
      const timer = setTimeout(() => done(new Error(`store ${store} (${address}) timed out`)), STORE_TIMEOUT_MS);
      sock.once(this.paths ? 'secureConnect' : 'connect', () => sock.write(line + '\n'));
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) done(undefined, buf.slice(0, nl));
      });
      sock.on('error', (e) => done(e));
      sock.on('end', () => done(new Error(`store ${store} closed the connection`)));
    });
  }

  /** TSO first (a plaintext TiDB cannot get one from a TLS PD), then the region's leader. */
  private async onRegion(key: string, build: (store: string, region: string, ts: bigint) => string): Promise<string> {
    const t0 = Date.now();
    const trace: string[] = [];
    const mark = (what: string): void => void trace.push(`${what}@${Date.now() - t0}ms`);
    try {
      return await this.route(key, build, mark);
    } finally {
      // TiDB's slow query log (slow-threshold, 300 ms) names where the time went; so does this.
      if (Date.now() - t0 >= SLOW_MS) this.log.warn('slow kv request', { key, ms: Date.now() - t0, trace: trace.join(' ') });
    }
  }

  private async route(key: string, build: (store: string, region: string, ts: bigint) => string, mark: (what: string) => void): Promise<string> {
    const ts = await this.tso(mark);
    mark('tso');
    const bo = new Backoffer();
    const failed = new Set<string>();
    const redirected = new Set<string>();
    let target: string | undefined;
    for (;;) {
      let region = this.locate(key);
      if (!region || !region.leader) {
        await this.reload();
        mark('reload');
        region = this.locate(key);
      }
      if (!region) {
        await bo.backoff('regionMiss');
        continue;
      }
      const store = target ?? (region.leader && !failed.has(region.leader) ? region.leader : region.peers.find((p) => !failed.has(p)) ?? region.leader);
      target = undefined;
      if (!store) {
        await bo.backoff('regionScheduling');
        this.regions = [];
        continue;
      }
      let reply: string;
      try {
        reply = await this.rpc(store, build(store, region.id, ts));
        mark(`store${store}:${reply.slice(0, 40)}`);
      } catch (e) {
        mark(`store${store}:${(e as Error).message}`);
        this.log.warn('send request to TiKV failed', { store, region: region.id, error: (e as Error).message });
        failed.add(store);
        if (failed.size >= region.peers.length) failed.clear();
        await bo.backoff('tikvRPC');
        continue;
      }
      if (!reply.startsWith('error:')) return reply;
      const nl = /^error: NotLeader leader=(\d+)/.exec(reply);
      if (nl) {
        const leader = nl[1];
        if (leader !== '0' && leader !== store && !failed.has(leader)) {
          region.leader = leader; // the region cache learns the new leader; retried at once
          target = leader;
          // Sent there before (a transfer in flight, the two point at each other): back off first.
          if (redirected.has(leader)) await bo.backoff('regionScheduling');
          redirected.add(leader);
          continue;
        }
        region.leader = '';
        await bo.backoff('regionScheduling');
        continue;
      }
      this.log.warn('TiKV returned a region error', { store, region: region.id, reply });
      this.regions = [];
      await bo.backoff('regionMiss');
    }
  }

  async put(key: string, value: string): Promise<boolean> {
    const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
    const reply = await this.onRegion(key, (s, r, ts) => `kv_put ${s} ${r} ${hex(key)} ${hex(value)} ${ts}`);
    const m = /^ok ([01])$/.exec(reply);
    if (!m) throw new MysqlError(1105, 'HY000', `unexpected TiKV reply: ${reply}`);
    return m[1] === '1';
  }

  async get(key: string): Promise<string | undefined> {
    const reply = await this.onRegion(key, (s, r, ts) => `kv_get ${s} ${r} ${Buffer.from(key, 'utf8').toString('hex')} ${ts}`);
    if (reply === 'notfound') return undefined;
    const m = /^value ([0-9a-f]*)$/.exec(reply);
    if (!m) throw new MysqlError(1105, 'HY000', `unexpected TiKV reply: ${reply}`);
    return Buffer.from(m[1], 'hex').toString('utf8');
  }
}
