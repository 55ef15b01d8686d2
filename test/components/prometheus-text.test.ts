import * as fs from 'fs';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { applyPrometheusTls, PrometheusYmlEditError, prometheusTlsState } from '../../src/components/prometheus';
import { tlsPaths } from '../../src/components';
import { parseTopology } from '../../src/topology';
import { prometheusYml } from '../../lab/monitoring';

// prometheus.yml is edited line by line: only the scheme/tls_config lines of component jobs change.

const topoFile = path.join(__dirname, '..', '..', 'lab', 'topologies', 'default.yaml');
const topo = parseTopology(fs.readFileSync(topoFile, 'utf8'), topoFile);
const prom = topo.instances.find((i) => i.role === 'prometheus')!;
const TIUP_PLAIN = prometheusYml(prom, topo, 'lab');
const paths = tlsPaths(prom);
const WHERE = `${prom.host}:${prom.deployDir}/conf/prometheus.yml`;

/** TiUP's template TLS block (embed/templates/config/prometheus.yml.tpl), with `dir` for ../tls. */
const tiupTlsBlock = (dir: string) => [
  '    scheme: https',
  '    tls_config:',
  '      insecure_skip_verify: false',
  `      ca_file: ${dir}/ca.crt`,
  `      cert_file: ${dir}/prometheus.crt`,
  `      key_file: ${dir}/prometheus.pem`,
];

/** Lines of `after` with the lines added to `before` dropped, in order (a subsequence check). */
function keptLines(before: string, after: string): string[] {
  const want = before.split('\n');
  const out: string[] = [];
  for (const l of after.split('\n')) if (out.length < want.length && l === want[out.length]) out.push(l);
  return out;
}

describe('prometheus.yml rewritten line by line', () => {
  it("inserts TiUP's TLS lines right after job_name and takes them out again: TiUP's render comes back byte for byte", () => {
    const on = applyPrometheusTls(TIUP_PLAIN, paths, WHERE);
    const lines = on.split('\n');
    for (const job of ['tidb', 'tikv', 'pd', 'tiflash', 'ticdc']) {
      const at = lines.indexOf(`  - job_name: "${job}"`);
      expect(at).toBeGreaterThan(0);
      expect(lines.slice(at + 1, at + 7)).toEqual(tiupTlsBlock(`${prom.deployDir}/tls`));
    }
    // refused components and exporters untouched
    for (const job of ['tiproxy', 'tso', 'overwritten-nodes']) expect(lines[lines.indexOf(`  - job_name: "${job}"`) + 1]).toMatch(/honor_labels/);
    expect(on.split('\n').length - TIUP_PLAIN.split('\n').length).toBe(5 * 6);
    expect(keptLines(TIUP_PLAIN, on)).toEqual(TIUP_PLAIN.split('\n'));
    expect(prometheusTlsState(on)).toBe('on');
    expect(applyPrometheusTls(on, paths, WHERE)).toBe(on);
    expect(applyPrometheusTls(on, null, WHERE)).toBe(TIUP_PLAIN);
  });

  it("turns TiUP's own TLS render (../tls paths, TLS after honor_labels) back into its plaintext render byte for byte, and re-points it in place", () => {
    const lines = TIUP_PLAIN.split('\n');
    const tls: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      tls.push(lines[i]);
      const job = /^ {2}- job_name: "(\w+)"$/.exec(lines[i - 1] ?? '')?.[1];
      // TiUP puts the block after honor_labels (and tiproxy's metrics_path), for every component job.
      if (job && ['tidb', 'tikv', 'pd', 'tso', 'tiflash', 'ticdc'].includes(job)) tls.push(...tiupTlsBlock('../tls'));
      if (lines[i] === '    metrics_path: /api/metrics') tls.push(...tiupTlsBlock('../tls'));
    }
    const tiupTls = tls.join('\n');
    expect(applyPrometheusTls(tiupTls, null, WHERE)).toBe(TIUP_PLAIN);
    // enable replaces the paths where they stand; tiproxy/tso keep TiUP's lines (never switched on)
    const on = applyPrometheusTls(tiupTls, paths, WHERE);
    expect(on.split('\n')).toHaveLength(tls.length);
    expect(on.split('\n').filter((l, i) => l !== tls[i]).sort()).toEqual(
      Array.from({ length: 5 }, () => [`      ca_file: ${paths.ca}`, `      cert_file: ${paths.cert}`, `      key_file: ${paths.key}`]).flat().sort(),
    );
  });

  const OPERATOR = `# prometheus.yml, hand-tuned
global:
  scrape_interval:   15s   # keep
'scrape_configs':
- job_name: 'tidb'   # SQL layer
  # scraped every 15s
  honor_labels: yes
  static_configs:
  - targets: ["10.0.1.14:10080"]

- "job_name": pd
  scheme: 'http'     # was plaintext
  tls_config:
    # operator note
    insecure_skip_verify: true

  static_configs:
  - targets:
    - 10.0.1.11:2379
- job_name: custom
  scheme: http
  tls_config: {insecure_skip_verify: true}
rule_files: ['a.yml']
`;

  it('keeps comments, quoting and order of an operator-edited file; enable then disable gives it back, other jobs untouched', () => {
    const on = applyPrometheusTls(OPERATOR, paths, WHERE);
    const doc = yaml.load(on) as { scrape_configs: Array<Record<string, unknown>> };
    const want = { insecure_skip_verify: false, ca_file: paths.ca, cert_file: paths.cert, key_file: paths.key };
    expect(doc.scrape_configs[0]).toMatchObject({ job_name: 'tidb', scheme: 'https', tls_config: want, honor_labels: 'yes' });
    expect(doc.scrape_configs[1]).toMatchObject({ job_name: 'pd', scheme: 'https', tls_config: want });
    expect(doc.scrape_configs[2]).toEqual({ job_name: 'custom', scheme: 'http', tls_config: { insecure_skip_verify: true } });
    // tidb gets the lines after job_name; pd's own lines are replaced where they stand; nothing else moves
    const block = `  tls_config:\n    insecure_skip_verify: false\n    ca_file: ${paths.ca}\n    cert_file: ${paths.cert}\n    key_file: ${paths.key}\n`;
    expect(on).toBe(
      OPERATOR.replace("# SQL layer\n", `# SQL layer\n  scheme: https\n${block}`).replace(
        "  scheme: 'http'     # was plaintext\n  tls_config:\n    # operator note\n    insecure_skip_verify: true\n",
        `  scheme: https\n${block}`,
      ),
    );
    // disable removes the scheme/tls_config tiseal owns: the pd job loses its operator lines too (TiUP's plaintext has none)
    const off = applyPrometheusTls(on, null, WHERE);
    expect(off).toBe(OPERATOR.replace("  scheme: 'http'     # was plaintext\n  tls_config:\n    # operator note\n    insecure_skip_verify: true\n", ''));
    const plain = OPERATOR.replace(/ {2}scheme: 'http'.*\n(.*\n){3}/, '');
    expect(applyPrometheusTls(applyPrometheusTls(plain, paths, WHERE), null, WHERE)).toBe(plain);
  });

  it("edits js-yaml's own layout too (lists indented under their key)", () => {
    const dumped = yaml.dump(yaml.load(TIUP_PLAIN));
    const on = applyPrometheusTls(dumped, paths, WHERE);
    expect(on).toContain(`  - job_name: pd\n    scheme: https\n    tls_config:\n      insecure_skip_verify: false\n      ca_file: ${paths.ca}\n`);
    expect(applyPrometheusTls(on, null, WHERE)).toBe(dumped);
  });

  it('inserts a missing scheme above a tls_config it replaces right after job_name', () => {
    const text = 'scrape_configs:\n  - job_name: tikv\n    tls_config:\n      insecure_skip_verify: true\n    static_configs: []\n';
    expect(applyPrometheusTls(text, paths, WHERE)).toBe(
      `scrape_configs:\n  - job_name: tikv\n    scheme: https\n    tls_config:\n      insecure_skip_verify: false\n      ca_file: ${paths.ca}\n      cert_file: ${paths.cert}\n      key_file: ${paths.key}\n    static_configs: []\n`,
    );
  });

  it('keeps CRLF line ends and quotes paths that would mean something else in YAML', () => {
    const odd = { dir: '/d #x/tls', ca: '/d #x/tls/ca.crt', cert: "/d #x/tls/it's: a.crt", key: '/d #x/tls/k.pem' };
    const crlf = OPERATOR.split('\n').join('\r\n');
    const on = applyPrometheusTls(crlf, odd, WHERE);
    expect(on.split('\n').slice(0, -1).every((l) => l.endsWith('\r'))).toBe(true);
    const doc = yaml.load(on) as { scrape_configs: Array<{ tls_config?: Record<string, unknown> }> };
    expect(doc.scrape_configs[0].tls_config).toEqual({ insecure_skip_verify: false, ca_file: odd.ca, cert_file: odd.cert, key_file: odd.key });
  });

  const refused = (text: string, on: boolean): PrometheusYmlEditError => {
    try {
      applyPrometheusTls(text, on ? paths : null, WHERE);
    } catch (e) {
      return e as PrometheusYmlEditError;
    }
    throw new Error('not refused');
  };

  it.each([
    ['flow-style scrape_configs', 'scrape_configs: [{job_name: tidb, static_configs: [{targets: ["a:1"]}]}]\n', true, /not a block list/],
    ['a flow-style job', 'scrape_configs:\n  - {job_name: tidb, static_configs: [{targets: ["a:1"]}]}\n', true, /job "tidb" is not a block mapping/],
    // the line edit would leave the merged scheme in place: caught by re-parsing the result
    ['scheme from a merge key', 'x: &tls\n  scheme: https\nscrape_configs:\n  - job_name: tidb\n    <<: *tls\n', false, /layout is not one tiseal can edit/],
    ['a job_name that is no plain line', 'scrape_configs:\n  - ? job_name\n    : tidb\n', true, /job "tidb" is not a block mapping/],
    ['a file that is not YAML', 'scrape_configs:\n  - job_name: "tidb\n', true, /not valid YAML/],
  ])('refuses %s with a suggestion naming host and file, rather than guessing', (_what, text, on, why) => {
    const e = refused(text, on);
    expect(e.message).toMatch(why);
    expect(e).toBeInstanceOf(PrometheusYmlEditError);
    expect(e.message).toContain(WHERE);
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.suggestion).toContain(WHERE);
  });

  it('leaves a file it could not edit alone when there is nothing to change', () => {
    const flow = 'scrape_configs: [{job_name: tidb, static_configs: [{targets: ["a:1"]}]}]\n';
    expect(applyPrometheusTls(flow, null, WHERE)).toBe(flow);
    expect(prometheusTlsState(flow)).toBe('off');
  });
});
