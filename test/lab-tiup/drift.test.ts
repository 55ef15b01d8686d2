/**
 * Drift report: the lab's default topology rendered by tiseal's src/render (and lab/monitoring.ts, which the
 * lab deploys today) against lab/tiup, file by file. Every file that differs must be in DRIFT below, with
 * the upstream file that shows lab/tiup's side is TiUP's; a new difference, or a listed one that went away,
 * fails this test.
 */
import * as fs from 'fs';
import * as path from 'path';
import { agentFiles, prometheusFiles } from '../../lab/monitoring';
import { renderConfig, renderRunScript, renderSystemdUnit } from '../../src/render';
import { parseTopology } from '../../src/topology/parse';
import { renderCluster } from '../../lab/tiup/render';
import { parseMeta } from '../../lab/tiup/spec';

const LAB = path.join(__dirname, '../../lab/topologies/default.yaml');
const VERSION = 'v8.5.1';
const DRIFT_SHOW_RE = new RegExp(process.env.DRIFT_SHOW ?? "^$");

/** `<path>` (host left out: the same on every host) → why tiseal's side is wrong, naming TiUP v1.16.5's file. */
const DRIFT: Record<string, string> = {
  // BurntSushi/toml encode.go eTable: no blank line before the first table (the header is written outside the
  // encoder), and a header for every table, also `[readpool]` that only holds `[readpool.unified]`.
  // src/render/toml.ts adds a blank line after TiUP's header and leaves out such headers.
  '/tidb-deploy/pd-2379/conf/pd.toml': 'toml: blank line after header (server_config.go Merge2Toml + BurntSushi encode.go)',
  '/tidb-deploy/tikv-20160/conf/tikv.toml': 'toml: blank line after header; no [readpool] header above [readpool.unified] (encode.go eTable)',
  '/tidb-deploy/tidb-4000/conf/tidb.toml': 'toml: blank line after header (Merge2Toml)',
  '/tidb-deploy/cdc-8300/conf/cdc.toml': 'toml: blank line after header (Merge2Toml)',
  // Also: src/render/config.ts tiflashDefaults sets logger.count = 20 and logger.size = "1000M"; tiflash.go
  // initTiFlashConfig in v1.16.5 sets neither: pingcap/tiup 908be860 (#2683, first in v1.16.5) removed them, so
  // tiseal matches TiUP <= v1.16.4 here; which TiUP the lab emulates decides.
  '/tidb-deploy/tiflash-9000/conf/tiflash.toml': 'toml: blank lines before nested tables (encode.go eTable: only top-level); logger.count/size not in initTiFlashConfig',
  '/tidb-deploy/tiflash-9000/conf/tiflash-learner.toml': 'toml: blank line after header (Merge2Toml)',
  // embed/templates/scripts/run_tiflash.sh.tpl: MALLOC_CONF and the avx2/popcnt/movbe check (tiflash.go
  // getTiFlashRequiredCPUFlagsWithVersion, amd64 from v6.3.0); templates/run_tiflash.sh.tpl predates them.
  '/tidb-deploy/tiflash-9000/scripts/run_tiflash.sh': 'run_tiflash.sh.tpl: MALLOC_CONF + RequiredCPUFlags block',
  // embed/templates/scripts/run_tikv.sh.tpl: `export MALLOC_CONF="prof:true,prof_active:false"` before exec;
  // templates/run_tikv.sh.tpl lacks it.
  '/tidb-deploy/tikv-20160/scripts/run_tikv.sh': 'run_tikv.sh.tpl: MALLOC_CONF',
  // embed/templates/scripts/run_tidb.sh.tpl + tidb.go (tidbver.TiDBSupportSecureBoot, v5.3.0+): --initialize-insecure.
  '/tidb-deploy/tidb-4000/scripts/run_tidb.sh': 'run_tidb.sh.tpl: --initialize-insecure',
  // embed/templates/scripts/run_blackbox_exporter.sh.tpl: the variable is EXPORTER_BIN (lab/monitoring.ts: BLACKBOX_BIN).
  '/tidb-deploy/monitor-9100/scripts/run_blackbox_exporter.sh': 'run_blackbox_exporter.sh.tpl: EXPORTER_BIN',
  // embed/templates/scripts/run_prometheus.sh.tpl: --storage.tsdb.retention.time (not the removed
  // --storage.tsdb.retention), NgPort wrapper lines; lab/monitoring.ts follows an older template.
  '/tidb-deploy/prometheus-9090/scripts/run_prometheus.sh': 'run_prometheus.sh.tpl: --storage.tsdb.retention.time',
  // embed/templates/systemd/system.service.tpl: ExecReload=/bin/bash -c 'kill -HUP $MAINPID $(pidof …ng-monitoring-server)'
  // and a blank line after it; lab/monitoring.ts writes /usr/bin/bash and HUPs Prometheus only.
  '/etc/systemd/system/prometheus-9090.service': 'system.service.tpl: ExecReload',
  // embed/templates/config/prometheus.yml.tpl: tidb metric_relabel_configs, scheduling/router jobs,
  // tikv.accelerate.rules.yml; monitoring.go: ng job only for ng_port > 0 (present here).
  '/tidb-deploy/prometheus-9090/conf/prometheus.yml': 'prometheus.yml.tpl: tidb metric_relabel_configs, scheduling + router jobs, tikv.accelerate rule',
  // monitoring.go (v1.16.5): ngmonitoring.toml is Merge2Toml of a map (address on the listen host,
  // pd.endpoints an array), no longer ngmonitoring.toml.tpl.
  '/tidb-deploy/prometheus-9090/conf/ngmonitoring.toml': 'monitoring.go: Merge2Toml("ng_monitoring", …)',
  // embed/templates/scripts/run_node_exporter.sh.tpl: --collector.systemd is commented out (and interrupts).
  '/tidb-deploy/monitor-9100/scripts/run_node_exporter.sh': 'run_node_exporter.sh.tpl: #--collector.systemd',
};

function tisealFiles(): Map<string, string> {
  const topo = parseTopology(fs.readFileSync(LAB, 'utf8'), LAB);
  const out = new Map<string, string>();
  for (const inst of topo.instances) {
    if (inst.role === 'prometheus') {
      for (const f of prometheusFiles(inst, topo, 'lab-default', VERSION)) if (!f.path.includes('/bin/')) out.set(`${inst.host}${f.path}`, f.content);
      continue;
    }
    out.set(`${inst.host}${inst.runScript}`, renderRunScript(inst, topo, { tls: false, pdMode: 'initial' }));
    out.set(`${inst.host}/etc/systemd/system/${inst.unit}`, renderSystemdUnit(inst, topo));
    for (const [p, c] of Object.entries(renderConfig(inst, topo, { version: VERSION }))) out.set(`${inst.host}${p}`, c);
  }
  for (const h of topo.hosts) for (const f of agentFiles(topo).files) if (!f.path.includes('/bin/')) out.set(`${h.host}${f.path}`, f.content);
  return out;
}

test('src/render + lab/monitoring.ts against lab/tiup on the lab default topology: only the listed drifts', () => {
  const meta = `user: tidb\ntidb_version: ${VERSION}\ntopology:\n${fs.readFileSync(LAB, 'utf8').replace(/^/gm, '  ')}`;
  const tiup = new Map(renderCluster(parseMeta(meta, 'lab-default')).map((f) => [`${f.host}${f.path}`, f.content]));
  const tiseal = tisealFiles();
  expect([...tiseal.keys()].sort()).toEqual([...tiup.keys()].sort());
  const differing = new Set<string>();
  for (const [k, v] of tiup) if (tiseal.get(k) !== v) differing.add(k.slice(k.indexOf('/')));
  if (process.env.DRIFT_SHOW) for (const k of [...tiup.keys()].filter((x) => DRIFT_SHOW_RE.test(x))) console.log(k, "\n--- tiup\n" + tiup.get(k) + "\n--- tiseal\n" + tiseal.get(k));
  expect([...differing].sort()).toEqual(Object.keys(DRIFT).sort());
});
