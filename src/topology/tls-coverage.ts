/**
 * What the cluster TLS commands (`tls enable|disable|rotate`) do with each TiUP role list. Every
 * list TiUP knows is here, so no instance of a topology is skipped silently: it is converted (the
 * plan stages and restarts it), left as TiUP leaves it under TLS (nothing of it changes), or the
 * topology is refused before any change.
 */
import { PreflightError } from '../errors';
import { specForRole } from './roles';
import type { AuxInstance, AuxRoleKey, Instance, RoleKey, Topology } from './types';

export type TlsHandling =
  | { kind: 'converted' }
  /** TiUP writes nothing TLS-related for it (pkg/cluster/spec/grafana.go, alertmanager.go). */
  | { kind: 'unchanged' }
  | { kind: 'refused'; why: string };

const notYet = (what: string) => `tiseal does not convert ${what} to TLS yet (TiUP does)`;

export const TLS_HANDLING: Record<RoleKey | AuxRoleKey, TlsHandling> = {
  pd_servers: { kind: 'converted' },
  // TiUP also sets server-http-tls and sql-tls (pkg/cluster/spec/tiproxy.go setTLSConfig); a
  // half-converted TiProxy would serve its status port and SQL backends unlike TiUP's.
  tiproxy_servers: { kind: 'refused', why: `${notYet('TiProxy')}: TiUP sets its cluster-tls, server-http-tls and sql-tls` },
  tikv_servers: { kind: 'converted' },
  pump_servers: { kind: 'converted' },
  tidb_servers: { kind: 'converted' },
  tiflash_servers: { kind: 'converted' },
  drainer_servers: { kind: 'converted' },
  cdc_servers: { kind: 'converted' },
  // Prometheus' scrape jobs and ng-monitoring's [security]; its own web port stays on http.
  monitoring_servers: { kind: 'converted' },
  grafana_servers: { kind: 'unchanged' },
  alertmanager_servers: { kind: 'unchanged' },
  // PD microservices: TiUP renders https --backend-endpoints/--listen-addr and [security] paths (tso.go, scheduling.go, router.go, resource_manager.go).
  tso_servers: { kind: 'refused', why: notYet('PD microservices (tso)') },
  scheduling_servers: { kind: 'refused', why: notYet('PD microservices (scheduling)') },
  router_servers: { kind: 'refused', why: notYet('PD microservices (router)') },
  resource_manager_servers: { kind: 'refused', why: notYet('PD microservices (resource-manager)') },
  tidb_dashboard_servers: { kind: 'refused', why: notYet('a standalone TiDB Dashboard') },
  kvcdc_servers: { kind: 'refused', why: notYet('TiKV-CDC') },
  // validate.go: "component tispark is not supported in TLS enabled cluster".
  tispark_masters: { kind: 'refused', why: 'TiSpark does not support TLS (TiUP refuses it too)' },
  tispark_workers: { kind: 'refused', why: 'TiSpark does not support TLS (TiUP refuses it too)' },
};

export interface RefusedInstance {
  inst: Instance | AuxInstance;
  roleKey: RoleKey | AuxRoleKey;
  why: string;
}

const keyOf = (i: Instance | AuxInstance): RoleKey | AuxRoleKey => i.roleKey ?? specForRole(i.role)!.key;

/** Every instance of the topology that the cluster TLS commands cannot convert, in file order. */
export function refusedInstances(t: Topology): RefusedInstance[] {
  const all: Array<Instance | AuxInstance> = [...t.instances, ...(t.otherInstances ?? [])];
  return all
    // Fail closed: a role missing from the table is refused, never skipped.
    .map((inst) => ({ inst, roleKey: keyOf(inst), handling: TLS_HANDLING[keyOf(inst)] ?? { kind: 'refused' as const, why: 'tiseal does not know this role' } }))
    .filter((r): r is typeof r & { handling: { kind: 'refused'; why: string } } => r.handling.kind === 'refused')
    .sort((a, b) => a.inst.source.line - b.inst.source.line)
    .map(({ inst, roleKey, handling }) => ({ inst, roleKey, why: handling.why }));
}

/** The refusal, one line naming the file and the first instance, or undefined when every instance is handled. */
export function tlsCoverageError(t: Topology): PreflightError | undefined {
  const refused = refusedInstances(t);
  if (refused.length === 0) return undefined;
  const [first, ...rest] = refused;
  const at = (r: RefusedInstance) => `${r.roleKey} ${r.inst.host}:${r.inst.port}`;
  const more = rest.length ? ` (and ${rest.length} more: ${rest.map(at).join(', ')})` : '';
  return new PreflightError(`${first.inst.source.file}:${first.inst.source.line}: ${at(first)}: ${first.why}${more}`, {
    suggestion: 'scale those instances in first (tiup cluster scale-in <cluster> -N <host:port>), or switch TLS with `tiup cluster tls <cluster> enable|disable`; nothing was changed on any host',
  });
}
