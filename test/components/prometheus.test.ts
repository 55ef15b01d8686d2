import * as yaml from 'js-yaml';
import { applyPrometheusTls, prometheusTlsState } from '../../src/components/prometheus';

// The shape of TiUP's rendered prometheus.yml (embed/templates/config/prometheus.yml.tpl), trimmed.
const TIUP_PROMETHEUS = `---
global:
  scrape_interval: 15s
  evaluation_interval: 15s
  external_labels:
    cluster: 'prod'
    monitor: "prometheus"
scrape_configs:
  - job_name: "overwritten-nodes"
    honor_labels: true
    static_configs:
    - targets:
      - '10.0.1.11:9100'
  - job_name: "tidb"
    honor_labels: true
    static_configs:
    - targets:
      - '10.0.1.14:10080'
  - job_name: "tikv"
    honor_labels: true
    static_configs:
    - targets:
      - '10.0.1.17:20180'
  - job_name: "pd"
    honor_labels: true
    static_configs:
    - targets:
      - '10.0.1.11:2379'
  - job_name: "blackbox_exporter_http"
    scrape_interval: 30s
    metrics_path: /probe
    params:
      module: [http_2xx]
    static_configs:
    - targets:
      - 'http://10.0.1.22:9090/-/ready'
`;
const paths = { dir: '/tidb-deploy/prometheus-9090/tls', ca: '/tidb-deploy/prometheus-9090/tls/ca.crt', cert: '/tidb-deploy/prometheus-9090/tls/prometheus.crt', key: '/tidb-deploy/prometheus-9090/tls/prometheus.pem' };

describe('prometheus scrape jobs', () => {
  it('switches component jobs to https with the prometheus certificate, leaves exporters alone, and back', () => {
    const on = applyPrometheusTls(TIUP_PROMETHEUS, paths);
    const doc = yaml.load(on) as { scrape_configs: Array<{ job_name: string; scheme?: string; tls_config?: Record<string, unknown> }> };
    const job = (n: string) => doc.scrape_configs.find((j) => j.job_name === n)!;
    for (const n of ['tidb', 'tikv', 'pd']) {
      expect(job(n).scheme).toBe('https');
      expect(job(n).tls_config).toEqual({ insecure_skip_verify: false, ca_file: paths.ca, cert_file: paths.cert, key_file: paths.key });
    }
    expect(job('overwritten-nodes').scheme).toBeUndefined();
    expect(job('blackbox_exporter_http').scheme).toBeUndefined();
    expect(prometheusTlsState(on)).toBe('on');
    expect(applyPrometheusTls(on, paths)).toBe(on); // idempotent
    const off = applyPrometheusTls(on, null);
    expect(prometheusTlsState(off)).toBe('off');
    expect(yaml.load(off)).toEqual(yaml.load(TIUP_PROMETHEUS));
    expect(applyPrometheusTls(TIUP_PROMETHEUS, null)).toBe(TIUP_PROMETHEUS);
  });

  // TiUP's template always has these jobs (empty targets without such servers); tiseal refuses
  // those components (src/topology/tls-coverage.ts), so their jobs must keep scraping over http.
  const WITH_REFUSED = `${TIUP_PROMETHEUS}  - job_name: "tiproxy"
    honor_labels: true
    metrics_path: /api/metrics
    static_configs:
    - targets:
      - '10.0.1.30:3080'
  - job_name: "tso"
    honor_labels: true
    static_configs:
    - targets:
`;
  it('never switches the jobs of refused components (tiproxy, tso, ...) on, but takes a TiUP-TLS one back off', () => {
    const on = applyPrometheusTls(WITH_REFUSED, paths);
    const doc = yaml.load(on) as { scrape_configs: Array<{ job_name: string; scheme?: string; tls_config?: unknown }> };
    const job = (n: string) => doc.scrape_configs.find((j) => j.job_name === n)!;
    expect(job('pd').scheme).toBe('https');
    for (const n of ['tiproxy', 'tso']) {
      expect(job(n).scheme).toBeUndefined();
      expect(job(n).tls_config).toBeUndefined();
    }
    expect(prometheusTlsState(on)).toBe('on');
    // As TiUP renders it with enable_tls: every job https.
    const tiupTls = yaml.load(WITH_REFUSED) as { scrape_configs: Array<Record<string, unknown>> };
    for (const j of tiupTls.scrape_configs) if (['tidb', 'tikv', 'pd', 'tiproxy', 'tso'].includes(j.job_name as string)) Object.assign(j, { scheme: 'https', tls_config: { insecure_skip_verify: false, ca_file: '../tls/ca.crt' } });
    const off = applyPrometheusTls(yaml.dump(tiupTls), null);
    expect(yaml.load(off)).toEqual(yaml.load(WITH_REFUSED));
  });
});
