/** Adopting the CA of a cluster TiUP put on TLS (its meta.yaml says enable_tls, tls/ holds ca.crt + ca.pem). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { CertError } from '../../src/errors';
import { CertStore, createCA, parseCertificate, verifyChain } from '../../src/pki';
import { adoptTiupCa } from '../../src/tiup/adopt';

const META_TLS = fs.readFileSync(path.join(__dirname, 'fixtures', 'meta.tls.yaml'), 'utf8');
const META = fs.readFileSync(path.join(__dirname, 'fixtures', 'meta.yaml'), 'utf8');
let root: string;
let tls: string;
let stateDir: string;
const savedHome = process.env.TIUP_HOME;

/** A CA as pkg/crypto/ca.go NewCA makes it: RSA, O=PingCAP OU=TiUP, no CN; written 0644 like TiUP. */
function tiupCa(dir: string): void {
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'ca.key8'), '-out', path.join(dir, 'ca.crt'), '-days', '18250', '-subj', '/O=PingCAP/OU=TiUP',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth,serverAuth'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const k = spawnSync('openssl', ['rsa', '-in', path.join(dir, 'ca.key8'), '-traditional', '-out', path.join(dir, 'ca.pem')], { encoding: 'utf8' });
  if (k.status !== 0) throw new Error(k.stderr);
  fs.rmSync(path.join(dir, 'ca.key8'));
  fs.chmodSync(path.join(dir, 'ca.pem'), 0o644);
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-adopt-'));
  process.env.TIUP_HOME = path.join(root, 'tiup');
  const dir = path.join(root, 'tiup', 'storage', 'cluster', 'clusters', 'prod');
  tls = path.join(dir, 'tls');
  fs.mkdirSync(tls, { recursive: true });
  fs.writeFileSync(path.join(dir, 'meta.yaml'), META_TLS);
  tiupCa(tls);
  stateDir = path.join(root, 'state');
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
  if (savedHome === undefined) delete process.env.TIUP_HOME;
  else process.env.TIUP_HOME = savedHome;
});

describe('adoptTiupCa', () => {
  it("imports TiUP's CA into the state dir (key 0600) with a tiseal client certificate from it: no second CA", async () => {
    const store = new CertStore(stateDir, 'prod');
    const a = await adoptTiupCa(store, { tiupMeta: true, dryRun: false });
    expect(a?.note).toMatch(/adopted TiUP's CA/);
    const tiupFp = parseCertificate(fs.readFileSync(path.join(tls, 'ca.crt'), 'utf8')).fingerprintSha256;
    expect(store.loadCA().info.fingerprintSha256).toBe(tiupFp);
    expect(fs.statSync(store.caKeyPath).mode & 0o777).toBe(0o600);
    const client = store.loadClient()!;
    expect(parseCertificate(client.certPem).subjectCN).toBe('tiseal');
    expect(verifyChain(client.certPem, fs.readFileSync(path.join(tls, 'ca.crt'), 'utf8')).ok).toBe(true);
    expect(await adoptTiupCa(store, { tiupMeta: true, dryRun: false })).toBeUndefined(); // already adopted
  });

  it('--dry-run writes nothing but gives client material under TiUP\'s CA', async () => {
    const store = new CertStore(stateDir, 'prod');
    const a = await adoptTiupCa(store, { tiupMeta: true, dryRun: true });
    expect(a?.note).toMatch(/would adopt/);
    expect(verifyChain(String(a!.clientTls.cert), String(a!.clientTls.ca)).ok).toBe(true);
    expect(store.hasCA()).toBe(false);
  });

  it('does nothing when TiUP does not record TLS, or with --no-tiup-meta', async () => {
    const store = new CertStore(stateDir, 'prod');
    expect(await adoptTiupCa(store, { tiupMeta: false, dryRun: false })).toBeUndefined();
    fs.writeFileSync(path.join(root, 'tiup', 'storage', 'cluster', 'clusters', 'prod', 'meta.yaml'), META);
    expect(await adoptTiupCa(store, { tiupMeta: true, dryRun: false })).toBeUndefined();
    expect(store.hasCA()).toBe(false);
  });

  it('refuses when tiseal already holds a different CA for the cluster, naming both', async () => {
    const store = new CertStore(stateDir, 'prod');
    await store.saveCA(await createCA({ cluster: 'prod' }));
    await expect(adoptTiupCa(store, { tiupMeta: true, dryRun: false })).rejects.toThrow(CertError);
    await expect(adoptTiupCa(store, { tiupMeta: true, dryRun: false })).rejects.toThrow(/tls\/ca\.crt.*holds a different CA/);
  });
});
