/** Our own CA and leaves, checked with the openssl CLI. */
import crypto from 'crypto';
import forge from 'node-forge';
import { CertError } from '../../src/errors';
import {
  CertificateAuthority, KeyType, createCA, issueLeaf, parseCertificate, certMatchesKey, verifyChain, generateKeyPair,
  DEFAULT_CA_DAYS, BACKDATE_MS,
} from '../../src/pki';
import { caPublicKeyDer } from '../../src/pki/ca';
import { TempDir, openssl } from './helpers';

const DAY = 86_400_000;
let t: TempDir;
const cas: Partial<Record<KeyType, CertificateAuthority>> = {};

beforeAll(async () => {
  t = new TempDir();
  cas.rsa = await createCA({ cluster: 'alpha', keyType: 'rsa' });
  cas.ecdsa = await createCA({ cluster: 'alpha', keyType: 'ecdsa' });
  t.write('rsa-ca.crt', cas.rsa.bundlePem);
  t.write('ecdsa-ca.crt', cas.ecdsa.bundlePem);
});
afterAll(() => t.remove());

const text = (file: string) => openssl(['x509', '-in', file, '-noout', '-text']).stdout;

describe.each(['rsa', 'ecdsa'] as const)('%s CA', (keyType) => {
  it('is a self-signed CA that openssl accepts', () => {
    const ca = cas[keyType]!;
    const file = t.path(`${keyType}-ca.crt`);
    const out = text(file);
    expect(out).toMatch(/Subject: CN ?= ?tiseal CA alpha/);
    expect(out).toMatch(/Issuer: CN ?= ?tiseal CA alpha/);
    expect(out).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(out).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(out).toMatch(/Subject Key Identifier/);
    expect(out).toMatch(/Authority Key Identifier/);
    expect(out).toContain(keyType === 'rsa' ? 'sha256WithRSAEncryption' : 'ecdsa-with-SHA256');
    expect(out).toContain(keyType === 'rsa' ? 'Public-Key: (2048 bit)' : 'NIST CURVE: P-256');
    expect(openssl(['verify', '-CAfile', file, file]).stdout).toContain(': OK');
    // the certified key is the CA's own key
    expect(crypto.createPublicKey(ca.certPem).export({ type: 'spki', format: 'der' }).equals(caPublicKeyDer(ca))).toBe(true);
    // default validity: 3650 days, backdated 5 minutes
    const days = (ca.info.notAfter.getTime() - ca.info.notBefore.getTime() - BACKDATE_MS) / DAY;
    expect(Math.round(days)).toBe(DEFAULT_CA_DAYS);
  });

  it('has a positive 16-byte-class random serial, distinct per certificate', async () => {
    const ca = cas[keyType]!;
    const serial = openssl(['x509', '-in', t.path(`${keyType}-ca.crt`), '-noout', '-serial']).stdout.trim().replace(/^serial=/, '').toLowerCase();
    expect(serial.replace(/^0+/, '')).toBe(ca.info.serialHex.replace(/^0+/, ''));
    expect(ca.info.serialHex.length).toBeLessThanOrEqual(32);
    expect(ca.info.serialHex.length).toBeGreaterThanOrEqual(16);
    const asn = openssl(['asn1parse', '-in', t.path(`${keyType}-ca.crt`)]).stdout;
    expect(asn).not.toMatch(/INTEGER\s+:-/); // no negative integers anywhere (serial included)
    const other = await issueLeaf(ca, { commonName: 'x', hosts: [] });
    expect(other.info.serialHex).not.toBe(ca.info.serialHex);
  });

  it('issues a server+client leaf that openssl verifies, with SANs, EKUs and CA:FALSE', async () => {
    const ca = cas[keyType]!;
    const leaf = await issueLeaf(ca, { commonName: 'tikv', hosts: ['10.0.1.5', 'tikv-1.example.com', '2001:db8::5'], keyType });
    const crt = t.write(`${keyType}-tikv.crt`, leaf.certPem);
    const key = t.write(`${keyType}-tikv.key`, leaf.keyPem);
    expect(openssl(['verify', '-CAfile', t.path(`${keyType}-ca.crt`), crt]).stdout).toContain(`${crt}: OK`);
    // RFC 5280 strict mode (AKI/SKI present, CA basicConstraints critical, …)
    expect(openssl(['verify', '-x509_strict', '-CAfile', t.path(`${keyType}-ca.crt`), crt]).stdout).toContain(': OK');
    expect(openssl(['verify', '-purpose', 'sslserver', '-CAfile', t.path(`${keyType}-ca.crt`), crt]).stdout).toContain(': OK');
    expect(openssl(['verify', '-purpose', 'sslclient', '-CAfile', t.path(`${keyType}-ca.crt`), crt]).stdout).toContain(': OK');
    const out = text(crt);
    expect(out).toMatch(/Subject: CN ?= ?tikv/);
    expect(out).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(out).toMatch(/Extended Key Usage:\s*\n\s*TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(out).toMatch(keyType === 'rsa' ? /Key Usage: critical\s+Digital Signature, Key Encipherment\n/ : /Key Usage: critical\s+Digital Signature\n/);
    const san = /Subject Alternative Name:\s*\n\s*(.*)\n/.exec(out)![1]!;
    expect(san.split(', ').sort()).toEqual(
      ['DNS:tikv-1.example.com', 'DNS:localhost', 'IP Address:10.0.1.5', 'IP Address:127.0.0.1', 'IP Address:2001:DB8:0:0:0:0:0:5'].sort(),
    );
    // key belongs to the cert: openssl's view of both public keys, and pkey -check
    const certPub = openssl(['x509', '-in', crt, '-noout', '-pubkey']).stdout;
    const keyPub = openssl(['pkey', '-in', key, '-pubout']).stdout;
    expect(keyPub).toBe(certPub);
    expect(openssl(['pkey', '-in', key, '-check', '-noout']).stdout).toMatch(/valid/i);
    if (keyType === 'rsa') {
      const m1 = openssl(['x509', '-in', crt, '-noout', '-modulus']).stdout;
      const m2 = openssl(['rsa', '-in', key, '-noout', '-modulus']).stdout;
      expect(m1).toBe(m2);
      expect(leaf.keyPem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    } else {
      expect(leaf.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/); // PKCS#8 (see exportKeyPem)
    }
    // AKI of the leaf = SKI of the CA
    const caOut = text(t.path(`${keyType}-ca.crt`));
    const ski = /Subject Key Identifier:\s*\n\s*(\S+)/.exec(caOut)![1];
    expect(/Authority Key Identifier:\s*\n\s*(?:keyid:)?(\S+)/.exec(out)![1]).toBe(ski);
    expect(certMatchesKey(leaf.certPem, leaf.keyPem)).toBe(true);
    expect(leaf.caPem).toBe(ca.bundlePem);
  });

  it('issues a client-only certificate: clientAuth only, no automatic localhost SANs', async () => {
    const leaf = await issueLeaf(cas[keyType]!, { commonName: 'tiseal-client', usage: 'client', keyType });
    const crt = t.write(`${keyType}-client.crt`, leaf.certPem);
    const out = text(crt);
    expect(out).toMatch(/Extended Key Usage:\s*\n\s*TLS Web Client Authentication\n/);
    expect(out).not.toContain('Subject Alternative Name');
    expect(openssl(['verify', '-purpose', 'sslclient', '-CAfile', t.path(`${keyType}-ca.crt`), crt]).stdout).toContain(': OK');
    const asServer = openssl(['verify', '-purpose', 'sslserver', '-CAfile', t.path(`${keyType}-ca.crt`), crt], { allowFail: true });
    expect(asServer.code).not.toBe(0);
    expect(asServer.stdout + asServer.stderr).toMatch(/unsuitable certificate purpose/);
  });
});

describe('leaves', () => {
  it('signs across key types: ECDSA leaf under an RSA CA and RSA leaf under an ECDSA CA', async () => {
    for (const [caType, leafType] of [['rsa', 'ecdsa'], ['ecdsa', 'rsa']] as const) {
      const leaf = await issueLeaf(cas[caType]!, { commonName: 'pd', hosts: ['10.0.0.9'], keyType: leafType });
      const crt = t.write(`mix-${caType}-${leafType}.crt`, leaf.certPem);
      expect(openssl(['verify', '-CAfile', t.path(`${caType}-ca.crt`), crt]).stdout).toContain(': OK');
      const out = text(crt);
      expect(out).toContain(caType === 'rsa' ? 'Signature Algorithm: sha256WithRSAEncryption' : 'Signature Algorithm: ecdsa-with-SHA256');
      expect(out).toContain(leafType === 'rsa' ? 'rsaEncryption' : 'id-ecPublicKey');
    }
  });

  it('dedupes SANs, normalises IPv6 and case, and accepts DNS:/IP: prefixes', async () => {
    const leaf = await issueLeaf(cas.rsa!, {
      commonName: 'tidb',
      hosts: ['10.0.0.1', '10.0.0.1', 'DB.Example.com', 'db.example.com.', '::1', '0:0:0:0:0:0:0:1', '[fd00::a:1]', 'localhost', '127.0.0.1'],
      extraSans: ['IP:fd00:0::a:1', 'DNS:lb.example.com', '10.0.0.2'],
    });
    expect(leaf.info.sans.dns).toEqual(['db.example.com', 'localhost', 'lb.example.com']);
    expect(leaf.info.sans.ip).toEqual(['10.0.0.1', '::1', 'fd00::a:1', '127.0.0.1', '10.0.0.2']);
    const out = text(t.write('dedupe.crt', leaf.certPem));
    const san = /Subject Alternative Name:\s*\n\s*(.*)\n/.exec(out)![1]!.split(', ');
    expect(san).toHaveLength(8);
    expect(san).toContain('IP Address:FD00:0:0:0:0:0:A:1');
    expect(san).toContain('IP Address:0:0:0:0:0:0:0:1');
  });

  it('rejects hosts that cannot be SANs', async () => {
    await expect(issueLeaf(cas.rsa!, { commonName: 'x', hosts: ['bad host'] })).rejects.toThrow(CertError);
    await expect(issueLeaf(cas.rsa!, { commonName: 'x', hosts: ['fe80::1%eth0'] })).rejects.toThrow(/zone/);
    await expect(issueLeaf(cas.rsa!, { commonName: 'x', hosts: ['bücher.example'] })).rejects.toMatchObject({ suggestion: expect.stringMatching(/punycode/) });
    await expect(issueLeaf(cas.rsa!, { commonName: '', hosts: [] })).rejects.toThrow(CertError);
  });

  it('backdates notBefore by 5 minutes and honours days', async () => {
    const now = new Date();
    const leaf = await issueLeaf(cas.ecdsa!, { commonName: 'cdc', hosts: ['10.0.0.3'], days: 30, now });
    const sec = (d: Date) => Math.floor(d.getTime() / 1000);
    expect(sec(leaf.info.notBefore)).toBe(sec(new Date(now.getTime() - BACKDATE_MS)));
    expect(sec(leaf.info.notAfter)).toBe(sec(new Date(now.getTime() + 30 * DAY)));
    // openssl agrees on the dates
    const dates = openssl(['x509', '-in', t.write('dates.crt', leaf.certPem), '-noout', '-startdate', '-enddate']).stdout;
    const start = new Date(/notBefore=(.*)/.exec(dates)![1]!);
    const end = new Date(/notAfter=(.*)/.exec(dates)![1]!);
    expect(start.getTime()).toBe(leaf.info.notBefore.getTime());
    expect(end.getTime()).toBe(leaf.info.notAfter.getTime());
  });

  it('refuses a leaf that would outlive the CA; outlives() tells beforehand', async () => {
    const ca = await createCA({ commonName: 'short CA', days: 10, keyType: 'ecdsa' });
    expect(ca.outlives(9)).toBe(true);
    expect(ca.outlives(11)).toBe(false);
    await expect(issueLeaf(ca, { commonName: 'pd', hosts: [] })).rejects.toThrow(/outlive/);
    const ok = await issueLeaf(ca, { commonName: 'pd', hosts: [], days: 9 });
    expect(ok.info.notAfter.getTime()).toBeLessThanOrEqual(ca.info.notAfter.getTime());
  });

  it('refuses to issue from a CA that is not valid at the given time', async () => {
    const ca = cas.rsa!;
    const later = new Date(ca.info.notAfter.getTime() + DAY);
    await expect(issueLeaf(ca, { commonName: 'pd', hosts: [], now: later })).rejects.toThrow(/not valid now/);
  });

  it('validates days and names', async () => {
    await expect(createCA({ days: 0 })).rejects.toThrow(CertError);
    await expect(createCA({ days: 1.5 })).rejects.toThrow(CertError);
    await expect(issueLeaf(cas.rsa!, { commonName: 'pd', days: -1 })).rejects.toThrow(CertError);
    await expect(issueLeaf(cas.rsa!, { commonName: 'pd', usage: 'server' as never })).rejects.toThrow(/usage/);
    await expect(createCA({ keyType: 'dsa' as never })).rejects.toThrow(/key type/);
    const named = await createCA({ commonName: 'My Org Root', organization: 'My Org', days: 5, keyType: 'ecdsa' });
    const out = text(t.write('named.crt', named.certPem));
    expect(out).toMatch(/Subject: O ?= ?My Org, CN ?= ?My Org Root/);
    const unnamed = await createCA({ days: 5, keyType: 'ecdsa' });
    expect(unnamed.info.subjectCN).toBe('tiseal CA');
  });

  it("generates RSA keys with forge's pure-JS generator when asked (keyGen: 'forge')", async () => {
    const spy = jest.spyOn(forge.pki.rsa, 'generateKeyPair');
    try {
      const ca = await createCA({ commonName: 'forge CA', keyType: 'rsa', keyGen: 'forge', days: 30 });
      const leaf = await issueLeaf(ca, { commonName: 'tikv', hosts: ['10.0.0.7'], keyType: 'rsa', keyGen: 'forge', days: 20 });
      expect(spy).toHaveBeenCalledTimes(2);
      // a prng in the options is what keeps forge off its native shortcut
      expect((spy.mock.calls[0]![0] as { prng?: unknown }).prng).toBeDefined();
      const caf = t.write('forge-ca.crt', ca.certPem);
      const crt = t.write('forge-leaf.crt', leaf.certPem);
      const key = t.write('forge-leaf.key', leaf.keyPem);
      expect(openssl(['verify', '-CAfile', caf, crt]).stdout).toContain(': OK');
      expect(openssl(['rsa', '-in', key, '-check', '-noout']).stdout).toMatch(/RSA key ok/);
      expect(openssl(['x509', '-in', crt, '-noout', '-modulus']).stdout).toBe(openssl(['rsa', '-in', key, '-noout', '-modulus']).stdout);
      expect(text(crt)).toContain('Public-Key: (2048 bit)');
    } finally {
      spy.mockRestore();
    }
  }, 180_000);

  it('forge cannot make ECDSA keys and says so', async () => {
    await expect(generateKeyPair({ keyType: 'ecdsa', keyGen: 'forge' })).rejects.toMatchObject({ name: 'CertError', message: expect.stringMatching(/RSA only/), suggestion: expect.stringMatching(/native/) });
  });
});

describe('inspection', () => {
  it('parseCertificate agrees with openssl for RSA and EC certificates', async () => {
    for (const keyType of ['rsa', 'ecdsa'] as const) {
      const leaf = await issueLeaf(cas[keyType]!, { commonName: 'tiflash', hosts: ['10.1.2.3', 'fd00::7'], keyType });
      const file = t.write(`inspect-${keyType}.crt`, leaf.certPem);
      const info = parseCertificate(leaf.certPem);
      const fp = openssl(['x509', '-in', file, '-noout', '-fingerprint', '-sha256']).stdout.trim();
      expect(fp).toMatch(new RegExp(`=${info.fingerprintSha256}$`));
      const serial = openssl(['x509', '-in', file, '-noout', '-serial']).stdout.trim().split('=')[1]!.toLowerCase();
      expect(serial.replace(/^0+/, '')).toBe(info.serialHex.replace(/^0+/, ''));
      expect(info.subjectCN).toBe('tiflash');
      expect(info.issuerCN).toBe('tiseal CA alpha');
      expect(info.isCA).toBe(false);
      expect(info.sans).toEqual({ dns: ['localhost'], ip: ['10.1.2.3', 'fd00::7', '127.0.0.1'] });
      expect(info.keyAlgorithm).toBe(keyType === 'rsa' ? 'rsa' : 'ec');
      expect(info.extKeyUsage).toEqual(['serverAuth', 'clientAuth']);
      expect(parseCertificate(cas[keyType]!.certPem).isCA).toBe(true);
    }
  });

  it('parseCertificate reads certificates openssl made (UTF-8 names, no SANs)', () => {
    const d = new TempDir();
    try {
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-utf8', '-subj', '/O=Zürich Ops/CN=Wurzel CA ü', '-days', '3',
        '-keyout', d.path('k'), '-out', d.path('c')], { cwd: d.dir });
      const info = parseCertificate(d.read('c'));
      expect(info.subjectCN).toBe('Wurzel CA ü');
      expect(info.issuerCN).toBe('Wurzel CA ü');
      expect(info.sans).toEqual({ dns: [], ip: [] });
      expect(info.keyAlgorithm).toBe('ec');
    } finally {
      d.remove();
    }
  });

  it('certMatchesKey tells matching and mismatching pairs apart, across key types', async () => {
    const a = await issueLeaf(cas.rsa!, { commonName: 'a', hosts: [] });
    const b = await issueLeaf(cas.rsa!, { commonName: 'b', hosts: [] });
    const e = await issueLeaf(cas.rsa!, { commonName: 'e', hosts: [], keyType: 'ecdsa' });
    expect(certMatchesKey(a.certPem, a.keyPem)).toBe(true);
    expect(certMatchesKey(e.certPem, e.keyPem)).toBe(true);
    expect(certMatchesKey(a.certPem, b.keyPem)).toBe(false);
    expect(certMatchesKey(a.certPem, e.keyPem)).toBe(false);
    expect(() => certMatchesKey(a.certPem, 'not a key')).toThrow(CertError);
  });

  it('verifyChain agrees with openssl verify', async () => {
    const leaf = await issueLeaf(cas.rsa!, { commonName: 'pd', hosts: [] });
    const ok = verifyChain(leaf.certPem, cas.rsa!.bundlePem);
    expect(ok.ok).toBe(true);
    if (ok.ok) expect(ok.path.map((c) => c.subjectCN)).toEqual(['pd', 'tiseal CA alpha']);
    const wrong = verifyChain(leaf.certPem, cas.ecdsa!.bundlePem);
    expect(wrong.ok).toBe(false);
    const r = openssl(['verify', '-CAfile', t.path('ecdsa-ca.crt'), t.write('vc.crt', leaf.certPem)], { allowFail: true });
    expect(r.code).not.toBe(0);
    const future = verifyChain(leaf.certPem, cas.rsa!.bundlePem, { at: new Date(Date.now() + 400 * DAY) });
    expect(future).toEqual({ ok: false, reason: expect.stringMatching(/expired/) });
  });
});
