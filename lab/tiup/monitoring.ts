/**
 * Monitoring files: prometheus.yml (pingcap/tiup v1.16.5 embed/templates/config/prometheus.yml.tpl, filled
 * by spec/monitoring.go MonitorInstance.InitConfig), blackbox.yml (embed/templates/config/blackbox.yml.tpl,
 * task/monitored_config.go: NewBlackboxConfig(deploy dir, TLS)), ngmonitoring.toml (monitoring.go: Merge2Toml
 * of TiUP's base map, server_configs.ng_monitoring and ng_monitoring_config).
 */
import { Cluster, field, Instance, joinHostPort, ofRole } from './spec';
import { GoMap, isMap, merge2Toml, mergeConfig } from './toml';

const TLS_CFG =
  '\n    scheme: https\n    tls_config:\n      insecure_skip_verify: false\n      ca_file: ../tls/ca.crt\n      cert_file: ../tls/prometheus.crt\n      key_file: ../tls/prometheus.pem';

const targets = (addrs: string[], indent = '      '): string => addrs.map((a) => `\n${indent}- '${a}'`).join('');

/** A plain component job: `honor_labels`, TLS block, one target group. */
function job(name: string, addrs: string[], tls: boolean, extra = '', indent = '      ', quote = '"'): string {
  return `\n  - job_name: ${quote}${name}${quote}\n    honor_labels: true # don't overwrite job & instance labels${extra}${tls ? TLS_CFG : ''}\n    static_configs:\n    - targets:${targets(addrs, indent)}`;
}

const RELABEL = (blackbox: string): string =>
  `\n    relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n      - source_labels: [__param_target]\n        target_label: instance\n      - target_label: __address__\n        replacement: '${blackbox}'`;

const group = (addrs: string[], name: string, indent = '      '): string => `\n    - targets:${targets(addrs, indent)}\n      labels:\n        group: '${name}'`;

/** prometheus.yml of one monitoring server (no rule_dir, remote_config, pushgateway or agent mode: refused). */
export function prometheusYml(p: Instance, c: Cluster): string {
  for (const k of ['rule_dir', 'remote_config', 'additional_scrape_conf', 'pushgateway_addrs', 'enable_prom_agent_mode']) {
    const v = p.spec[k];
    if (v !== undefined && v !== null && v !== false && !(isMap(v) && Object.keys(v).length === 0) && !(Array.isArray(v) && v.length === 0)) {
      throw new Error(`lab/tiup does not render monitoring_servers ${k}`);
    }
  }
  const tls = c.tls;
  const addrs = (role: string, port: string): string[] => ofRole(c, role).map((i) => joinHostPort(i.host, i.ports[port]));
  const pd = addrs('pd', 'client_port');
  const tikv = addrs('tikv', 'status_port');
  const tidb = addrs('tidb', 'status_port');
  const tiflash = addrs('tiflash', 'metrics_port');
  const learner = addrs('tiflash', 'flash_proxy_status_port');
  const pump = addrs('pump', 'port');
  const drainer = addrs('drainer', 'port');
  const cdc = addrs('cdc', 'port');
  const kvcdc = addrs('tikv-cdc', 'port');
  const grafana = ofRole(c, 'grafana')[0];
  const alertmanagers = [
    ...addrs('alertmanager', 'web_port'),
    ...(Array.isArray(p.spec.external_alertmanagers) ? p.spec.external_alertmanagers : []).filter(isMap).map((a) => joinHostPort(field(a.host), Number(a.web_port))),
  ];
  // monitoring.go uniqueHosts is a Go map (random order); here: the order monitoring.go inserts them.
  const hosts: string[] = [];
  for (const r of ['pd', 'tikv', 'tidb', 'tiflash', 'pump', 'drainer', 'cdc', 'tikv-cdc', 'prometheus', 'grafana', 'alertmanager']) {
    for (const i of ofRole(c, r)) if (!hosts.includes(i.host)) hosts.push(i.host);
  }
  const m = c.monitored;
  const nodes = hosts.map((h) => joinHostPort(h, m.nodeExporterPort));
  const blackboxes = hosts.map((h) => joinHostPort(h, m.blackboxExporterPort));
  const blackbox = joinHostPort(p.host, m.blackboxExporterPort);
  const ng = ofRole(c, 'prometheus').map((i) => joinHostPort(i.host, Number(i.spec.ng_port)));
  const interval = field(p.spec.scrape_interval);
  const timeout = field(p.spec.scrape_timeout);
  const rules = [
    ...(hosts.length && pd.length ? ['node.rules.yml', 'blacker.rules.yml', 'bypass.rules.yml'] : []),
    ...(pd.length ? ['pd.rules.yml'] : []),
    ...(tidb.length ? ['tidb.rules.yml'] : []),
    ...(tikv.length ? ['tikv.rules.yml', 'tikv.accelerate.rules.yml'] : []), // HasTiKVAccelerateRules: v4.0.0+
    ...(tiflash.length ? ['tiflash.rules.yml'] : []),
    ...(pump.length ? ['binlog.rules.yml'] : []),
    ...(cdc.length ? ['ticdc.rules.yml'] : []),
  ];
  const module = tls ? 'tls_connect' : 'tcp_connect';
  const probe = (name: string, groups: string): string =>
    `\n  - job_name: "${name}"\n    scrape_interval: 30s\n    metrics_path: /probe\n    params:\n      module: [${module}]\n    static_configs:${groups}${RELABEL(blackbox)}`;
  return (
    '---\nglobal:' +
    (interval ? `\n  scrape_interval: ${interval}` : '\n  scrape_interval: 15s # By default, scrape targets every 15 seconds.') +
    '\n  evaluation_interval: 15s # By default, scrape targets every 15 seconds.' +
    (timeout ? `\n  scrape_timeout: ${timeout}` : '') +
    `\n  external_labels:\n    cluster: '${c.name}'\n    monitor: "prometheus"\n\n# Load and evaluate rules in this file every 'evaluation_interval' seconds.\nrule_files:` +
    rules.map((r) => `\n  - '${r}'`).join('') +
    (alertmanagers.length ? `\nalerting:\n  alertmanagers:\n  - static_configs:\n    - targets:${targets(alertmanagers)}` : '') +
    '\n\nscrape_configs:' +
    `\n  - job_name: "overwritten-nodes"\n    honor_labels: true # don't overwrite job & instance labels\n    static_configs:\n    - targets:${targets(nodes)}` +
    job(
      'tidb',
      tidb,
      tls,
      '\n    metric_relabel_configs:\n      - action: drop\n        regex: tidb_tikvclient_source_request_seconds_count|tidb_tikvclient_batch_requests_sum|tidb_tikvclient_batch_requests_count|tidb_tikvclient_batch_pending_requests_sum|tidb_tikvclient_batch_pending_requests_count\n        source_labels:\n        - __name__',
    ) +
    job('tiproxy', [], tls, '\n    metrics_path: /api/metrics') +
    job('tikv', tikv, tls) +
    job('pd', pd, tls) +
    job('tso', [], tls) +
    job('scheduling', [], tls) +
    job('router', [], tls) +
    (tiflash.length ? job('tiflash', [...tiflash, ...learner], tls, '', '       ') : '') +
    (pump.length
      ? job('pump', pump, tls, '', '      ', "'") + job('drainer', drainer, tls, '', '      ', "'") + probe('port_probe', group(pump, 'pump') + group(drainer, 'drainer'))
      : '') +
    (cdc.length ? job('ticdc', cdc, tls) : '') +
    (kvcdc.length ? job('tikv-cdc', kvcdc, tls) : '') +
    // monitoring.go: AddNGMonitoring for every monitoring server, only when this one has ng_port > 0.
    (Number(p.spec.ng_port) > 0 ? job('ng-monitoring', ng, tls) : '') +
    probe(
      'tidb_port_probe',
      group(tidb, 'tidb') + group(tikv, 'tikv') + group(pd, 'pd') + (tiflash.length ? group(tiflash, 'tiflash', '       ') : '') + (cdc.length ? group(cdc, 'ticdc', '       ') : ''),
    ) +
    // monitor_port_probe stays tcp_connect under TLS (the template has no TLS branch there).
    `\n  - job_name: "monitor_port_probe"\n    scrape_interval: 30s\n    metrics_path: /probe\n    params:\n      module: [tcp_connect]\n    static_configs:` +
    (grafana ? `\n    - targets:\n      - '${joinHostPort(grafana.host, grafana.port)}'\n      labels:\n        group: 'grafana'` : '') +
    group(nodes, 'node_exporter') +
    group(blackboxes, 'blackbox_exporter') +
    RELABEL(blackbox) +
    blackboxes
      .map(
        (b) =>
          `\n  - job_name: "blackbox_exporter_${b}_icmp"\n    scrape_interval: 6s\n    metrics_path: /probe\n    params:\n      module: [icmp]\n    static_configs:\n    - targets:${targets(hosts)}` +
          '\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: (.*)(:80)?\n        target_label: __param_target\n        replacement: ${1}\n      - source_labels: [__param_target]\n        regex: (.*)\n        target_label: ping\n        replacement: ${1}\n      - source_labels: []\n        regex: .*\n        target_label: __address__\n' +
          `        replacement: '${b}'`,
      )
      .join('')
  );
}

/** blackbox.yml.tpl: `tls_connect` with the host's tls/blackbox_exporter.{crt,pem} when TLS is on. */
export function blackboxYml(c: Cluster): string {
  const d = c.monitored.deployDir;
  return (
    'modules:\n  http_2xx:\n    prober: http\n    http:\n      method: GET\n  http_post_2xx:\n    prober: http\n    http:\n      method: POST\n  tcp_connect:\n    prober: tcp' +
    (c.tls
      ? `\n  tls_connect:\n    prober: tcp\n    tcp:\n      tls: true\n      tls_config:\n        insecure_skip_verify: false\n        ca_file: ${d}/tls/ca.crt\n        cert_file: ${d}/tls/blackbox_exporter.crt\n        key_file: ${d}/tls/blackbox_exporter.pem`
      : '') +
    "\n  pop3s_banner:\n    prober: tcp\n    tcp:\n      query_response:\n        - expect: '^+OK'\n      tls: true\n      tls_config:\n        insecure_skip_verify: false\n" +
    "  ssh_banner:\n    prober: tcp\n    tcp:\n      query_response:\n        - expect: '^SSH-2.0-'\n" +
    "  irc_banner:\n    prober: tcp\n    tcp:\n      query_response:\n        - send: 'NICK prober'\n        - send: 'USER prober prober prober :prober'\n        - expect: 'PING :([^ ]+)'\n          send: 'PONG ${1}'\n        - expect: '^:[^ ]+ 001'\n" +
    "  icmp:\n    prober: icmp\n    timeout: 5s\n    icmp:\n      preferred_ip_protocol: 'ip4'\n"
  );
}

/** conf/ngmonitoring.toml (monitoring.go, ng_port > 0). */
export function ngMonitoringToml(p: Instance, c: Cluster): string {
  const port = Number(p.spec.ng_port);
  const base: GoMap = {
    address: joinHostPort(field(p.spec.listen_host) || field(c.global.listen_host) || (p.host.includes(':') ? '::' : '0.0.0.0'), port),
    'advertise-address': joinHostPort(p.host, port),
    'log.path': p.logDir,
    'log.level': 'INFO',
    'pd.endpoints': ofRole(c, 'pd').map((i) => joinHostPort(i.host, i.ports.client_port)),
    'storage.path': p.dataDirs[0],
  };
  if (c.tls) {
    base['security.ca-path'] = `${p.deployDir}/tls/ca.crt`;
    base['security.cert-path'] = `${p.deployDir}/tls/prometheus.crt`;
    base['security.key-path'] = `${p.deployDir}/tls/prometheus.pem`;
  }
  const user = mergeConfig(c.serverConfigs.ng_monitoring, isMap(p.spec.ng_monitoring_config) ? p.spec.ng_monitoring_config : undefined);
  return merge2Toml('ng_monitoring', base, user);
}
