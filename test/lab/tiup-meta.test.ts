/**
 * TiUP's metadata kept true on the lab: a TIUP_HOME laid out as TiUP writes it
 * (storage/cluster/clusters/<name>/meta.yaml, tls/ per pkg/cluster/manager/cacert.go). After
 * `tls enable` meta.yaml says enable_tls: true and nothing else changed, tls/ holds the cluster CA
 * and client files (keys 0600); after `tls disable` enable_tls is false. A cluster whose TiUP
 * metadata already says TLS is adopted with TiUP's CA (checked with openssl against TiUP's ca.crt).
 * Ends with the lab plaintext.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab } from './helpers';
import { expectRunningCluster } from './expect-cluster';
import { clusterName, runTiseal, RunResult, tlsFiles } from './tiseal';

jest.setTimeout(15 * 60_000);

const FIX = path.join(__dirname, '..', 'tiup', 'fixtures');
const META = fs.readFileSync(path.join(FIX, 'meta.yaml'), 'utf8');
const META_TLS = fs.readFileSync(path.join(FIX, 'meta.tls.yaml'), 'utf8');
const PD = '10.77.0.11';
const mode = (f: string) => fs.statSync(f).mode & 0o777;

function ok(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stdout.slice(-3000)}\n${r.stderr}`);
  return r;
}

/** A CA as TiUP's pkg/crypto/ca.go makes it (RSA, O=PingCAP OU=TiUP, no CN), key PKCS#1, both 0644 as TiUP writes them. */
function tiupCa(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k8'), '-out', path.join(dir, 'ca.crt'), '-days', '18250', '-subj', '/O=PingCAP/OU=TiUP',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth,serverAuth']);
  run(['rsa', '-in', path.join(dir, 'k8'), '-traditional', '-out', path.join(dir, 'ca.pem')]);
  fs.rmSync(path.join(dir, 'k8'));
  fs.chmodSync(path.join(dir, 'ca.pem'), 0o644);
}

describeLab("TiUP's metadata (meta.yaml, tls/)", () => {
  let info: LabInfo;
  let root: string;
  let tiupDir: string;
  const saved = process.env.TIUP_HOME;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-tiup-lab-'));
    process.env.TIUP_HOME = path.join(root, 'tiup'); // runTiseal passes this process's environment on
    tiupDir = path.join(root, 'tiup', 'storage', 'cluster', 'clusters', clusterName(info));
    fs.mkdirSync(path.join(tiupDir, 'backup'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(tiupDir, 'meta.yaml'), META, { mode: 0o644 });
  });

  afterAll(async () => {
    // The lab is left plaintext whatever happened above.
    if (info) await labReset();
    if (saved === undefined) delete process.env.TIUP_HOME;
    else process.env.TIUP_HOME = saved;
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('tls enable: enable_tls: true, nothing else changed; tls/ holds the CA and client (keys 0600)', async () => {
    ok(await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes']), 'tls enable');
    expect(fs.readFileSync(path.join(tiupDir, 'meta.yaml'), 'utf8')).toBe(META_TLS);
    const f = tlsFiles(info);
    const t = (n: string) => path.join(tiupDir, 'tls', n);
    expect(fs.readFileSync(t('ca.crt'), 'utf8')).toBe(fs.readFileSync(f.ca, 'utf8'));
    expect(fs.readFileSync(t('client.crt'), 'utf8')).toBe(fs.readFileSync(f.cert, 'utf8'));
    expect(fs.readFileSync(t('client.pem'), 'utf8')).toBe(fs.readFileSync(f.key, 'utf8'));
    expect([mode(t('ca.pem')), mode(t('client.pem'))]).toEqual([0o600, 0o600]);
    // TiUP's files work against the live cluster: its client talks to PD over mTLS.
    const r = spawnSync('curl', ['-sS', '--fail', '--cacert', t('ca.crt'), '--cert', t('client.crt'), '--key', t('client.pem'), `https://${PD}:2379/pd/api/v1/members`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(fs.readdirSync(path.join(tiupDir, 'backup')).some((b) => b.startsWith('meta-'))).toBe(true);
  });

  it('tls disable: enable_tls false, only that line changed', async () => {
    ok(await runTiseal(info, ['tls', 'disable', info.topologyFile, '--yes']), 'tls disable');
    expect(fs.readFileSync(path.join(tiupDir, 'meta.yaml'), 'utf8')).toBe(META_TLS.replace('enable_tls: true', 'enable_tls: false'));
    expectRunningCluster(info, 'http');
  });

  it('a disable run killed after converging (meta.yaml still says TLS) is put right by the already-there path', async () => {
    fs.writeFileSync(path.join(tiupDir, 'meta.yaml'), META_TLS);
    const r = ok(await runTiseal(info, ['tls', 'disable', info.topologyFile, '--yes']), 'tls disable again');
    expect(r.stdout).toMatch(/TLS is already off on every instance/);
    expect(fs.readFileSync(path.join(tiupDir, 'meta.yaml'), 'utf8')).toBe(META_TLS.replace('enable_tls: true', 'enable_tls: false'));
  });

  it("a cluster TiUP put on TLS is adopted with TiUP's CA, not given a second one", async () => {
    // The cluster on TLS under TiUP's CA, as `tiup cluster tls <name> enable` would leave it:
    // meta.yaml says so and tls/ holds TiUP's ca.crt/ca.pem; tiseal's state knows nothing of it.
    fs.rmSync(path.join(tiupDir, 'tls'), { recursive: true, force: true });
    tiupCa(path.join(tiupDir, 'tls'));
    const ca = path.join(tiupDir, 'tls', 'ca.crt');
    const setup = path.join(root, 'setup-state');
    ok(await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes', '--no-tiup-meta', '--state-dir', setup, '--ca-cert', ca, '--ca-key', path.join(tiupDir, 'tls', 'ca.pem')]), 'enable under TiUP CA');
    fs.writeFileSync(path.join(tiupDir, 'meta.yaml'), META_TLS);
    const fresh = path.join(root, 'fresh-state');
    const status = ok(await runTiseal(info, ['tls', 'status', info.topologyFile, '--state-dir', fresh]), 'tls status');
    expect(status.stderr).toMatch(/adopted TiUP's CA/);
    const own = path.join(fresh, 'clusters', clusterName(info), 'tls');
    const fp = (file: string) => spawnSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', file], { encoding: 'utf8' }).stdout;
    expect(fp(path.join(own, 'ca.crt'))).toBe(fp(ca));
    expect(mode(path.join(own, 'ca.key'))).toBe(0o600);
    // The served chain verifies against TiUP's ca.crt (no second CA anywhere).
    const s = spawnSync('openssl', ['s_client', '-connect', `${PD}:2379`, '-verify_return_error', '-CAfile', ca, '-cert', path.join(own, 'client.crt'), '-key', path.join(own, 'client.key'), '-ignore_unexpected_eof'], { input: '', encoding: 'utf8', timeout: 15_000 });
    expect(s.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    ok(await runTiseal(info, ['cert', 'client', info.topologyFile, '--cn', 'ops', '--out', path.join(root, 'ops'), '--state-dir', fresh]), 'cert client');
    expect(spawnSync('openssl', ['verify', '-CAfile', ca, path.join(root, 'ops', 'ops.crt')], { encoding: 'utf8' }).status).toBe(0);
    ok(await runTiseal(info, ['tls', 'disable', info.topologyFile, '--yes', '--state-dir', fresh]), 'disable adopted');
    expect(fs.readFileSync(path.join(tiupDir, 'meta.yaml'), 'utf8')).toBe(META_TLS.replace('enable_tls: true', 'enable_tls: false'));
    expectRunningCluster(info, 'http');
  });
});
