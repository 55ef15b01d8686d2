/**
 * Issue #12 part 1 on the lab: tiseal against emulators as strict as the upstream components.
 * - TiFlash < v7.1 (emulated v6.5.0): TLS needs https_port (Server.cpp), tiseal swaps http_port and back;
 * - TiFlash's metrics port wants a client certificate with an allowed CN (MetricsPrometheus.cpp);
 * - TiCDC checks the PD server CN against its cert-allowed-cn (tiflow pkg/httputil);
 * - PD < v8.4 gets no cert-allowed-cn (its one CN would bind its own outgoing calls);
 * - tiseal leaves every config line it does not own byte-identical (enable → disable gives the files back);
 * - Pump and Drainer (TiDB Binlog, shipped up to v8.3) on hosts the lab already has: [security] ssl-*,
 *   https --pd-urls (their etcd client speaks TLS only to https://), CN lists, and back.
 * Leaves the lab plaintext at the default version.
 */
import * as fs from 'fs';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { loadTopology } from '../../src/topology';
import { describeLab, ensureLab, sshOk } from './helpers';
import { expectPlainCluster, expectRunningCluster } from './expect-cluster';
import { curl, runTiseal, tlsFiles } from './tiseal';

jest.setTimeout(20 * 60_000);

const TIFLASH = '10.77.0.15';

/** Every .toml under conf/ of every instance (and Pump/Drainer run scripts), host:path → text. */
function configs(info: LabInfo, topologyFile = info.topologyFile): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of loadTopology(topologyFile).instances) {
    const files = [...i.configFiles.filter((x) => x.endsWith('.toml')), ...(i.role === 'pump' || i.role === 'drainer' ? [i.runScript] : [])];
    for (const f of files) out[`${i.host}:${f}`] = sshOk(info, i.host, `cat ${f}`);
  }
  return out;
}

/** The lab topology plus a Pump and a Drainer on existing hosts; same base name, so the same cluster state. */
function binlogVariant(info: LabInfo): string {
  const file = path.join(path.dirname(info.topologyFile), 'binlog', path.basename(info.topologyFile));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const servers = '\npump_servers:\n  - host: 10.77.0.12\n\ndrainer_servers:\n  - host: 10.77.0.13\n    config:\n      syncer.db-type: "file"\n';
  fs.writeFileSync(file, fs.readFileSync(info.topologyFile, 'utf8') + servers);
  return file;
}

const PUMP = 'https://10.77.0.12:8250/status';
const DRAINER = 'https://10.77.0.13:8249/status';

describeLab('components as strict as upstream (issue #12 part 1)', () => {
  let info: LabInfo;

  beforeAll(async () => {
    info = await ensureLab();
  }, 15 * 60_000);

  afterAll(async () => {
    await labReset();
  }, 15 * 60_000);

  it('v6.5: enable --verify-cn swaps TiFlash to https_port, PD gets no list; disable gives every config back byte for byte', async () => {
    const variant = binlogVariant(info);
    await labReset({ version: 'v6.5.0', topology: variant });
    const before = configs(info, variant);
    expect(before[`${TIFLASH}:/tidb-deploy/tiflash-9000/conf/tiflash.toml`]).toMatch(/^http_port = 8123$/m);
    expect(before['10.77.0.12:/tidb-deploy/pump-8250/scripts/run_pump.sh']).toContain('--pd-urls="http://10.77.0.11:2379,');

    const on = await runTiseal(info, ['tls', 'enable', variant, '--yes', '--verify-cn']);
    if (on.code !== 0) throw new Error(`enable failed (${on.code}):\n${on.stdout.slice(-3000)}\n${on.stderr}`);
    expect(on.stdout).toMatch(/PD v6\.5\.\d+ gets no cert-allowed-cn/);
    const tiflashToml = sshOk(info, TIFLASH, 'cat /tidb-deploy/tiflash-9000/conf/tiflash.toml');
    expect(tiflashToml).toMatch(/^https_port = 8123$/m);
    expect(tiflashToml).not.toMatch(/^http_port/m);
    expect(sshOk(info, '10.77.0.11', 'cat /tidb-deploy/pd-2379/conf/pd.toml')).not.toMatch(/cert-allowed-cn/);
    expectRunningCluster(info, 'https');
    const f = tlsFiles(info);
    // https_port and metrics: a client certificate is required (curl without one gets nothing).
    for (const url of [`https://${TIFLASH}:8123/`, `https://${TIFLASH}:8234/metrics`]) {
      expect(curl(['-o', '/dev/null', '-w', '%{http_code}', '--cacert', f.ca, '--cert', f.cert, '--key', f.key, url]).out).toBe('200');
      expect(curl(['-o', '/dev/null', '-w', '%{http_code}', '--cacert', f.ca, url]).out).not.toBe('200');
    }
    // Pump/Drainer: up on https (they registered in PD's etcd over https first); the CN list asks for a certificate.
    expect(sshOk(info, '10.77.0.13', 'cat /tidb-deploy/drainer-8249/scripts/run_drainer.sh')).toContain('--pd-urls="https://10.77.0.11:2379,');
    expect(sshOk(info, '10.77.0.12', 'cat /tidb-deploy/pump-8250/conf/pump.toml')).toMatch(/^cert-allowed-cn = \[[^\]]*"drainer"[^\]]*"tidb"/m);
    for (const url of [PUMP, DRAINER]) {
      expect(curl(['-o', '/dev/null', '-w', '%{http_code}', '--cacert', f.ca, '--cert', f.cert, '--key', f.key, url]).out).toBe('200');
      expect(curl(['-o', '/dev/null', '-w', '%{http_code}', '--cacert', f.ca, url]).out).not.toBe('200');
    }

    const off = await runTiseal(info, ['tls', 'disable', variant, '--yes']);
    if (off.code !== 0) throw new Error(`disable failed (${off.code}):\n${off.stdout.slice(-3000)}\n${off.stderr}`);
    expect(configs(info, variant)).toEqual(before);
    for (const url of [PUMP, DRAINER]) expect(curl(['-o', '/dev/null', '-w', '%{http_code}', url.replace('https:', 'http:')]).out).toBe('200');
    await expectPlainCluster(info);
  });

  it('v8.5: enable --verify-cn keeps TiCDC up (it checks PD\'s CN) and TiFlash metrics reachable with an allowed CN', async () => {
    await labReset();
    const on = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes', '--verify-cn']);
    if (on.code !== 0) throw new Error(`enable failed (${on.code}):\n${on.stdout.slice(-3000)}\n${on.stderr}`);
    expect(sshOk(info, '10.77.0.14', 'cat /tidb-deploy/cdc-8300/conf/cdc.toml')).toMatch(/cert-allowed-cn = \[[^\]]*"pd"/);
    expect(sshOk(info, TIFLASH, 'cat /tidb-deploy/tiflash-9000/conf/tiflash.toml')).toMatch(/cert_allowed_cn = \[[^\]]*"prometheus"/);
    expectRunningCluster(info, 'https');
    const f = tlsFiles(info);
    expect(curl(['-o', '/dev/null', '-w', '%{http_code}', '--cacert', f.ca, '--cert', f.cert, '--key', f.key, `https://${TIFLASH}:8234/metrics`]).out).toBe('200');
    // TiFlash v7.1+ has no HTTP service at all.
    expect(curl(['--cacert', f.ca, '--cert', f.cert, '--key', f.key, `https://${TIFLASH}:8123/`]).code).toBe(7);
  });
});
