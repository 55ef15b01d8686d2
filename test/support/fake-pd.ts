/**
 * A PD for unit tests, over real HTTP on 127.0.0.1, so the code under test goes through tiseal's
 * PdClient as against a real PD. It answers the store and scheduler API with PD's JSON shapes and
 * status codes (tikv/pd server/api/store.go, server/api/scheduler.go,
 * pkg/schedule/schedulers/evict_leader.go at v6.5–v8.5: ONE evict-leader-scheduler holding several
 * store IDs; DELETE of `-N` drops store N and the scheduler with its last store; a store it does
 * not hold answers 404 "scheduler not found"). `leader_count` is omitted when 0, as PD's
 * `omitempty` does.
 *
 * Leaders under the evict-leader scheduler move to other Up stores, at most `movesPerPoll` per
 * GET of the store (PD moves them over a few scheduling rounds, never at once); a `stuck` store's
 * never move. `events` records adds, removes and whatever the test appends (restarts), in order.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import { PdClient } from '../../src/pd/client';

export interface FakeStore {
  id: string;
  address: string;
  stateName: string;
  leaders: number;
  regions?: number;
}

export interface FakePdOptions {
  movesPerPoll?: number;
  /** false: the scheduler-config list answers 404, as a PD that does not serve it. */
  configList?: boolean;
}

export class FakePd {
  readonly stores: FakeStore[];
  /** Store IDs the evict-leader scheduler holds. */
  readonly evicting = new Set<string>();
  readonly stuck = new Set<string>();
  readonly events: string[] = [];
  /** Every request, `METHOD path`. */
  readonly requests: string[] = [];
  movesPerPoll: number;
  configList: boolean;
  /** Called as PD accepts an evict-leader scheduler for a store (to look at the hosts at that moment). */
  onAdd?: (storeId: string) => void;
  private server?: http.Server;
  private port = 0;

  constructor(stores: FakeStore[], opts: FakePdOptions = {}) {
    this.stores = stores.map((s) => ({ regions: 4, ...s }));
    this.movesPerPoll = opts.movesPerPoll ?? 2;
    this.configList = opts.configList ?? true;
  }

  store(id: string): FakeStore {
    const s = this.stores.find((x) => x.id === id);
    if (!s) throw new Error(`fake PD: no store ${id}`);
    return s;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const [status, payload] = this.route(req.method ?? 'GET', req.url ?? '/', body);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** tiseal's PD client (plain http, as for a cluster without TLS). */
  client(): PdClient {
    return new PdClient([this.endpoint], undefined, { timeoutMs: 2000 });
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }

  private storeJson(s: FakeStore) {
    return { store: { id: Number(s.id), address: s.address, state_name: s.stateName }, status: { ...(s.leaders ? { leader_count: s.leaders } : {}), region_count: s.regions } };
  }

  private moveLeaders(s: FakeStore): void {
    if (!this.evicting.has(s.id) || this.stuck.has(s.id)) return;
    const targets = this.stores.filter((t) => t !== s && t.stateName === 'Up' && !this.evicting.has(t.id));
    for (let i = 0; i < this.movesPerPoll && s.leaders > 0 && targets.length; i++) {
      s.leaders--;
      targets[i % targets.length].leaders++;
    }
  }

  private route(method: string, url: string, body: string): [number, unknown] {
    this.requests.push(`${method} ${url}`);
    let m: RegExpExecArray | null;
    if (method === 'GET' && url === '/pd/api/v1/stores') return [200, { count: this.stores.length, stores: this.stores.map((s) => this.storeJson(s)) }];
    if (method === 'GET' && (m = /^\/pd\/api\/v1\/store\/(\d+)$/.exec(url))) {
      const s = this.stores.find((x) => x.id === m![1]);
      if (!s) return [404, `[PD:core:ErrStoreNotFound]store id ${m[1]} not found`];
      this.moveLeaders(s);
      return [200, this.storeJson(s)];
    }
    if (method === 'GET' && url === '/pd/api/v1/schedulers') return [200, ['balance-leader-scheduler', 'balance-region-scheduler', 'balance-hot-region-scheduler', ...(this.evicting.size ? ['evict-leader-scheduler'] : [])]];
    if (method === 'GET' && url === '/pd/api/v1/scheduler-config/evict-leader-scheduler/list') {
      if (!this.configList || this.evicting.size === 0) return [404, 'scheduler not found'];
      return [200, { 'store-id-ranges': Object.fromEntries([...this.evicting].map((id) => [id, [{ 'start-key': '', 'end-key': '' }]])), batch: 3 }];
    }
    if (method === 'POST' && url === '/pd/api/v1/schedulers') {
      const input = JSON.parse(body) as { name?: string; store_id?: unknown };
      if (input.name !== 'evict-leader-scheduler') return [400, 'unknown scheduler'];
      if (typeof input.store_id !== 'number') return [400, 'missing store id'];
      const id = String(input.store_id);
      if (!this.stores.some((s) => s.id === id)) return [500, `[PD:core:ErrStoreNotFound]store id ${id} not found`];
      this.onAdd?.(id);
      this.evicting.add(id);
      this.events.push(`add ${id}`);
      return [200, 'The scheduler is created.'];
    }
    if (method === 'DELETE' && (m = /^\/pd\/api\/v1\/schedulers\/evict-leader-scheduler-(\d+)$/.exec(url))) {
      if (!this.evicting.delete(m[1])) return [404, '[PD:scheduler:ErrSchedulerNotFound]scheduler not found'];
      this.events.push(`remove ${m[1]}`);
      return [200, 'The scheduler is removed.'];
    }
    return [404, '404 page not found'];
  }
}
