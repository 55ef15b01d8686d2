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
  // TiDB's MPP and TiKV/PD talk to TiFlash (and its proxy, with TiKV's rules); Prometheus scrapes
  // the metrics port, which under TLS wants a client certificate with an allowed CN (MetricsPrometheus.cpp).
  tiflash: ['tiflash', 'tikv', 'tidb', 'pd', 'prometheus'],
  // Captures talk to each other on the same port; Prometheus scrapes it. TiCDC also checks the CN
  // of the PD it calls over HTTP against this list (tiflow pkg/httputil → ToTLSConfigWithVerify,
  // pkg/version/check.go at start); its TiKV and PD gRPC dials use no CN check (ToTLSConfig).
  cdc: ['cdc', 'prometheus', 'pd'],
  // TiDB writes binlog to Pump, Drainer pulls from it, Pumps notify Drainers; Prometheus scrapes
  // /metrics on the same port, which asks a client certificate once a CN list is set
  // (tidb-binlog pkg/security/security.go: RequireAndVerifyClientCert with cert-allowed-cn).
  pump: ['tidb', 'pump', 'drainer', 'prometheus'],
  drainer: ['pump', 'drainer', 'prometheus'],
};

/** PD before v8.4.0 takes one CN, and not only for callers: see pdAllowListSkipped. */
export const PD_MULTI_CN_VERSION: [number, number, number] = [8, 4, 0];

export interface AllowList {
  cns: string[];
  /** Why the list is narrower than the matrix (shown to the operator). */
  note?: string;
}

/**
 * Below v8.4.0 PD's `cert-allowed-cn` takes one CN and PD also puts it into its CLIENT TLS config
 * (tikv/pd pkg/utils/grpcutil/grpcutil.go ToTLSInfo → etcd transport TLSInfo.AllowedCN, checked
 * in VerifyPeerCertificate by clients too), so PD's own calls to TiKV, TiDB and TiFlash fail with
 * "CommonName authentication failed" unless every component shares that CN. tiseal gives each
 * component its own CN, so it leaves PD without an allow-list there. Returns the operator note, or
 * undefined when PD takes the list (v8.4.0+). For the plan, `tls status` and `audit`.
 */
export function pdAllowListSkipped(pdVersion: string | undefined): string | undefined {
  if (versionAtLeast(pdVersion, PD_MULTI_CN_VERSION) !== false) return undefined;
  return (
    `PD ${pdVersion} gets no cert-allowed-cn: before v8.4.0 PD takes one CN and also requires it of the ` +
    'servers it calls (TiKV, TiDB, TiFlash), which carry their own CNs; PD still requires a client ' +
    'certificate from the cluster CA (PD v8.4.0+ takes the full list)'
  );
}

/** The allow-list for a component, or undefined when it has no CN setting tiseal writes. */
export function allowedCallers(role: Role, pdVersion: string | undefined, extra: string[] = []): AllowList | undefined {
  const callers = CALLERS[role];
  if (!callers) return undefined;
  if (role === 'pd') {
    const note = pdAllowListSkipped(pdVersion);
    if (note) return { cns: [], note };
  }
  return { cns: [...new Set([...callers, CONTROL_CN, ...extra])].sort() };
}

/** The matrix as text, for the README and `--help`. */
export function callerMatrix(): Array<{ role: Role; callers: string[] }> {
  return (Object.keys(CALLERS) as Role[]).map((role) => ({ role, callers: [...CALLERS[role]!, CONTROL_CN] }));
}
