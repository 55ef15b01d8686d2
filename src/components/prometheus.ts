import * as yaml from 'js-yaml';
import { isDeepStrictEqual } from 'util';
import { TisealError } from '../errors';
import type { TlsPaths } from './tls-paths';
import { joinLines, Line, mappingKeys, splitLines, topLevelSequence } from './yaml-text';

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

export class PrometheusYmlEditError extends TisealError {}

/** A path as a YAML scalar: plain when nothing in it could mean something else, else double-quoted (JSON is valid YAML there). */
const yamlScalar = (v: string): string => (/^[A-Za-z0-9_./][A-Za-z0-9_./+@=-]*$/.test(v) ? v : JSON.stringify(v));

/** The TLS lines of pingcap/tiup embed/templates/config/prometheus.yml.tpl, keys at column `col`. */
function tlsLines(col: number, paths: TlsPaths, eol: string): { scheme: Line[]; tls: Line[] } {
  const at = (n: number, body: string): Line => ({ body: `${' '.repeat(n)}${body}`, eol });
  return {
    scheme: [at(col, 'scheme: https')],
    tls: [
      at(col, 'tls_config:'),
      at(col + 2, 'insecure_skip_verify: false'),
      at(col + 2, `ca_file: ${yamlScalar(paths.ca)}`),
      at(col + 2, `cert_file: ${yamlScalar(paths.cert)}`),
      at(col + 2, `key_file: ${yamlScalar(paths.key)}`),
    ],
  };
}

/** Edit the parsed document to say TLS on (`paths`) or off (null); returns which keys of which job changed. */
function editDoc(doc: { scrape_configs?: ScrapeConfig[] }, paths: TlsPaths | null): Array<{ index: number; scheme: boolean; tls: boolean }> {
  const changes: Array<{ index: number; scheme: boolean; tls: boolean }> = [];
  (Array.isArray(doc.scrape_configs) ? doc.scrape_configs : []).forEach((job, index) => {
    if (!job || typeof job !== 'object' || typeof job.job_name !== 'string') return;
    const offOnly = OFF_ONLY_SCRAPE_JOBS.has(job.job_name);
    if (!TLS_SCRAPE_JOBS.has(job.job_name) && !offOnly) return;
    if (paths && offOnly) return;
    if (paths) {
      const want = { insecure_skip_verify: false, ca_file: paths.ca, cert_file: paths.cert, key_file: paths.key };
      const scheme = job.scheme !== 'https';
      const tls = !isDeepStrictEqual(job.tls_config, want);
      if (scheme) job.scheme = 'https';
      if (tls) job.tls_config = want;
      if (scheme || tls) changes.push({ index, scheme, tls });
    } else if (job.scheme === 'https' || job.tls_config) {
      const scheme = 'scheme' in job;
      const tls = 'tls_config' in job;
      delete job.scheme;
      delete job.tls_config;
      changes.push({ index, scheme, tls });
    }
  });
  return changes;
}

/**
 * Rewrite prometheus.yml text for TLS on (paths) or off (null): only the `scheme`/`tls_config` lines
 * of the component jobs change, every other line stays byte-identical (issue #12 item 11). Returns
 * the same text when nothing changes. `where` (host:file) names the file in errors.
 */
export function applyPrometheusTls(text: string, paths: TlsPaths | null, where = 'prometheus.yml'): string {
  const refuse = (why: string): never => {
    throw new PrometheusYmlEditError(`${where}: cannot switch the scrape jobs to TLS ${paths ? 'on' : 'off'} in place: ${why}`, {
      suggestion: `write scrape_configs in ${where} as TiUP renders it (a block list, one \`- job_name: ...\` item per job, plain \`key: value\` lines), or regenerate it with \`tiup cluster reload <cluster> -R prometheus\`, then run tiseal again`,
    });
  };
  let doc: { scrape_configs?: ScrapeConfig[] };
  try {
    doc = (yaml.load(text) ?? {}) as { scrape_configs?: ScrapeConfig[] };
  } catch (e) {
    return refuse(`it is not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  const changes = editDoc(doc, paths);
  if (changes.length === 0) return text;

  const lines = splitLines(text);
  const items = topLevelSequence(lines, 'scrape_configs');
  if (!items || items.length !== doc.scrape_configs!.length) refuse('scrape_configs is not a block list');
  const eol = lines.find((l) => l.eol)?.eol ?? '\n';
  // Splices as [start, end, replacement]; applied bottom-up so earlier line numbers stay valid.
  const splices: Array<[number, number, Line[]]> = [];
  for (const c of changes) {
    const item = items![c.index];
    const name = doc.scrape_configs![c.index].job_name;
    if (item.keyCol === undefined) refuse(`job "${name}" is not a block mapping`);
    const keys = mappingKeys(lines, item.start, item.end, item.keyCol!);
    const one = (k: string) => {
      const found = keys.filter((b) => b.key === k);
      if (found.length > 1) refuse(`job "${name}" has ${k} twice`);
      return found[0];
    };
    const [jobName, scheme, tls] = [one('job_name'), one('scheme'), one('tls_config')];
    if (!jobName) refuse(`job "${name}" has no plain job_name line`);
    if (!paths) {
      if (scheme) splices.push([scheme.start, scheme.end, []]);
      if (tls) splices.push([tls.start, tls.end, []]);
      continue;
    }
    const fresh = tlsLines(item.keyCol!, paths, eol);
    const inserted: Line[] = [];
    if (c.scheme) {
      if (scheme) splices.push([scheme.start, scheme.end, fresh.scheme]);
      else inserted.push(...fresh.scheme);
    }
    if (c.tls) {
      if (tls) splices.push([tls.start, tls.end, fresh.tls]);
      else inserted.push(...fresh.tls);
    }
    if (inserted.length > 0) {
      const last = lines[jobName!.end - 1];
      if (!last.eol) last.eol = eol;
      splices.push([jobName!.end, jobName!.end, inserted]);
    }
  }
  // Bottom-up; at one line, a replacement before an insertion there (the insertion goes above it).
  splices.sort((a, b) => b[0] - a[0] || b[1] - a[1]);
  for (const [start, end, repl] of splices) lines.splice(start, end - start, ...repl);
  const out = joinLines(lines);
  // The line edit must say exactly what the document edit says; anything else is a layout not understood.
  let check: unknown;
  try {
    check = yaml.load(out) ?? {};
  } catch {
    return refuse('the edited file would not parse');
  }
  if (!isDeepStrictEqual(check, doc)) refuse('its job layout is not one tiseal can edit line by line');
  return out;
}

/** Is TLS on for every component job of this prometheus.yml? ('partial' when mixed.) */
export function prometheusTlsState(text: string): 'on' | 'off' | 'partial' {
  const doc = (yaml.load(text) ?? {}) as { scrape_configs?: ScrapeConfig[] };
  const jobs = (doc.scrape_configs ?? []).filter((j) => j.job_name && TLS_SCRAPE_JOBS.has(j.job_name));
  if (jobs.length === 0) return 'off';
  const on = jobs.filter((j) => j.scheme === 'https').length;
  return on === jobs.length ? 'on' : on === 0 ? 'off' : 'partial';
}
