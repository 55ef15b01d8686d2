/**
 * What the lab's real Prometheus (monitoring_servers) sees, from its own /api/v1/targets. The jobs
 * and ports it must scrape are written here from TiUP (embed/templates/config/prometheus.yml.tpl,
 * pkg/cluster/spec/monitoring.go: PD client port, TiKV/TiDB status port, TiFlash metrics and proxy
 * status ports, Pump/Drainer/TiCDC ports, node_exporter on every host) and read from the raw topology YAML, not
 * from tiseal's parser or the lab's renderer.
 */
import * as fs from 'fs';
import * as yaml from 'js-yaml';
import type { LabInfo } from '../../lab';
import { waitUntil } from './helpers';
import { curl } from './tiseal';

const COMPONENT_JOBS: Record<string, { section: string; key: string; default: number }[]> = {
  pd: [{ section: 'pd_servers', key: 'client_port', default: 2379 }],
  tikv: [{ section: 'tikv_servers', key: 'status_port', default: 20180 }],
  tidb: [{ section: 'tidb_servers', key: 'status_port', default: 10080 }],
  tiflash: [
    { section: 'tiflash_servers', key: 'metrics_port', default: 8234 },
    { section: 'tiflash_servers', key: 'flash_proxy_status_port', default: 20292 },
  ],
  ticdc: [{ section: 'cdc_servers', key: 'port', default: 8300 }],
  pump: [{ section: 'pump_servers', key: 'port', default: 8250 }],
  drainer: [{ section: 'drainer_servers', key: 'port', default: 8249 }],
};

type Servers = Array<Record<string, unknown>>;
interface Target {
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

function topology(info: LabInfo): Record<string, Servers | undefined> {
  return yaml.load(fs.readFileSync(info.topologyFile, 'utf8')) as Record<string, Servers | undefined>;
}

/** `<job> <url> up` for every component target TiUP's prometheus.yml scrapes, on `scheme`. */
export function expectedComponentTargets(info: LabInfo, scheme: 'http' | 'https'): string[] {
  const doc = topology(info);
  const out: string[] = [];
  for (const [job, ports] of Object.entries(COMPONENT_JOBS)) {
    for (const p of ports) for (const s of doc[p.section] ?? []) out.push(`${job} ${scheme}://${s.host}:${Number(s[p.key] ?? p.default)}/metrics up`);
  }
  return out.sort();
}

export function prometheusTargets(info: LabInfo): Target[] {
  const mon = topology(info).monitoring_servers?.[0];
  if (!mon) throw new Error(`${info.topologyFile} has no monitoring_servers`);
  const r = curl([`http://${mon.host}:${Number(mon.port ?? 9090)}/api/v1/targets?state=active`]);
  if (r.code !== 0) throw new Error(`Prometheus targets: ${r.out}`);
  return (JSON.parse(r.out) as { data: { activeTargets: Target[] } }).data.activeTargets;
}

/**
 * Prometheus scrapes every component over `scheme` (https: with the prometheus certificate, which
 * the components accept only from the cluster CA) and each target is up; node_exporter on every
 * host is up; no target at all is down. Blackbox probes run every 30 s (TiUP's interval), so a probe
 * not scraped yet since Prometheus restarted may still be `unknown`.
 */
export async function expectPrometheusScrapes(info: LabInfo, scheme: 'http' | 'https', timeoutMs = 30_000): Promise<void> {
  const want = expectedComponentTargets(info, scheme);
  const hosts = [...new Set(Object.values(topology(info)).flatMap((v) => (Array.isArray(v) ? v.map((s) => String(s.host)) : [])))];
  const wantNodes = hosts.map((h) => `http://${h}:9100/metrics up`).sort();
  let last = '';
  try {
    await waitUntil(`Prometheus scraping every component over ${scheme}`, timeoutMs, () => {
      const targets = prometheusTargets(info);
      const got = targets.filter((t) => t.scrapePool in COMPONENT_JOBS).map((t) => `${t.scrapePool} ${t.scrapeUrl} ${t.health}`).sort();
      const nodes = targets.filter((t) => t.scrapePool === 'overwritten-nodes').map((t) => `${t.scrapeUrl} ${t.health}`).sort();
      const down = targets.filter((t) => t.health === 'down').map((t) => `${t.scrapePool} ${t.scrapeUrl}: ${t.lastError}`);
      last = JSON.stringify({ got, nodes, down }, null, 1);
      return JSON.stringify(got) === JSON.stringify(want) && JSON.stringify(nodes) === JSON.stringify(wantNodes) && down.length === 0 ? true : undefined;
    }, 1000);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nwanted ${JSON.stringify(want, null, 1)}\nlast seen ${last}`);
  }
}
