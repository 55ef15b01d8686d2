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
 * 2. the key's store from PD's store list; then the read/write on that store's server port.
 * Placement is one store per key (sha1(key) mod the TiKV stores, by id): no regions, replicas or
 * leader elections. Errors are TiDB's (pkg/store/driver/error/error.go ToTiDBErr):
 * PD unreachable → 9001 "PD server timeout: …"; store down/unreachable → 9005 "Region is unavailable".
 */
const PD_DEADLINE_MS = 5000;
const STORE_TIMEOUT_MS = 3000;

interface StoreInfo {
  id: string;
  address: string;
  state: string;
}

export class ClusterKvRoute implements KvRoute {
  constructor(private readonly pd: PdClient, private readonly paths: TlsPaths | undefined, private readonly log: Logger) {}

  private tlsOpts(): tls.ConnectionOptions | undefined {
    return this.paths ? clientTlsOptions(this.paths) : undefined;
  }

  /** Like the PD client: try the members until one (the leader) answers, back off, give up at the deadline. */
  private async pdCall(path: string, method: string): Promise<Json> {
    const deadline = Date.now() + PD_DEADLINE_MS;
    let reason = '';
    for (;;) {
      for (const ep of this.pd.endpoints) {
        try {
          const r = await httpRequest(this.pd.urlFor(ep) + path, { method, body: method === 'POST' ? '{}' : undefined, tls: this.tlsOpts(), timeoutMs: 1500 });
          if (r.status === 200) return parseJsonLossless(r.body);
          reason = `${ep}: ${r.status} ${r.body.trim().replace(/^"|"$/g, '')}`;
        } catch (e) {
          reason = `${ep}: ${(e as Error).message}`;
        }
      }
      if (Date.now() + 200 > deadline) throw errors.pdServerTimeout(reason);
      await sleep(200);
    }
  }

  async tso(): Promise<bigint> {
    const j = (await this.pdCall('/pd/api/v1/emulator/tso', 'POST')) as Record<string, Json>;
    return asUint64(j.timestamp);
  }

  private async storeFor(key: string): Promise<StoreInfo> {
    const j = (await this.pdCall('/pd/api/v1/stores', 'GET')) as Record<string, Json>;
    const stores = ((j.stores as Record<string, Json>[]) ?? [])
      .map((s) => s.store as Record<string, Json>)
      .filter((s) => s.state_name !== 'Tombstone' && !((s.labels as Record<string, Json>[] | undefined) ?? []).some((l) => l.key === 'engine' && l.value === 'tiflash'))
      .map((s) => ({ id: asUint64(s.id).toString(), address: String(s.address), state: String(s.state_name) }))
      .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    if (stores.length === 0) throw errors.regionUnavailable();
    const h = crypto.createHash('sha1').update(key, 'utf8').digest().readUInt32BE(0);
    return stores[h % stores.length];
  }

  private rpc(store: StoreInfo, line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const { host, port } = splitHostPort(store.address);
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
      const timer = setTimeout(() => done(new Error(`store ${store.id} (${store.address}) timed out`)), STORE_TIMEOUT_MS);
      sock.once(this.paths ? 'secureConnect' : 'connect', () => sock.write(line + '\n'));
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) done(undefined, buf.slice(0, nl));
      });
      sock.on('error', (e) => done(e));
      sock.on('end', () => done(new Error(`store ${store.id} closed the connection`)));
    });
  }

  /** TSO first (a plaintext TiDB cannot get one from a TLS PD), then the store. */
  private async onStore(key: string, build: (store: StoreInfo, ts: bigint) => string): Promise<string> {
    const ts = await this.tso();
    const store = await this.storeFor(key);
    if (store.state !== 'Up') {
      this.log.warn('region is unavailable', { key, store: store.id, state: store.state });
      throw errors.regionUnavailable();
    }
    let reply: string;
    try {
      reply = await this.rpc(store, build(store, ts));
    } catch (e) {
      this.log.warn('send request to TiKV failed', { store: store.id, addr: store.address, error: (e as Error).message });
      throw errors.regionUnavailable();
    }
    if (reply.startsWith('error:')) {
      this.log.warn('TiKV returned an error', { store: store.id, reply });
      throw errors.regionUnavailable();
    }
    return reply;
  }

  async put(key: string, value: string): Promise<boolean> {
    const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
    const reply = await this.onStore(key, (s, ts) => `kv_put ${s.id} ${hex(key)} ${hex(value)} ${ts}`);
    const m = /^ok ([01])$/.exec(reply);
    if (!m) throw new MysqlError(1105, 'HY000', `unexpected TiKV reply: ${reply}`);
    return m[1] === '1';
  }

  async get(key: string): Promise<string | undefined> {
    const reply = await this.onStore(key, (s, ts) => `kv_get ${s.id} ${Buffer.from(key, 'utf8').toString('hex')} ${ts}`);
    if (reply === 'notfound') return undefined;
    const m = /^value ([0-9a-f]*)$/.exec(reply);
    if (!m) throw new MysqlError(1105, 'HY000', `unexpected TiKV reply: ${reply}`);
    return Buffer.from(m[1], 'hex').toString('utf8');
  }
}
