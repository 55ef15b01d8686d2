/**
 * Key pairs. Node's crypto generates and signs (forge 1.3 cannot handle EC keys at all); forge's
 * pure-JS RSA generator stays available as `keyGen: 'forge'` for the benchmark.
 */
import crypto, { KeyObject } from 'crypto';
import { promisify } from 'util';
import forge from 'node-forge';
import { CertError } from '../errors';
import { OID, seq, oid, nul, Asn1 } from './der';

import { KEY_TYPES, type KeyType } from './key-types';

export { KEY_TYPES, type KeyType };
export type KeyGen = 'native' | 'forge';
export const RSA_BITS = 2048;

export interface GeneratedKey {
  keyType: KeyType;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PKCS#1 `RSA PRIVATE KEY` (as TiUP writes) or PKCS#8 `PRIVATE KEY` for EC (see exportKeyPem). */
  keyPem: string;
}

const generateKeyPairAsync = promisify(crypto.generateKeyPair);

/** Where RSA keys made ahead of time come from (RsaKeyPool). */
export interface KeySource {
  take(): Promise<KeyObject>;
}

export async function generateKeyPair(opts: { keyType?: KeyType; keyGen?: KeyGen; pool?: KeySource } = {}): Promise<GeneratedKey> {
  const keyType = opts.keyType ?? 'rsa';
  const keyGen = opts.keyGen ?? 'native';
  if (!KEY_TYPES.includes(keyType)) {
    throw new CertError(`unknown key type '${String(keyType)}'`, { suggestion: `use one of: ${KEY_TYPES.join(', ')}` });
  }
  let privateKey: KeyObject;
  if (keyGen === 'forge') {
    if (keyType !== 'rsa') {
      throw new CertError('forge key generation supports RSA only', { suggestion: "use keyGen 'native' for ECDSA keys" });
    }
    privateKey = await forgeRsaKey(RSA_BITS);
  } else if (keyGen === 'native' && keyType === 'rsa' && opts.pool) {
    privateKey = await opts.pool.take();
    if (privateKey.asymmetricKeyType !== 'rsa' || privateKey.asymmetricKeyDetails?.modulusLength !== RSA_BITS) {
      throw new CertError(`the key pool gave a ${describeKey(privateKey)} key where RSA ${RSA_BITS} was wanted`, { suggestion: 'this is a bug in tiseal; report it' });
    }
  } else if (keyGen === 'native') {
    const pair =
      keyType === 'rsa'
        ? await generateKeyPairAsync('rsa', { modulusLength: RSA_BITS, publicExponent: 0x10001 })
        : await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
    privateKey = pair.privateKey;
  } else {
    throw new CertError(`unknown key generator '${String(keyGen)}'`, { suggestion: "use 'native' or 'forge'" });
  }
  return { keyType, privateKey, publicKey: crypto.createPublicKey(privateKey), keyPem: exportKeyPem(privateKey) };
}

/** forge's own prime search; passing a prng is what stops forge from delegating to Node's native generator. */
function forgeRsaKey(bits: number): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    forge.pki.rsa.generateKeyPair({ bits, e: 0x10001, prng: forge.random } as forge.pki.rsa.GenerateKeyPairOptions, (err, pair) => {
      if (err) return reject(new CertError(`forge RSA key generation failed: ${err.message}`, { cause: err }));
      resolve(crypto.createPrivateKey(forge.pki.privateKeyToPem(pair.privateKey)));
    });
  });
}

/**
 * RSA keys stay PKCS#1, TiUP's own format (its tls/ca.pem must be PKCS#1). EC keys are PKCS#8:
 * Go's tls.X509KeyPair and OpenSSL (TiKV's grpcio, TiFlash's Poco) read SEC1 too, but rustls up to
 * 0.19 (its manual: "PKCS#8-format RSA or ECDSA keys, plus PKCS#1-format RSA keys") does not.
 */
export function exportKeyPem(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return key.export({ type: 'pkcs1', format: 'pem' }) as string;
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** tiseal's key type of a certificate's or key's public key ('rsa' | 'ecdsa'), undefined for anything else. */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  if (key.asymmetricKeyType === 'rsa') return 'rsa';
  if (key.asymmetricKeyType === 'ec') return 'ecdsa';
  return undefined;
}

export function loadPrivateKey(keyPem: string, passphrase?: string, what = 'private key'): KeyObject {
  try {
    return crypto.createPrivateKey({ key: keyPem, format: 'pem', passphrase });
  } catch (e) {
    const msg = (e as Error).message;
    const encrypted = /passphrase|encrypted|bad decrypt/i.test(msg) || /ENCRYPTED/.test(keyPem);
    throw new CertError(`cannot read ${what}: ${msg}`, {
      suggestion: encrypted
        ? 'the key is encrypted: give its passphrase, or decrypt it with `openssl pkey -in key.pem -out key.plain.pem`'
        : 'give a PEM private key (PKCS#1, PKCS#8 or SEC1), e.g. as written by `openssl genpkey`',
      cause: e,
    });
  }
}

/** How a CA key signs: the digest for crypto.sign and the AlgorithmIdentifier that goes into the certificate. */
export interface SignatureScheme {
  name: string;
  digest: string;
  algorithmIdentifier: () => Asn1;
}

export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  const t = key.asymmetricKeyType;
  if (t === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new CertError(`RSA key of ${bits} bits is too weak to sign certificates`, { suggestion: 'use an RSA key of at least 2048 bits or ECDSA P-256' });
    // RFC 4055: the RSA PKCS#1 v1.5 AlgorithmIdentifier carries an explicit NULL parameter.
    return { name: 'sha256WithRSAEncryption', digest: 'sha256', algorithmIdentifier: () => seq([oid(OID.sha256WithRSAEncryption), nul()]) };
  }
  if (t === 'ec') {
    // RFC 5758: ECDSA AlgorithmIdentifiers have no parameters; the digest follows the curve size.
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const byCurve: Record<string, [string, string, string]> = {
      prime256v1: ['ecdsa-with-SHA256', 'sha256', OID.ecdsaWithSHA256],
      secp384r1: ['ecdsa-with-SHA384', 'sha384', OID.ecdsaWithSHA384],
      secp521r1: ['ecdsa-with-SHA512', 'sha512', OID.ecdsaWithSHA512],
    };
    const s = curve ? byCurve[curve] : undefined;
    if (!s) throw new CertError(`EC curve '${curve}' is not supported for signing`, { suggestion: 'use a CA key on P-256, P-384 or P-521, or RSA' });
    return { name: s[0], digest: s[1], algorithmIdentifier: () => seq([oid(s[2])]) };
  }
  throw new CertError(`a ${t} key cannot sign tiseal certificates`, { suggestion: 'use an RSA (2048+ bits) or ECDSA (P-256/P-384/P-521) CA key' });
}

export function signWith(key: KeyObject, scheme: SignatureScheme, data: Buffer): Buffer {
  // Node's ECDSA output is DER (Ecdsa-Sig-Value) by default, which is exactly what X.509 wants.
  return crypto.sign(scheme.digest, data, key);
}

/** DER SubjectPublicKeyInfo of a public key. */
export const spkiDer = (pub: KeyObject): Buffer => pub.export({ type: 'spki', format: 'der' });

/** Human-readable key description for messages: `RSA 2048`, `EC prime256v1`. */
export function describeKey(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return `RSA ${key.asymmetricKeyDetails?.modulusLength ?? '?'}`;
  if (key.asymmetricKeyType === 'ec') return `EC ${key.asymmetricKeyDetails?.namedCurve ?? '?'}`;
  return String(key.asymmetricKeyType);
}
