import * as yaml from 'js-yaml';
import { applyPrometheusTls } from '../../src/components/prometheus';

// pingcap/tiup embed/templates/config/prometheus.yml.tpl: jobs 'pump' and 'drainer' get
// `scheme: https` and the prometheus certificate under TLS, like every component job.
const TEXT = `scrape_configs:
  - job_name: 'pump'
    honor_labels: true
    static_configs:
    - targets:
      - '10.0.1.12:8250'
  - job_name: 'drainer'
    honor_labels: true
    static_configs:
    - targets:
      - '10.0.1.13:8249'
`;

test('Pump and Drainer scrape jobs switch to https with the prometheus certificate, and back', () => {
  const paths = { dir: '/d/tls', ca: '/d/tls/ca.crt', cert: '/d/tls/prometheus.crt', key: '/d/tls/prometheus.pem' };
  const on = applyPrometheusTls(TEXT, paths);
  const jobs = (yaml.load(on) as { scrape_configs: Array<Record<string, unknown>> }).scrape_configs;
  for (const j of jobs) {
    expect(j.scheme).toBe('https');
    expect(j.tls_config).toEqual({ insecure_skip_verify: false, ca_file: paths.ca, cert_file: paths.cert, key_file: paths.key });
  }
  const off = yaml.load(applyPrometheusTls(on, null)) as { scrape_configs: Array<Record<string, unknown>> };
  expect(off).toEqual(yaml.load(TEXT));
});
