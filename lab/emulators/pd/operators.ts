import type { RegionRecord } from './regions';

/**
 * Leader operators PD hands a store with its heartbeat answer (stand-in for the operators PD pushes
 * down the region heartbeat stream, tikv/pd pkg/schedule/operator). Two schedulers:
 * - evict-leader (pkg/schedule/schedulers/evict_leader.go): every region led by an evicted store
 *   gets a transfer-leader to another peer, at most EvictLeaderBatchSize (3) per scheduling round,
 *   to the peer store with the fewest leaders that is Up and not evicted itself; an evicted store
 *   never receives a leader;
 * - balance-leader (balance_leader.go): one transfer per round from this store to a peer store with
 *   at least 2 leaders fewer (same filters).
 * A round is one store heartbeat (the emulator's 1 s), not faster than PD's scheduling of leaders.
 */
export const EVICT_LEADER_BATCH_SIZE = 3;

export interface TransferLeader {
  region_id: number;
  term: number;
  to_store: number;
}

export function leaderOperators(regions: RegionRecord[], storeId: number, evicted: number[], up: Set<number>): TransferLeader[] {
  const count = new Map<number, number>();
  for (const r of regions) if (r.leader) count.set(r.leader, (count.get(r.leader) ?? 0) + 1);
  const led = regions.filter((r) => r.leader === storeId);
  const target = (r: RegionRecord): number | undefined =>
    r.peers
      .filter((p) => p !== storeId && up.has(p) && !evicted.includes(p))
      .sort((a, b) => (count.get(a) ?? 0) - (count.get(b) ?? 0) || a - b)[0];
  const ops: TransferLeader[] = [];
  if (evicted.includes(storeId)) {
    for (const r of led) {
      if (ops.length >= EVICT_LEADER_BATCH_SIZE) break;
      const to = target(r);
      if (to === undefined) continue;
      ops.push({ region_id: r.id, term: r.term, to_store: to });
      count.set(to, (count.get(to) ?? 0) + 1);
    }
    return ops;
  }
  const mine = count.get(storeId) ?? 0;
  for (const r of led) {
    const to = target(r);
    if (to !== undefined && mine - (count.get(to) ?? 0) >= 2) return [{ region_id: r.id, term: r.term, to_store: to }];
  }
  return ops;
}
