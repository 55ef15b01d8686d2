import * as crypto from 'crypto';
import { sleep } from '../common/http';
import { asUint64, Json, parseJsonLossless, toJson } from '../common/json';
import type { Gateway } from './etcd';

/**
 * Cluster data kept in etcd, so every PD member answers for the cluster and it survives restarts:
 * - `/pd/cluster_id`: 8-byte big-endian uint64, created once like PD (unix seconds << 32 | random);
 * - `/pd/<cid>/alloc_id`: ID allocator, an 8-byte big-endian uint64 as PD writes it (pkg/id/id.go
 *   rebaseLocked: typeutil.Uint64ToBytes), so pd-recover --from-old-member can raise it;
 * - `/pd/<cid>/raft`: the cluster's metapb.Cluster, written when the first store bootstraps it
 *   (server/server.go bootstrapCluster); pd-recover checks it exists;
 * - `/pd/<cid>/raft/s/<20-digit id>`: store records (JSON here; protobuf in PD);
 * - `/pd/<cid>/member/<member id>/{deploy_path,binary_version,git_hash}`: member build info.
 */
export async function initClusterId(g: Gateway): Promise<bigint> {
  for (;;) {
    const got = await g.get('/pd/cluster_id');
    if (got && got.length === 8) return got.readBigUInt64BE(0);
    const id = (BigInt(Math.floor(Date.now() / 1000)) << 32n) | BigInt(crypto.randomBytes(4).readUInt32BE(0));
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64BE(id);
    if (await g.putIf('/pd/cluster_id', '0', buf)) return id;
  }
}

export interface MemberInfo {
  deploy_path?: string;
  binary_version?: string;
  git_hash?: string;
}

export async function saveMemberInfo(g: Gateway, cid: bigint, memberId: bigint, info: MemberInfo): Promise<void> {
  for (const [k, v] of Object.entries(info)) {
    if (v !== undefined) await g.put(`/pd/${cid}/member/${memberId}/${k}`, v);
  }
}

export async function loadMemberInfos(g: Gateway, cid: bigint): Promise<Map<string, MemberInfo>> {
  const out = new Map<string, MemberInfo>();
  for (const kv of await g.prefix(`/pd/${cid}/member/`)) {
    const [id, field] = kv.key.slice(`/pd/${cid}/member/`.length).split('/');
    const info = out.get(id) ?? {};
    (info as Record<string, string>)[field] = kv.value.toString('utf8');
    out.set(id, info);
  }
  return out;
}

export async function deleteMemberInfo(g: Gateway, cid: bigint, memberId: bigint): Promise<void> {
  await g.call('/v3/kv/deleterange', {
    key: Buffer.from(`/pd/${cid}/member/${memberId}/`).toString('base64'),
    range_end: Buffer.from(`/pd/${cid}/member/${memberId}0`).toString('base64'),
  });
}

export type StoreState = 'Up' | 'Offline' | 'Tombstone';

export interface StoreRecord {
  id: number;
  address: string;
  peer_address: string;
  status_address: string;
  version: string;
  git_hash: string;
  labels: { key: string; value: string }[];
  start_timestamp: number;
  deploy_path: string;
  /** Unix nanoseconds, as PD reports last_heartbeat. */
  last_heartbeat: bigint;
  state: StoreState;
}

const storeKey = (cid: bigint, id: number): string => `/pd/${cid}/raft/s/${String(id).padStart(20, '0')}`;

function decodeStore(v: Buffer): StoreRecord {
  const j = parseJsonLossless(v.toString('utf8')) as Record<string, Json>;
  return { ...(j as unknown as StoreRecord), last_heartbeat: asUint64(j.last_heartbeat) };
}

export async function listStores(g: Gateway, cid: bigint): Promise<StoreRecord[]> {
  return (await g.prefix(`/pd/${cid}/raft/s/`)).map((kv) => decodeStore(kv.value)).sort((a, b) => a.id - b.id);
}

export async function getStore(g: Gateway, cid: bigint, id: number): Promise<StoreRecord | undefined> {
  const v = await g.get(storeKey(cid, id));
  return v ? decodeStore(v) : undefined;
}

export async function putStore(g: Gateway, cid: bigint, s: StoreRecord): Promise<void> {
  await g.put(storeKey(cid, s.id), toJson(s));
}

export function uint64Bytes(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}

/** metapb.Cluster {id, max_peer_count} in protobuf (two varint fields), the value of `/pd/<cid>/raft`. */
export function clusterMeta(cid: bigint, maxPeerCount: number): Buffer {
  const varint = (v: bigint): number[] => {
    const out: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      out.push(byte);
    } while (v > 0n);
    return out;
  };
  return Buffer.from([0x08, ...varint(cid), 0x10, ...varint(BigInt(maxPeerCount))]);
}

/** Allocates the next ID (compare-and-swap on alloc_id); `atLeast` keeps the allocator above IDs stores bring along. */
export async function allocId(g: Gateway, cid: bigint, atLeast = 0): Promise<number> {
  const key = `/pd/${cid}/alloc_id`;
  for (;;) {
    const cur = await g.getWithRevision(key);
    const n = cur.value && cur.value.length === 8 ? Number(cur.value.readBigUInt64BE(0)) : 0;
    const next = Math.max(n + 1, atLeast);
    if (await g.putIf(key, cur.modRevision, uint64Bytes(BigInt(next)))) return next;
    await sleep(5);
  }
}

export class StoreConflict extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export interface HeartbeatBody {
  store_id?: Json;
  address?: Json;
  peer_address?: Json;
  status_address?: Json;
  version?: Json;
  git_hash?: Json;
  labels?: Json;
  start_timestamp?: Json;
  deploy_path?: Json;
}

/** Registers or refreshes a store; PD's PutStore rules: a known address under another live ID is refused. */
export async function storeHeartbeat(g: Gateway, cid: bigint, body: HeartbeatBody): Promise<StoreRecord> {
  const address = typeof body.address === 'string' ? body.address : '';
  if (!address) throw new StoreConflict('missing store address', 400);
  const all = await listStores(g, cid);
  let id = body.store_id !== undefined && body.store_id !== null ? Number(asUint64(body.store_id)) : 0;
  const existing = id ? all.find((s) => s.id === id) : undefined;
  if (existing?.state === 'Tombstone') throw new StoreConflict(`store ${id} has been removed`, 410);
  const dup = all.find((s) => s.address === address && s.state !== 'Tombstone' && s.id !== id);
  if (dup) throw new StoreConflict(`duplicated store address: ${address}, already registered by store ${dup.id}`, 409);
  if (!id) id = await allocId(g, cid);
  else if (!existing) await allocId(g, cid, id);
  const labels = Array.isArray(body.labels)
    ? (body.labels as Record<string, Json>[]).map((l) => ({ key: String(l.key), value: String(l.value) }))
    : [];
  const rec: StoreRecord = {
    id,
    address,
    peer_address: typeof body.peer_address === 'string' && body.peer_address ? body.peer_address : address,
    status_address: String(body.status_address ?? ''),
    version: String(body.version ?? ''),
    git_hash: String(body.git_hash ?? ''),
    labels,
    start_timestamp: Number(body.start_timestamp ?? Math.floor(Date.now() / 1000)),
    deploy_path: String(body.deploy_path ?? ''),
    last_heartbeat: BigInt(Date.now()) * 1000000n,
    state: existing?.state ?? 'Up',
  };
  await putStore(g, cid, rec);
  return rec;
}

/** PD's state_name: Down after max-store-down-time without heartbeat, Disconnected after 20 s. */
export function stateName(s: StoreRecord, maxStoreDownTimeMs: number, now = Date.now()): string {
  if (s.state === 'Tombstone') return 'Tombstone';
  const ageMs = now - Number(s.last_heartbeat / 1000000n);
  if (s.state === 'Offline') return 'Offline';
  if (ageMs >= maxStoreDownTimeMs) return 'Down';
  if (ageMs >= 20000) return 'Disconnected';
  return 'Up';
}
