/**
 * The `tls enable --verify-cn` checks the version matrix runs per version, shared with tls.test.ts,
 * which runs them at the lab's default version (v8.5) on its own conversion instead of converting
 * the lab once more (CI's time budget, #27 item 9).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { LabInfo } from '../../lab';
import { loadTopology } from '../../src/topology';
import { sshOk } from './helpers';
import { tlsSay } from './expect-cluster';
import { expectNgMonitoringReachesPd } from './ngmonitoring';
import { curl, pdMembership, runTiseal, tlsFiles } from './tiseal';

export const TIFLASH = '10.77.0.15';
export const PUMP = 'https://10.77.0.12:8250/status';
export const DRAINER = 'https://10.77.0.13:8249/status';
export const BINLOG_SERVERS = '\npump_servers:\n  - host: 10.77.0.12\n\ndrainer_servers:\n  - host: 10.77.0.13\n    config:\n      syncer.db-type: "file"\n';

export interface VersionCase {
  version: string;
  /** Pump and Drainer deployed (TiDB Binlog was removed in v8.4.0). */
  binlog: boolean;
  /** TiFlash < v7.1 serves HTTP (https_port with TLS). */
  tiflashHttp: boolean;
  /** PD ≥ v8.4 takes a CN list and checks it on its client port. */
  pdList: boolean;
}

export const httpCode = (args: string[]): string => curl(['-o', '/dev/null', '-w', '%{http_code}', ...args]).out;

/** Every .toml under conf/ of every instance (and Pump/Drainer run scripts), host:path → text. */
export function configs(info: LabInfo): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of loadTopology(info.topologyFile).instances) {
    const files = [...i.configFiles.filter((x) => x.endsWith('.toml')), ...(i.role === 'pump' || i.role === 'drainer' ? [i.runScript] : [])];
    for (const f of files) out[`${i.host}:${f}`] = sshOk(info, i.host, `cat ${f}`);
  }
  return out;
}

/**
 * The lab topology plus `extra` YAML, in its own directory under the same base name, so tiseal
 * sees the same cluster (name, state).
 */
export function topologyVariant(info: LabInfo, name: string, extra: string): LabInfo {
  const file = path.join(info.dir, 'matrix', name, path.basename(info.topologyFile));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, fs.readFileSync(info.topologyFile, 'utf8') + extra);
  return { ...info, topologyFile: file };
}

/** A client certificate signed by the cluster CA (on this machine) with a CN no component allows. */
export function intruderCert(info: LabInfo, dir: string): { cert: string; key: string } {
  const f = tlsFiles(info);
  const [key, csr, cert, ext] = ['intruder.key', 'intruder.csr', 'intruder.crt', 'ext.cnf'].map((n) => path.join(dir, n));
  fs.writeFileSync(ext, 'extendedKeyUsage=clientAuth\n');
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  run(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-subj', '/CN=intruder', '-out', csr]);
  run(['x509', '-req', '-in', csr, '-CA', f.ca, '-CAkey', f.caKey, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert]);
  return { cert, key };
}

/** TiProxy and PD microservices (tso) are refused before any change: one line, the file alone decides. */
export async function expectUnsupportedRefused(info: LabInfo, before: Record<string, string>): Promise<void> {
  const refused = topologyVariant(info, 'refused', '\ntiproxy_servers:\n  - host: 10.77.0.14\n\ntso_servers:\n  - host: 10.77.0.12\n');
  const r = await runTiseal(refused, ['tls', 'enable', refused.topologyFile, '--yes', '--verify-cn']);
  expect(r.code).toBe(1);
  const errors = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.startsWith('error:'));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(/topology\.yaml:\d+: tiproxy_servers 10\.77\.0\.14:6000: tiseal does not convert TiProxy .*\(and 1 more: tso_servers 10\.77\.0\.12:3379\)$/);
  expect(configs(info)).toEqual(before);
  expect(pdMembership(info, 'http')).toHaveLength(3);
}

/**
 * After `tls enable --verify-cn` (its stdout in `enableOut`): each component's CN list as its
 * version takes it, TiFlash's HTTP and metrics ports, Pump/Drainer, and a certificate from the
 * cluster CA with a foreign CN refused by TiKV at every version and by PD from v8.4.
 */
export async function expectVerifyCnOnTls(info: LabInfo, c: VersionCase, enableOut: string, dir: string): Promise<void> {
  const f = tlsFiles(info);
  const withCert = ['--cacert', f.ca, '--cert', f.cert, '--key', f.key];
  const pdToml = sshOk(info, '10.77.0.11', 'cat /tidb-deploy/pd-2379/conf/pd.toml');
  if (c.pdList) expect(pdToml).toMatch(/cert-allowed-cn = \[[^\]]*"tikv"/);
  else {
    expect(enableOut).toMatch(new RegExp(`PD ${c.version.replace(/\./g, '\\.')} gets no cert-allowed-cn`));
    expect(pdToml).not.toMatch(/cert-allowed-cn/);
  }
  expect(sshOk(info, '10.77.0.11', 'cat /tidb-deploy/tikv-20160/conf/tikv.toml')).toMatch(/cert-allowed-cn = \[[^\]]*"tidb"[^\]]*"tiseal"[^\]]*\]/);
  expect(sshOk(info, '10.77.0.14', 'cat /tidb-deploy/tidb-4000/conf/tidb.toml')).toMatch(/cluster-verify-cn = \[/);
  expect(sshOk(info, '10.77.0.14', 'cat /tidb-deploy/cdc-8300/conf/cdc.toml')).toMatch(/cert-allowed-cn = \[[^\]]*"pd"/);
  const tiflashToml = sshOk(info, TIFLASH, 'cat /tidb-deploy/tiflash-9000/conf/tiflash.toml');
  expect(tiflashToml).toMatch(/cert_allowed_cn = \[[^\]]*"prometheus"/);
  expect(tiflashToml).not.toMatch(/^http_port/m);
  if (c.tiflashHttp) {
    expect(tiflashToml).toMatch(/^https_port = 8123$/m);
    expect(httpCode([...withCert, `https://${TIFLASH}:8123/`])).toBe('200');
    expect(httpCode(['--cacert', f.ca, `https://${TIFLASH}:8123/`])).not.toBe('200');
  } else {
    // TiFlash v7.1+ has no HTTP service at all.
    expect(curl([...withCert, `https://${TIFLASH}:8123/`]).code).toBe(7);
  }
  // TiFlash metrics: a client certificate with an allowed CN, nothing without one.
  expect(httpCode([...withCert, `https://${TIFLASH}:8234/metrics`])).toBe('200');
  expect(httpCode(['--cacert', f.ca, `https://${TIFLASH}:8234/metrics`])).not.toBe('200');
  if (c.binlog) {
    expect(sshOk(info, '10.77.0.13', 'cat /tidb-deploy/drainer-8249/scripts/run_drainer.sh')).toContain('--pd-urls="https://10.77.0.11:2379,');
    expect(sshOk(info, '10.77.0.12', 'cat /tidb-deploy/pump-8250/conf/pump.toml')).toMatch(/^cert-allowed-cn = \[[^\]]*"drainer"[^\]]*"tidb"/m);
    for (const url of [PUMP, DRAINER]) {
      expect(httpCode([...withCert, url])).toBe('200');
      expect(httpCode(['--cacert', f.ca, url])).not.toBe('200');
    }
  }
  const bad = intruderCert(info, dir);
  expect(tlsSay(info, '10.77.0.12', 20160, 'ping', bad)).toMatch(/Common name check fail/);
  if (c.pdList) {
    const pdIntruder = curl(['--cacert', f.ca, '--cert', bad.cert, '--key', bad.key, 'https://10.77.0.11:2379/pd/api/v1/members']);
    expect(pdIntruder.code === 0 && /"members"/.test(pdIntruder.out)).toBe(false);
    await expectNgMonitoringReachesPd(info, 'https');
  }
}
