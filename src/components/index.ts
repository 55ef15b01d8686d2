import type { Instance, Role } from '../topology/types';
import type { PdClient } from '../pd/client';
import { ClientTls, request } from '../util/http';

export * from './tls-paths';
export * from './security-keys';

/**
 * What tiseal knows about each component: restart tier (TiUP's start order), the ports that
 * speak TLS once it is on, and how to tell the instance is healthy.
 */
export interface HealthContext {
  pd: PdClient;
  /** Client TLS material when the cluster is (supposed to be) on TLS. */
  tls?: ClientTls;
  /** Stores as PD reports them; fetched once per check round. */
  stores?: Awaited<ReturnType<PdClient['stores']>>;
}

export interface ComponentInfo {
  role: Role;
  tier: number;
  /** Ports that serve TLS when cluster TLS is on. */
  tlsPorts(inst: Instance): Array<{ name: string; port: number }>;
  /** Resolves to true, or a reason string for "not healthy yet". */
  health(inst: Instance, ctx: HealthContext): Promise<true | string>;
}

const advertiseHost = (inst: Instance) => inst.host;

async function statusOk(inst: Instance, port: number, path: string, ctx: HealthContext): Promise<true | string> {
  const scheme = ctx.tls ? 'https' : 'http';
  try {
    const r = await request(`${scheme}://${advertiseHost(inst)}:${port}${path}`, { tls: ctx.tls, timeoutMs: 3000 });
    return r.status >= 200 && r.status < 300 ? true : `${scheme}://${inst.host}:${port}${path} answered HTTP ${r.status}: ${r.body.trim().slice(0, 200)}`;
  } catch (e) {
    return `${scheme}://${inst.host}:${port}${path}: ${(e as Error).message}`;
  }
}

function storeState(inst: Instance, port: number, ctx: HealthContext): true | string {
  const addr = `${inst.advertise.advertise_addr ?? `${inst.host}:${port}`}`;
  const s = ctx.stores?.find((st) => st.address === addr);
  if (!s) return `PD has no store ${addr}`;
  return s.stateName === 'Up' ? true : `store ${s.id} (${addr}) is ${s.stateName}`;
}

const p = (inst: Instance, name: string) => inst.ports[name];

export const COMPONENTS: Record<Role, ComponentInfo> = {
  pd: {
    role: 'pd',
    tier: 0,
    tlsPorts: (i) => [{ name: 'client_port', port: p(i, 'client_port') }, { name: 'peer_port', port: p(i, 'peer_port') }],
    async health(inst, ctx) {
      const ep = `${inst.host}:${p(inst, 'client_port')}`;
      try {
        const h = await ctx.pd.health([ep]);
        const me = h.find((m) => m.name === inst.name);
        if (!me) return `PD ${inst.name} is not a member`;
        if (!me.health) return `PD ${inst.name} is not healthy`;
        const { leader } = await ctx.pd.members([ep]);
        return leader ? true : 'PD has no leader yet';
      } catch (e) {
        return `PD ${ep}: ${(e as Error).message}`;
      }
    },
  },
  tikv: {
    role: 'tikv',
    tier: 1,
    tlsPorts: (i) => [{ name: 'port', port: p(i, 'port') }, { name: 'status_port', port: p(i, 'status_port') }],
    async health(inst, ctx) {
      // PD keeps a store Up for a while after its last heartbeat, so also ask the new process itself.
      const own = await statusOk(inst, p(inst, 'status_port'), '/status', ctx);
      return own === true ? storeState(inst, p(inst, 'port'), ctx) : own;
    },
  },
  pump: { role: 'pump', tier: 2, tlsPorts: (i) => [{ name: 'port', port: p(i, 'port') }], health: (i, c) => statusOk(i, p(i, 'port'), '/status', c) },
  tidb: { role: 'tidb', tier: 3, tlsPorts: (i) => [{ name: 'status_port', port: p(i, 'status_port') }], health: (i, c) => statusOk(i, p(i, 'status_port'), '/status', c) },
  tiflash: {
    role: 'tiflash',
    tier: 4,
    // TiUP's TiFlash ports (pkg/cluster/spec/tiflash.go: metrics_port `default:"8234"`): the metrics
    // port serves TLS too, wanting a client certificate (MetricsPrometheus.cpp). Last, so the
    // port that tells whether TiFlash speaks TLS (livePort) stays the service port.
    tlsPorts: (i) =>
      ['flash_service_port', 'flash_proxy_port', 'flash_proxy_status_port', 'metrics_port'].filter((n) => i.ports[n]).map((name) => ({ name, port: p(i, name) })),
    async health(inst, ctx) {
      const own = await statusOk(inst, p(inst, 'flash_proxy_status_port'), '/status', ctx);
      return own === true ? storeState(inst, p(inst, 'flash_service_port'), ctx) : own;
    },
  },
  drainer: { role: 'drainer', tier: 5, tlsPorts: (i) => [{ name: 'port', port: p(i, 'port') }], health: (i, c) => statusOk(i, p(i, 'port'), '/status', c) },
  cdc: { role: 'cdc', tier: 6, tlsPorts: (i) => [{ name: 'port', port: p(i, 'port') }], health: (i, c) => statusOk(i, p(i, 'port'), '/status', c) },
  tiproxy: { role: 'tiproxy', tier: 7, tlsPorts: () => [], health: (i, c) => statusOk(i, p(i, 'status_port'), '/api/debug/health', { ...c, tls: undefined }) },
  // Monitoring keeps its own web port on http (TiUP switches only its scrape jobs to https).
  prometheus: { role: 'prometheus', tier: 8, tlsPorts: () => [], health: (i, c) => statusOk(i, p(i, 'port'), '/-/ready', { ...c, tls: undefined }) },
  grafana: { role: 'grafana', tier: 8, tlsPorts: () => [], health: (i, c) => statusOk(i, p(i, 'port'), '/api/health', { ...c, tls: undefined }) },
  alertmanager: { role: 'alertmanager', tier: 8, tlsPorts: () => [], health: (i, c) => statusOk(i, p(i, 'web_port'), '/-/ready', { ...c, tls: undefined }) },
};

/** Instances grouped by restart tier, in order. */
export function restartTiers(instances: Instance[]): Array<{ tier: number; roles: Role[]; instances: Instance[] }> {
  const byTier = new Map<number, Instance[]>();
  for (const inst of instances) {
    const t = COMPONENTS[inst.role].tier;
    byTier.set(t, [...(byTier.get(t) ?? []), inst]);
  }
  return [...byTier.entries()]
    .sort(([a], [b]) => a - b)
    .map(([tier, insts]) => ({ tier, roles: [...new Set(insts.map((i) => i.role))], instances: insts }));
}
