/**
 * The TiDB emulator's MySQL server in-process on 127.0.0.1 over a fake store (what the SQL probers'
 * tests run against): several `Tidb`s may share one `Store`, as TiDBs share TiKV.
 */
import type { AddressInfo, Server, Socket } from 'net';
import type { Logger } from '../../lab/emulators/common/log';
import { MysqlError } from '../../lab/emulators/common/mysql-packets';
import { createMysqlServer } from '../../lab/emulators/common/mysql-server';
import type { KvRoute } from '../../lab/emulators/common/mysql-sql';
import { sleep } from '../../src/util/concurrency';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} } as unknown as Logger;

export interface Store extends KvRoute {
  data: Map<string, string>;
  /** the next `failPuts` puts fail with TiDB's 9005, as when TiKV is unreachable (true: every put, with 9001) */
  failPuts: number | boolean;
  /** reads answer this instead of the stored value */
  corrupt?: string;
  /** puts wait this long first (a TiDB stuck behind an unreachable region) */
  stallMs: number;
  /** puts that reached the store while it stalled */
  stalledPuts: number;
}

export function store(): Store {
  const s: Store = {
    data: new Map(),
    failPuts: 0,
    stallMs: 0,
    stalledPuts: 0,
    async put(k, v) {
      if (s.stallMs) {
        s.stalledPuts++;
        await sleep(s.stallMs);
      }
      if (s.failPuts === true) throw new MysqlError(9001, 'HY000', 'PD server timeout');
      if (typeof s.failPuts === 'number' && s.failPuts > 0 && s.failPuts--) throw new MysqlError(9005, 'HY000', 'Region is unavailable');
      const had = s.data.has(k);
      s.data.set(k, v);
      return had;
    },
    async get(k) {
      return s.corrupt ?? s.data.get(k);
    },
  };
  return s;
}

/** One emulated TiDB MySQL port; stop() closes it and drops its connections (a process exiting). */
export class Tidb {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(readonly kv: Store) {}

  async start(): Promise<this> {
    const srv = createMysqlServer({
      serverVersion: '8.0.11-TiDB-v8.5.1',
      log: quiet,
      rootPassword: () => '',
      offerSsl: false,
      ctx: {
        serverVersion: '8.0.11-TiDB-v8.5.1', tidbVersionText: 'Release Version: v8.5.1', requireSecureTransport: () => false, async setRequireSecureTransport() {},
        currentTls: () => undefined, reloadTls() {}, kv: this.kv,
      },
    });
    srv.on('connection', (s: Socket) => (this.sockets.add(s), s.on('close', () => this.sockets.delete(s))));
    await new Promise<void>((r, j) => (srv.once('error', j), srv.listen(this.port, '127.0.0.1', () => r())));
    this.port = (srv.address() as AddressInfo).port;
    this.server = srv;
    return this;
  }

  async stop(): Promise<void> {
    const srv = this.server;
    this.server = undefined;
    if (!srv) return;
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => srv.close(r));
  }
}

export const addr = (t: Tidb) => `127.0.0.1:${t.port}`;

/** The TiDBs a test file started: `start` one over a store, `stopAll` in afterEach. */
export function tidbFleet(): { start: (kv: Store) => Promise<Tidb>; stopAll: () => Promise<void> } {
  const running: Tidb[] = [];
  return {
    start: async (kv) => {
      const t = await new Tidb(kv).start();
      running.push(t);
      return t;
    },
    stopAll: async () => {
      await Promise.all(running.splice(0).map((t) => t.stop()));
    },
  };
}
