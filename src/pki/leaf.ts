/**
 * Server and client certificates for cluster components. The leaf key is generated here and
 * handed back in memory only: the caller writes it to the host; nothing keeps it locally.
 */
import { runRecord } from '../util/run-record';
import { CertError } from '../errors';
import { certPem } from './der';
import { KeyGen, KeySource, KeyType, generateKeyPair } from './keys';
import { buildTbs, KeyUsageName, randomSerial } from './build';
import { BACKDATE_MS, CertificateAuthority, checkDays } from './ca';
import { CertInfo, parseCertificate } from './inspect';
import { SanBuilder } from './san';

const DAY_MS = 86_400_000;
export const DEFAULT_LEAF_DAYS = 365;
/** Every server certificate also answers to these, so local health checks and tools on the host verify. */
export const LOCAL_SANS = ['localhost', '127.0.0.1'] as const;

export type LeafUsage = 'server+client' | 'client';

export interface LeafOptions {
  /** Subject CN: the component name (pd, tikv, …) — what `cert-allowed-cn` matches. */
  commonName: string;
  /** Addresses the instance is reached at: IPs become IP SANs, names DNS SANs. */
  hosts?: string[];
  /** More SANs: bare (classified like hosts) or `DNS:name` / `IP:addr`. */
  extraSans?: string[];
  /** Validity in days; default 365. Must not outlive the CA. */
  days?: number;
  keyType?: KeyType;
  keyGen?: KeyGen;
  /** RSA keys made ahead of time (RsaKeyPool); ignored for ECDSA. */
  keyPool?: KeySource;
  /** Default 'server+client' (components are both: they serve and dial each other). */
  usage?: LeafUsage;
  now?: Date;
}

export interface IssuedCert {
  certPem: string;
  /** certPem + the issuing intermediates: what a server's certificate file holds (= certPem under a root CA). */
  fullChainPem: string;
  /** The leaf private key (PKCS#1 for RSA, PKCS#8 for EC); write it to the host with mode 0600. */
  keyPem: string;
  /** The CA bundle to install as `ca.crt` next to this certificate (CA + its chain). */
  caPem: string;
  info: CertInfo;
}

export async function issueLeaf(ca: CertificateAuthority, opts: LeafOptions): Promise<IssuedCert> {
  const usage = opts.usage ?? 'server+client';
  if (usage !== 'server+client' && usage !== 'client') {
    throw new CertError(`unknown certificate usage '${String(usage)}'`, { suggestion: "use 'server+client' or 'client'" });
  }
  const cn = opts.commonName;
  if (typeof cn !== 'string' || !cn.trim() || cn.length > 64) {
    throw new CertError(`certificate common name must be 1 to 64 characters, got '${cn}'`, { suggestion: 'use the component name, e.g. tikv' });
  }
  const days = checkDays(opts.days ?? DEFAULT_LEAF_DAYS, 'certificate');
  const now = opts.now ?? new Date();
  if (now < ca.cert.notBefore || now > ca.cert.notAfter) {
    throw new CertError(`CA '${ca.info.subjectCN}' is not valid now (valid ${ca.cert.notBefore.toISOString()} to ${ca.cert.notAfter.toISOString()})`, {
      suggestion: 'rotate to a new CA before issuing certificates',
    });
  }
  if (!ca.outlives(days, now)) {
    throw new CertError(`a ${days}-day certificate would outlive CA '${ca.info.subjectCN}', which expires at ${ca.expiresAt.toISOString()}`, {
      suggestion: 'issue for fewer days, or rotate the CA first',
    });
  }

  const sans = new SanBuilder();
  for (const h of opts.hosts ?? []) sans.addHost(h);
  for (const s of opts.extraSans ?? []) sans.addSpec(s);
  if (usage === 'server+client') for (const s of LOCAL_SANS) sans.addHost(s);

  const key = await generateKeyPair({ keyType: opts.keyType, keyGen: opts.keyGen, pool: opts.keyPool });
  // RSA key transport needs keyEncipherment; an EC key can only sign (ECDHE does the key exchange).
  const keyUsage: KeyUsageName[] = key.keyType === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'];
  const tbs = buildTbs(
    {
      serial: randomSerial(),
      subject: { commonName: cn },
      issuerNameDer: ca.cert.subjectNameDer,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + days * DAY_MS),
      publicKey: key.publicKey,
      isCA: false,
      keyUsage,
      extKeyUsage: usage === 'client' ? ['clientAuth'] : ['serverAuth', 'clientAuth'],
      sans: sans.toSet(),
      authorityKeyId: ca.keyId,
    },
    ca.scheme,
  );
  const pem = certPem(ca.signCertificate(tbs));
  const info = parseCertificate(pem);
  // The run's audit record lists every signature made (state/audit-log.ts).
  runRecord.noteIssued({ cn, serial: info.serialHex, notAfter: info.notAfter.toISOString(), ca: ca.info.fingerprintSha256 });
  return { certPem: pem, fullChainPem: pem + ca.servedChainPem, keyPem: key.keyPem, caPem: ca.bundlePem, info };
}
