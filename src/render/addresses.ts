/** Addresses and URLs exactly as TiUP derives them for scripts and configs. */
import type { Instance, Topology } from '../topology/types';

/** Go's net.JoinHostPort: IPv6 literals in brackets. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** TiUP GetListenHost: the instance's listen_host, else global listen_host, else the wildcard. */
export function listenHostOf(inst: Instance, topo: Topology): string {
  if (inst.listenHost) return inst.listenHost;
  if (topo.global.listenHost) return topo.global.listenHost;
  return inst.host.includes(':') ? '::' : '0.0.0.0';
}

export function portOf(inst: Instance, field: string, fallback?: number): number {
  const p = inst.ports[field];
  if (typeof p === 'number') return p;
  if (fallback !== undefined) return fallback;
  throw new Error(`${inst.role} instance ${inst.host}:${inst.port} has no ${field}`);
}

export function schemeOf(tls: boolean): 'http' | 'https' {
  return tls ? 'https' : 'http';
}

export function pdInstances(topo: Topology): Instance[] {
  return topo.instances.filter((i) => i.role === 'pd');
}

/** `host:client_port` of every PD (TiUP GetPDList): TiKV --pd, TiDB --path, TiFlash raft.pd_addr. */
export function pdHostPorts(topo: Topology): string[] {
  return pdInstances(topo).map((p) => joinHostPort(p.host, portOf(p, 'client_port', 2379)));
}

/** `scheme://host:client_port` of every PD: CDC --pd, PD --join. */
export function pdClientUrls(topo: Topology, tls: boolean, exclude?: Instance): string[] {
  return pdInstances(topo)
    .filter((p) => p !== exclude)
    .map((p) => `${schemeOf(tls)}://${joinHostPort(p.host, portOf(p, 'client_port', 2379))}`);
}

/** PDSpec.GetAdvertiseClientURL: advertise_client_addr is used verbatim (a full URL) when set. */
export function pdAdvertiseClientUrl(pd: Instance, tls: boolean): string {
  return pd.advertise?.advertise_client_addr || `${schemeOf(tls)}://${joinHostPort(pd.host, portOf(pd, 'client_port', 2379))}`;
}

/** PDSpec.GetAdvertisePeerURL: advertise_peer_addr verbatim when set. */
export function pdAdvertisePeerUrl(pd: Instance, tls: boolean): string {
  return pd.advertise?.advertise_peer_addr || `${schemeOf(tls)}://${joinHostPort(pd.host, portOf(pd, 'peer_port', 2380))}`;
}

export function pdName(pd: Instance): string {
  return pd.name ?? `pd-${pd.host}-${portOf(pd, 'client_port', 2379)}`;
}

/** `--initial-cluster`: `name=peerURL,…` for every PD. */
export function pdInitialCluster(topo: Topology, tls: boolean): string {
  return pdInstances(topo)
    .map((p) => `${pdName(p)}=${pdAdvertisePeerUrl(p, tls)}`)
    .join(',');
}
