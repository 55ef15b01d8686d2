/** Bring-your-own CA: CAs made by the openssl CLI, imported, used, and rejected when unfit. */
import { CertError } from '../../src/errors';
import { createCA, importCA, issueLeaf, parseBundle, parseCertificate, verifyChain } from '../../src/pki';
import { TempDir, OPENSSL_CNF, openssl, opensslSelfSigned, opensslIntermediate, opensslCaWindow } from './helpers';

let t: TempDir;
beforeAll(() => {
  t = new TempDir();
});
afterAll(() => t.remove());

async function expectCertError(p: () => unknown, message: RegExp, suggestion?: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CertError);
  expect((err as CertError).message).toMatch(message);
  if (suggestion) expect((err as CertError).suggestion).toMatch(suggestion);
  else expect((err as CertError).suggestion).toBeTruthy();
}

describe.each(['rsa', 'ec'] as const)('openssl-made %s root CA', (key) => {
  it('imports, signs a leaf, and openssl verifies the leaf', async () => {
    const root = opensslSelfSigned(t, `byo-${key}`, `BYO Root ${key}`, { key });
    const ca = importCA({ certPem: root.cert, keyPem: root.key });
    expect(ca.info.subjectCN).toBe(`BYO Root ${key}`);
    expect(ca.chainPem).toBe('');
    expect(ca.scheme.name).toBe(key === 'rsa' ? 'sha256WithRSAEncryption' : 'ecdsa-with-SHA256');
    for (const keyType of ['rsa', 'ecdsa'] as const) {
      const leaf = await issueLeaf(ca, { commonName: 'pd', hosts: ['10.9.9.9'], keyType, days: 20 });
      const crt = t.write(`byo-${key}-${keyType}.crt`, leaf.certPem);
      expect(openssl(['verify', '-CAfile', t.path(`byo-${key}.crt`), crt]).stdout).toContain(': OK');
      expect(verifyChain(leaf.certPem, root.cert).ok).toBe(true);
      // AKI of the leaf matches the SKI openssl put in its CA
      expect(leaf.info.authorityKeyId).toBe(parseCertificate(root.cert).subjectKeyId);
    }
  });
});

describe('import checks', () => {
  it('rejects a certificate that is not a CA', async () => {
    const notCa = opensslSelfSigned(t, 'notca', 'Just A Server', { ext: 'v3_leaf' });
    await expectCertError(() => importCA({ certPem: notCa.cert, keyPem: notCa.key }), /is not a CA/, /basicConstraints/);
  });

  it('rejects a CA whose keyUsage forbids signing certificates', async () => {
    const c = opensslSelfSigned(t, 'nokcs', 'No KeyCertSign', { ext: 'v3_ca_nokeycertsign' });
    await expectCertError(() => importCA({ certPem: c.cert, keyPem: c.key }), /keyCertSign/);
  });

  it('rejects a key that does not belong to the CA (same type and different type)', async () => {
    const a = opensslSelfSigned(t, 'mm-a', 'CA A');
    const b = opensslSelfSigned(t, 'mm-b', 'CA B');
    const e = opensslSelfSigned(t, 'mm-e', 'CA E', { key: 'ec' });
    await expectCertError(() => importCA({ certPem: a.cert, keyPem: b.key }), /does not belong/, /key file/);
    await expectCertError(() => importCA({ certPem: a.cert, keyPem: e.key }), /does not belong/);
  });

  it('rejects an expired CA and a not-yet-valid CA (windows set with openssl ca -startdate/-enddate)', async () => {
    const w1 = new TempDir();
    const w2 = new TempDir();
    try {
      const old = opensslCaWindow(w1, 'old', 'Old CA', '20200101000000Z', '20210101000000Z');
      expect(openssl(['x509', '-noout', '-checkend', '0'], { input: old.cert, allowFail: true }).code).toBe(1); // openssl: expired
      await expectCertError(() => importCA({ certPem: old.cert, keyPem: old.key }), /expired at 2021-01-01/, /still valid/);
      // still loadable on purpose (rotation away from it)
      expect(importCA({ certPem: old.cert, keyPem: old.key, allowExpired: true }).info.notAfter.toISOString()).toBe('2021-01-01T00:00:00.000Z');

      const future = opensslCaWindow(w2, 'future', 'Future CA', '20990101000000Z', '20991231000000Z');
      await expectCertError(() => importCA({ certPem: future.cert, keyPem: future.key }), /not valid before 2099-01-01/, /clock/);
    } finally {
      w1.remove();
      w2.remove();
    }
  });

  it('rejects garbage with a suggestion', async () => {
    await expectCertError(() => importCA({ certPem: 'hello', keyPem: 'x' }), /no PEM certificate/);
    const a = opensslSelfSigned(t, 'garb', 'CA G');
    await expectCertError(() => importCA({ certPem: a.cert, keyPem: 'not a key' }), /cannot read CA private key/);
  });

  it('reads an encrypted CA key with its passphrase, and explains when the passphrase is missing', async () => {
    const a = opensslSelfSigned(t, 'enc', 'Encrypted CA');
    openssl(['pkey', '-in', t.path('enc.key'), '-aes256', '-passout', 'pass:s3cret', '-out', t.path('enc.key.enc')]);
    const enc = t.read('enc.key.enc');
    expect(enc).toContain('ENCRYPTED');
    await expectCertError(() => importCA({ certPem: a.cert, keyPem: enc }), /cannot read CA private key/, /passphrase/);
    const ca = importCA({ certPem: a.cert, keyPem: enc, passphrase: 's3cret' });
    const leaf = await issueLeaf(ca, { commonName: 'tidb', hosts: [], days: 10 });
    expect(openssl(['verify', '-CAfile', t.path('enc.crt'), t.write('enc-leaf.crt', leaf.certPem)]).stdout).toContain(': OK');
  });

  it('signs with a P-384 CA using ecdsa-with-SHA384', async () => {
    const cnf = t.write('openssl.cnf', OPENSSL_CNF);
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-config', cnf, '-extensions', 'v3_ca', '-subj', '/CN=P384 Root',
      '-days', '5', '-keyout', t.path('p384.key'), '-out', t.path('p384.crt')], { cwd: t.dir });
    const ca = importCA({ certPem: t.read('p384.crt'), keyPem: t.read('p384.key') });
    const leaf = await issueLeaf(ca, { commonName: 'pd', hosts: [], days: 3 });
    const crt = t.write('p384-leaf.crt', leaf.certPem);
    expect(openssl(['verify', '-CAfile', t.path('p384.crt'), crt]).stdout).toContain(': OK');
    expect(openssl(['x509', '-in', crt, '-noout', '-text']).stdout).toContain('Signature Algorithm: ecdsa-with-SHA384');
  });

  it('rejects CA keys it will not sign with (Ed25519, RSA 1024)', async () => {
    const cnf = t.write('openssl.cnf', OPENSSL_CNF);
    for (const [stem, newkey] of [['ed', ['-newkey', 'ed25519']], ['weak', ['-newkey', 'rsa:1024']]] as const) {
      openssl(['req', '-x509', ...newkey, '-nodes', '-config', cnf, '-extensions', 'v3_ca', '-subj', `/CN=${stem}`, '-days', '5',
        '-keyout', t.path(`${stem}.key`), '-out', t.path(`${stem}.crt`)], { cwd: t.dir });
    }
    await expectCertError(() => importCA({ certPem: t.read('ed.crt'), keyPem: t.read('ed.key') }), /ed25519 key cannot sign/, /RSA|ECDSA/);
    await expectCertError(() => importCA({ certPem: t.read('weak.crt'), keyPem: t.read('weak.key') }), /1024 bits is too weak/);
  });

  it('rejects a chain next to a self-signed root', async () => {
    const a = opensslSelfSigned(t, 'selfchain', 'Self Root');
    const b = opensslSelfSigned(t, 'selfchain2', 'Other Root');
    await expectCertError(() => importCA({ certPem: a.cert, keyPem: a.key, chainPem: b.cert }), /self-signed root/);
  });
});

describe('intermediate CA', () => {
  let root: { cert: string; key: string };
  let inter: { cert: string; key: string };
  beforeAll(() => {
    root = opensslSelfSigned(t, 'root', 'Corp Root');
    inter = opensslIntermediate(t, 'inter', 'Corp TiDB Issuing', 'root', 'ec');
  });

  it('imports with its chain; leaves verify with -untrusted and with the bundle as CAfile', async () => {
    const ca = importCA({ certPem: inter.cert, keyPem: inter.key, chainPem: root.cert });
    expect(parseCertificate(ca.certPem).fingerprintSha256).toBe(parseCertificate(inter.cert).fingerprintSha256);
    expect(ca.bundlePem).toBe(ca.certPem + ca.chainPem);
    expect(parseCertificate(ca.chainPem).subjectCN).toBe('Corp Root');
    const leaf = await issueLeaf(ca, { commonName: 'tikv', hosts: ['10.0.3.1'], days: 20 });
    expect(leaf.caPem).toBe(ca.bundlePem);
    const crt = t.write('int-leaf.crt', leaf.certPem);
    expect(openssl(['verify', '-CAfile', t.path('root.crt'), '-untrusted', t.path('inter.crt'), crt]).stdout).toContain(': OK');
    expect(openssl(['verify', '-CAfile', t.write('int-bundle.crt', leaf.caPem), crt]).stdout).toContain(': OK');
    // without the intermediate openssl cannot build the path — nor can we
    expect(openssl(['verify', '-CAfile', t.path('root.crt'), crt], { allowFail: true }).code).not.toBe(0);
    expect(verifyChain(leaf.certPem, root.cert).ok).toBe(false);
    const v = verifyChain(leaf.certPem, root.cert, { untrustedPem: inter.cert });
    expect(v.ok && v.path.map((c) => c.subjectCN)).toEqual(['tikv', 'Corp TiDB Issuing', 'Corp Root']);
    expect(verifyChain(leaf.certPem, leaf.caPem).ok).toBe(true);
  });

  it('serves the intermediates, never the root, after each leaf', async () => {
    const ca = importCA({ certPem: inter.cert, keyPem: inter.key, chainPem: root.cert });
    expect(ca.servedChainPem).toBe(ca.certPem);
    const leaf = await issueLeaf(ca, { commonName: 'pd', hosts: ['10.0.3.2'], days: 20 });
    expect(leaf.fullChainPem).toBe(leaf.certPem + ca.certPem);
    expect(parseCertificate(leaf.fullChainPem).subjectCN).toBe('pd'); // readers see the leaf first
    // two levels: issuing CA ← policy CA ← root
    const issuing = opensslIntermediate(t, 'issuing', 'Corp Issuing L2', 'inter', 'ec');
    const deep = importCA({ certPem: issuing.cert, keyPem: issuing.key, chainPem: inter.cert + root.cert });
    expect(parseBundle(deep.servedChainPem).map((c) => c.subjectCN)).toEqual(['Corp Issuing L2', 'Corp TiDB Issuing']);
    const own = await createCA({ cluster: 'c' });
    expect(own.servedChainPem).toBe('');
    const ownLeaf = await issueLeaf(own, { commonName: 'pd', hosts: ['10.0.3.3'] });
    expect(ownLeaf.fullChainPem).toBe(ownLeaf.certPem);
  });

  it('accepts the chain appended to the CA certificate (one bundle file)', () => {
    const ca = importCA({ certPem: inter.cert + root.cert, keyPem: inter.key });
    expect(parseCertificate(ca.chainPem).subjectCN).toBe('Corp Root');
  });

  it('refuses an intermediate without its chain, or with a chain that does not lead to it', async () => {
    await expectCertError(() => importCA({ certPem: inter.cert, keyPem: inter.key }), /intermediate/, /chain/);
    const stranger = opensslSelfSigned(t, 'stranger', 'Corp Root'); // same name, different key
    await expectCertError(() => importCA({ certPem: inter.cert, keyPem: inter.key, chainPem: stranger.cert }), /does not verify/);
  });
});
