/**
 * `tls enable --verify-cn`: every component accepts only its legitimate callers' certificate CNs.
 * A certificate from the same CA with another CN is refused by PD and TiKV; the cluster stays healthy.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab, sshOk } from './helpers';
import { expectTlsCluster, tlsSay } from './expect-cluster';
import { expectPrometheusScrapes } from './prometheus-targets';
import { curl, runTiseal, tlsFiles } from './tiseal';

jest.setTimeout(8 * 60_000);

/** A client certificate signed by the cluster CA (on this machine) with a CN no component allows. */
function intruderCert(info: LabInfo, dir: string): { cert: string; key: string } {
  const f = tlsFiles(info);
  const key = path.join(dir, 'intruder.key');
  const csr = path.join(dir, 'intruder.csr');
  const cert = path.join(dir, 'intruder.crt');
  const ext = path.join(dir, 'ext.cnf');
  fs.writeFileSync(ext, 'extendedKeyUsage=clientAuth\n');
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  run(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-subj', '/CN=intruder', '-out', csr]);
  run(['x509', '-req', '-in', csr, '-CA', f.ca, '-CAkey', f.caKey, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert]);
  return { cert, key };
}

/** Talk to TiKV's gRPC port with a given client certificate; returns what the server said. */
const tikvSays = (info: LabInfo, host: string, cert: string, key: string): string => tlsSay(info, host, 20160, 'ping', { cert, key });

describeLab('tiseal tls enable --verify-cn on the lab', () => {
  let info: LabInfo;
  let dir: string;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-cn-'));
  }, 15 * 60_000);

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes each caller list, refuses a foreign CN at PD and TiKV, keeps the cluster healthy', async () => {
    const r = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes', '--verify-cn']);
    if (r.code !== 0) throw new Error(`enable --verify-cn failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);

    const tikvToml = sshOk(info, '10.77.0.11', 'cat /tidb-deploy/tikv-20160/conf/tikv.toml');
    expect(tikvToml).toMatch(/cert-allowed-cn = \[[^\]]*"tidb"[^\]]*"tiseal"[^\]]*\]/);
    expect(sshOk(info, '10.77.0.11', 'cat /tidb-deploy/pd-2379/conf/pd.toml')).toMatch(/cert-allowed-cn = \[[^\]]*"tikv"/);
    expect(sshOk(info, '10.77.0.14', 'cat /tidb-deploy/tidb-4000/conf/tidb.toml')).toMatch(/cluster-verify-cn = \[/);
    expect(sshOk(info, '10.77.0.15', 'cat /tidb-deploy/tiflash-9000/conf/tiflash.toml')).toMatch(/cert_allowed_cn = \[/);

    const f = tlsFiles(info);
    const bad = intruderCert(info, dir);
    // PD: the allowed control client gets an answer, the intruder does not
    expect(curl(['--cacert', f.ca, '--cert', f.cert, '--key', f.key, 'https://10.77.0.11:2379/pd/api/v1/members']).out).toMatch(/"members"/);
    const pdIntruder = curl(['--cacert', f.ca, '--cert', bad.cert, '--key', bad.key, 'https://10.77.0.11:2379/pd/api/v1/members']);
    expect(pdIntruder.code === 0 && /"members"/.test(pdIntruder.out)).toBe(false);
    // TiKV: same CA, foreign CN → "Common name check fail"; tiseal's CN is served
    expect(tikvSays(info, '10.77.0.12', bad.cert, bad.key)).toMatch(/Common name check fail/);
    expect(tikvSays(info, '10.77.0.12', f.cert, f.key)).toMatch(/^pong tikv/m);

    // The cluster itself is fine: stores Up (TiKV/TiFlash heartbeat PD with their own CNs), TiDB up.
    expectTlsCluster(info);
    // The real Prometheus's CN (prometheus) is on every list guarding a metrics endpoint it scrapes.
    await expectPrometheusScrapes(info, 'https');
    const status = await runTiseal(info, ['tls', 'status', info.topologyFile]);
    expect(status.code).toBe(0);

    // Enabling again with the same lists restarts nothing.
    const again = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes', '--verify-cn']);
    expect(again.stdout).toMatch(/nothing to do/);
  });
});
