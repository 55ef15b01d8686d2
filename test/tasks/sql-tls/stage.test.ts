import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { PdClient } from '../../../src/pd/client';
import { renderConfig } from '../../../src/render';
import { FakePool } from '../../../src/ssh';
import { ClusterDir } from '../../../src/state/cluster-dir';
import { CertStore, createCA, issueLeaf, parseCertificate } from '../../../src/pki';
import { sqlTlsSteps } from '../../../src/plans/sql-tls';
import { sqlCertificatesStep } from '../../../src/tasks/sql-tls/certs';
import type { SqlTlsContext } from '../../../src/tasks/sql-tls/context';
import { sqlStageStep } from '../../../src/tasks/sql-tls/stage';
import { parseTopology } from '../../../src/topology';
import type { GlobalOptions } from '../../../src/options';

jest.setTimeout(60_000);

const topoFile = path.join(__dirname, '..', '..', '..', 'lab', 'topologies', 'default.yaml');
const topology = () => parseTopology(fs.readFileSync(topoFile, 'utf8'), topoFile);
const TOML_PATH = '/tidb-deploy/tidb-4000/conf/tidb.toml';
const TLS = '/tidb-deploy/tidb-4000/tls';

function deployedPool(): FakePool {
  const pool = new FakePool();
  const t = topology();
  for (const inst of t.instances.filter((i) => i.role === 'tidb')) {
    for (const [file, text] of Object.entries(renderConfig(inst, t))) pool.host(inst.host).addFile(file, text + '[security]\ncluster-ssl-ca = "/x/ca.crt"\ncluster-ssl-cert = "/x/tidb.crt"\ncluster-ssl-key = "/x/tidb.pem"\n', { owner: 'tidb', mode: 0o644 });
  }
  return pool;
}

function context(want: 'on' | 'off', pool: FakePool, stateDir: string, flags: Partial<SqlTlsContext['sql']['flags']> = {}): SqlTlsContext {
  return {
    want: 'on',
    runId: 'r1',
    topology: topology(),
    opts: { stateDir, concurrency: 4 } as GlobalOptions,
    cluster: new ClusterDir(stateDir, 'lab'),
    pool,
    pd: new PdClient([], undefined),
    user: 'tidb',
    removedPds: [],
    flags: { certDays: 365, caDays: 3650, keyType: 'ecdsa' },
    notes: [],
    resuming: false,
    sql: { want, flags: { certDays: 365, caDays: 3650, keyType: 'ecdsa', ...flags }, creds: { user: 'root', password: '' }, clusterTls: true },
  };
}

async function apply(ctx: SqlTlsContext, step: typeof sqlStageStep): Promise<number> {
  const d = await step.decide(ctx);
  for (const a of d.actions) await a.run();
  return d.actions.length;
}

describe('sql-tls plan and staging (fake hosts)', () => {
  let stateDir: string;
  beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-sqltls-'))));
  afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('plans certificates, staging, then one restart step per TiDB', () => {
    const steps = sqlTlsSteps(context('on', new FakePool(), '/nonexistent'));
    expect(steps.map((s) => s.id)).toEqual(['sql-certificates', 'sql-stage', 'sql-restart-tidb-4000@10.77.0.14']);
  });

  it('enable: a SQL CA apart from the cluster CA, key 0600 first, then certificates, then tidb.toml; idempotent', async () => {
    const pool = deployedPool();
    const ctx = context('on', pool, stateDir, { extraSan: ['db.example.com'], tlsVersion: 'TLSv1.2' });
    await apply(ctx, sqlCertificatesStep);
    expect(new CertStore(stateDir, 'lab').hasCA()).toBe(false); // the cluster CA is not touched
    const sqlCa = new CertStore(stateDir, 'lab', 'sql-tls');
    expect(sqlCa.loadCA().info.subjectCN).toBe('tiseal SQL CA lab');
    const plan = await sqlStageStep.decide(ctx);
    expect(plan.actions[0].title).toBe('tidb-4000 on 10.77.0.14: create tls/sql.pem, create tls/sql.crt, create tls/sql-ca.crt, rewrite conf/tidb.toml');
    expect(plan.actions[0].diff).toMatch(/sql\.pem \(private key, \d+ bytes, mode 0600, not shown\)/);
    for (const a of plan.actions) await a.run();
    const h = pool.host('10.77.0.14');
    expect(h.file(`${TLS}/sql.pem`)).toMatchObject({ mode: 0o600, owner: 'tidb' });
    const leaf = parseCertificate(h.readText(`${TLS}/sql.crt`)!);
    expect(leaf.issuerCN).toBe('tiseal SQL CA lab');
    expect([...leaf.sans.ip, ...leaf.sans.dns]).toEqual(expect.arrayContaining(['10.77.0.14', 'db.example.com']));
    expect(h.readText(`${TLS}/sql-ca.crt`)).toBe(sqlCa.loadCA().bundlePem);
    const sec = (TOML.parse(h.readText(TOML_PATH)!) as { security: Record<string, unknown> }).security;
    expect(sec).toEqual({ 'cluster-ssl-ca': '/x/ca.crt', 'cluster-ssl-cert': '/x/tidb.crt', 'cluster-ssl-key': '/x/tidb.pem', 'ssl-ca': `${TLS}/sql-ca.crt`, 'ssl-cert': `${TLS}/sql.crt`, 'ssl-key': `${TLS}/sql.pem`, 'tls-version': 'TLSv1.2' });
    // a second run reuses the CA and every file
    const again = context('on', pool, stateDir, { extraSan: ['db.example.com'], tlsVersion: 'TLSv1.2' });
    expect((await sqlCertificatesStep.decide(again)).actions).toHaveLength(0);
    expect(await sqlStageStep.decide(again)).toMatchObject({ actions: [], reason: "every TiDB's files already say SQL TLS on" });
    // a new SAN reissues the certificate (not the CA)
    const moreSans = context('on', pool, stateDir, { extraSan: ['lb.example.com'], tlsVersion: 'TLSv1.2' });
    await sqlCertificatesStep.decide(moreSans);
    expect((await sqlStageStep.decide(moreSans)).actions[0].title).toBe('tidb-4000 on 10.77.0.14: rewrite tls/sql.pem, rewrite tls/sql.crt');
  });

  it('disable removes only the SQL TLS keys and keeps the files', async () => {
    const pool = deployedPool();
    const original = pool.host('10.77.0.14').readText(TOML_PATH);
    const on = context('on', pool, stateDir);
    await apply(on, sqlCertificatesStep);
    await apply(on, sqlStageStep);
    const h = pool.host('10.77.0.14');
    h.addFile(TOML_PATH, h.readText(TOML_PATH)!.replace('[security]', '[security]\nrequire-secure-transport = true'), { owner: 'tidb', mode: 0o644 });
    const off = context('off', pool, stateDir);
    expect(await apply(off, sqlCertificatesStep)).toBe(0);
    expect(await apply(off, sqlStageStep)).toBe(1);
    expect((TOML.parse(h.readText(TOML_PATH)!) as { security: unknown }).security).toEqual({ 'cluster-ssl-ca': '/x/ca.crt', 'cluster-ssl-cert': '/x/tidb.crt', 'cluster-ssl-key': '/x/tidb.pem' });
    expect(h.readText(`${TLS}/sql.crt`)).toMatch(/BEGIN CERTIFICATE/);
    // run r1 backed up the file before it first changed it
    expect(h.readText('/tidb-deploy/tidb-4000/backup/tiseal-r1/conf/tidb.toml')).toBe(original);
  });

  it("the operator's own certificate must chain to --ca-cert and match --key, before any change", async () => {
    const ca = await createCA({ cluster: 'corp', keyType: 'ecdsa' });
    const other = await createCA({ cluster: 'other', keyType: 'ecdsa' });
    const leaf = await issueLeaf(ca, { commonName: 'db', hosts: ['db.example.com'], keyType: 'ecdsa' });
    const w = (n: string, s: string) => (fs.writeFileSync(path.join(stateDir, n), s), path.join(stateDir, n));
    const stranger = await issueLeaf(ca, { commonName: 'x', keyType: 'ecdsa' });
    const [caF, otherF, certF, keyF, strangerKeyF] = [w('ca.pem', ca.bundlePem), w('other.pem', other.bundlePem), w('cert.pem', leaf.certPem), w('key.pem', leaf.keyPem), w('stranger.key', stranger.keyPem)];
    const pool = deployedPool();
    await expect(sqlCertificatesStep.decide(context('on', pool, stateDir, { caCert: otherF, cert: certF, key: keyF }))).rejects.toThrow(`${certF} does not chain to ${otherF}`);
    await expect(sqlCertificatesStep.decide(context('on', pool, stateDir, { caCert: caF, cert: certF, key: strangerKeyF }))).rejects.toThrow(`${strangerKeyF} is not the key of ${certF}`);
    await expect(sqlCertificatesStep.decide(context('on', pool, stateDir, { caCert: caF, cert: certF, key: otherF }))).rejects.toThrow(`${otherF}: cannot read private key`);
    await expect(sqlCertificatesStep.decide(context('on', pool, stateDir, { cert: certF, key: keyF }))).rejects.toThrow(/--ca-cert, --cert and --key go together/);
    const ctx = context('on', pool, stateDir, { caCert: caF, cert: certF, key: keyF });
    expect(await apply(ctx, sqlCertificatesStep)).toBe(0);
    expect(new CertStore(stateDir, 'lab', 'sql-tls').hasCA()).toBe(false);
    await apply(ctx, sqlStageStep);
    expect(pool.host('10.77.0.14').readText(`${TLS}/sql.crt`)).toBe(leaf.certPem);
  });
});

describe('sql-tls rotate plan (fake hosts)', () => {
  let stateDir: string;
  beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-sqltls-'))));
  afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('refuses while SQL TLS is off or points elsewhere; replaces key then certificate, keeping their SANs, then reloads', async () => {
    const { checkRotatable, sqlRotateSteps } = await import('../../../src/tasks/sql-tls/rotate');
    const pool = deployedPool();
    const on = context('on', pool, stateDir, { extraSan: ['lb.example.com'] });
    await expect(checkRotatable(on)).rejects.toThrow(`10.77.0.14 tidb-4000.service: SQL TLS is off in ${TOML_PATH}; there is nothing to rotate`);
    await apply(on, sqlCertificatesStep);
    await apply(on, sqlStageStep);
    await expect(checkRotatable(on)).resolves.toBeUndefined();
    const h = pool.host('10.77.0.14');
    h.onExec(/^systemctl show/, () => 'Id=tidb-4000.service\nLoadState=loaded\nActiveState=active\nSubState=running\nActiveEnterTimestamp=@1700000000\nMainPID=42\n');
    const before = h.readText(`${TLS}/sql.crt`)!;

    const rot = context('on', pool, stateDir); // no --extra-san this time
    await apply(rot, sqlCertificatesStep);
    const [step] = sqlRotateSteps(rot);
    const d = await step.decide(rot);
    expect(d.actions.map((a) => a.title)).toEqual(['rewrite tls/sql.pem of tidb-4000 on 10.77.0.14', 'rewrite tls/sql.crt of tidb-4000 on 10.77.0.14', 'ALTER INSTANCE RELOAD TLS on 10.77.0.14:4000']);
    for (const a of d.actions.slice(0, 2)) await a.run();
    const after = parseCertificate(h.readText(`${TLS}/sql.crt`)!);
    expect(after.serialHex).not.toBe(parseCertificate(before).serialHex);
    expect(after.sans.dns).toContain('lb.example.com');

    h.addFile(TOML_PATH, h.readText(TOML_PATH)!.replace(`ssl-cert = "${TLS}/sql.crt"`, 'ssl-cert = "/etc/corp/db.crt"'), { owner: 'tidb', mode: 0o644 });
    await expect(checkRotatable(rot)).rejects.toThrow(/ssl-cert\/ssl-key point at \/etc\/corp\/db\.crt/);
  });
});
