import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { X509Certificate } from 'crypto';
import { CertStore, createCA, verifyChain } from '../../src/pki';
import { sqlCertStore } from '../../src/pki/sql-store';
import { run } from '../../src/commands/cert-client';
import { captureOutput } from '../support/capture';
import type { GlobalOptions } from '../../src/options';

jest.setTimeout(60_000);
const topo = path.join(__dirname, '..', '..', 'lab', 'topologies', 'default.yaml');

describe('tiseal cert client --sql', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-sqlcc-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const opts = (o: Partial<GlobalOptions> = {}) => ({ stateDir: dir, yes: false, dryRun: false, json: false, ...o }) as GlobalOptions;

  it('refuses a CN that could break out of the SQL statement or the file names', async () => {
    await expect(run(topo, { sql: true, cn: "x' OR '1", out: dir }, opts())).rejects.toThrow(/invalid --cn 'x' OR '1'/);
    await expect(run(topo, { sql: true, cn: 'sql-ca', out: dir }, opts())).rejects.toThrow(/invalid --cn 'sql-ca'/);
  });

  it('needs the SQL CA: the cluster CA is never used for SQL clients', async () => {
    await new CertStore(dir, 'default').saveCA(await createCA({ cluster: 'default', keyType: 'ecdsa' }));
    await expect(run(topo, { sql: true, cn: 'app1', out: path.join(dir, 'o') }, opts())).rejects.toThrow(`no SQL CA for cluster 'default' in ${path.join(dir, 'clusters', 'default', 'sql-tls')}`);
  });

  it('issues a clientAuth certificate from the SQL CA and prints the REQUIRE SUBJECT statement and client lines', async () => {
    const ca = await createCA({ cluster: 'default', commonName: 'tiseal SQL CA default', keyType: 'ecdsa' });
    await sqlCertStore(dir, 'default').saveCA(ca);
    const o = path.join(dir, 'o');
    const { value: code, out: text } = await captureOutput(() => run(topo, { sql: true, cn: 'app1', out: o, certDays: '30' }, opts()));
    expect(code).toBe(0);
    const cert = fs.readFileSync(path.join(o, 'app1.crt'), 'utf8');
    expect(verifyChain(cert, fs.readFileSync(path.join(o, 'sql-ca.crt'), 'utf8')).ok).toBe(true);
    const x = new X509Certificate(cert);
    expect([x.subject, x.issuer]).toEqual(['CN=app1', 'CN=tiseal SQL CA default']);
    expect(x.checkPrivateKey(require('crypto').createPrivateKey(fs.readFileSync(path.join(o, 'app1.key'))))).toBe(true);
    expect(fs.statSync(path.join(o, 'app1.key')).mode & 0o777).toBe(0o600);
    expect(text).toContain("CREATE USER 'app1'@'%' REQUIRE SUBJECT '/CN=app1';");
    expect(text).toContain(`mariadb -h 10.77.0.14 -P 4000 -u app1 --ssl --ssl-verify-server-cert --ssl-ca=${o}/sql-ca.crt --ssl-cert=${o}/app1.crt --ssl-key=${o}/app1.key`);
    expect(text).toContain('app1@tcp(10.77.0.14:4000)/test?tls=tidb-sql');
    // a second time refuses to overwrite without --yes
    await expect(run(topo, { sql: true, cn: 'app1', out: o }, opts())).rejects.toThrow(/app1\.crt, .*app1\.key already exist/);
  });
});
