/** --key-type decides whether a leaf on a host is current: another type reissues, the same type or no flag keeps it. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { X509Certificate } from 'crypto';
import { CertStore, RsaKeyPool, type KeyType } from '../../../src/pki';
import { certificatesStep, certKeyType, keyTypeChangeOnly, leafKeyType, startKeyPool } from '../../../src/tasks/certs/issue';
import { factKey } from '../../../src/tasks/facts';
import { describe as describePeer } from '../../../src/net/probe';
import { PreflightError } from '../../../src/errors';
import { nextCaStep, type CaRotation } from '../../../src/tasks/certs/rotate-ca';
import { createCA } from '../../../src/pki';
import type { TlsContext } from '../../../src/tasks/context';
import { CERT_ROLES, stageStep } from '../../../src/tasks/certs/stage';
import { parseTopology } from '../../../src/topology';
import { deployedPool, fakeTlsContext } from '../../support/deployed-pool';
import { tlsPaths } from '../../../src/components';

jest.setTimeout(120_000); // a round of RSA leaves on a loaded two-core machine

const topoFile = path.join(__dirname, '..', '..', '..', 'lab', 'topologies', 'default.yaml');
const topology = parseTopology(fs.readFileSync(topoFile, 'utf8'), topoFile);
const certInstances = topology.instances.filter((i) => CERT_ROLES.has(i.role));

describe('--key-type and the current leaf', () => {
  let stateDir: string;
  const pool = deployedPool(topology);
  beforeAll(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-keytype-'))));
  afterAll(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  /** certificates + stage as `tls enable [--key-type]` runs them; returns the titles of the stage actions. */
  async function enable(keyType: KeyType | undefined, keyPool?: RsaKeyPool): Promise<{ titles: string[]; ctx: TlsContext }> {
    const ctx = fakeTlsContext({ want: 'on', topology, pool, stateDir, flags: { keyType } });
    ctx.keyPool = keyPool;
    for (const a of (await certificatesStep.decide(ctx)).actions) await a.run();
    const d = await stageStep.decide(ctx);
    for (const a of d.actions) await a.run();
    return { titles: d.actions.map((a) => a.title), ctx };
  }
  const hostLeaves = () => certInstances.map((i) => ({ cert: pool.host(i.host).readText(tlsPaths(i).cert)!, key: pool.host(i.host).readText(tlsPaths(i).key)! }));
  const clientType = () => certKeyType(new CertStore(stateDir, 'lab').loadClient()!.certPem);

  it('--key-type ecdsa: P-256 leaves with PKCS#8 keys everywhere, and tiseal\'s client certificate too', async () => {
    await enable('ecdsa');
    for (const { cert, key } of hostLeaves()) {
      const x = new X509Certificate(cert);
      expect(x.publicKey.asymmetricKeyType).toBe('ec');
      expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    }
    expect(clientType()).toBe('ecdsa');
  });

  it('a re-run with the same --key-type, or none, reissues nothing', async () => {
    const before = hostLeaves();
    for (const keyType of ['ecdsa', undefined] as const) {
      const { titles } = await enable(keyType);
      expect(titles.filter((t) => /\.(crt|pem)\b/.test(t))).toEqual([]);
    }
    expect(hostLeaves()).toEqual(before);
    expect(clientType()).toBe('ecdsa');
  });

  it('a re-run with another --key-type reissues every leaf (RSA keys from the worker pool) and the client certificate', async () => {
    const keyPool = startKeyPool(topology, 'rsa')!;
    try {
      const { titles } = await enable('rsa', keyPool);
      expect(titles.filter((t) => /\.pem\b.*\.crt\b/.test(t))).toHaveLength(certInstances.length);
      expect(keyPool.stats).toMatchObject({ planned: certInstances.length + 1, fromWorkers: certInstances.length + 1, onDemand: 0 });
    } finally {
      await keyPool.close();
    }
    for (const { cert, key } of hostLeaves()) {
      expect(certKeyType(cert)).toBe('rsa');
      expect(key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    }
    expect(clientType()).toBe('rsa');
  });

  it('without --key-type a replaced leaf keeps its type (tls rotate); new leaves are RSA', async () => {
    const ctx = fakeTlsContext({ want: 'on', topology, pool, stateDir, flags: { keyType: undefined } });
    await certificatesStep.decide(ctx);
    const inst = certInstances[0]!;
    const rsaOnHost = hostLeaves()[0]!.cert;
    expect(certKeyType((await ctx.issueLeaf!(inst, rsaOnHost)).certPem)).toBe('rsa');
    const fromEc = fakeTlsContext({ want: 'on', topology, pool, stateDir, flags: { keyType: 'ecdsa' } });
    await certificatesStep.decide(fromEc);
    const ecLeaf = await fromEc.issueLeaf!(inst);
    expect(certKeyType((await ctx.issueLeaf!(inst, ecLeaf.certPem)).certPem)).toBe('ecdsa');
    expect(certKeyType((await ctx.issueLeaf!(inst)).certPem)).toBe('rsa');
    expect(leafKeyType(undefined, undefined)).toBe('rsa');
    expect(leafKeyType('rsa', ecLeaf.certPem)).toBe('rsa');
    expect(leafKeyType(undefined, 'not a certificate')).toBe('rsa');
  });

  it('starts no pool for ECDSA, and one key per certificate instance plus the client for RSA', async () => {
    expect(startKeyPool(topology, 'ecdsa')).toBeUndefined();
    for (const keyType of ['rsa', undefined] as const) {
      const p = startKeyPool(topology, keyType)!;
      expect(p.stats.planned).toBe(certInstances.length + 1);
      await p.close();
    }
  });

  it('tls enable --key-type on a cluster already serving the other type stops and points to tls rotate', async () => {
    const rsaLeaf = hostLeaves()[0]!.cert; // the hosts hold RSA leaves by now
    const peer = describePeer(new X509Certificate(rsaLeaf));
    expect(peer.keyType).toBe('rsa');
    const ecCtx = fakeTlsContext({ want: 'on', topology, pool, stateDir, flags: { keyType: 'ecdsa' } });
    await certificatesStep.decide(ecCtx);
    expect(describePeer(new X509Certificate((await ecCtx.issueLeaf!(certInstances[0]!)).certPem)).keyType).toBe('ecdsa');
    const facts = { instances: new Map(topology.instances.map((i) => [factKey(i), { config: 'on', live: { kind: 'tls', peer } }])) };
    const ctx = (keyType: KeyType | undefined) => fakeTlsContext({ want: 'on', topology, pool, stateDir, flags: { keyType }, facts });
    const err = keyTypeChangeOnly(ctx('ecdsa'), 'prod.yaml')!;
    expect(err).toBeInstanceOf(PreflightError);
    const first = topology.instances[0]!;
    expect(err.message).toBe(`${first.host} ${first.unit}: TLS is already on, with rsa certificates; --key-type ecdsa would change only the certificates`);
    expect(err.suggestion).toMatch(/^run `tiseal tls rotate prod\.yaml --key-type ecdsa`: .*restarting only what does not reload; nothing was changed$/);
    expect(keyTypeChangeOnly(ctx('rsa'), 'prod.yaml')).toBeUndefined();
    expect(keyTypeChangeOnly(ctx(undefined), 'prod.yaml')).toBeUndefined();
  });

  it('tls rotate --ca: the new CA keeps the old one\'s key type without --key-type, takes the flag\'s with it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-keytype-ca-'));
    try {
      const current = new CertStore(dir, 'lab');
      await current.saveCA(await createCA({ cluster: 'lab', keyType: 'ecdsa' }));
      for (const [flag, want] of [[undefined, 'ec'], ['rsa', 'rsa']] as const) {
        const r: CaRotation = { current, next: new CertStore(dir, 'lab', `tls-next-${flag ?? 'none'}`) };
        await nextCaStep(r).decide(fakeTlsContext({ want: 'on', topology, pool, stateDir: dir, flags: { keyType: flag } }));
        expect(r.newCa!.cert.x509.publicKey.asymmetricKeyType).toBe(want);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
