import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { PdClient } from '../../../src/pd/client';
import { renderConfig } from '../../../src/render';
import { FakePool } from '../../../src/ssh';
import { ClusterDir } from '../../../src/state/cluster-dir';
import { certificatesStep } from '../../../src/tasks/certs/issue';
import type { TlsContext } from '../../../src/tasks/context';
import { readInstanceTlsConfig } from '../../../src/tasks/facts';
import { stageStep } from '../../../src/tasks/certs/stage';
import { parseTopology, pdInstances } from '../../../src/topology';
import type { Instance, Topology } from '../../../src/topology/types';
import type { GlobalOptions } from '../../../src/options';

jest.setTimeout(60_000);

const TOPOLOGY = `global:
  user: tidb
  deploy_dir: /tidb-deploy
  data_dir: /tidb-data
pd_servers:
  - host: 10.0.0.1
tikv_servers:
  - host: 10.0.0.1
monitoring_servers:
  - host: 10.0.0.2
  - host: 10.0.0.3
  - host: 10.0.0.4
    ng_port: -1
`;

/**
 * conf/ngmonitoring.toml as TiUP renders it (embed/templates/config/ngmonitoring.toml.tpl; the
 * `{{- if .TLSEnabled}}` block trims the blank line before it, `{{- end}}` the newline after it).
 */
function tiupNgMonitoring(inst: Instance, tls: boolean): string {
  const d = inst.deployDir;
  const security = tls ? `\n[security]\nca-path = "${d}/tls/ca.crt"\ncert-path = "${d}/tls/prometheus.crt"\nkey-path = "${d}/tls/prometheus.pem"` : '';
  return `# NG Monitoring Server Configuration.

# Server address.
address = "0.0.0.0:12020"
advertise-address = "${inst.host}:12020"

[log]
# Log path
path = "${inst.logDir}"

# Log level: INFO, WARN, ERROR
level = "INFO"

[pd]
# Addresses of PD instances within the TiDB cluster. Multiple addresses are separated by commas, e.g. "10.0.0.1:2379","10.0.0.2:2379"
endpoints = ["10.0.0.1:2379"]${security}

[storage]
path = "${inst.dataDir}"`;
}

const PROMETHEUS_YML = `---
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: "pd"
    honor_labels: true
    static_configs:
    - targets:
      - '10.0.0.1:2379'
`;

function deployed(topology: Topology): FakePool {
  const pool = new FakePool();
  for (const inst of topology.instances) {
    const h = pool.host(inst.host);
    if (inst.role === 'prometheus') {
      h.addFile(`${inst.deployDir}/conf/prometheus.yml`, PROMETHEUS_YML, { owner: 'tidb', mode: 0o644 });
      // 10.0.0.3: ng_port defaults to 12020 in tiseal's model, but this (pre-v5.4) host has no ng-monitoring.
      if (inst.host === '10.0.0.2') h.addFile(`${inst.deployDir}/conf/ngmonitoring.toml`, tiupNgMonitoring(inst, false), { owner: 'tidb', mode: 0o644 });
      continue;
    }
    for (const [file, text] of Object.entries(renderConfig(inst, topology))) h.addFile(file, text, { owner: 'tidb', mode: 0o644 });
  }
  return pool;
}

function context(want: 'on' | 'off', topology: Topology, pool: FakePool, stateDir: string): TlsContext {
  return {
    want,
    runId: want === 'on' ? 'r-on' : 'r-off',
    topology,
    opts: { stateDir, concurrency: 4 } as GlobalOptions,
    cluster: new ClusterDir(stateDir, 'ng'),
    pool,
    pd: new PdClient([], undefined),
    user: 'tidb',
    keepPd: pdInstances(topology)[0],
    removedPds: [],
    flags: { certDays: 365, caDays: 3650, keyType: 'ecdsa' },
    notes: [],
    resuming: false,
  };
}

async function run(ctx: TlsContext) {
  if (ctx.want === 'on') for (const a of (await certificatesStep.decide(ctx)).actions) await a.run();
  const d = await stageStep.decide(ctx);
  for (const a of d.actions) await a.run();
  return d;
}

describe('ng-monitoring [security] (TiUP ngmonitoring.toml.tpl), staged with the other configs', () => {
  let stateDir: string;
  beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-ng-'))));
  afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('enable writes the prometheus certificate paths (backup first, atomic); disable gives TiUP’s file back byte for byte', async () => {
    const topology = parseTopology(TOPOLOGY, 'ng.yaml');
    const [prom, promNoFile, promNoNg] = topology.instances.filter((i) => i.role === 'prometheus');
    const ngFile = `${prom.deployDir}/conf/ngmonitoring.toml`;
    expect(prom.configFiles).toContain(ngFile);
    expect(promNoNg.configFiles.some((f) => f.endsWith('ngmonitoring.toml'))).toBe(false);
    const pool = deployed(topology);
    const h = pool.host('10.0.0.2');
    const original = h.readText(ngFile)!;

    const onCtx = context('on', topology, pool, stateDir);
    const on = await run(onCtx);
    const action = on.actions.find((a) => a.title.startsWith('prometheus-9090 on 10.0.0.2'))!;
    expect(action.title).toMatch(/conf\/ngmonitoring\.toml/);
    expect(action.diff).toContain(`+ca-path = "${prom.deployDir}/tls/ca.crt"`);
    const text = h.readText(ngFile)!;
    expect(TOML.parse(text)).toEqual(TOML.parse(tiupNgMonitoring(prom, true)));
    expect(text.startsWith(original.replace(/\n\[storage\][\s\S]*$/, ''))).toBe(true); // TiUP's lines and comments kept
    // Backed up before the replace, then replaced atomically (temp + rename), as every config.
    const calls = h.calls.filter((c) => 'path' in c && c.path === ngFile);
    const backupAt = calls.findIndex((c) => c.op === 'backup');
    const putAt = calls.findIndex((c) => c.op === 'put');
    expect(backupAt).toBeGreaterThanOrEqual(0);
    expect(putAt).toBeGreaterThan(backupAt);
    expect(calls[putAt]).toMatchObject({ op: 'put', opts: { atomic: true } });
    expect(h.readText(`${prom.deployDir}/backup/tiseal-r-on/conf/ngmonitoring.toml`)).toBe(original);
    expect(h.file(ngFile)!.mode & 0o777).toBe(0o644);
    expect(h.file(ngFile)!.owner).toBe('tidb');
    // The certificate it names is there.
    expect(h.readText(`${prom.deployDir}/tls/prometheus.crt`)).toContain('BEGIN CERTIFICATE');

    // No ng-monitoring deployed: nothing created; and TLS state is read from prometheus.yml alone.
    expect(pool.host('10.0.0.3').readText(`${promNoFile.deployDir}/conf/ngmonitoring.toml`)).toBeUndefined();
    expect(await readInstanceTlsConfig({ pool }, promNoFile)).toBe('on');
    expect(await readInstanceTlsConfig({ pool }, prom)).toBe('on');

    // Resume-safe: nothing left to do for the ng-monitoring file.
    expect((await stageStep.decide(onCtx)).actions.filter((a) => /ngmonitoring/.test(a.title))).toHaveLength(0);

    await run(context('off', topology, pool, stateDir));
    expect(h.readText(ngFile)).toBe(original);
    expect(h.readText(`${prom.deployDir}/backup/tiseal-r-off/conf/ngmonitoring.toml`)).toBe(text);
    expect(await readInstanceTlsConfig({ pool }, prom)).toBe('off');
    expect(pool.host('10.0.0.3').readText(`${promNoFile.deployDir}/conf/ngmonitoring.toml`)).toBeUndefined();
  });

  it('a [security] left in ngmonitoring.toml while prometheus.yml is plaintext is a half-configured instance', async () => {
    const topology = parseTopology(TOPOLOGY, 'ng.yaml');
    const prom = topology.instances.find((i) => i.role === 'prometheus')!;
    const pool = deployed(topology);
    pool.host('10.0.0.2').addFile(`${prom.deployDir}/conf/ngmonitoring.toml`, tiupNgMonitoring(prom, true), { owner: 'tidb', mode: 0o644 });
    expect(await readInstanceTlsConfig({ pool }, prom)).toBe('partial');
  });

  it('disable on a cluster TiUP put on TLS gives TiUP’s plaintext ngmonitoring.toml back byte for byte', async () => {
    const topology = parseTopology(TOPOLOGY, 'ng.yaml');
    const prom = topology.instances.find((i) => i.role === 'prometheus')!;
    const pool = deployed(topology);
    const file = `${prom.deployDir}/conf/ngmonitoring.toml`;
    pool.host('10.0.0.2').addFile(file, tiupNgMonitoring(prom, true), { owner: 'tidb', mode: 0o644 });
    await run(context('off', topology, pool, stateDir));
    expect(pool.host('10.0.0.2').readText(file)).toBe(tiupNgMonitoring(prom, false));
  });
});
