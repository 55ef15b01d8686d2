/**
 * Issue #12's version matrix: `tls enable --verify-cn` → `tls disable` at emulated v6.5, v7.5 and v8.1
 * here, and v8.5 (the lab's default) in tls.test.ts with the same checks (verify-cn-checks.ts), on PD×3, TiKV×3, TiDB, TiFlash, TiCDC, the lab's real Prometheus, and Pump + Drainer
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
 * Ends with the lab reset to plaintext at the default version and topology.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab } from './helpers';
import { expectPlainCluster, expectTlsCluster } from './expect-cluster';
import { expectPrometheusScrapes } from './prometheus-targets';
import { BINLOG_SERVERS, configs, DRAINER, expectVerifyCnOnTls, httpCode, PUMP, TIFLASH, topologyVariant, VersionCase } from './verify-cn-checks';
import { runTiseal } from './tiseal';

jest.setTimeout(20 * 60_000);

const MATRIX: VersionCase[] = [
  { version: 'v6.5.12', binlog: true, tiflashHttp: true, pdList: false },
  { version: 'v7.5.6', binlog: true, tiflashHttp: false, pdList: false },
  { version: 'v8.1.2', binlog: true, tiflashHttp: false, pdList: false },
  // v8.5.1 (binlog false, pdList true): tls.test.ts, on the lab's default version and topology.
];

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

describeLab('version matrix: tls enable --verify-cn → disable at v6.5, v7.5, v8.1 (issue #12; v8.5 in tls.test.ts)', () => {
  let info: LabInfo;
  let dir: string;

  beforeAll(async () => {
    info = await ensureLab();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-matrix-'));
  }, 15 * 60_000);

  afterAll(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    // Every case runs at another version or topology than the lab's default: put the default back.
    await labReset();
  }, 15 * 60_000);

  it.each(MATRIX)('$version', async (c) => {
    const { version, binlog, tiflashHttp } = c;
    const t = stopwatch();
    const v = topologyVariant(info, version, binlog ? BINLOG_SERVERS : '');
    await labReset({ version, topology: v.topologyFile });
    t.lap('reset');
    const before = configs(v);
    const tiflashConf = `${TIFLASH}:/tidb-deploy/tiflash-9000/conf/tiflash.toml`;
    if (tiflashHttp) expect(before[tiflashConf]).toMatch(/^http_port = 8123$/m);
    else expect(before[tiflashConf]).not.toMatch(/^https?_port/m);
    if (binlog) expect(before['10.77.0.12:/tidb-deploy/pump-8250/scripts/run_pump.sh']).toContain('--pd-urls="http://10.77.0.11:2379,');

    const on = await runTiseal(v, ['tls', 'enable', v.topologyFile, '--yes', '--verify-cn']);
    if (on.code !== 0) throw new Error(`enable failed (${on.code}):\n${on.stdout.slice(-3000)}\n${on.stderr}`);
    t.lap('enable');
    // The whole cluster on TLS: units, PD quorum (its view and etcdctl's), stores Up, every TLS
    // port of TiUP's table verified, PD and TiKV demand a client certificate.
    expectTlsCluster(v);
    await expectVerifyCnOnTls(v, c, on.stdout, dir);
    // The real Prometheus scrapes every component with its own certificate (CN prometheus).
    await expectPrometheusScrapes(v, 'https');

    t.lap('checks on TLS');
    const off = await runTiseal(v, ['tls', 'disable', v.topologyFile, '--yes']);
    if (off.code !== 0) throw new Error(`disable failed (${off.code}):\n${off.stdout.slice(-3000)}\n${off.stderr}`);
    t.lap('disable');
    expect(configs(v)).toEqual(before);
    if (binlog) for (const url of [PUMP, DRAINER]) expect(httpCode([url.replace('https:', 'http:')])).toBe('200');
    await expectPlainCluster(v);
    t.lap('checks on plaintext');
    process.stderr.write(`[matrix] ${version}: ${t.laps()} (CI budget: this file)\n`);
  });
});
