/**
 * /etc/systemd/system/<role>-<port>.service: pingcap/tiup v1.16.5 embed/templates/systemd/system.service.tpl
 * with spec/instance.go BaseInstance.InitConfig (resource_control merged instance over global,
 * Restart=on-failure for pump/drainer) and task/monitored_config.go (GrantCapNetRaw for blackbox_exporter).
 */
import { GoMap, isMap } from './toml';
import { field } from './spec';

export interface UnitOptions {
  service: string;
  user: string;
  deployDir: string;
  resourceControl: GoMap;
  systemdMode?: string;
  grantCapNetRaw?: boolean;
  restart?: string;
}

/** instance.go MergeResourceControl: each non-empty instance field overrides the global one. */
export function mergeResourceControl(global: unknown, own: unknown): GoMap {
  const out: GoMap = { ...(isMap(global) ? global : {}) };
  for (const [k, v] of Object.entries(isMap(own) ? own : {})) if (field(v) !== '') out[k] = v;
  return out;
}

export function unitFile(o: UnitOptions): string {
  const rc = (k: string): string => field(o.resourceControl[k]);
  const mode = o.systemdMode || 'system';
  const opt = (key: string, v: string): string => (v ? `\n${key}=${v}` : '');
  return (
    `[Unit]\nDescription=${o.service} service\nAfter=syslog.target network.target remote-fs.target nss-lookup.target\n\n[Service]` +
    opt('MemoryLimit', rc('memory_limit')) +
    opt('CPUQuota', rc('cpu_quota')) +
    opt('IOReadBandwidthMax', rc('io_read_bandwidth_max')) +
    opt('IOWriteBandwidthMax', rc('io_write_bandwidth_max')) +
    opt('LimitCORE', rc('limit_core')) +
    '\nLimitNOFILE=1000000\nLimitSTACK=10485760' +
    (o.grantCapNetRaw && mode === 'system' ? '\nAmbientCapabilities=CAP_NET_RAW' : '') +
    (mode === 'system' ? `\nUser=${o.user}` : '') +
    `\nExecStart=/bin/bash -c '${o.deployDir}/scripts/run_${o.service}.sh'` +
    // `{{end}}` without `-`: the newline after it stays, so a blank line follows ExecReload.
    (o.service === 'prometheus' ? `\nExecReload=/bin/bash -c 'kill -HUP $MAINPID $(pidof ${o.deployDir}/bin/ng-monitoring-server)'\n` : '') +
    // `{{else}}`/`{{end}}` keep their newlines: a blank line before RestartSec.
    `\nRestart=${o.restart || 'always'}\n\nRestartSec=15s` +
    opt('TimeoutStartSec', rc('timeout_start_sec')) +
    opt('TimeoutStopSec', rc('timeout_stop_sec')) +
    '\n\n[Install]\nWantedBy=multi-user.target\n'
  );
}
