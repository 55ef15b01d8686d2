import { TisealError } from '../errors';
import { parseLosslessJson } from '../util/lossless-json';
import type { PdClient } from './client';

/**
 * PD's evict-leader scheduler over PD's HTTP API (tikv/pd server/api/scheduler.go,
 * pkg/schedule/schedulers/evict_leader.go), through tiseal's PdClient (TLS, scheme fallback).
 *  - add:    POST /pd/api/v1/schedulers {"name":"evict-leader-scheduler","store_id":N}; when the
 *            scheduler exists PD adds the store to it (one scheduler, several stores, since v4.0).
 *  - remove: DELETE /pd/api/v1/schedulers/evict-leader-scheduler-N drops store N; the scheduler
 *            itself goes with its last store. A store that is not in it answers 404
 *            (ErrSchedulerNotFound "scheduler not found", ErrScheduleConfigNotExist "the config does
 *            not exist"; some versions with HTTP 500): already gone, as TiUP treats it
 *            (pkg/cluster/api/pdapi.go RemoveStoreEvict).
 *  - which stores: GET /pd/api/v1/schedulers lists names (`evict-leader-scheduler`, or
 *            `evict-leader-scheduler-N` per store before v4.0), and
 *            GET /pd/api/v1/scheduler-config/evict-leader-scheduler/list its `store-id-ranges`.
 */
export const EVICT_LEADER = 'evict-leader-scheduler';
const PER_STORE = /^evict-leader-scheduler-(\d+)$/;
const STORE_ID = /^\d+$/;

export interface StoreLeaders {
  id: string;
  stateName: string;
  /** PD omits `leader_count` when it is 0 (StoreStatus `json:"leader_count,omitempty"`). */
  leaderCount: number;
}

function checkId(storeId: string): string {
  if (!STORE_ID.test(storeId)) throw new TisealError(`PD store ID must be a decimal uint64, got ${JSON.stringify(storeId)}`, { suggestion: 'use the ID PD reports in /pd/api/v1/stores' });
  return storeId;
}

const answer = (r: { status: number; body: string; endpoint: string }, what: string) =>
  new TisealError(`PD ${r.endpoint} ${what}: HTTP ${r.status}: ${r.body.trim().slice(0, 300)}`, { suggestion: 'check the PD logs (log/pd.log) on that host, then re-run the same command (it resumes)' });

export class PdSchedulers {
  constructor(private readonly pd: Pick<PdClient, 'call'>) {}

  async list(): Promise<string[]> {
    const r = await this.pd.call('GET', '/pd/api/v1/schedulers');
    if (r.status !== 200) throw answer(r, 'GET /pd/api/v1/schedulers');
    const names = parseLosslessJson<unknown>(r.body);
    return Array.isArray(names) ? names.map(String) : [];
  }

  /**
   * The stores any evict-leader scheduler holds now, or undefined when PD lists one whose stores
   * it does not tell (its scheduler-config answered something else than a list).
   */
  async evictedStores(): Promise<Set<string> | undefined> {
    const names = await this.list();
    const stores = new Set(names.flatMap((n) => PER_STORE.exec(n)?.[1] ?? []));
    if (!names.includes(EVICT_LEADER)) return stores;
    const r = await this.pd.call('GET', `/pd/api/v1/scheduler-config/${EVICT_LEADER}/list`);
    if (r.status !== 200) return undefined;
    const conf = parseLosslessJson<{ 'store-id-ranges'?: Record<string, unknown> }>(r.body);
    if (!conf || typeof conf['store-id-ranges'] !== 'object' || conf['store-id-ranges'] === null) return undefined;
    for (const id of Object.keys(conf['store-id-ranges'])) stores.add(id);
    return stores;
  }

  async addEvictLeader(storeId: string): Promise<void> {
    const r = await this.pd.call('POST', '/pd/api/v1/schedulers', { name: EVICT_LEADER, store_id: Number(checkId(storeId)) });
    if (r.status !== 200) throw answer(r, `refused ${EVICT_LEADER} for store ${storeId}`);
  }

  /** 'not-found': PD holds no evict-leader scheduler for that store (any more). */
  async removeEvictLeader(storeId: string): Promise<'removed' | 'not-found'> {
    const r = await this.pd.call('DELETE', `/pd/api/v1/schedulers/${EVICT_LEADER}-${checkId(storeId)}`);
    if (r.status === 200) return 'removed';
    if (r.status === 404 || /scheduler not found|the config does not exist/i.test(r.body)) return 'not-found';
    throw answer(r, `refused to remove ${EVICT_LEADER}-${storeId}`);
  }

  async store(storeId: string): Promise<StoreLeaders> {
    const r = await this.pd.call('GET', `/pd/api/v1/store/${checkId(storeId)}`);
    if (r.status !== 200) throw answer(r, `GET /pd/api/v1/store/${storeId}`);
    const s = parseLosslessJson<{ store?: { id?: string | number; state_name?: string }; status?: { leader_count?: number } }>(r.body);
    return { id: String(s.store?.id ?? storeId), stateName: s.store?.state_name ?? 'Unknown', leaderCount: Number(s.status?.leader_count ?? 0) };
  }
}
