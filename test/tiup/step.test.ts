/**
 * The tiup-meta step against a TIUP_HOME laid out as TiUP writes it: storage/cluster/clusters/<name>/
 * meta.yaml (+ backup/), tls/ from pkg/cluster/manager/cacert.go (ca.crt, ca.pem = CA key,
 * client.crt, client.pem).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildTaskList } from '../../src/engine/runner';
import type { GlobalOptions } from '../../src/options';
import { toGlobalOptions } from '../../src/options';
import { CertStore, createCA, issueLeaf, certMatchesKey } from '../../src/pki';
import type { TlsContext, TlsFlags } from '../../src/tasks/context';
import { parseTopology } from '../../src/topology';
import { tiupMetaStep } from '../../src/tiup/step';
import { fakeTlsContext } from '../support/tls-context';

const META = fs.readFileSync(path.join(__dirname, 'fixtures', 'meta.yaml'), 'utf8');
const META_TLS = fs.readFileSync(path.join(__dirname, 'fixtures', 'meta.tls.yaml'), 'utf8');
const NAME = 'prod';
const mode = (f: string) => fs.statSync(f).mode & 0o777;

let root: string;
let tiupDir: string;
let stateDir: string;
const savedHome = process.env.TIUP_HOME;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-tiup-'));
  process.env.TIUP_HOME = path.join(root, 'tiup');
  tiupDir = path.join(root, 'tiup', 'storage', 'cluster', 'clusters', NAME);
  stateDir = path.join(root, 'state');
  fs.mkdirSync(path.join(tiupDir, 'backup'), { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.join(tiupDir, 'ssh'), { recursive: true });
  fs.writeFileSync(path.join(tiupDir, 'meta.yaml'), META, { mode: 0o644 });
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
  if (savedHome === undefined) delete process.env.TIUP_HOME;
  else process.env.TIUP_HOME = savedHome;
});

async function storeWithCa(): Promise<CertStore> {
  const store = new CertStore(stateDir, NAME);
  const ca = await createCA({ cluster: NAME, keyType: 'rsa' });
  await store.saveCA(ca);
  const client = await issueLeaf(ca, { commonName: 'tiseal', usage: 'client', keyType: 'rsa' });
  await store.saveClient({ certPem: client.certPem, keyPem: client.keyPem });
  return store;
}

/** The step reads no topology: a one-PD one keeps the context whole. */
const TOPOLOGY = parseTopology('pd_servers:\n  - host: 10.0.0.1\n', 'one.yaml');

function ctx(want: 'on' | 'off', opts: Partial<GlobalOptions> = {}, flags: Partial<TlsFlags> = {}): TlsContext {
  return fakeTlsContext({ want, topology: TOPOLOGY, stateDir, cluster: NAME, opts: { tiupMeta: true, dryRun: false, ...opts }, flags: { keyType: 'rsa', ...flags } });
}

async function run(c: TlsContext, dryRun = false): Promise<string[]> {
  const plan: string[] = [];
  await buildTaskList([tiupMetaStep], { dryRun, plan, renderer: 'silent' }).run(c);
  return plan;
}

describe('tiup-meta step', () => {
  it('after enable: enable_tls: true and nothing else in meta.yaml changed; tls/ holds the CA and client (keys 0600); meta backed up', async () => {
    const store = await storeWithCa();
    await run(ctx('on'));
    const meta = path.join(tiupDir, 'meta.yaml');
    expect(fs.readFileSync(meta, 'utf8')).toBe(META_TLS);
    expect(mode(meta)).toBe(0o644);
    const backups = fs.readdirSync(path.join(tiupDir, 'backup'));
    expect(backups).toHaveLength(1);
    expect(backups[0]).toMatch(/^meta-.*\.yaml$/);
    expect(fs.readFileSync(path.join(tiupDir, 'backup', backups[0]), 'utf8')).toBe(META);
    const tls = (f: string) => path.join(tiupDir, 'tls', f);
    expect(fs.readFileSync(tls('ca.crt'), 'utf8')).toBe(fs.readFileSync(store.caCertPath, 'utf8'));
    const caKey = fs.readFileSync(tls('ca.pem'), 'utf8');
    expect(caKey).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/); // PKCS#1, what TiUP's RSAPrivKey reads
    expect(certMatchesKey(fs.readFileSync(store.caCertPath, 'utf8'), caKey)).toBe(true);
    expect(fs.readFileSync(tls('client.crt'), 'utf8')).toBe(store.loadClient()!.certPem);
    expect(fs.readFileSync(tls('client.pem'), 'utf8')).toBe(store.loadClient()!.keyPem);
    expect([mode(tls('ca.pem')), mode(tls('client.pem')), mode(tls('ca.crt')), mode(tls('client.crt'))]).toEqual([0o600, 0o600, 0o644, 0o644]);
    expect(fs.readdirSync(path.join(tiupDir, 'tls')).sort()).toEqual(['ca.crt', 'ca.pem', 'client.crt', 'client.pem']); // no temp files left
    // Run again: nothing to do, no second backup.
    await run(ctx('on'));
    expect(fs.readdirSync(path.join(tiupDir, 'backup'))).toHaveLength(1);
  });

  it('replaces TiUP key files of mode 0644 (as TiUP writes them) with 0600 ones, the old ones backed up 0600', async () => {
    await storeWithCa();
    fs.mkdirSync(path.join(tiupDir, 'tls'), { mode: 0o755 });
    fs.writeFileSync(path.join(tiupDir, 'tls', 'ca.pem'), 'old key\n', { mode: 0o644 });
    await run(ctx('on'));
    expect(mode(path.join(tiupDir, 'tls', 'ca.pem'))).toBe(0o600);
    const old = fs.readdirSync(path.join(tiupDir, 'backup')).find((f) => f.startsWith('ca-'))!;
    expect(fs.readFileSync(path.join(tiupDir, 'backup', old), 'utf8')).toBe('old key\n');
    expect(mode(path.join(tiupDir, 'backup', old))).toBe(0o600);
  });

  it('after disable: enable_tls false, only that line changed; TiUP keeps tls/ unless --clean-certificate', async () => {
    await storeWithCa();
    await run(ctx('on'));
    await run(ctx('off'));
    expect(fs.readFileSync(path.join(tiupDir, 'meta.yaml'), 'utf8')).toBe(META_TLS.replace('enable_tls: true', 'enable_tls: false'));
    expect(fs.existsSync(path.join(tiupDir, 'tls', 'ca.pem'))).toBe(true);
    await run(ctx('off', {}, { cleanCertificate: true }));
    expect(fs.existsSync(path.join(tiupDir, 'tls'))).toBe(false);
  });

  it('--dry-run shows the one-line diff and changes nothing', async () => {
    await storeWithCa();
    const plan = (await run(ctx('on', { dryRun: true }), true)).join('\n');
    expect(plan).toContain('+    enable_tls: true');
    expect(plan).toMatch(/would write .*tls\/ca\.pem \(0600\)/);
    expect(fs.readFileSync(path.join(tiupDir, 'meta.yaml'), 'utf8')).toBe(META);
    expect(fs.existsSync(path.join(tiupDir, 'tls'))).toBe(false);
    expect(fs.readdirSync(path.join(tiupDir, 'backup'))).toHaveLength(0);
  });

  it('without TiUP storage the plan says a later TiUP reload would revert the configs', async () => {
    fs.rmSync(path.join(root, 'tiup'), { recursive: true });
    await storeWithCa();
    const c = ctx('on');
    const plan = (await run(c, true)).join('\n');
    expect(plan).toMatch(/no TiUP metadata at .*clusters\/prod\/meta\.yaml.*tiup cluster reload \| scale-out \| upgrade.*plaintext/);
    expect(c.notes.join('\n')).toMatch(/plaintext/);
  });

  it('--no-tiup-meta leaves meta.yaml and tls/ alone', async () => {
    await storeWithCa();
    expect(toGlobalOptions({ tiupMeta: false }).tiupMeta).toBe(false);
    expect(toGlobalOptions({}).tiupMeta).toBe(true);
    const plan = (await run(ctx('on', { tiupMeta: false }), true)).join('\n');
    expect(plan).toContain('--no-tiup-meta');
    await run(ctx('on', { tiupMeta: false }));
    expect(fs.readFileSync(path.join(tiupDir, 'meta.yaml'), 'utf8')).toBe(META);
    expect(fs.existsSync(path.join(tiupDir, 'tls'))).toBe(false);
  });
});
