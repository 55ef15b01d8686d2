import type { Role } from '../topology/types';
import { versionAtLeast } from '../util/version';

/** The CN tiseal's own client certificate carries; allowed everywhere so tiseal can manage the cluster. */
export const CONTROL_CN = 'tiseal';

/**
 * Caller identity under `--verify-cn`: each component accepts the certificate CNs of the
 * components that dial it, plus the control client. CNs are the component names TiUP uses
 * (pd, tikv, tidb, tiflash, cdc, …), which is what tiseal puts in every leaf.
 */
const CALLERS: Partial<Record<Role, Role[]>> = {
  // Everyone registers with, asks or reports to PD; Prometheus scrapes its client port.
  pd: ['pd', 'tikv', 'tidb', 'tiflash', 'cdc', 'tiproxy', 'pump', 'drainer', 'prometheus'],
  // Raft between stores, TiDB/TiFlash coprocessor and CDC change feeds dial TiKV.
  tikv: ['tikv', 'tiflash', 'tidb', 'cdc', 'pd'],
  // Status API: TiDB peers, the PD dashboard, TiProxy and Prometheus.
  tidb: ['tidb', 'pd', 'tiproxy', 'prometheus'],
  // TiDB's MPP and TiKV/PD talk to TiFlash (and its proxy, with TiKV's rules).
  tiflash: ['tiflash', 'tikv', 'tidb', 'pd'],
  // Captures talk to each other on the same port; Prometheus scrapes it.
  cdc: ['cdc', 'prometheus'],
  pump: ['tidb', 'pump', 'drainer'],
  drainer: ['pump', 'drainer'],
};

/** PD before v8.4.0 accepts exactly one CN and checks it on the peer port only. */
export const PD_MULTI_CN_VERSION: [number, number, number] = [8, 4, 0];

export interface AllowList {
  cns: string[];
  /** Why the list is narrower than the matrix (shown to the operator). */
  note?: string;
}

/** The allow-list for a component, or undefined when it has no CN setting tiseal writes. */
export function allowedCallers(role: Role, pdVersion: string | undefined, extra: string[] = []): AllowList | undefined {
  const callers = CALLERS[role];
  if (!callers) return undefined;
  if (role === 'pd' && versionAtLeast(pdVersion, PD_MULTI_CN_VERSION) === false) {
    return { cns: ['pd'], note: `PD ${pdVersion} accepts one CN and checks it on its peer port only: cert-allowed-cn = ["pd"] (PD v8.4.0+ takes the full list on both ports)` };
  }
  return { cns: [...new Set([...callers, CONTROL_CN, ...extra])].sort() };
}

/** The matrix as text, for the README and `--help`. */
export function callerMatrix(): Array<{ role: Role; callers: string[] }> {
  return (Object.keys(CALLERS) as Role[]).map((role) => ({ role, callers: [...CALLERS[role]!, CONTROL_CN] }));
}
