/**
 * X.509 v3 certificates assembled with forge's ASN.1 helpers and signed by Node's crypto.
 * forge's own certificate object only embeds and signs with RSA keys; building the
 * TBSCertificate ourselves and signing its DER natively gives one code path for RSA and ECDSA.
 */
import crypto, { KeyObject } from 'crypto';
import { CertError } from '../errors';
import {
  Asn1, OID, seq, oid, bool, octets, explicit, implicitPrimitive, uintFromBytes, smallInt, bitStringBytes,
  namedBits, time, name, embedDer, encodeDer, parseDer,
} from './der';
import { SignatureScheme, spkiDer } from './keys';
import { SanSet, ipToBytes } from './san';

/** keyUsage bit numbers (RFC 5280 4.2.1.3). */
export const KU = { digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyAgreement: 4, keyCertSign: 5, cRLSign: 6 } as const;
export type KeyUsageName = keyof typeof KU;

export interface CertTemplate {
  serial: Buffer;
  subject: { commonName: string; organization?: string };
  /** DER of the issuer's subject Name, copied byte for byte so chain building matches exactly. Absent = self-signed. */
  issuerNameDer?: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  isCA: boolean;
  keyUsage: KeyUsageName[];
  extKeyUsage?: Array<'serverAuth' | 'clientAuth'>;
  sans?: SanSet;
  /** Issuer's key identifier for authorityKeyIdentifier; absent = self-signed (our own SKI). */
  authorityKeyId?: Buffer;
}

/** 16 random bytes with the top bit cleared: a positive INTEGER of up to 128 bits (CA/B asks for >= 64 random bits). */
export function randomSerial(): Buffer {
  for (;;) {
    const b = crypto.randomBytes(16);
    b[0]! &= 0x7f;
    if (b.some((x) => x !== 0)) return b;
  }
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(spki: Buffer): Buffer {
  const node = parseDer(spki);
  const bits = (node.value as Asn1[])[1]!.value as string; // first byte = unused-bit count
  return crypto.createHash('sha1').update(Buffer.from(bits.slice(1), 'binary')).digest();
}

function extension(extnId: string, critical: boolean, value: Asn1): Asn1 {
  const parts = [oid(extnId)];
  if (critical) parts.push(bool(true)); // DEFAULT FALSE is omitted in DER
  parts.push(octets(encodeDer(value)));
  return seq(parts);
}

function generalNames(sans: SanSet): Asn1 {
  // dNSName [2] IA5String and iPAddress [7] OCTET STRING, both IMPLICIT.
  const names = [
    ...sans.dns.map((d) => implicitPrimitive(2, Buffer.from(d, 'ascii'))),
    ...sans.ip.map((ip) => implicitPrimitive(7, ipToBytes(ip))),
  ];
  return seq(names);
}

function extensions(t: CertTemplate, ski: Buffer): Asn1 {
  const exts: Asn1[] = [];
  // basicConstraints: cA TRUE for a CA; an empty SEQUENCE (cA DEFAULT FALSE) for a leaf.
  exts.push(extension(OID.basicConstraints, true, seq(t.isCA ? [bool(true)] : [])));
  exts.push(extension(OID.keyUsage, true, namedBits(t.keyUsage.map((k) => KU[k]))));
  if (t.extKeyUsage?.length) exts.push(extension(OID.extKeyUsage, false, seq(t.extKeyUsage.map((e) => oid(OID[e])))));
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(ski)));
  exts.push(extension(OID.authorityKeyIdentifier, false, seq([implicitPrimitive(0, t.authorityKeyId ?? ski)])));
  if (t.sans && t.sans.dns.length + t.sans.ip.length > 0) {
    // RFC 5280: SAN must be critical when the subject is empty; ours always has a CN.
    exts.push(extension(OID.subjectAltName, false, generalNames(t.sans)));
  }
  return seq(exts);
}

export function buildTbs(t: CertTemplate, scheme: SignatureScheme): Buffer {
  if (!(t.notAfter.getTime() > t.notBefore.getTime())) throw new CertError('certificate notAfter must be later than notBefore');
  const spki = spkiDer(t.publicKey);
  const ski = keyIdentifier(spki);
  const subject = name(t.subject);
  const issuer = t.issuerNameDer ? embedDer(t.issuerNameDer, 'issuer name') : subject;
  const tbs = seq([
    explicit(0, smallInt(2)), // v3
    uintFromBytes(t.serial),
    scheme.algorithmIdentifier(),
    issuer,
    seq([time(t.notBefore), time(t.notAfter)]),
    subject,
    embedDer(spki, 'public key'),
    explicit(3, extensions(t, ski)),
  ]);
  return encodeDer(tbs);
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }. */
export function assembleCertificate(tbsDer: Buffer, scheme: SignatureScheme, signature: Buffer): Buffer {
  return encodeDer(seq([parseDer(tbsDer), scheme.algorithmIdentifier(), bitStringBytes(signature)]));
}
