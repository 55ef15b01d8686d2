/**
 * TiUP's monitoring on the lab, run by Debian's real binaries: Prometheus for each
 * `monitoring_servers` entry, and node_exporter + blackbox_exporter on every host of the cluster
 * (TiUP deploys these agents on each host). Paths, run scripts, units and prometheus.yml follow
 * pingcap/tiup embed/templates/{scripts/run_*.sh.tpl,config/prometheus.yml.tpl,config/blackbox.yml.tpl}
 * and pkg/cluster/spec/monitoring.go (which targets go in which job). With `ng_port` > 0 TiUP also
 * ships bin/ng-monitoring-server (here the lab's emulator) and conf/ngmonitoring.toml, and
 * run_prometheus.sh starts it in the background through scripts/ng-wrapper.sh.
 */
import * as posix from 'path/posix';
import { bashDq, bashWord, joinHostPort, portOf, renderFile, renderSystemdUnit } from '../src/render';
import type { Instance, Topology } from '../src/topology/types';
import { TisealError } from '../src/errors';
import { shq } from '../src/util/shell';
import type { DeployFile } from './deploy-file';
import { EMULATOR_BINARIES, emulatorWrapper } from './emulators/wrapper';
import { httpRequest } from './http';
import { sshSudoScript, SshTarget } from './ssh';
import { waitFor } from './sys';

/** Where the Debian packages (lab/rootfs.ts) put the real binaries. */
export const DEBIAN_BINARIES = {
  prometheus: '/usr/bin/prometheus',
  node_exporter: '/usr/bin/prometheus-node-exporter',
  blackbox_exporter: '/usr/bin/prometheus-blackbox-exporter',
} as const;

const realBinary = (name: keyof typeof DEBIAN_BINARIES): string =>
  ['#!/bin/sh', `# tiseal lab: Debian's real ${name} (${DEBIAN_BINARIES[name]}) at TiUP's path`, `exec ${DEBIAN_BINARIES[name]} "$@"`, ''].join('\n');

export const hasMonitoring = (topo: Topology): boolean => topo.instances.some((i) => i.role === 'prometheus');

/** The agents' deploy/log dirs and ports, as topology `monitored:` resolves them (TiUP's defaults). */
export function monitoredAgents(topo: Topology): { deployDir: string; logDir: string; dataDir: string; nodePort: number; blackboxPort: number } {
  const m = topo.monitored;
  return {
    deployDir: String(m.deploy_dir),
    logDir: String(m.log_dir),
    dataDir: String(m.data_dir),
    nodePort: Number(m.node_exporter_port),
    blackboxPort: Number(m.blackbox_exporter_port),
  };
}

export const agentUnits = (topo: Topology): string[] => {
  const a = monitoredAgents(topo);
  return [`node_exporter-${a.nodePort}.service`, `blackbox_exporter-${a.blackboxPort}.service`];
};

/** TiUP's system.service.tpl; blackbox_exporter gets TiUP's GrantCapNetRaw (icmp probes), which tiseal's template lacks. */
function unitFile(topo: Topology, serviceName: string, deployDir: string, extra: { capNetRaw?: boolean } = {}): string {
  let unit = renderFile('system.service.tpl', {
    serviceName, user: topo.global.user, deployDir, memoryLimit: '', cpuQuota: '', ioReadBandwidthMax: '', ioWriteBandwidthMax: '', limitCore: '',
  });
  if (extra.capNetRaw) unit = unit.replace(/^User=/m, 'AmbientCapabilities=CAP_NET_RAW\nUser=');
  return unit;
}

const header = (deployDir: string): string[] => [
  '#!/bin/bash',
  'set -e',
  '',
  '# WARNING: This file was auto-generated. Do not edit!',
  '#          All your edit might be overwritten!',
  `DEPLOY_DIR=${bashWord(deployDir)}`,
  'cd "${DEPLOY_DIR}" || exit 1',
  '',
];

/** TiUP's EnableNG: spec.NgPort > 0 (tiseal's topology drops 0 and -1). */
export const ngPort = (inst: Instance): number | undefined => (inst.ports.ng_port > 0 ? inst.ports.ng_port : undefined);

/** run_prometheus.sh.tpl's ng-wrapper block (the echo's `\` + newline joins the command into one line). */
function ngWrapperLines(inst: Instance): string[] {
  return [
    'if [ -e "bin/ng-monitoring-server" ]; then',
    'echo "#!/bin/bash',
    '',
    '# WARNING: This file was auto-generated to restart ng-monitoring when fail. ',
    '#          Do not edit! All your edit might be overwritten!',
    '',
    'while true',
    'do',
    '    bin/ng-monitoring-server \\',
    `        --config ${bashDq(inst.deployDir)}/conf/ngmonitoring.toml \\`,
    '        >/dev/null 2>&1',
    '    sleep 15s',
    'done" > scripts/ng-wrapper.sh',
    'fi',
    ...(ngPort(inst) ? ['/bin/bash scripts/ng-wrapper.sh &'] : []),
    '',
  ];
}

export function runPrometheusScript(inst: Instance): string {
  const retention = typeof inst.raw.storage_retention === 'string' && inst.raw.storage_retention ? inst.raw.storage_retention : '30d';
  return [
    ...header(inst.deployDir),
    ...ngWrapperLines(inst),
    `exec > >(tee -i -a "${bashDq(inst.logDir)}/prometheus.log")`,
    'exec 2>&1',
    'exec bin/prometheus/prometheus \\',
    `    --config.file="${bashDq(inst.deployDir)}/conf/prometheus.yml" \\`,
    `    --web.listen-address=":${inst.port}" \\`,
    `    --web.external-url="http://${bashDq(joinHostPort(inst.host, inst.port))}/" \\`,
    '    --web.enable-admin-api \\',
    '    --log.level="info" \\',
    `    --storage.tsdb.path="${bashDq(inst.dataDir!)}" \\`,
    `    --storage.tsdb.retention="${bashDq(retention)}"`,
    '',
  ].join('\n');
}

function runNodeExporterScript(topo: Topology): string {
  const a = monitoredAgents(topo);
  return [
    ...header(a.deployDir),
    `exec > >(tee -i -a "${bashDq(a.logDir)}/node_exporter.log")`,
    'exec 2>&1',
    '',
    'EXPORTER_BIN=bin/node_exporter/node_exporter',
    'if [ ! -f $EXPORTER_BIN ]; then',
    '  EXPORTER_BIN=bin/node_exporter',
    'fi',
    'exec $EXPORTER_BIN \\',
    `    --web.listen-address=":${a.nodePort}" \\`,
    '    --collector.tcpstat \\',
    '    --collector.systemd \\',
    '    --collector.mountstats \\',
    '    --collector.meminfo_numa \\',
    '    --collector.buddyinfo \\',
    '    --collector.vmstat.fields="^.*" \\',
    '    --log.level="info"',
    '',
  ].join('\n');
}

function runBlackboxExporterScript(topo: Topology): string {
  const a = monitoredAgents(topo);
  return [
    ...header(a.deployDir),
    `exec > >(tee -i -a "${bashDq(a.logDir)}/blackbox_exporter.log")`,
    'exec 2>&1',
    '',
    'BLACKBOX_BIN=bin/blackbox_exporter/blackbox_exporter',
    'if [ ! -f $BLACKBOX_BIN ]; then',
    '  BLACKBOX_BIN=bin/blackbox_exporter',
    'fi',
    'exec $BLACKBOX_BIN \\',
    `    --web.listen-address=":${a.blackboxPort}" \\`,
    '    --log.level="info" \\',
    '    --config.file="conf/blackbox.yml"',
    '',
  ].join('\n');
}

/** blackbox.yml.tpl on a plaintext cluster (TLSEnabled adds tls_connect; the lab deploys plaintext). */
const BLACKBOX_YML = `modules:
  http_2xx:
    prober: http
    http:
      method: GET
  http_post_2xx:
    prober: http
    http:
      method: POST
  tcp_connect:
    prober: tcp
  pop3s_banner:
    prober: tcp
    tcp:
      query_response:
        - expect: '^+OK'
      tls: true
      tls_config:
        insecure_skip_verify: false
  ssh_banner:
    prober: tcp
    tcp:
      query_response:
        - expect: '^SSH-2.0-'
  irc_banner:
    prober: tcp
    tcp:
      query_response:
        - send: 'NICK prober'
        - send: 'USER prober prober prober :prober'
        - expect: 'PING :([^ ]+)'
          send: 'PONG \${1}'
        - expect: '^:[^ ]+ 001'
  icmp:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: 'ip4'
`;

const targetList = (addrs: string[], indent = '      '): string[] => addrs.map((a) => `${indent}- '${a}'`);

/** One component job as prometheus.yml.tpl writes it on a plaintext cluster. */
function job(name: string, addrs: string[], extra: string[] = [], indent = '      '): string[] {
  return [`  - job_name: "${name}"`, '    honor_labels: true # don\'t overwrite job & instance labels', ...extra, '    static_configs:', '    - targets:', ...targetList(addrs, indent)];
}

function relabelToBlackbox(blackbox: string): string[] {
  return [
    '    relabel_configs:',
    '      - source_labels: [__address__]',
    '        target_label: __param_target',
    '      - source_labels: [__param_target]',
    '        target_label: instance',
    '      - target_label: __address__',
    `        replacement: '${blackbox}'`,
  ];
}

/**
 * prometheus.yml for a plaintext cluster, as TiUP renders it (MonitorInstance.InitConfig): PD client
 * ports, TiKV/TiDB status ports, TiFlash metrics + proxy status ports, Pump/Drainer and TiCDC ports, node_exporter on
 * every host, blackbox probes. `scrape_interval`/`scrape_timeout` from the topology entry.
 */
/** TiUP's tcp_connect probe job through blackbox_exporter: one static_configs group per component. */
function probeJob(name: string, groups: ReadonlyArray<readonly [string, string[]]>, blackbox: string): string[] {
  return [
    `  - job_name: "${name}"`,
    '    scrape_interval: 30s',
    '    metrics_path: /probe',
    '    params:',
    '      module: [tcp_connect]',
    '    static_configs:',
    ...groups.flatMap(([g, t]) => ['    - targets:', ...targetList(t), '      labels:', `        group: '${g}'`]),
    ...relabelToBlackbox(blackbox),
  ];
}

export function prometheusYml(inst: Instance, topo: Topology, clusterName: string): string {
  const a = monitoredAgents(topo);
  const of = (role: string) => topo.instances.filter((i) => i.role === role);
  const addrs = (role: string, field: string, dflt: number) => of(role).map((i) => joinHostPort(i.host, portOf(i, field, dflt)));
  const pd = addrs('pd', 'client_port', 2379);
  const tikv = addrs('tikv', 'status_port', 20180);
  const tidb = addrs('tidb', 'status_port', 10080);
  const tiflash = addrs('tiflash', 'metrics_port', 8234);
  const tiflashLearner = addrs('tiflash', 'flash_proxy_status_port', 20292);
  const cdc = addrs('cdc', 'port', 8300);
  const pump = addrs('pump', 'port', 8250);
  const drainer = addrs('drainer', 'port', 8249);
  const hosts = [...new Set(topo.instances.map((i) => i.host))];
  const nodes = hosts.map((h) => joinHostPort(h, a.nodePort));
  const blackboxes = hosts.map((h) => joinHostPort(h, a.blackboxPort));
  const blackbox = joinHostPort(inst.host, a.blackboxPort);
  const interval = typeof inst.raw.scrape_interval === 'string' ? inst.raw.scrape_interval : '';
  const timeout = typeof inst.raw.scrape_timeout === 'string' ? inst.raw.scrape_timeout : '';
  const rules = [
    ...(pd.length ? ['node.rules.yml', 'blacker.rules.yml', 'bypass.rules.yml', 'pd.rules.yml'] : []),
    ...(tidb.length ? ['tidb.rules.yml'] : []),
    ...(tikv.length ? ['tikv.rules.yml'] : []),
    ...(tiflash.length ? ['tiflash.rules.yml'] : []),
    ...(pump.length ? ['binlog.rules.yml'] : []),
    ...(cdc.length ? ['ticdc.rules.yml'] : []),
  ];
  const lines = [
    '---',
    'global:',
    interval ? `  scrape_interval: ${interval}` : '  scrape_interval: 15s # By default, scrape targets every 15 seconds.',
    '  evaluation_interval: 15s # By default, scrape targets every 15 seconds.',
    ...(timeout ? [`  scrape_timeout: ${timeout}`] : []),
    '  external_labels:',
    `    cluster: '${clusterName}'`,
    '    monitor: "prometheus"',
    '',
    "# Load and evaluate rules in this file every 'evaluation_interval' seconds.",
    'rule_files:',
    ...rules.map((r) => `  - '${r}'`),
    '',
    'scrape_configs:',
    '  - job_name: "overwritten-nodes"',
    '    honor_labels: true # don\'t overwrite job & instance labels',
    '    static_configs:',
    '    - targets:',
    ...targetList(nodes),
    ...job('tidb', tidb),
    ...job('tiproxy', [], ['    metrics_path: /api/metrics']),
    ...job('tikv', tikv),
    ...job('pd', pd),
    ...job('tso', []),
    ...(tiflash.length ? job('tiflash', [...tiflash, ...tiflashLearner], [], '       ') : []),
    ...(pump.length
      ? [
        ...job('pump', pump).map((l) => l.replace('"pump"', "'pump'")),
        ...job('drainer', drainer).map((l) => l.replace('"drainer"', "'drainer'")),
        ...probeJob('port_probe', [['pump', pump], ['drainer', drainer]], blackbox),
      ]
      : []),
    ...(cdc.length ? job('ticdc', cdc) : []),
    // monitoring.go: with this instance's NgPort > 0, every monitoring server's ng-monitoring port.
    ...(ngPort(inst) ? job('ng-monitoring', of('prometheus').filter(ngPort).map((i) => joinHostPort(i.host, ngPort(i)!))) : []),
    ...probeJob(
      'tidb_port_probe',
      ([['tidb', tidb], ['tikv', tikv], ['pd', pd], ['tiflash', tiflash], ['ticdc', cdc]] as const).filter(([g, t]) => t.length > 0 || ['tidb', 'tikv', 'pd'].includes(g)),
      blackbox,
    ),
    ...probeJob('monitor_port_probe', [['node_exporter', nodes], ['blackbox_exporter', blackboxes]], blackbox),
    ...blackboxes.flatMap((b) => [
      `  - job_name: "blackbox_exporter_${b}_icmp"`,
      '    scrape_interval: 6s',
      '    metrics_path: /probe',
      '    params:',
      '      module: [icmp]',
      '    static_configs:',
      '    - targets:',
      ...targetList(hosts),
      '    relabel_configs:',
      '      - source_labels: [__address__]',
      '        regex: (.*)(:80)?',
      '        target_label: __param_target',
      '        replacement: ${1}',
      '      - source_labels: [__param_target]',
      '        regex: (.*)',
      '        target_label: ping',
      '        replacement: ${1}',
      '      - source_labels: []',
      '        regex: .*',
      '        target_label: __address__',
      `        replacement: '${b}'`,
    ]),
  ];
  return lines.join('\n') + '\n';
}

/** ngmonitoring.toml.tpl on a plaintext cluster (no newline at the end, as the template). */
export function ngMonitoringToml(inst: Instance, topo: Topology): string {
  const pds = topo.instances.filter((i) => i.role === 'pd').map((i) => `"${joinHostPort(i.host, portOf(i, 'client_port', 2379))}"`);
  const port = ngPort(inst);
  return `# NG Monitoring Server Configuration.

# Server address.
address = "0.0.0.0:${port}"
advertise-address = "${joinHostPort(inst.host, port!)}"

[log]
# Log path
path = "${inst.logDir}"

# Log level: INFO, WARN, ERROR
level = "INFO"

[pd]
# Addresses of PD instances within the TiDB cluster. Multiple addresses are separated by commas, e.g. "10.0.0.1:2379","10.0.0.2:2379"
endpoints = [${pds.join(',')}]

[storage]
path = "${inst.dataDir}"`;
}

/** The files of one Prometheus instance (its dirs come from deploy.ts instanceDirs). */
export function prometheusFiles(inst: Instance, topo: Topology, clusterName: string, version: string): DeployFile[] {
  const ng: DeployFile[] = ngPort(inst)
    ? [
      { path: posix.join(inst.deployDir, EMULATOR_BINARIES['ng-monitoring-server']), content: emulatorWrapper('ng-monitoring-server', { version }), mode: 0o755, owner: 'user' },
      { path: posix.join(inst.deployDir, 'conf/ngmonitoring.toml'), content: ngMonitoringToml(inst, topo), mode: 0o644, owner: 'user' },
    ]
    : [];
  return [
    { path: posix.join(inst.deployDir, 'bin/prometheus/prometheus'), content: realBinary('prometheus'), mode: 0o755, owner: 'user' },
    { path: inst.runScript, content: runPrometheusScript(inst), mode: 0o755, owner: 'user' },
    { path: posix.join(inst.deployDir, 'conf/prometheus.yml'), content: prometheusYml(inst, topo, clusterName), mode: 0o644, owner: 'user' },
    // TiUP's unit for prometheus adds ExecReload (SIGHUP); tiseal's template does not.
    { path: `/etc/systemd/system/${inst.unit}`, content: renderSystemdUnit(inst, topo).replace(/^(ExecStart=.*)$/m, `$1\nExecReload=/usr/bin/bash -c 'kill -HUP $MAINPID'`), mode: 0o644, owner: 'root' },
    ...ng,
  ];
}

/** node_exporter and blackbox_exporter of one host, with their dirs. */
export function agentFiles(topo: Topology): { dirs: string[]; files: DeployFile[] } {
  const a = monitoredAgents(topo);
  const [nodeUnit, blackboxUnit] = agentUnits(topo);
  const d = (rel: string) => posix.join(a.deployDir, rel);
  return {
    dirs: [a.deployDir, d('bin'), d('conf'), d('scripts'), a.logDir, a.dataDir],
    files: [
      { path: d('bin/node_exporter/node_exporter'), content: realBinary('node_exporter'), mode: 0o755, owner: 'user' },
      { path: d('bin/blackbox_exporter/blackbox_exporter'), content: realBinary('blackbox_exporter'), mode: 0o755, owner: 'user' },
      { path: d('scripts/run_node_exporter.sh'), content: runNodeExporterScript(topo), mode: 0o755, owner: 'user' },
      { path: d('scripts/run_blackbox_exporter.sh'), content: runBlackboxExporterScript(topo), mode: 0o755, owner: 'user' },
      { path: d('conf/blackbox.yml'), content: BLACKBOX_YML, mode: 0o644, owner: 'user' },
      { path: `/etc/systemd/system/${nodeUnit}`, content: unitFile(topo, 'node_exporter', a.deployDir), mode: 0o644, owner: 'root' },
      { path: `/etc/systemd/system/${blackboxUnit}`, content: unitFile(topo, 'blackbox_exporter', a.deployDir, { capNetRaw: true }), mode: 0o644, owner: 'root' },
    ],
  };
}

/** Start the agents on every host, then Prometheus, and wait for its /-/ready (TiUP's status check). */
export async function startMonitoring(topo: Topology, ssh: SshTarget, timeoutMs: number): Promise<void> {
  const proms = topo.instances.filter((i) => i.role === 'prometheus');
  await Promise.all(
    topo.hosts.map(async ({ host }) => {
      const units = [...agentUnits(topo), ...proms.filter((i) => i.host === host).map((i) => i.unit)];
      const r = await sshSudoScript(ssh, host, `systemctl daemon-reload && systemctl start ${units.map(shq).join(' ')}\n`, { allowFailure: true, timeoutMs: 120_000 });
      if (r.code !== 0) throw new TisealError(`${host}: starting ${units.join(', ')} failed: ${r.stderr.trim().slice(-400)}`);
    }),
  );
  await Promise.all(
    proms.map((i) => {
      const url = `http://${joinHostPort(i.host, i.port)}/-/ready`;
      return waitFor(url, timeoutMs, async () => {
        const r = await httpRequest(url, { timeoutMs: 2000 });
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
        return true as const;
      }, 500);
    }),
  );
}
