/**
 * Issue #12's version matrix: `tls enable --verify-cn` → `tls disable` at emulated v6.5, v7.5, v8.1
 * and v8.5 on PD×3, TiKV×3, TiDB, TiFlash, TiCDC, the lab's real Prometheus, and Pump + Drainer
 * where the version ships them (TiDB Binlog was removed in v8.4.0). One labReset per version; every
 * check uses independent clients (openssl, curl, etcdctl, ssh). Version gates checked here:
 * - TiFlash < v7.1 needs https_port with TLS (Server.cpp), tiseal swaps http_port and back; from
 *   v7.1 TiFlash has no HTTP service at all;
 * - PD < v8.4 takes one CN and puts it into its own client TLS: tiseal gives it no list; from v8.4
 *   PD checks the list on its client port (an intruder CN is refused) and etcd's JSON gateway
 *   fails, so members go over gRPC;
 * - TiFlash's metrics port wants a client certificate with an allowed CN (MetricsPrometheus.cpp);
 *   TiCDC checks PD's server CN (tiflow pkg/httputil), so its list has `pd`;
 * - every config line tiseal does not own is byte-identical after enable → disable.
 * TiProxy and PD microservices are refused before any change (one line, nothing on any host).
 * Ends with the lab plaintext at the default version and topology (the v8.5 case runs last).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { resolveOptions } from '../../lab/options';
import { loadTopology } from '../../src/topology';
import { describeLab, ensureLab, sshOk } from './helpers';
import { expectPlainCluster, expectTlsCluster, tlsSay } from './expect-cluster';
import { expectPrometheusScrapes } from './prometheus-targets';
import { expectNgMonitoringReachesPd } from './ngmonitoring';
import { curl, pdMembership, runTiseal, tlsFiles } from './tiseal';

jest.setTimeout(20 * 60_000);

const TIFLASH = '10.77.0.15';
const PUMP = 'https://10.77.0.12:8250/status';
const DRAINER = 'https://10.77.0.13:8249/status';

const MATRIX = [
  { version: 'v6.5.12', binlog: true, tiflashHttp: true, pdList: false },
  { version: 'v7.5.6', binlog: true, tiflashHttp: false, pdList: false },
  { version: 'v8.1.2', binlog: true, tiflashHttp: false, pdList: false },
  // Last: the lab's default version and topology, so the lab is left as other test files expect it.
  { version: 'v8.5.1', binlog: false, tiflashHttp: false, pdList: true },
];

/** Every .toml under conf/ of every instance (and Pump/Drainer run scripts), host:path → text. */
function configs(info: LabInfo): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of loadTopology(info.topologyFile).instances) {
    const files = [...i.configFiles.filter((x) => x.endsWith('.toml')), ...(i.role === 'pump' || i.role === 'drainer' ? [i.runScript] : [])];
    for (const f of files) out[`${i.host}:${f}`] = sshOk(info, i.host, `cat ${f}`);
  }
  return out;
}

/**
 * The lab topology, plus a Pump and a Drainer on existing hosts when `binlog`, or `extra` YAML; in
 * its own directory under the same base name, so tiseal sees the same cluster (name, state).
 */
function topologyVariant(info: LabInfo, name: string, extra: string): LabInfo {
  const file = path.join(info.dir, 'matrix', name, path.basename(info.topologyFile));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, fs.readFileSync(info.topologyFile, 'utf8') + extra);
  return { ...info, topologyFile: file };
}
const BINLOG_SERVERS = '\npump_servers:\n  - host: 10.77.0.12\n\ndrainer_servers:\n  - host: 10.77.0.13\n    config:\n      syncer.db-type: "file"\n';

/** A client certificate signed by the cluster CA (on this machine) with a CN no component allows. */
function intruderCert(info: LabInfo, dir: string): { cert: string; key: string } {
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

/** Seconds per phase, for the CI time budget. */
function stopwatch(): { lap: (name: string) => void; laps: () => string } {
  let last = Date.now();
  const out: string[] = [];
  return {
    lap: (name) => {
      out.push(`${name} ${((Date.now() - last) / 1000).toFixed(1)} s`);
      last = Date.now();
    },
    laps: () => out.join(', '),
  };
}

const httpCode = (args: string[]): string => curl(['-o', '/dev/null', '-w', '%{http_code}', ...args]).out;

describeLab('version matrix: tls enable --verify-cn → disable at v6.5, v7.5, v8.1, v8.5 (issue #12)', () => {
  let info: LabInfo;
  let dir: string;
  let leftClean = false;

  beforeAll(async () => {
    info = await ensureLab();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-matrix-'));
  }, 15 * 60_000);

  afterAll(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    // Only a case that failed half-way leaves the lab on TLS or at another version.
    if (!leftClean) await labReset();
  }, 15 * 60_000);

  it.each(MATRIX)('$version', async ({ version, binlog, tiflashHttp, pdList }) => {
    leftClean = false;
    const t = stopwatch();
    const v = topologyVariant(info, version, binlog ? BINLOG_SERVERS : '');
    await labReset({ version, topology: v.topologyFile });
    t.lap('reset');
    const before = configs(v);
    const tiflashConf = `${TIFLASH}:/tidb-deploy/tiflash-9000/conf/tiflash.toml`;
    if (tiflashHttp) expect(before[tiflashConf]).toMatch(/^http_port = 8123$/m);
    else expect(before[tiflashConf]).not.toMatch(/^https?_port/m);
    if (binlog) expect(before['10.77.0.12:/tidb-deploy/pump-8250/scripts/run_pump.sh']).toContain('--pd-urls="http://10.77.0.11:2379,');

    if (pdList) {
      // Refused before any change: TiProxy and PD microservices (tso). The file alone decides.
      const refused = topologyVariant(info, 'refused', '\ntiproxy_servers:\n  - host: 10.77.0.14\n\ntso_servers:\n  - host: 10.77.0.12\n');
      const r = await runTiseal(refused, ['tls', 'enable', refused.topologyFile, '--yes', '--verify-cn']);
      expect(r.code).toBe(1);
      const errors = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.startsWith('error:'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/topology\.yaml:\d+: tiproxy_servers 10\.77\.0\.14:6000: tiseal does not convert TiProxy .*\(and 1 more: tso_servers 10\.77\.0\.12:3379\)$/);
      expect(configs(v)).toEqual(before);
      expect(pdMembership(v, 'http')).toHaveLength(3);
    }

    t.lap('refusal');
    const on = await runTiseal(v, ['tls', 'enable', v.topologyFile, '--yes', '--verify-cn']);
    if (on.code !== 0) throw new Error(`enable failed (${on.code}):\n${on.stdout.slice(-3000)}\n${on.stderr}`);
    t.lap('enable');
    const f = tlsFiles(v);
    const withCert = ['--cacert', f.ca, '--cert', f.cert, '--key', f.key];
    const pdToml = sshOk(v, '10.77.0.11', 'cat /tidb-deploy/pd-2379/conf/pd.toml');
    if (pdList) expect(pdToml).toMatch(/cert-allowed-cn = \[[^\]]*"tikv"/);
    else {
      expect(on.stdout).toMatch(new RegExp(`PD ${version.replace(/\./g, '\\.')} gets no cert-allowed-cn`));
      expect(pdToml).not.toMatch(/cert-allowed-cn/);
    }
    expect(sshOk(v, '10.77.0.11', 'cat /tidb-deploy/tikv-20160/conf/tikv.toml')).toMatch(/cert-allowed-cn = \[[^\]]*"tidb"[^\]]*"tiseal"[^\]]*\]/);
    expect(sshOk(v, '10.77.0.14', 'cat /tidb-deploy/tidb-4000/conf/tidb.toml')).toMatch(/cluster-verify-cn = \[/);
    expect(sshOk(v, '10.77.0.14', 'cat /tidb-deploy/cdc-8300/conf/cdc.toml')).toMatch(/cert-allowed-cn = \[[^\]]*"pd"/);
    const tiflashToml = sshOk(v, TIFLASH, 'cat /tidb-deploy/tiflash-9000/conf/tiflash.toml');
    expect(tiflashToml).toMatch(/cert_allowed_cn = \[[^\]]*"prometheus"/);
    expect(tiflashToml).not.toMatch(/^http_port/m);
    if (tiflashHttp) {
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
    if (binlog) {
      expect(sshOk(v, '10.77.0.13', 'cat /tidb-deploy/drainer-8249/scripts/run_drainer.sh')).toContain('--pd-urls="https://10.77.0.11:2379,');
      expect(sshOk(v, '10.77.0.12', 'cat /tidb-deploy/pump-8250/conf/pump.toml')).toMatch(/^cert-allowed-cn = \[[^\]]*"drainer"[^\]]*"tidb"/m);
      for (const url of [PUMP, DRAINER]) {
        expect(httpCode([...withCert, url])).toBe('200');
        expect(httpCode(['--cacert', f.ca, url])).not.toBe('200');
      }
    }

    // The whole cluster on TLS: units, PD quorum (its view and etcdctl's), stores Up, every TLS
    // port of TiUP's table verified, PD and TiKV demand a client certificate.
    expectTlsCluster(v);
    // A certificate from the cluster CA with a foreign CN: TiKV refuses it at every version, PD
    // from v8.4 (before, PD checks its one CN on the peer port only).
    const bad = intruderCert(v, dir);
    expect(tlsSay(v, '10.77.0.12', 20160, 'ping', bad)).toMatch(/Common name check fail/);
    if (pdList) {
      const pdIntruder = curl(['--cacert', f.ca, '--cert', bad.cert, '--key', bad.key, 'https://10.77.0.11:2379/pd/api/v1/members']);
      expect(pdIntruder.code === 0 && /"members"/.test(pdIntruder.out)).toBe(false);
    }
    // The real Prometheus scrapes every component with its own certificate (CN prometheus).
    await expectPrometheusScrapes(v, 'https');
    if (pdList) await expectNgMonitoringReachesPd(v, 'https');
    if (pdList) {
      expect((await runTiseal(v, ['tls', 'status', v.topologyFile])).code).toBe(0);
      // Enabling again with the same lists restarts nothing.
      expect((await runTiseal(v, ['tls', 'enable', v.topologyFile, '--yes', '--verify-cn'])).stdout).toMatch(/nothing to do/);
    }

    t.lap('checks on TLS');
    const off = await runTiseal(v, ['tls', 'disable', v.topologyFile, '--yes']);
    if (off.code !== 0) throw new Error(`disable failed (${off.code}):\n${off.stdout.slice(-3000)}\n${off.stderr}`);
    t.lap('disable');
    expect(configs(v)).toEqual(before);
    if (binlog) for (const url of [PUMP, DRAINER]) expect(httpCode([url.replace('https:', 'http:')])).toBe('200');
    await expectPlainCluster(v);
    if (pdList) await expectNgMonitoringReachesPd(v, 'http');
    t.lap('checks on plaintext');
    process.stderr.write(`[matrix] ${version}: ${t.laps()} (CI budget: this file)\n`);
    leftClean = version === resolveOptions().version && !binlog;
  });
});
