/**
 * Reading certificates back. forge's certificateFromPem refuses anything but RSA keys, so the
 * fields are read from forge's generic ASN.1 tree and Node's X509Certificate does the crypto
 * (fingerprints, signature checks, key matching) for RSA and EC alike.
 */
import crypto, { X509Certificate } from 'crypto';
import { CertError } from '../errors';
import { Asn1, OID, asn1, parseDer, readCommonName, readNamedBits, readOid, readTime, pemCertificates, certPem, fromBinary, encodeDer } from './der';
import { KU, KeyUsageName } from './build';
import { SanSet, bytesToIp } from './san';

export interface CertInfo {
  subjectCN: string;
  issuerCN: string;
  /** Lowercase hex of the serial number's magnitude, no separators. */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  sans: SanSet;
  isCA: boolean;
  /** `AB:CD:…`, uppercase with colons, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprintSha256: string;
  /** 'rsa' | 'ec' | 'ed25519' | … (Node's asymmetricKeyType). */
  keyAlgorithm: string;
  keyUsage: KeyUsageName[] | null;
  extKeyUsage: string[];
  subjectKeyId: string | null;
  authorityKeyId: string | null;
  selfIssued: boolean;
}

/** What the tree reader needs beyond CertInfo (raw pieces other modules reuse). */
export interface ParsedCertificate extends CertInfo {
  der: Buffer;
  pem: string;
  x509: X509Certificate;
  subjectNameDer: Buffer;
  issuerNameDer: Buffer;
  subjectKeyIdBytes: Buffer | null;
  pathLen: number | null;
}

const EKU_NAMES: Record<string, string> = { [OID.serverAuth]: 'serverAuth', [OID.clientAuth]: 'clientAuth' };
const KU_NAMES = Object.fromEntries(Object.entries(KU).map(([k, v]) => [v, k as KeyUsageName]));

function firstCertDer(pemOrDer: string | Buffer): Buffer {
  if (Buffer.isBuffer(pemOrDer)) return pemOrDer;
  const ders = pemCertificates(pemOrDer);
  if (ders.length === 0) throw new CertError('no PEM certificate found', { suggestion: 'give a PEM file with a -----BEGIN CERTIFICATE----- block' });
  return ders[0]!;
}

export function parseCertificateFull(pemOrDer: string | Buffer): ParsedCertificate {
  const der = firstCertDer(pemOrDer);
  let x509: X509Certificate;
  let tbs: Asn1[];
  try {
    x509 = new X509Certificate(der);
    tbs = ((parseDer(der).value as Asn1[])[0]!.value as Asn1[]);
  } catch (e) {
    throw new CertError(`cannot parse certificate: ${(e as Error).message}`, { suggestion: 'check that the file is an X.509 certificate in PEM form', cause: e });
  }
  // version [0] is optional (v1 certificates omit it).
  const off = tbs[0]!.tagClass === asn1.Class.CONTEXT_SPECIFIC && tbs[0]!.type === 0 ? 1 : 0;
  const serialRaw = fromBinary(tbs[off]!.value as string);
  const issuer = tbs[off + 2]!;
  const validity = tbs[off + 3]!.value as Asn1[];
  const subject = tbs[off + 4]!;

  const sans: SanSet = { dns: [], ip: [] };
  let isCA = false;
  let pathLen: number | null = null;
  let keyUsage: KeyUsageName[] | null = null;
  const extKeyUsage: string[] = [];
  let ski: Buffer | null = null;
  let aki: Buffer | null = null;
  const extsNode = tbs.slice(off + 6).find((n) => n.tagClass === asn1.Class.CONTEXT_SPECIFIC && n.type === 3);
  for (const ext of extsNode ? ((extsNode.value as Asn1[])[0]!.value as Asn1[]) : []) {
    const parts = ext.value as Asn1[];
    const id = readOid(parts[0]!);
    const inner = parseDer(fromBinary(parts[parts.length - 1]!.value as string));
    if (id === OID.basicConstraints) {
      const items = inner.value as Asn1[];
      for (const item of items) {
        if (item.type === asn1.Type.BOOLEAN) isCA = (item.value as string).charCodeAt(0) !== 0;
        if (item.type === asn1.Type.INTEGER) pathLen = asn1.derToInteger(item.value as string);
      }
    } else if (id === OID.keyUsage) {
      keyUsage = readNamedBits(inner).map((b) => KU_NAMES[b] ?? (`bit${b}` as KeyUsageName));
    } else if (id === OID.extKeyUsage) {
      for (const o of inner.value as Asn1[]) extKeyUsage.push(EKU_NAMES[readOid(o)] ?? readOid(o));
    } else if (id === OID.subjectKeyIdentifier) {
      ski = fromBinary(inner.value as string);
    } else if (id === OID.authorityKeyIdentifier) {
      const kid = (inner.value as Asn1[]).find((n) => n.tagClass === asn1.Class.CONTEXT_SPECIFIC && n.type === 0);
      if (kid) aki = fromBinary(kid.value as string);
    } else if (id === OID.subjectAltName) {
      for (const gn of inner.value as Asn1[]) {
        if (gn.tagClass !== asn1.Class.CONTEXT_SPECIFIC) continue;
        if (gn.type === 2) sans.dns.push(gn.value as string);
        if (gn.type === 7) sans.ip.push(bytesToIp(fromBinary(gn.value as string)));
      }
    }
  }
  let serialHex = serialRaw.toString('hex').replace(/^(00)+(?=.)/, '');
  if (serialHex.length % 2) serialHex = '0' + serialHex;
  const subjectNameDer = encodeDer(subject);
  const issuerNameDer = encodeDer(issuer);
  return {
    subjectCN: readCommonName(subject),
    issuerCN: readCommonName(issuer),
    serialHex,
    notBefore: readTime(validity[0]!),
    notAfter: readTime(validity[1]!),
    sans,
    isCA,
    fingerprintSha256: x509.fingerprint256,
    keyAlgorithm: x509.publicKey.asymmetricKeyType ?? 'unknown',
    keyUsage,
    extKeyUsage,
    subjectKeyId: ski ? ski.toString('hex') : null,
    authorityKeyId: aki ? aki.toString('hex') : null,
    selfIssued: subjectNameDer.equals(issuerNameDer),
    der,
    pem: certPem(der),
    x509,
    subjectNameDer,
    issuerNameDer,
    subjectKeyIdBytes: ski,
    pathLen,
  };
}

/** The plain facts of the first certificate in `pem` (RSA or EC). */
export function parseCertificate(pem: string): CertInfo {
  const p = parseCertificateFull(pem);
  return {
    subjectCN: p.subjectCN, issuerCN: p.issuerCN, serialHex: p.serialHex, notBefore: p.notBefore, notAfter: p.notAfter,
    sans: p.sans, isCA: p.isCA, fingerprintSha256: p.fingerprintSha256, keyAlgorithm: p.keyAlgorithm, keyUsage: p.keyUsage,
    extKeyUsage: p.extKeyUsage, subjectKeyId: p.subjectKeyId, authorityKeyId: p.authorityKeyId, selfIssued: p.selfIssued,
  };
}

/** Every certificate of a PEM bundle, parsed. */
export function parseBundle(pem: string): ParsedCertificate[] {
  return pemCertificates(pem).map((d) => parseCertificateFull(d));
}

/** True when the private key in `keyPem` belongs to the (first) certificate in `certPem`. */
export function certMatchesKey(certPem: string, keyPem: string, passphrase?: string): boolean {
  const cert = parseCertificateFull(certPem);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: keyPem, format: 'pem', passphrase });
  } catch (e) {
    throw new CertError(`cannot read private key: ${(e as Error).message}`, { suggestion: 'give an unencrypted PEM private key', cause: e });
  }
  if (key.asymmetricKeyType !== cert.x509.publicKey.asymmetricKeyType) return false;
  try {
    return cert.x509.checkPrivateKey(key);
  } catch {
    return false;
  }
}

export type ChainResult =
  | { ok: true; path: CertInfo[] }
  | { ok: false; reason: string };

const isSelfSigned = (c: ParsedCertificate) => c.selfIssued && c.x509.verify(c.x509.publicKey);

/** `child` was signed by `parent`: names match, key ids agree when both exist, signature verifies. */
export function isIssuedBy(child: ParsedCertificate, parent: ParsedCertificate): boolean {
  if (!child.issuerNameDer.equals(parent.subjectNameDer)) return false;
  if (child.authorityKeyId && parent.subjectKeyId && child.authorityKeyId !== parent.subjectKeyId) return false;
  return child.x509.verify(parent.x509.publicKey);
}

function timeProblem(c: ParsedCertificate, at: Date | null): string | null {
  if (at === null) return null;
  if (at < c.notBefore) return `'${c.subjectCN}' is not valid before ${c.notBefore.toISOString()}`;
  if (at > c.notAfter) return `'${c.subjectCN}' expired at ${c.notAfter.toISOString()}`;
  return null;
}

/**
 * Build the issuer path of `leaf` through `trusted` (anchors) and `untrusted` (intermediates), the
 * way `openssl verify -CAfile` does: the path must end at a self-signed certificate of `trusted`,
 * every issuer must be a CA allowed to sign certificates, and every certificate must be valid at `at`.
 */
export function buildPath(
  leaf: ParsedCertificate,
  trusted: ParsedCertificate[],
  untrusted: ParsedCertificate[],
  at: Date | null, // null: skip validity periods
): { ok: true; path: ParsedCertificate[] } | { ok: false; reason: string } {
  if (trusted.length === 0) return { ok: false, reason: 'the CA bundle holds no certificate' };
  const leafTime = timeProblem(leaf, at);
  if (leafTime) return { ok: false, reason: leafTime };
  if (isSelfSigned(leaf) && trusted.some((t) => t.der.equals(leaf.der))) return { ok: true, path: [leaf] };
  const path: ParsedCertificate[] = [leaf];
  let current = leaf;
  for (let depth = 0; depth < 10; depth++) {
    const issuer = [...trusted, ...untrusted].find((c) => !path.includes(c) && isIssuedBy(current, c));
    if (!issuer) {
      return { ok: false, reason: `no issuer of '${current.subjectCN}' (issuer CN '${current.issuerCN}') found` };
    }
    if (!issuer.isCA) return { ok: false, reason: `issuer '${issuer.subjectCN}' is not a CA (basicConstraints cA is not TRUE)` };
    if (issuer.keyUsage && !issuer.keyUsage.includes('keyCertSign')) return { ok: false, reason: `issuer '${issuer.subjectCN}' lacks keyUsage keyCertSign` };
    if (issuer.pathLen !== null && issuer.pathLen < path.length - 1) return { ok: false, reason: `issuer '${issuer.subjectCN}' pathLenConstraint ${issuer.pathLen} exceeded` };
    const t = timeProblem(issuer, at);
    if (t) return { ok: false, reason: t };
    path.push(issuer);
    if (isSelfSigned(issuer)) {
      if (!trusted.includes(issuer)) return { ok: false, reason: `root '${issuer.subjectCN}' is not in the trusted bundle` };
      return { ok: true, path };
    }
    current = issuer;
  }
  return { ok: false, reason: 'certificate chain too long' };
}

/**
 * Verify `leafPem` against the trust bundle `caPem` (one or more certificates, as pushed to hosts
 * as ca.crt); `untrustedPem` may add intermediates that are not trust anchors. Returns the path
 * leaf-first, or the reason it fails.
 */
export function verifyChain(leafPem: string, caPem: string, opts: { untrustedPem?: string; at?: Date } = {}): ChainResult {
  const r = buildPath(parseCertificateFull(leafPem), parseBundle(caPem), opts.untrustedPem ? parseBundle(opts.untrustedPem) : [], opts.at ?? new Date());
  return r.ok ? { ok: true, path: r.path.map((c) => parseCertificate(c.pem)) } : r;
}
