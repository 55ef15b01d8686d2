import * as fs from 'fs';
import * as path from 'path';
import { asUint64, Json, parseJsonLossless, toJson } from './json';
import type { Logger } from './log';
import { HeartbeatRequest, PdClient } from './pd-client';
import { sleep } from './http';

/**
 * Store registration and heartbeats for TiKV and TiFlash, through the emulator-only endpoint
 * `POST /pd/api/v1/emulator/store-heartbeat`. The store identity (store id + cluster id) is kept in
 * the data dir like TiKV's store ident, so a restart keeps the same store and a store pointed at a
 * different PD cluster refuses to start.
 */
const IDENT_FILE = 'emulator-store-ident.json';

interface Ident {
  store_id: string;
  cluster_id: string;
}

function readIdent(dataDir: string): Ident | undefined {
  try {
    const j = parseJsonLossless(fs.readFileSync(path.join(dataDir, IDENT_FILE), 'utf8')) as Record<string, Json>;
    return { store_id: asUint64(j.store_id).toString(), cluster_id: asUint64(j.cluster_id).toString() };
  } catch {
    return undefined;
  }
}

function writeIdent(dataDir: string, ident: Ident): void {
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(path.join(dataDir, IDENT_FILE), toJson({ store_id: BigInt(ident.store_id), cluster_id: BigInt(ident.cluster_id) }) + '\n');
}

export interface StoreHeartbeatOptions {
  pd: PdClient;
  dataDir: string;
  log: Logger;
  info: Omit<HeartbeatRequest, 'store_id'>;
  intervalMs?: number;
  /** TiKV: what the store reports besides its identity (its leaders' terms, region/leader counts). */
  stats?: () => Record<string, unknown>;
  /** TiKV: PD's answer (regions this store is a peer of, leader operators). */
  onAnswer?: (answer: Record<string, Json>) => void;
}

export class StoreHeartbeat {
  private timer?: NodeJS.Timeout;
  private ident?: Ident;
  private failing = false;
  constructor(private readonly o: StoreHeartbeatOptions) {
    this.ident = readIdent(o.dataDir);
  }

  get storeId(): string | undefined {
    return this.ident?.store_id;
  }

  private async once(): Promise<Ident> {
    const body: HeartbeatRequest = { ...this.o.info, ...(this.ident ? { store_id: this.ident.store_id } : {}), ...this.o.stats?.() };
    const res = await this.o.pd.request('/pd/api/v1/emulator/store-heartbeat', { method: 'POST', body: toJson(body) });
    if (res.status !== 200) {
      const err = new Error(res.body.trim().replace(/^"|"$/g, ''));
      (err as Error & { status?: number }).status = res.status;
      throw err;
    }
    const j = parseJsonLossless(res.body) as Record<string, Json>;
    const got = { store_id: asUint64(j.store_id).toString(), cluster_id: asUint64(j.cluster_id).toString() };
    if (!this.ident || this.ident.cluster_id === got.cluster_id) this.o.onAnswer?.(j);
    return got;
  }

  /** Blocks until PD accepted the store, like TiKV blocking at start until it can reach PD. */
  async register(): Promise<string> {
    let attempt = 0;
    for (;;) {
      try {
        const got = await this.once();
        if (this.ident && this.ident.cluster_id !== got.cluster_id) {
          this.o.log.fatal(
            `cluster ID mismatch, local ${this.ident.cluster_id} != remote ${got.cluster_id}, ` +
              'you are trying to connect to another cluster, please reconnect to the correct PD',
          );
        }
        this.ident = got;
        writeIdent(this.o.dataDir, got);
        this.o.log.info('registered store to PD', { store_id: got.store_id, cluster_id: got.cluster_id });
        return got.store_id;
      } catch (e) {
        const status = (e as Error & { status?: number }).status;
        if (status === 409 || status === 410) this.o.log.fatal(`failed to start node: ${(e as Error).message}`);
        if (attempt++ % 10 === 0) {
          this.o.log.error('PD failed to respond', { endpoints: this.o.pd.endpoints.join(','), error: (e as Error).message });
        }
        await sleep(300);
      }
    }
  }

  /** Sends the next heartbeat now (TiKV reports a leader change to PD at once). */
  kick(): void {
    if (!this.timer) {
      this.kickPending = true; // a heartbeat is in flight: the next one goes right after it
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), 0);
  }

  private tick = async (): Promise<void> => {
    this.timer = undefined;
    try {
      await this.once();
      if (this.failing) this.o.log.info('store heartbeat recovered');
      this.failing = false;
    } catch (e) {
      if (!this.failing) this.o.log.error('failed to send store heartbeat', { error: (e as Error).message });
      this.failing = true;
    }
    const delay = this.kickPending ? 0 : this.o.intervalMs ?? 1000;
    this.kickPending = false;
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), delay);
  };

  private stopped = false;
  private kickPending = false;

  start(): void {
    this.timer = setTimeout(() => void this.tick(), this.o.intervalMs ?? 1000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
