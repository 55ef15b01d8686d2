import type { Json } from '../common/json';
import { parseJsonLossless, toJson } from '../common/json';
import { allocId, clusterMeta, listStores, stateName, StoreRecord } from './cluster';
import type { Gateway } from './etcd';

/**
 * Region metadata, kept where PD keeps it: in PD's etcd (`/pd/<cid>/raft/r/<id>`, tikv/pd
 * pkg/storage/endpoint/meta.go RegionPath), so every PD member answers the same and it survives any
 * store or PD restart. The emulator's key space is sha1(key): REGION_COUNT regions split it by the
 * first hash byte (start_key/end_key are upper-case hex, "" = unbounded, as PD prints keys).
 *
 * What PD does with it, after tikv/pd:
 * - bootstrap (TiKV's first store bootstraps the cluster; split regions elect at once): the regions
 *   are created on the first TiKV store heartbeat, each with a `bootstrap_leader` that campaigns
 *   immediately;
 * - replica checker (pkg/schedule/checker/replica_checker.go): a region with fewer peers than
 *   max-replicas gets an Up TiKV store that is not yet a peer (TiFlash stores are never voters);
 * - leader and term come from the leaders' heartbeats; a report with an older term is stale and
 *   ignored (pkg/core/region.go checks the epoch/term the same way);
 * - leader_count / region_count per store are counted from these regions, as PD's BasicCluster does
 *   (pkg/core/basic_cluster.go GetStoreLeaderCount / GetStoreRegionCount).
 */
export const REGION_COUNT = 4;

export interface RegionRecord {
  id: number;
  start_key: string;
  end_key: string;
  conf_ver: number;
  version: number;
  /** Voter store ids, the raft group of the region. */
  peers: number[];
  /** Peer id per store (PD allocates one id per peer). */
  peer_ids: Record<string, number>;
  /** Store of the leader last reported (0 = none yet) and its raft term. */
  leader: number;
  term: number;
  bootstrap_leader: number;
}

const regionKey = (cid: bigint, id: number): string => `/pd/${cid}/raft/r/${String(id).padStart(20, '0')}`;

export async function listRegions(g: Gateway, cid: bigint): Promise<RegionRecord[]> {
  return (await g.prefix(`/pd/${cid}/raft/r/`)).map((kv) => parseJsonLossless(kv.value.toString('utf8')) as unknown as RegionRecord).sort((a, b) => a.id - b.id);
}

async function casRegion(g: Gateway, cid: bigint, id: number, change: (r: RegionRecord) => RegionRecord | undefined): Promise<RegionRecord | undefined> {
  for (let i = 0; i < 20; i++) {
    const cur = await g.getWithRevision(regionKey(cid, id));
    if (!cur.value) return undefined;
    const r = parseJsonLossless(cur.value.toString('utf8')) as unknown as RegionRecord;
    const next = change(r);
    if (!next) return r;
    if (await g.putIf(regionKey(cid, id), cur.modRevision, toJson(next))) return next;
  }
  throw new Error(`region ${id}: too many concurrent updates`);
}

export const isTiflash = (s: { labels: { key: string; value: string }[] }): boolean => s.labels.some((l) => l.key === 'engine' && l.value === 'tiflash');

function hexBound(i: number): string {
  return i <= 0 || i >= REGION_COUNT ? '' : Math.floor((256 * i) / REGION_COUNT).toString(16).toUpperCase().padStart(2, '0');
}

/** Voters a region may get: TiKV stores that are Up (fresh heartbeat, not Offline/Tombstone). */
function candidateStores(stores: StoreRecord[], maxStoreDownTimeMs: number): StoreRecord[] {
  return stores.filter((s) => !isTiflash(s) && stateName(s, maxStoreDownTimeMs) === 'Up');
}

/** Bootstrap (once, CAS-guarded) and the replica checker; returns the regions after the changes. */
export async function checkRegions(g: Gateway, cid: bigint, maxReplicas: number, maxStoreDownTimeMs: number): Promise<RegionRecord[]> {
  const stores = await listStores(g, cid);
  const up = candidateStores(stores, maxStoreDownTimeMs);
  let regions = await listRegions(g, cid);
  if (regions.length === 0 && up.length > 0) {
    const flag = `/pd/${cid}/emulator/regions-bootstrapped`;
    if (await g.putIf(flag, '0', '1')) {
      await g.putIf(`/pd/${cid}/raft`, '0', clusterMeta(cid, maxReplicas));
      const peers = up.slice(0, maxReplicas).map((s) => s.id);
      for (let i = 0; i < REGION_COUNT; i++) {
        const id = await allocId(g, cid);
        const peer_ids: Record<string, number> = {};
        for (const p of peers) peer_ids[String(p)] = await allocId(g, cid);
        const r: RegionRecord = {
          id, start_key: hexBound(i), end_key: hexBound(i + 1), conf_ver: peers.length, version: 1, peers, peer_ids, leader: 0, term: 0,
          bootstrap_leader: peers[i % peers.length],
        };
        await g.put(regionKey(cid, id), toJson(r));
      }
      regions = await listRegions(g, cid);
    }
  }
  const out: RegionRecord[] = [];
  for (const r of regions) {
    const missing = up.filter((s) => !r.peers.includes(s.id));
    if (r.peers.length < maxReplicas && missing.length > 0) {
      const add = missing[0].id;
      const peerId = await allocId(g, cid);
      out.push((await casRegion(g, cid, r.id, (cur) =>
        cur.peers.includes(add) || cur.peers.length >= maxReplicas
          ? undefined
          : { ...cur, peers: [...cur.peers, add], peer_ids: { ...cur.peer_ids, [String(add)]: peerId }, conf_ver: cur.conf_ver + 1 },
      )) ?? r);
    } else {
      out.push(r);
    }
  }
  return out;
}

/** A leader's report (region id, term): newer terms win, a stale term is ignored. */
export async function reportLeaders(g: Gateway, cid: bigint, storeId: number, leaders: { id: number; term: number }[]): Promise<void> {
  for (const l of leaders) {
    await casRegion(g, cid, l.id, (cur) => {
      if (!cur.peers.includes(storeId) || l.term < cur.term || (l.term === cur.term && cur.leader === storeId)) return undefined;
      return { ...cur, leader: storeId, term: l.term };
    });
  }
}

export function storeCounts(regions: RegionRecord[], storeId: number): { leader_count: number; region_count: number } {
  return { leader_count: regions.filter((r) => r.leader === storeId).length, region_count: regions.filter((r) => r.peers.includes(storeId)).length };
}

/** PD's RegionInfo JSON (server/api/region.go), the key space being sha1(key) in hex. */
export function regionJson(r: RegionRecord): Record<string, unknown> {
  const peer = (s: number): Record<string, unknown> => ({ id: r.peer_ids[String(s)] ?? 0, store_id: s, role_name: 'Voter' });
  return {
    id: r.id,
    start_key: r.start_key,
    end_key: r.end_key,
    epoch: { conf_ver: r.conf_ver, version: r.version },
    peers: r.peers.map(peer),
    leader: r.leader ? peer(r.leader) : {},
    written_bytes: 0,
    read_bytes: 0,
    written_keys: 0,
    read_keys: 0,
    approximate_size: 1,
    approximate_keys: 0,
  };
}

export function decodeLeaders(v: Json | undefined): { id: number; term: number }[] {
  if (!Array.isArray(v)) return [];
  return (v as Record<string, Json>[]).map((x) => ({ id: Number(x.id), term: Number(x.term) })).filter((x) => Number.isInteger(x.id) && Number.isInteger(x.term));
}
