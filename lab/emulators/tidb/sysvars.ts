import type * as tls from 'tls';
import { sleep } from '../common/http';
import type { Logger } from '../common/log';
import type { PdClient } from '../common/pd-client';
import { clientTlsOptions, TlsPaths } from '../common/tls';
import { etcdGet, etcdPut, etcdWatch } from '../pd/etcd-grpc';

/**
 * `require_secure_transport` as TiDB v6.1+ keeps it: a GLOBAL system variable that persists to the
 * cluster and is applied on every TiDB (docs system-variables.md: "changed to a system variable
 * starting from TiDB v6.1.0"; sessionctx/variable/sysvar.go: GetGlobal answers the process-local
 * `tls.RequireSecureTransport`, SetGlobal stores it).
 *
 * - SET GLOBAL (session.go SetGlobalSysVar): the value is written where every TiDB reads it, then
 *   domain.go NotifyUpdateSysVarCache puts "" on etcd key `sysVarCacheKey = "/tidb/sysvars"`
 *   (a failure there only warns: "notify update sysvar cache failed") and rebuilds the local cache
 *   at once, so the issuing TiDB applies it synchronously.
 * - Every TiDB (domain.go LoadSysVarCacheLoop): rebuildSysVarCache at bootstrap, before the server
 *   loads its TLS config; then on each event of an etcd watch of `/tidb/sysvars`, and otherwise every
 *   `duration := 30 * time.Second`. domain/sysvar_cache.go rebuildSysVarCache calls each GLOBAL
 *   variable's SetGlobal ("This ensures it is run on all tidb servers"), one rebuild at a time.
 *
 * Upstream keeps the value in the `mysql.global_variables` table (TiKV); the emulator keeps it in
 * PD's etcd under VALUE_KEY (emulator-only). Both go through PD's client port with the cluster TLS,
 * over etcd gRPC like clientv3. A watch that breaks is re-created from the last revision seen, as
 * clientv3 resumes its watches, so a change made while a PD restarted is not missed.
 */
export const SYSVAR_CACHE_KEY = '/tidb/sysvars';
export const SYSVAR_RELOAD_MS = 30_000;
const VALUE_KEY = '/tiseal-emulator/tidb/global_variables/require_secure_transport';
const CALL_TIMEOUT_MS = 3000;

export class ClusterSysvars {
  private on = false;
  private chain: Promise<void> = Promise.resolve();
  private revision = 0n;
  private stopped = false;
  private pending = false;
  private wake?: () => void;
  private closeWatch?: () => void;
  private readonly tlsOpts: (() => tls.ConnectionOptions) | undefined;

  constructor(private readonly pd: PdClient, paths: TlsPaths | undefined, private readonly log: Logger) {
    this.tlsOpts = paths ? () => clientTlsOptions(paths) : undefined;
  }

  /** tls.RequireSecureTransport.Load(): what this TiDB applies now. */
  get requireSecureTransport(): boolean {
    return this.on;
  }

  /** Each PD endpoint in turn (clientv3 balances over them); the last error when none answers. */
  private async anyEndpoint<T>(fn: (url: string) => Promise<T>): Promise<T> {
    let last: Error | undefined;
    for (const ep of this.pd.endpoints) {
      try {
        return await fn(this.pd.urlFor(ep));
      } catch (e) {
        last = e as Error;
      }
    }
    throw last ?? new Error('no PD endpoint');
  }

  /** rebuildSysVarCache: read the persisted value and apply it (SetGlobal); one at a time. */
  rebuild(): Promise<void> {
    const run = this.chain.then(async () => {
      const r = await this.anyEndpoint((url) => etcdGet(url, VALUE_KEY, this.tlsOpts, CALL_TIMEOUT_MS));
      if (r.revision > this.revision) this.revision = r.revision;
      const on = /^(ON|1)$/i.test(r.value ?? 'OFF');
      if (on !== this.on) this.log.info('load global variable require_secure_transport', { value: on ? 'ON' : 'OFF' });
      this.on = on;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** SET GLOBAL require_secure_transport (already validated): persist, notify every TiDB, apply here. */
  async setGlobal(on: boolean): Promise<void> {
    await this.anyEndpoint((url) => etcdPut(url, VALUE_KEY, on ? 'ON' : 'OFF', this.tlsOpts, CALL_TIMEOUT_MS));
    try {
      await this.anyEndpoint((url) => etcdPut(url, SYSVAR_CACHE_KEY, '', this.tlsOpts, CALL_TIMEOUT_MS));
    } catch (e) {
      this.log.warn('notify update sysvar cache failed', { error: (e as Error).message });
    }
    try {
      await this.rebuild();
    } catch (e) {
      this.log.error('rebuilding sysvar cache failed', { error: (e as Error).message });
    }
  }

  /** LoadSysVarCacheLoop after the bootstrap rebuild: watch `/tidb/sysvars`, reload every 30 s anyway. */
  start(): void {
    void this.watchLoop();
    void this.reloadLoop();
  }

  stop(): void {
    this.stopped = true;
    this.closeWatch?.();
    this.wake?.();
  }

  private async watchLoop(): Promise<void> {
    while (!this.stopped) {
      for (const ep of this.pd.endpoints) {
        const w = etcdWatch(this.pd.urlFor(ep), SYSVAR_CACHE_KEY, this.revision + 1n, this.tlsOpts, (rev) => {
          if (rev > this.revision) this.revision = rev;
          this.pending = true;
          this.wake?.();
        });
        this.closeWatch = w.close;
        const why = await w.done;
        if (this.stopped) return;
        this.log.info('sysvar cache watch ended, watching again', { endpoint: ep, reason: why });
        await sleep(1000);
      }
    }
  }

  private async reloadLoop(): Promise<void> {
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, SYSVAR_RELOAD_MS);
        t.unref();
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
        if (this.pending) this.wake();
      });
      this.wake = undefined;
      this.pending = false;
      if (this.stopped) return;
      try {
        await this.rebuild();
      } catch (e) {
        this.log.error('rebuilding sysvar cache failed', { error: (e as Error).message });
      }
    }
  }
}
