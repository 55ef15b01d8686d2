import { parseJsonLossless, toJson } from '../common/json';
import { Version, versionAtLeast } from '../common/version';
import type { Gateway } from './etcd';

/**
 * PD's scheduler API for the one scheduler the emulator runs besides leader balancing:
 * evict-leader (tikv/pd server/api/scheduler.go, pkg/schedule/schedulers/evict_leader.go). From
 * v6.5 to v8.5 there is ONE `evict-leader-scheduler` holding several store IDs
 * (`store-id-ranges`): POST with a second store answers "The scheduler has been applied to the
 * store.", GET lists the name once, DELETE `evict-leader-scheduler-<id>` is redirected to the
 * scheduler's `delete/<id>` (null, or "The last store has been deleted" when the scheduler goes
 * with its last store; a store not in it: 404 ErrScheduleConfigNotExist). The config is persisted
 * in etcd like PD's (`/pd/<cid>/scheduler_config/evict-leader-scheduler`), so any member answers.
 */
export const EVICT_LEADER = 'evict-leader-scheduler';

/** DefaultSchedulers (pkg/schedule/config/config.go from v7.x; server/config/config.go in v6.5). */
export function defaultSchedulers(v: Version): string[] {
  if (versionAtLeast(v, 'v7.1.0')) return ['balance-region-scheduler', 'balance-leader-scheduler', 'balance-hot-region-scheduler', 'evict-slow-store-scheduler'];
  return ['balance-region-scheduler', 'balance-leader-scheduler', 'balance-witness-scheduler', 'balance-hot-region-scheduler', 'split-bucket-scheduler', 'transfer-witness-leader-scheduler'];
}

const key = (cid: bigint): string => `/pd/${cid}/scheduler_config/${EVICT_LEADER}`;

interface EvictConfig {
  'store-id-ranges': Record<string, { 'start-key': string; 'end-key': string }[]>;
  batch: number;
}

/** Store IDs under evict-leader, or undefined when the scheduler does not exist. */
export async function evictedStores(g: Gateway, cid: bigint): Promise<number[] | undefined> {
  const v = await g.get(key(cid));
  if (!v) return undefined;
  return Object.keys((parseJsonLossless(v.toString('utf8')) as unknown as EvictConfig)['store-id-ranges']).map(Number).sort((a, b) => a - b);
}

/** GET /pd/api/v1/scheduler-config/evict-leader-scheduler/list: the persisted config as PD shows it. */
export async function evictLeaderConfig(g: Gateway, cid: bigint): Promise<EvictConfig | undefined> {
  const v = await g.get(key(cid));
  return v ? (parseJsonLossless(v.toString('utf8')) as unknown as EvictConfig) : undefined;
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** POST /pd/api/v1/schedulers. */
export async function addScheduler(g: Gateway, cid: bigint, input: Record<string, unknown>, storeExists: (id: number) => Promise<boolean>): Promise<ApiAnswer> {
  const name = input.name;
  if (typeof name !== 'string') return { status: 400, body: 'missing scheduler name' };
  if (name !== EVICT_LEADER) return { status: 500, body: `tiseal emulator: scheduler ${name} is not supported by the emulator` };
  const id = input.store_id;
  if (typeof id !== 'number') return { status: 400, body: 'missing store id' };
  if (!(await storeExists(id))) return { status: 500, body: `[PD:core:ErrStoreNotFound]store id ${id} not found` };
  for (;;) {
    const cur = await g.getWithRevision(key(cid));
    const conf: EvictConfig = cur.value ? (parseJsonLossless(cur.value.toString('utf8')) as unknown as EvictConfig) : { 'store-id-ranges': {}, batch: 3 };
    conf['store-id-ranges'][String(id)] = [{ 'start-key': '', 'end-key': '' }];
    if (await g.putIf(key(cid), cur.modRevision, toJson(conf))) {
      return { status: 200, body: cur.value ? 'The scheduler has been applied to the store.' : 'The scheduler is created.' };
    }
  }
}

export async function listSchedulers(g: Gateway, cid: bigint, v: Version): Promise<string[]> {
  return [...defaultSchedulers(v), ...((await evictedStores(g, cid)) ? [EVICT_LEADER] : [])];
}

/** DELETE /pd/api/v1/schedulers/{name}. */
export async function deleteScheduler(g: Gateway, cid: bigint, name: string): Promise<ApiAnswer> {
  const m = /^evict-leader-scheduler-(\d+)$/.exec(name);
  if (name !== EVICT_LEADER && !m) return { status: 500, body: `tiseal emulator: removing ${name} is not supported by the emulator` };
  for (;;) {
    const cur = await g.getWithRevision(key(cid));
    if (!cur.value) return { status: 404, body: '[PD:scheduler:ErrSchedulerNotFound]scheduler not found' };
    if (!m) {
      await g.deleteKey(key(cid));
      return { status: 200, body: 'The scheduler is removed.' };
    }
    const conf = parseJsonLossless(cur.value.toString('utf8')) as unknown as EvictConfig;
    if (!conf['store-id-ranges'][m[1]]) return { status: 404, body: '[PD:core:ErrScheduleConfigNotExist]the config does not exist' };
    delete conf['store-id-ranges'][m[1]];
    if (Object.keys(conf['store-id-ranges']).length === 0) {
      const r = await g.call('/v3/kv/txn', {
        compare: [{ key: Buffer.from(key(cid)).toString('base64'), target: 'MOD', mod_revision: cur.modRevision }],
        success: [{ request_delete_range: { key: Buffer.from(key(cid)).toString('base64') } }],
      });
      if (r.succeeded === true) return { status: 200, body: 'The last store has been deleted' };
    } else if (await g.putIf(key(cid), cur.modRevision, toJson(conf))) {
      return { status: 200, body: null };
    }
  }
}
