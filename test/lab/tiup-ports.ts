/**
 * The ports that serve TLS once a TiUP cluster has TLS on, written for the tests from TiUP's
 * topology spec and the components' documentation, NOT from tiseal's component table
 * (src/components): a port tiseal forgets to secure still gets probed.
 *
 * Topology keys and defaults: pingcap/tiup pkg/cluster/spec/{pd,tikv,tidb,tiflash,cdc,pump,drainer}.go
 * (`yaml:"client_port" default:"2379"`, …). Which of them serve TLS: "Enable TLS Between TiDB
 * Components" (docs.pingcap.com) and /work/shared/reference/component-security.md. Not here: TiDB's
 * MySQL port (client TLS is separate from cluster TLS), monitoring (TiUP keeps it on http).
 * The ports are read from the raw topology YAML, not from tiseal's parser.
 */
import * as fs from 'fs';
import * as yaml from 'js-yaml';

interface PortSpec {
  key: string;
  default: number;
  /** Listened on only before this version (TiFlash dropped http_port in v7.1.0). */
  before?: string;
}

export const TIUP_TLS_PORTS: Record<string, { section: string; ports: PortSpec[] }> = {
  pd: { section: 'pd_servers', ports: [{ key: 'client_port', default: 2379 }, { key: 'peer_port', default: 2380 }] },
  tikv: { section: 'tikv_servers', ports: [{ key: 'port', default: 20160 }, { key: 'status_port', default: 20180 }] },
  tidb: { section: 'tidb_servers', ports: [{ key: 'status_port', default: 10080 }] },
  tiflash: {
    section: 'tiflash_servers',
    ports: [
      // Not tcp_port (< v7.1): TiUP keeps it under TLS (tiflash.go) and TiFlash serves it in plaintext,
      // "tls config is set but tcp_port_secure is not set." (Server.cpp v6.5.0).
      { key: 'http_port', default: 8123, before: 'v7.1.0' },
      { key: 'flash_service_port', default: 3930 },
      { key: 'flash_proxy_port', default: 20170 },
      { key: 'flash_proxy_status_port', default: 20292 },
      { key: 'metrics_port', default: 8234 },
    ],
  },
  cdc: { section: 'cdc_servers', ports: [{ key: 'port', default: 8300 }] },
  pump: { section: 'pump_servers', ports: [{ key: 'port', default: 8250 }] },
  drainer: { section: 'drainer_servers', ports: [{ key: 'port', default: 8249 }] },
};

const versionLess = (a: string, b: string): boolean => {
  const n = (v: string) => v.replace(/^v/, '').split(/[.-]/).slice(0, 3).map(Number);
  const [x, y] = [n(a), n(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i];
  return false;
};

export interface TiupEndpoint {
  role: string;
  host: string;
  key: string;
  port: number;
}

/** Every TLS port of every instance of a topology file, for a cluster of `version`. */
export function tiupTlsEndpoints(topologyFile: string, version: string): TiupEndpoint[] {
  const doc = yaml.load(fs.readFileSync(topologyFile, 'utf8')) as Record<string, Array<Record<string, unknown>> | undefined>;
  const out: TiupEndpoint[] = [];
  for (const [role, spec] of Object.entries(TIUP_TLS_PORTS)) {
    for (const inst of doc[spec.section] ?? []) {
      for (const p of spec.ports) {
        if (p.before && !versionLess(version, p.before)) continue;
        out.push({ role, host: String(inst.host), key: p.key, port: Number(inst[p.key] ?? p.default) });
      }
    }
  }
  return out;
}
