/**
 * scripts/run_<role>.sh: pingcap/tiup v1.16.5 embed/templates/scripts/run_<role>.sh.tpl with the values
 * pkg/cluster/spec/<role>.go InitConfig passes (Go text/template: values inserted verbatim, `{{-` eats
 * the newline before it).
 */
import { Cluster, field, Instance, joinHostPort, listenHost, ofRole, versionAtLeast } from './spec';

const HEAD = '#!/bin/bash\nset -e\n\n# WARNING: This file was auto-generated. Do not edit!\n#          All your edit might be overwritten!\n';
const numa = (i: Instance): string => field(i.spec.numa_node);
const cores = (i: Instance): string => field(i.spec.numa_cores);
const scheme = (c: Cluster): string => (c.tls ? 'https' : 'http');

/** pd.go GetAdvertiseClientURL / GetAdvertisePeerURL. */
export const pdClientUrl = (pd: Instance, c: Cluster): string =>
  field(pd.spec.advertise_client_addr) || `${scheme(c)}://${joinHostPort(pd.host, pd.ports.client_port)}`;
const pdPeerUrl = (pd: Instance, c: Cluster): string => field(pd.spec.advertise_peer_addr) || `${scheme(c)}://${joinHostPort(pd.host, pd.ports.peer_port)}`;
/** spec.go GetPDList / the `pds` loops: host:client_port. */
export const pdList = (c: Cluster): string[] => ofRole(c, 'pd').map((p) => joinHostPort(p.host, p.ports.client_port));

/** run_pd.sh.tpl (pd.go InitConfig); `join` gives run_pd_scale.sh.tpl (pd.go ScaleConfig). */
export function runPd(i: Instance, c: Cluster, join?: string): string {
  const l = listenHost(i, c);
  const initial = ofRole(c, 'pd').map((p) => `${field(p.spec.name)}=${pdPeerUrl(p, c)}`).join(',');
  return (
    HEAD +
    `DEPLOY_DIR=${i.deployDir}\n\ncd "\${DEPLOY_DIR}" || exit 1\n\nexec \\` +
    (numa(i) ? `\n    numactl --cpunodebind=${numa(i)} --membind=${numa(i)} \\` : '') +
    '\n    env GODEBUG=madvdontneed=1 \\' +
    (field(c.global.pd_mode) === 'ms' ? '\n    PD_SERVICE_MODE=api \\' : '') +
    '\n    bin/pd-server \\' +
    `\n    --name="${field(i.spec.name)}" \\` +
    `\n    --client-urls="${scheme(c)}://${joinHostPort(l, i.ports.client_port)}" \\` +
    `\n    --advertise-client-urls="${pdClientUrl(i, c)}" \\` +
    `\n    --peer-urls="${scheme(c)}://${joinHostPort(l, i.ports.peer_port)}" \\` +
    `\n    --advertise-peer-urls="${pdPeerUrl(i, c)}" \\` +
    `\n    --data-dir="${i.dataDirs[0]}" \\` +
    (join === undefined ? `\n    --initial-cluster="${initial}" \\` : `\n    --join="${join}" \\`) +
    '\n    --config=conf/pd.toml \\' +
    `\n    --log-file="${i.logDir}/pd.log" 2>> "${i.logDir}/pd_stderr.log"\n` +
    // run_pd_scale.sh.tpl ends with a line of two spaces.
    (join === undefined ? '' : '  \n')
  );
}

/** `exec [numactl ...] <bin>` lines of the tikv/tidb/tiflash templates (`-C` only with numa_cores). */
function execLine(i: Instance, bin: string): string {
  if (numa(i) && cores(i)) return `\nexec numactl --cpunodebind=${numa(i)} --membind=${numa(i)} -C ${cores(i)} ${bin} \\`;
  if (numa(i)) return `\nexec numactl --cpunodebind=${numa(i)} --membind=${numa(i)} ${bin} \\`;
  return `\nexec ${bin} \\`;
}

/** run_tikv.sh.tpl (tikv.go InitConfig; advertise-status-addr from v4.0.1). */
export function runTikv(i: Instance, c: Cluster): string {
  const l = listenHost(i, c);
  return (
    HEAD +
    `cd "${i.deployDir}" || exit 1\n\necho -n 'sync ... '\nstat=$(time sync || sync)\necho ok\necho $stat\n\nexport MALLOC_CONF="prof:true,prof_active:false"` +
    execLine(i, 'bin/tikv-server') +
    `\n    --addr "${joinHostPort(l, i.ports.port)}" \\` +
    `\n    --advertise-addr "${field(i.spec.advertise_addr) || joinHostPort(i.host, i.ports.port)}" \\` +
    `\n    --status-addr "${joinHostPort(l, i.ports.status_port)}" \\` +
    `\n    --advertise-status-addr "${field(i.spec.advertise_status_addr) || joinHostPort(i.host, i.ports.status_port)}" \\` +
    `\n    --pd "${pdList(c).join(',')}" \\` +
    `\n    --data-dir "${i.dataDirs[0]}" \\` +
    '\n    --config conf/tikv.toml \\' +
    `\n    --log-file "${i.logDir}/tikv.log" 2>> "${i.logDir}/tikv_stderr.log"\n`
  );
}

/** run_tidb.sh.tpl (tidb.go InitConfig; --initialize-insecure from v5.3.0: SupportSecboot). */
export function runTidb(i: Instance, c: Cluster): string {
  return (
    HEAD +
    `DEPLOY_DIR=${i.deployDir}\n\ncd "\${DEPLOY_DIR}" || exit 1` +
    execLine(i, 'env GODEBUG=madvdontneed=1 bin/tidb-server') +
    `\n    -P ${i.ports.port} \\` +
    `\n    --status="${i.ports.status_port}" \\` +
    `\n    --host="${listenHost(i, c)}" \\` +
    `\n    --advertise-address="${field(i.spec.advertise_address) || i.host}" \\` +
    '\n    --store="tikv" \\' +
    '\n    --initialize-insecure \\' +
    `\n    --path="${pdList(c).join(',')}" \\` +
    `\n    --log-slow-query="${i.logDir}/tidb_slow_query.log" \\` +
    '\n    --config=conf/tidb.toml \\' +
    `\n    --log-file="${i.logDir}/tidb.log" 2>> "${i.logDir}/tidb_stderr.log"\n`
  );
}

/** run_tiflash.sh.tpl (tiflash.go InitConfig; the CPU flag check on amd64 from v6.3.0). */
export function runTiflash(i: Instance, c: Cluster): string {
  const arch = (field(i.spec.arch) || field(c.global.arch) || 'amd64').toLowerCase();
  const flags = (arch === 'amd64' || arch === 'x86_64') && versionAtLeast(c.version, 'v6.3.0') ? 'avx2 popcnt movbe' : '';
  const check = flags
    ? '\nif [ -f "/proc/cpuinfo" ]; then\n    IFS_OLD=$IFS\n    IFS=\' \'\n' +
      `    required_cpu_flags="${flags}"\n` +
      '    for flag in $(echo $required_cpu_flags); do\n        if grep -q ${flag} /proc/cpuinfo; then\n            true\n        else\n' +
      '            err_msg="Fail to check CPU flags: \\`${flag}\\` not supported. Require \\`${required_cpu_flags}\\`."\n' +
      '            echo ${err_msg}\n' +
      `            echo \${err_msg} >>"${i.logDir}/tiflash_stderr.log"\n` +
      '            exit -1\n        fi\n    done\n    IFS=$IFS_OLD\nfi'
    : '';
  return (
    HEAD +
    `cd "${i.deployDir}" || exit 1\n\nexport RUST_BACKTRACE=1\n\nexport TZ=\${TZ:-/etc/localtime}\n` +
    `export LD_LIBRARY_PATH=${i.deployDir}/bin/tiflash:$LD_LIBRARY_PATH\nexport MALLOC_CONF="prof:true,prof_active:false"` +
    check +
    "\n\necho -n 'sync ... '\nstat=$(time sync)\necho ok\necho $stat" +
    execLine(i, 'bin/tiflash/tiflash server') +
    `\n    --config-file conf/tiflash.toml 2>> "${i.logDir}/tiflash_stderr.log"\n`
  );
}

/** run_cdc.sh.tpl (cdc.go InitConfig; v7.1.0+: --data-dir, conf/cdc.toml, cluster id supported). */
export function runCdc(i: Instance, c: Cluster): string {
  const gcTtl = typeof i.spec['gc-ttl'] === 'number' && i.spec['gc-ttl'] !== 0 ? String(i.spec['gc-ttl']) : '';
  return (
    HEAD +
    `DEPLOY_DIR=${i.deployDir}\ncd "\${DEPLOY_DIR}" || exit 1` +
    (numa(i) ? `\nexec numactl --cpunodebind=${numa(i)} --membind=${numa(i)} bin/cdc server \\` : '\nexec bin/cdc server \\') +
    `\n    --addr "${joinHostPort(listenHost(i, c), i.ports.port)}" \\` +
    `\n    --advertise-addr "${joinHostPort(i.host, i.port)}" \\` +
    `\n    --pd "${ofRole(c, 'pd').map((p) => pdClientUrl(p, c)).join(',')}" \\` +
    (i.dataDirs[0] ? `\n    --data-dir="${i.dataDirs[0]}" \\` : '') +
    (c.tls ? '\n    --ca tls/ca.crt \\\n    --cert tls/cdc.crt \\\n    --key tls/cdc.pem \\' : '') +
    (gcTtl ? `\n    --gc-ttl ${gcTtl} \\` : '') +
    (field(i.spec.tz) ? `\n    --tz "${field(i.spec.tz)}" \\` : '') +
    (field(i.spec.ticdc_cluster_id) ? `\n    --cluster-id ${field(i.spec.ticdc_cluster_id)} \\` : '') +
    '\n    --config conf/cdc.toml \\' +
    `\n    --log-file "${i.logDir}/cdc.log" 2>> "${i.logDir}/cdc_stderr.log"\n`
  );
}

/** run_pump.sh.tpl / run_drainer.sh.tpl (pump.go: node id = ID() = host:port; drainer.go: --addr = host:port). */
export function runBinlog(i: Instance, c: Cluster): string {
  const self = joinHostPort(i.host, i.ports.port);
  const bin = i.role === 'pump' ? 'bin/pump' : 'bin/drainer';
  return (
    HEAD +
    `DEPLOY_DIR=${i.deployDir}\n\ncd "\${DEPLOY_DIR}" || exit 1` +
    (numa(i) ? `\nexec numactl --cpunodebind=${numa(i)} --membind=${numa(i)} ${bin} \\` : `\nexec ${bin} \\`) +
    `\n    --node-id="${self}" \\` +
    (i.role === 'pump'
      ? `\n    --addr="${joinHostPort(listenHost(i, c), i.ports.port)}" \\\n    --advertise-addr="${self}" \\`
      : `\n    --addr="${self}" \\`) +
    `\n    --pd-urls="${ofRole(c, 'pd').map((p) => pdClientUrl(p, c)).join(',')}" \\` +
    `\n    --data-dir="${i.dataDirs[0]}" \\` +
    `\n    --log-file="${i.logDir}/${i.role}.log" \\` +
    `\n    --config=conf/${i.role}.toml 2>> "${i.logDir}/${i.role}_stderr.log"\n`
  );
}

/** run_prometheus.sh.tpl (monitoring.go MonitorInstance.InitConfig; retention: getRetentionTime/Size). */
export function runPrometheus(i: Instance): string {
  const n = numa(i);
  const time = field(i.spec.storage_retention_time) || field(i.spec.storage_retention);
  const retention = /^[1-9]\d*d$/.test(time.trim()) ? time.trim() : '30d';
  const sizeRaw = field(i.spec.storage_retention_size).trim().toUpperCase();
  const size = /^[1-9]\d*(B|KB|MB|GB|TB|PB|EB)$/.test(sizeRaw) ? sizeRaw : '';
  const args = Array.isArray(i.spec.additional_args) ? (i.spec.additional_args as unknown[]).map(field) : [];
  const agent = i.spec.enable_prom_agent_mode === true || args.includes('--enable-feature=agent');
  return (
    `#!/bin/bash\nset -e\n\nDEPLOY_DIR=${i.deployDir}\ncd "\${DEPLOY_DIR}" || exit 1\n\n` +
    '# WARNING: This file was auto-generated. Do not edit!\n#          All your edit might be overwritten!\n\n' +
    'if [ -e "bin/ng-monitoring-server" ]; then\necho "#!/bin/bash\n\n' +
    '# WARNING: This file was auto-generated to restart ng-monitoring when fail. \n' +
    '#          Do not edit! All your edit might be overwritten!\n\nwhile true\ndo' +
    (n ? `\n    numactl --cpunodebind=${n} --membind=${n} bin/ng-monitoring-server \\` : '\n    bin/ng-monitoring-server \\') +
    `\n        --config ${i.deployDir}/conf/ngmonitoring.toml \\\n        >/dev/null 2>&1\n    sleep 15s\ndone" > scripts/ng-wrapper.sh\nfi` +
    (typeof i.spec.ng_port === 'number' && i.spec.ng_port > 0 ? '\n/bin/bash scripts/ng-wrapper.sh &' : '') +
    `\n\nexec > >(tee -i -a "${i.logDir}/prometheus.log")\nexec 2>&1` +
    (n ? `\nexec numactl --cpunodebind=${n} --membind=${n} bin/prometheus/prometheus \\` : '\nexec bin/prometheus/prometheus \\') +
    `\n    --config.file="${i.deployDir}/conf/prometheus.yml" \\` +
    `\n    --web.listen-address=":${i.port}" \\` +
    `\n    --web.external-url="http://${joinHostPort(i.host, i.port)}/" \\` +
    '\n    --web.enable-admin-api \\\n    --log.level="info" \\' +
    (agent ? '' : `\n    --storage.tsdb.path="${i.dataDirs[0]}" \\`) +
    (agent ? '\n    --enable-feature=agent \\' : '') +
    args.map((a) => `\n    ${a} \\`).join('') +
    (agent ? '' : (size ? `\n    --storage.tsdb.retention.size="${size}"` : '') + `\n    --storage.tsdb.retention.time="${retention}"`) +
    '\n'
  );
}

/** run_node_exporter.sh.tpl (task/monitored_config.go: NewNodeExporterScript). */
export function runNodeExporter(c: Cluster): string {
  const m = c.monitored;
  return (
    HEAD +
    `DEPLOY_DIR=${m.deployDir}\ncd "\${DEPLOY_DIR}" || exit 1\n\nexec > >(tee -i -a "${m.logDir}/node_exporter.log")\nexec 2>&1\n\n` +
    'EXPORTER_BIN=bin/node_exporter/node_exporter\nif [ ! -f $EXPORTER_BIN ]; then\n  EXPORTER_BIN=bin/node_exporter\nfi' +
    (m.numaNode ? `\nexec numactl --cpunodebind=${m.numaNode} --membind=${m.numaNode} $EXPORTER_BIN \\` : '\nexec $EXPORTER_BIN \\') +
    `\n    --web.listen-address=":${m.nodeExporterPort}" \\\n    --collector.tcpstat \\\n    --collector.mountstats \\\n    --collector.meminfo_numa \\\n    --collector.buddyinfo \\\n` +
    '    --collector.vmstat.fields="^.*" \\\n    --log.level="info"\n    #--collector.systemd \\\n    #--collector.interrupts \\\n'
  );
}

/** run_blackbox_exporter.sh.tpl (task/monitored_config.go: NewBlackboxExporterScript; no numa_node passed). */
export function runBlackboxExporter(c: Cluster): string {
  const m = c.monitored;
  return (
    HEAD +
    `DEPLOY_DIR=${m.deployDir}\ncd "\${DEPLOY_DIR}" || exit 1\n\nexec > >(tee -i -a "${m.logDir}/blackbox_exporter.log")\nexec 2>&1\n\n` +
    'EXPORTER_BIN=bin/blackbox_exporter/blackbox_exporter\nif [ ! -f $EXPORTER_BIN ]; then\n  EXPORTER_BIN=bin/blackbox_exporter\nfi' +
    '\nexec $EXPORTER_BIN \\' +
    `\n    --web.listen-address=":${m.blackboxExporterPort}" \\\n    --log.level="info" \\\n    --config.file="conf/blackbox.yml"\n`
  );
}
