/** The local certificate store: layout, modes, atomic writes, refusing to replace a CA. */
import fs from 'fs';
import path from 'path';
import util from 'util';
import { CertError } from '../../src/errors';
import { CertStore, createCA, issueLeaf, loadOrCreateCA, loadCA, instanceCertId, writeFileAtomic, parseCertificate } from '../../src/pki';
import { TempDir, modeOf, openssl } from './helpers';

let t: TempDir;
beforeEach(() => {
  t = new TempDir('tiseal-store-');
});
afterEach(() => t.remove());

const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

function withUmask<T>(mask: number, f: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  return f().finally(() => process.umask(old));
}

describe('CertStore', () => {
  it('creates the CA once with 0700 dirs, 0600 key, 0644 cert — whatever the umask', async () => {
    for (const mask of [0o000, 0o022, 0o077]) {
      const stateDir = t.path(`state-${mask.toString(8)}`);
      const store = new CertStore(stateDir, 'prod');
      const { ca, created } = await withUmask(mask, () => loadOrCreateCA(store, { keyType: 'ecdsa' }));
      expect(created).toBe(true);
      expect(store.dir).toBe(path.join(stateDir, 'clusters', 'prod', 'tls'));
      for (const d of [stateDir, path.join(stateDir, 'clusters'), path.join(stateDir, 'clusters', 'prod'), store.dir]) expect(modeOf(d)).toBe(0o700);
      expect(modeOf(store.caKeyPath)).toBe(0o600);
      expect(modeOf(store.caCertPath)).toBe(0o644);
      expect(leftovers(store.dir)).toEqual([]);
      expect(ca.info.subjectCN).toBe('tiseal CA prod');
      // the files on disk are a matching pair by openssl's account
      expect(openssl(['pkey', '-in', store.caKeyPath, '-check', '-noout']).stdout).toMatch(/valid/i);
      expect(openssl(['pkey', '-in', store.caKeyPath, '-pubout']).stdout).toBe(openssl(['x509', '-in', store.caCertPath, '-noout', '-pubkey']).stdout);
    }
  });

  it('leaves the mode of an existing state dir alone (it may be /tmp) and creates its own levels 0700', async () => {
    const stateDir = t.path('loose');
    fs.mkdirSync(stateDir, { mode: 0o755 });
    fs.chmodSync(stateDir, 0o755);
    const store = new CertStore(stateDir, 'c1');
    await store.init();
    expect(modeOf(stateDir)).toBe(0o755);
    expect(modeOf(store.dir)).toBe(0o700);
  });

  it('loads the same CA the second time and never replaces it implicitly', async () => {
    const store = new CertStore(t.path('s'), 'c1');
    const first = await loadOrCreateCA(store);
    const second = await loadOrCreateCA(store);
    expect(second.created).toBe(false);
    expect(second.ca.info.fingerprintSha256).toBe(first.ca.info.fingerprintSha256);
    // and the loaded CA still signs leaves openssl accepts
    const leaf = await issueLeaf(second.ca, { commonName: 'pd', hosts: ['10.0.0.1'] });
    expect(openssl(['verify', '-CAfile', store.caCertPath, t.write('l.crt', leaf.certPem)]).stdout).toContain(': OK');

    const other = await createCA({ cluster: 'c1', keyType: 'ecdsa' });
    await expect(store.saveCA(other)).rejects.toMatchObject({ name: 'CertError', suggestion: expect.stringMatching(/replace/) });
    expect(store.loadCA().info.fingerprintSha256).toBe(first.ca.info.fingerprintSha256);

    await store.saveCA(other, { overwrite: true });
    expect(store.loadCA().info.fingerprintSha256).toBe(other.info.fingerprintSha256);
    expect(modeOf(store.caKeyPath)).toBe(0o600);
    expect(leftovers(store.dir)).toEqual([]);
  });

  it('lets exactly one of two concurrent CA creations win', async () => {
    const store = new CertStore(t.path('race'), 'c1');
    const [a, b] = await Promise.all([createCA({ keyType: 'ecdsa' }), createCA({ keyType: 'ecdsa' })]);
    const results = await Promise.allSettled([store.saveCA(a), store.saveCA(b)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(CertError);
    const winner = results[0]!.status === 'fulfilled' ? a : b;
    expect(store.loadCA().info.fingerprintSha256).toBe(winner.info.fingerprintSha256);
    expect(leftovers(store.dir)).toEqual([]);
  });

  it('opens the key file 0600 from the start (no moment where it is readable by others)', async () => {
    const store = new CertStore(t.path('mode'), 'c1');
    const open = jest.spyOn(fs.promises, 'open');
    try {
      await withUmask(0, () => loadOrCreateCA(store));
      const keyOpens = open.mock.calls.filter(([p]) => String(p).includes('ca.key'));
      expect(keyOpens).toHaveLength(1);
      expect(keyOpens[0]![1]).toBe('wx');
      expect(keyOpens[0]![2]).toBe(0o600);
    } finally {
      open.mockRestore();
    }
  });

  it('refuses to load a CA key that others can read, and explains a missing CA', async () => {
    const store = new CertStore(t.path('perm'), 'c1');
    await loadOrCreateCA(store);
    fs.chmodSync(store.caKeyPath, 0o640);
    expect(() => store.loadCA()).toThrow(/readable by others/);
    try {
      store.loadCA();
    } catch (e) {
      expect((e as CertError).suggestion).toBe(`run \`chmod 600 ${store.caKeyPath}\``);
    }
    expect(() => loadCA(t.path('nothing-here'))).toThrow(CertError);
  });

  it('does not hand out the CA key: not in JSON, not in util.inspect, not as a property', async () => {
    const store = new CertStore(t.path('leak'), 'c1');
    const { ca } = await loadOrCreateCA(store);
    const keyPem = fs.readFileSync(store.caKeyPath, 'utf8');
    const keyBody = keyPem.split('\n')[1]!;
    expect(JSON.stringify(ca)).not.toContain('PRIVATE KEY');
    expect(util.inspect(ca, { depth: 5, showHidden: true })).not.toContain(keyBody);
    expect(util.inspect(ca, { depth: 5, showHidden: true })).not.toContain('PRIVATE KEY');
    for (const k of Object.getOwnPropertyNames(ca)) {
      const v = (ca as unknown as Record<string, unknown>)[k];
      expect(typeof v === 'string' ? v : '').not.toContain('PRIVATE KEY');
    }
    expect(ca.bundlePem).not.toContain('PRIVATE KEY');
  });

  it('keeps the client pair (key 0600) and refuses a mismatched one', async () => {
    const store = new CertStore(t.path('client'), 'c1');
    const { ca } = await loadOrCreateCA(store);
    expect(store.loadClient()).toBeNull();
    const client = await issueLeaf(ca, { commonName: 'tiseal', usage: 'client' });
    await store.saveClient(client);
    expect(modeOf(store.clientKeyPath)).toBe(0o600);
    expect(modeOf(store.clientCertPath)).toBe(0o644);
    expect(store.loadClient()).toEqual({ certPem: client.certPem, keyPem: client.keyPem });
    const other = await issueLeaf(ca, { commonName: 'x', usage: 'client' });
    await expect(store.saveClient({ certPem: client.certPem, keyPem: other.keyPem })).rejects.toThrow(/do not match/);
  });

  it('keeps instance certificates only, never keys, under host-qualified ids', async () => {
    const store = new CertStore(t.path('leaves'), 'c1');
    const { ca } = await loadOrCreateCA(store);
    const leaf = await issueLeaf(ca, { commonName: 'tikv', hosts: ['10.0.0.2'] });
    const id = instanceCertId({ id: 'tikv-20160', host: '10.0.0.2' });
    expect(id).toBe('tikv-20160@10.0.0.2');
    await store.saveLeafCert(id, leaf.certPem + leaf.keyPem); // a careless caller passes both
    const kept = fs.readFileSync(store.leafCertPath(id), 'utf8');
    expect(kept).not.toContain('PRIVATE KEY');
    expect(parseCertificate(kept).fingerprintSha256).toBe(leaf.info.fingerprintSha256);
    await store.saveLeafCert(instanceCertId({ id: 'tikv-20160', host: '[fd00::2]' }), leaf.certPem);
    await store.saveClient(await issueLeaf(ca, { commonName: 'tiseal', usage: 'client' }));
    expect(store.listLeafCerts()).toEqual(['tikv-20160@10.0.0.2', 'tikv-20160@fd00::2']);
    expect(store.loadLeafCert('tikv-20160@10.0.0.9')).toBeNull();
    expect(() => store.leafCertPath('../../etc/passwd')).toThrow(CertError);
    expect(() => store.leafCertPath('ca')).toThrow(/reserved/);
    await store.removeLeafCert(id);
    expect(store.listLeafCerts()).toEqual(['tikv-20160@fd00::2']);
    expect(() => new CertStore(t.path('x'), '../evil')).toThrow(CertError);
  });
});

describe('writeFileAtomic', () => {
  it('replaces atomically, or refuses to clobber, and leaves no temp file either way', async () => {
    const f = t.path('file');
    await writeFileAtomic(f, 'one', { mode: 0o600 });
    await writeFileAtomic(f, 'two', { mode: 0o640 });
    expect(fs.readFileSync(f, 'utf8')).toBe('two');
    expect(modeOf(f)).toBe(0o640);
    await expect(writeFileAtomic(f, 'three', { mode: 0o600, overwrite: false })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(fs.readFileSync(f, 'utf8')).toBe('two');
    expect(leftovers(t.dir)).toEqual([]);
  });
});
