/** Cluster health as TiUP judges it: PD members + leader, stores Up, TiDB and CDC /status. */
import { joinHostPort, pdName, portOf } from '../src/render';
import type { Instance, Topology } from '../src/topology/types';
import { getJson, httpRequest } from './http';
import { waitFor } from './sys';

export interface PdMember {
  name: string;
  peer_urls?: string[];
  client_urls?: string[];
}

export interface PdMembers {
  members?: PdMember[];
  leader?: PdMember;
}

export interface PdStore {
  store: { id: number; address: string; state_name: string; labels?: Array<{ key: string; value: string }> };
}

export interface ClusterHealth {
  pd: { members: Array<{ name: string; peerUrls: string[]; clientUrls: string[] }>; leader?: string; error?: string };
  stores: Array<{ address: string; state: string }>;
  tidb: Array<{ address: string; ok: boolean; error?: string }>;
  cdc: Array<{ address: string; ok: boolean; error?: string }>;
  healthy: boolean;
  problems: string[];
}

const byRole = (t: Topology, role: string): Instance[] => t.instances.filter((i) => i.role === role);

export function pdApiUrls(t: Topology): string[] {
  return byRole(t, 'pd').map((p) => `http://${joinHostPort(p.host, portOf(p, 'client_port', 2379))}`);
}

/** The store address PD knows for a TiKV (advertise addr) or TiFlash (flash service addr, as TiUP checks it). */
export function storeAddress(i: Instance): string {
  if (i.role === 'tiflash') return joinHostPort(i.host, portOf(i, 'flash_service_port', 3930));
  return i.advertise?.advertise_addr || joinHostPort(i.host, portOf(i, 'port', 20160));
}

function storeStateOf(i: Instance, states: Map<string, string>): string | undefined {
  return states.get(storeAddress(i));
}

async function firstOk<T>(urls: string[], path: string): Promise<T> {
  let last: unknown;
  for (const u of urls) {
    try {
      return await getJson<T>(u + path, 2000);
    } catch (e) {
      last = e;
    }
  }
  throw last instanceof Error ? last : new Error(`no PD answered ${path}`);
}

async function statusOk(url: string): Promise<{ ok: boolean; error?: string }> {
  try {
    const r = await httpRequest(url, { timeoutMs: 2000 });
    return r.status === 200 ? { ok: true } : { ok: false, error: `HTTP ${r.status}` };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

export async function clusterHealth(t: Topology): Promise<ClusterHealth> {
  const problems: string[] = [];
  const h: ClusterHealth = { pd: { members: [] }, stores: [], tidb: [], cdc: [], healthy: false, problems };
  const pds = byRole(t, 'pd');
  try {
    const m = await firstOk<PdMembers>(pdApiUrls(t), '/pd/api/v1/members');
    h.pd.members = (m.members ?? []).map((x) => ({ name: x.name, peerUrls: x.peer_urls ?? [], clientUrls: x.client_urls ?? [] }));
    h.pd.leader = m.leader?.name;
    const names = new Set(h.pd.members.map((x) => x.name));
    for (const p of pds) if (!names.has(pdName(p))) problems.push(`PD ${pdName(p)} is not a member`);
    if (!h.pd.leader) problems.push('PD has no leader');
  } catch (e) {
    h.pd.error = (e as Error).message;
    problems.push(`PD API: ${h.pd.error}`);
  }
  const storeInsts = [...byRole(t, 'tikv'), ...byRole(t, 'tiflash')];
  if (storeInsts.length && !h.pd.error) {
    try {
      const s = await firstOk<{ stores?: PdStore[] }>(pdApiUrls(t), '/pd/api/v1/stores');
      h.stores = (s.stores ?? []).map((x) => ({ address: x.store.address, state: x.store.state_name }));
    } catch (e) {
      problems.push(`PD stores: ${(e as Error).message}`);
    }
    const states = new Map(h.stores.map((x) => [x.address, x.state]));
    for (const i of storeInsts) {
      const st = storeStateOf(i, states);
      if (st !== 'Up') problems.push(`${i.role} ${storeAddress(i)} is ${st ?? 'not registered'}`);
    }
  }
  for (const i of byRole(t, 'tidb')) {
    const address = joinHostPort(i.host, portOf(i, 'status_port', 10080));
    const r = await statusOk(`http://${address}/status`);
    h.tidb.push({ address, ...r });
    if (!r.ok) problems.push(`TiDB ${address}/status: ${r.error}`);
  }
  for (const i of byRole(t, 'cdc')) {
    const address = joinHostPort(i.host, portOf(i, 'port', 8300));
    const r = await statusOk(`http://${address}/status`);
    h.cdc.push({ address, ...r });
    if (!r.ok) problems.push(`TiCDC ${address}/status: ${r.error}`);
  }
  h.healthy = problems.length === 0;
  return h;
}

/** Wait until PD has every member and a leader. */
export function waitPdReady(t: Topology, timeoutMs: number): Promise<true> {
  const want = byRole(t, 'pd').map(pdName);
  return waitFor(`PD members ${want.join(', ')} and a leader`, timeoutMs, async () => {
    const m = await firstOk<PdMembers>(pdApiUrls(t), '/pd/api/v1/members');
    const names = new Set((m.members ?? []).map((x) => x.name));
    if (!want.every((n) => names.has(n))) throw new Error(`members: ${[...names].join(', ') || 'none'}`);
    if (!m.leader?.name) throw new Error('no leader yet');
    return true as const;
  }, 500);
}

/** Wait until every given store instance shows Up in PD. */
export function waitStoresUp(t: Topology, insts: Instance[], timeoutMs: number): Promise<true> {
  return waitFor(`stores ${insts.map(storeAddress).join(', ')} Up`, timeoutMs, async () => {
    const s = await firstOk<{ stores?: PdStore[] }>(pdApiUrls(t), '/pd/api/v1/stores');
    const states = new Map((s.stores ?? []).map((x) => [x.store.address, x.store.state_name]));
    const notUp = insts.filter((i) => storeStateOf(i, states) !== 'Up');
    if (notUp.length) throw new Error(notUp.map((i) => `${storeAddress(i)}=${storeStateOf(i, states) ?? 'absent'}`).join(', '));
    return true as const;
  }, 500);
}

/** Wait until GET http://<addr>/status answers 200 for each instance. */
export function waitStatus(insts: Instance[], portField: string, fallback: number, timeoutMs: number): Promise<true[]> {
  return Promise.all(
    insts.map((i) => {
      const url = `http://${joinHostPort(i.host, portOf(i, portField, fallback))}/status`;
      return waitFor(`${url}`, timeoutMs, async () => {
        const r = await httpRequest(url, { timeoutMs: 2000 });
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
        return true as const;
      }, 500);
    }),
  );
}

/** TiUP's TiFlash PrepareStart: placement rules on (PD accepts it or the emulator ignores it). */
export async function enablePlacementRules(t: Topology): Promise<void> {
  for (const u of pdApiUrls(t)) {
    try {
      const r = await httpRequest(`${u}/pd/api/v1/config/replicate`, { method: 'POST', body: JSON.stringify({ 'enable-placement-rules': 'true' }), timeoutMs: 3000 });
      if (r.status < 500) return;
    } catch {
      /* next PD */
    }
  }
}
