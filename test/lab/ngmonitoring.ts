/**
 * ng-monitoring on the lab's monitoring host, checked from outside. Its port is plain HTTP with or
 * without TLS (pingcap/ng-monitoring service/service.go: net.Listen, no TLS); it dials PD over
 * https exactly when its running config has all three [security] paths (config/config.go
 * GetHTTPScheme). PD serves only https after enable and only http after disable, so "the running
 * process has TiUP's [security] (or none) and found the cluster through PD" is "it reaches PD over
 * `scheme`". Expected values come from the raw topology YAML and TiUP's ngmonitoring.toml.tpl.
 */
import * as fs from 'fs';
import * as yaml from 'js-yaml';
import type { LabInfo } from '../../lab';
import { sshOk, waitUntil } from './helpers';
import { curl } from './tiseal';

type Servers = Array<Record<string, unknown>> | undefined;

export async function expectNgMonitoringReachesPd(info: LabInfo, scheme: 'http' | 'https', timeoutMs = 30_000): Promise<void> {
  const doc = yaml.load(fs.readFileSync(info.topologyFile, 'utf8')) as Record<string, Servers> & { global?: Record<string, unknown> };
  const mon = doc.monitoring_servers?.[0];
  if (!mon) throw new Error(`${info.topologyFile} has no monitoring_servers`);
  const host = String(mon.host);
  const ngPort = Number(mon.ng_port ?? 12020);
  if (!(ngPort > 0)) throw new Error(`${info.topologyFile}: ng-monitoring is off (ng_port ${ngPort})`);
  const deployDir = String(mon.deploy_dir ?? `${doc.global?.deploy_dir ?? '/tidb-deploy'}/prometheus-${Number(mon.port ?? 9090)}`);
  // TiUP's [security]: the prometheus certificate (ngmonitoring.toml.tpl).
  const security = scheme === 'https'
    ? { ca_path: `${deployDir}/tls/ca.crt`, cert_path: `${deployDir}/tls/prometheus.crt`, key_path: `${deployDir}/tls/prometheus.pem` }
    : { ca_path: '', cert_path: '', key_path: '' };
  const toml = sshOk(info, host, `cat ${deployDir}/conf/ngmonitoring.toml`);
  if (scheme === 'https') expect(toml).toContain(`[security]\nca-path = "${security.ca_path}"\ncert-path = "${security.cert_path}"\nkey-path = "${security.key_path}"`);
  else expect(toml).not.toMatch(/^\[security\]/m);
  // PD members + TiKV and TiFlash stores, through PD's API (the lab's TiDB and TiCDC emulators
  // register nothing under PD's etcd /topology/tidb/ and capture keys, where ng-monitoring looks).
  const want = ['pd_servers', 'tikv_servers', 'tiflash_servers'].reduce((n, s) => n + (doc[s]?.length ?? 0), 0);
  const base = `http://${host}:${ngPort}`;
  let last = '';
  try {
    await waitUntil(`ng-monitoring ${base} reaching PD over ${scheme}`, timeoutMs, () => {
      const cfg = curl(['-sS', '--max-time', '3', `${base}/config`]);
      const est = curl(['-sS', '--max-time', '3', `${base}/continuous_profiling/estimate_size`]);
      last = `/config: ${cfg.out.slice(0, 600)}\nestimate_size: ${est.out}`;
      if (cfg.code !== 0 || est.code !== 0) return undefined;
      const running = JSON.parse(cfg.out) as { security?: unknown };
      const found = (JSON.parse(est.out) as { instance_count?: number }).instance_count;
      return JSON.stringify(running.security) === JSON.stringify(security) && found === want ? true : undefined;
    }, 1000);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nwanted security ${JSON.stringify(security)} and ${want} instances\nlast seen ${last}`);
  }
}
