/** Small lookups later code needs again and again. */
import { joinHostPort } from './paths';
import { ALL_ROLE_SPECS } from './roles';
import type { AuxInstance, Instance, Role, Topology } from './types';

/** Instances of one role, in file order. */
export function instancesByRole(t: Topology, role: Role): Instance[] {
  return t.instances.filter((i) => i.role === role);
}

/** The address a TiKV or TiFlash instance registers in PD as its store (advertise_addr, else host:port). */
export function storeAddress(inst: Instance): string {
  const port = inst.role === 'tikv' ? inst.ports.port : inst.ports.flash_service_port;
  return inst.advertise.advertise_addr ?? `${inst.host}:${port}`;
}

export function pdInstances(t: Topology): Instance[] {
  return instancesByRole(t, 'pd');
}

/**
 * `host:client_port` of every PD, as TiKV `--pd`, TiDB `--path` and TiFlash `pd_addr` take them.
 * With `useManageHost`, the address the control machine reaches (TiUP GetPDListWithManageHost).
 */
export function pdEndpoints(t: Topology, opts: { useManageHost?: boolean } = {}): string[] {
  return pdInstances(t).map((i) => joinHostPort(opts.useManageHost ? (i.manageHost ?? i.host) : i.host, i.ports.client_port ?? i.port));
}

/** `<scheme>://host:client_port` of every PD (PD --join, TiCDC --pd, PD API clients). */
export function pdClientUrls(t: Topology, scheme: 'http' | 'https', opts: { useManageHost?: boolean } = {}): string[] {
  return pdEndpoints(t, opts).map((e) => `${scheme}://${e}`);
}

/** `host:port` of an instance's main port, TiUP's instance ID. */
export function instanceAddress(i: Pick<Instance, 'host' | 'port'>): string {
  return joinHostPort(i.host, i.port);
}

/** Managed and unmanaged instances together, in TiUP start order (file order within a role). */
export function allInstancesInStartOrder(t: Topology): Array<Instance | AuxInstance> {
  const rank = new Map<string | undefined, number>(ALL_ROLE_SPECS.map((s, n) => [s.key, n]));
  const order = (key: string | undefined) => rank.get(key) ?? -1;
  return [...t.instances, ...(t.otherInstances ?? [])]
    .map((inst, n) => ({ inst, n }))
    .sort((a, b) => order(a.inst.roleKey) - order(b.inst.roleKey) || a.n - b.n)
    .map((x) => x.inst);
}
