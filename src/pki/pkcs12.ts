/**
 * PKCS#12 (RFC 7292) bundles: one private key, its certificate and the CA chain, protected by a
 * password, in the profile OpenSSL 3 itself writes by default and reads without `-legacy`:
 * the key in a pkcs8ShroudedKeyBag under PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), an
 * HMAC-SHA256 integrity MAC keyed by the PKCS#12 KDF.
 *
 * Not forge's `pkcs12.toPkcs12Asn1`: it only takes forge key/certificate objects, which exist for
 * RSA only (an ECDSA cluster CA or client key would not go in), and it hard-codes a SHA-1 MAC.
 * forge still provides the ASN.1 encoder and the PKCS#12 key derivation; Node's crypto does
 * PBKDF2, AES and HMAC. Certificates are public and sit in an unencrypted SafeContents, which
 * every reader accepts (Java keytool, Windows, macOS, browsers).
 */
import crypto from 'crypto';
import forge from 'node-forge';
import { CertError } from '../errors';
import { Asn1, asn1, encodeDer, explicit, fromBinary, nul, octets, oid, pemCertificates, seq, set, smallInt, toBinary } from './der';
import { loadPrivateKey } from './keys';
import { certMatchesKey } from './inspect';

const P12_OID = {
  data: '1.2.840.113549.1.7.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** Above OpenSSL's 2048 default; both the PBKDF2 and the MAC use it (a guess is checked against either). */
export const PKCS12_ITERATIONS = 10_000;

export interface Pkcs12Input {
  /** Unencrypted PEM private key (PKCS#1, SEC1 or PKCS#8). */
  keyPem: string;
  /** The certificate that belongs to the key (first certificate in the PEM). */
  certPem: string;
  /** CA certificates to include after it (the issuing CA first), PEM; '' for none. */
  chainPem?: string;
  password: string;
  /** friendlyName on the key and its certificate (what key stores show as the alias). */
  friendlyName?: string;
  iterations?: number;
}

/** DER of a password-protected PFX holding the key, its certificate and the chain. */
export function buildPkcs12(input: Pkcs12Input): Buffer {
  if (!input.password) throw new CertError('a PKCS#12 bundle needs a non-empty password', { suggestion: 'give a password (e.g. with --p12-password-file)' });
  const iterations = input.iterations ?? PKCS12_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1) throw new CertError(`invalid PKCS#12 iteration count ${iterations}`);
  const [leaf, ...rest] = pemCertificates(input.certPem);
  if (!leaf) throw new CertError('no certificate to put into the PKCS#12 bundle');
  if (!certMatchesKey(input.certPem, input.keyPem)) throw new CertError('the certificate and the private key for the PKCS#12 bundle do not match');
  const chain = [...rest, ...pemCertificates(input.chainPem ?? '')];

  // localKeyId pairs the key with its certificate: SHA-1 of the certificate, as OpenSSL does.
  const localKeyId = crypto.createHash('sha1').update(leaf).digest();
  const pairAttrs = bagAttributes(localKeyId, input.friendlyName);

  const certBags = [leaf, ...chain].map((der, i) =>
    seq([oid(P12_OID.certBag), explicit(0, seq([oid(P12_OID.x509Certificate), explicit(0, octets(der))])), ...(i === 0 ? [pairAttrs] : [])]),
  );
  const keyBag = seq([oid(P12_OID.pkcs8ShroudedKeyBag), explicit(0, encryptedPrivateKeyInfo(input.keyPem, input.password, iterations)), pairAttrs]);

  const authSafe = encodeDer(seq([dataContentInfo(encodeDer(seq(certBags))), dataContentInfo(encodeDer(seq([keyBag])))]));
  return encodeDer(seq([smallInt(3), dataContentInfo(authSafe), macData(authSafe, input.password, iterations)]));
}

/** ContentInfo { id-data, [0] EXPLICIT OCTET STRING }. */
function dataContentInfo(content: Buffer): Asn1 {
  return seq([oid(P12_OID.data), explicit(0, octets(content))]);
}

function bagAttributes(localKeyId: Buffer, friendlyName?: string): Asn1 {
  const attrs = [seq([oid(P12_OID.localKeyId), set([octets(localKeyId)])])];
  if (friendlyName) attrs.push(seq([oid(P12_OID.friendlyName), set([bmpString(friendlyName)])]));
  return set(attrs);
}

/** forge writes a BMPSTRING value as UTF-16BE code units itself: give it the text, not bytes. */
function bmpString(text: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BMPSTRING, false, text);
}

/** EncryptedPrivateKeyInfo under PBES2: PBKDF2-HMAC-SHA256 → AES-256-CBC (RFC 8018). The password is used as its UTF-8 bytes, as OpenSSL does. */
function encryptedPrivateKeyInfo(keyPem: string, password: string, iterations: number): Asn1 {
  const pkcs8 = loadPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const salt = crypto.randomBytes(16);
  const iv = crypto.randomBytes(16);
  const key = crypto.pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const cipher = crypto.createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  const kdf = seq([oid(P12_OID.pbkdf2), seq([octets(salt), smallInt(iterations), seq([oid(P12_OID.hmacWithSHA256), nul()])])]);
  const scheme = seq([oid(P12_OID.aes256Cbc), octets(iv)]);
  return seq([seq([oid(P12_OID.pbes2), seq([kdf, scheme])]), octets(encrypted)]);
}

/** MacData with HMAC-SHA256 over the AuthenticatedSafe; key from the PKCS#12 KDF (ID 3) on the BMPString password. */
function macData(authSafe: Buffer, password: string, iterations: number): Asn1 {
  const salt = crypto.randomBytes(16);
  const macKey = pkcs12Kdf(password, salt, 3, iterations, 32);
  const mac = crypto.createHmac('sha256', macKey).update(authSafe).digest();
  return seq([seq([seq([oid(P12_OID.sha256), nul()]), octets(mac)]), octets(salt), smallInt(iterations)]);
}

/** RFC 7292 appendix B.2 with SHA-256 (forge's implementation; it encodes the password as BMPString + 0x0000). */
function pkcs12Kdf(password: string, salt: Buffer, id: 1 | 2 | 3, iterations: number, length: number): Buffer {
  const out = forge.pkcs12.generateKey(password, forge.util.createBuffer(toBinary(salt)), id, iterations, length, forge.md.sha256.create());
  return fromBinary(out.getBytes());
}
