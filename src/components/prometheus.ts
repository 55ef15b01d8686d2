import * as yaml from 'js-yaml';
import type { TlsPaths } from './tls-paths';

/**
 * Prometheus keeps its own web port on http; what changes with cluster TLS is how it scrapes the
 * components: TiUP switches those jobs to `scheme: https` with a `tls_config` pointing at the
 * prometheus certificate. Exporter and blackbox jobs are left alone.
 */
export const TLS_SCRAPE_JOBS = new Set(['tidb', 'tikv', 'pd', 'tiflash', 'tiflash_proxy', 'ticdc', 'cdc', 'pump', 'drainer', 'lightning', 'dm_master', 'dm_worker']);

/**
 * Jobs TiUP's template also switches to https (embed/templates/config/prometheus.yml.tpl) for
 * components tiseal refuses to convert (src/topology/tls-coverage.ts): never switched on, since
 * their targets would still speak http, but switched back off so a TiUP-TLS file comes back whole.
 */
export const OFF_ONLY_SCRAPE_JOBS = new Set(['tiproxy', 'tso', 'scheduling', 'resource-manager', 'router', 'tikv-cdc']);

interface ScrapeConfig {
  job_name?: string;
  scheme?: string;
  tls_config?: Record<string, unknown>;
  [k: string]: unknown;
}

/** Rewrite prometheus.yml text for TLS on (paths) or off (null). Returns the new text, or the same text when nothing changes. */
export function applyPrometheusTls(text: string, paths: TlsPaths | null): string {
  const doc = (yaml.load(text) ?? {}) as { scrape_configs?: ScrapeConfig[] };
  const jobs = doc.scrape_configs ?? [];
  let changed = false;
  for (const job of jobs) {
    if (!job.job_name) continue;
    const offOnly = OFF_ONLY_SCRAPE_JOBS.has(job.job_name);
    if (!TLS_SCRAPE_JOBS.has(job.job_name) && !offOnly) continue;
    if (paths && offOnly) continue;
    if (paths) {
      const want = { insecure_skip_verify: false, ca_file: paths.ca, cert_file: paths.cert, key_file: paths.key };
      if (job.scheme !== 'https' || JSON.stringify(job.tls_config) !== JSON.stringify(want)) {
        job.scheme = 'https';
        job.tls_config = want;
        changed = true;
      }
    } else if (job.scheme === 'https' || job.tls_config) {
      delete job.scheme;
      delete job.tls_config;
      changed = true;
    }
  }
  return changed ? yaml.dump(doc, { lineWidth: -1, noRefs: true }) : text;
}

/** Is TLS on for every component job of this prometheus.yml? ('partial' when mixed.) */
export function prometheusTlsState(text: string): 'on' | 'off' | 'partial' {
  const doc = (yaml.load(text) ?? {}) as { scrape_configs?: ScrapeConfig[] };
  const jobs = (doc.scrape_configs ?? []).filter((j) => j.job_name && TLS_SCRAPE_JOBS.has(j.job_name));
  if (jobs.length === 0) return 'off';
  const on = jobs.filter((j) => j.scheme === 'https').length;
  return on === jobs.length ? 'on' : on === 0 ? 'off' : 'partial';
}
