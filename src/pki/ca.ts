/**
 * The cluster CA. A `CertificateAuthority` exposes its certificate(s) and a capability to sign
 * certificates, never its private key: the key lives in a private field and only CertStore can
 * write it to disk (through `exportCAKeyForStore`, which index.ts does not re-export).
 */
import fs from 'fs';
import path from 'path';
import crypto, { KeyObject } from 'crypto';
import { CertError } from '../errors';
import { Asn1, parseDer, encodeDer } from './der';
import { KeyGen, KeyType, SignatureScheme, exportKeyPem, generateKeyPair, loadPrivateKey, signWith, signatureSchemeFor, describeKey, spkiDer } from './keys';
import { assembleCertificate, buildTbs, keyIdentifier, randomSerial } from './build';
import { CertInfo, ParsedCertificate, buildPath, parseBundle, parseCertificate, parseCertificateFull } from './inspect';

const DAY_MS = 86_400_000;
/** Certificates start a little in the past so hosts whose clocks lag still accept them. */
export const BACKDATE_MS = 5 * 60_000;
export const DEFAULT_CA_DAYS = 3650;
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

export interface CreateCAOptions {
  /** Cluster name, used for the default common name `tiseal CA <cluster>`. */
  cluster?: string;
  commonName?: string;
  organization?: string;
  /** Validity in days; default 3650. */
  days?: number;
  keyType?: KeyType;
  keyGen?: KeyGen;
  /** Clock override (tests). */
  now?: Date;
}

export interface ImportCAOptions {
  /** The CA certificate; further certificates after the first are taken as its chain. */
  certPem: string;
  keyPem: string;
  /** Issuers above the CA up to a self-signed root (needed when the CA is an intermediate). */
  chainPem?: string;
  passphrase?: string;
  now?: Date;
  /** Accept an expired / not yet valid CA (inspection, rotation away from it). Default false. */
  allowExpired?: boolean;
}

export interface LoadCAOptions {
  now?: Date;
  allowExpired?: boolean;
}

export function checkDays(days: number, what: string): number {
  if (!Number.isInteger(days) || days < 1 || days > 36_500) {
    throw new CertError(`${what} validity must be a whole number of days between 1 and 36500, got ${days}`, { suggestion: 'pass a value like 365 or 3650' });
  }
  return days;
}

let construct: (cert: ParsedCertificate, chain: ParsedCertificate[], key: KeyObject) => CertificateAuthority;
let keyOf: (ca: CertificateAuthority) => KeyObject;

export class CertificateAuthority {
  readonly #key: KeyObject;
  /** The CA certificate alone. */
  readonly certPem: string;
  /** Certificates above the CA, nearest first ('' for a self-signed root). */
  readonly chainPem: string;
  /** certPem + chainPem: what every host gets as `ca.crt`. */
  readonly bundlePem: string;
  /**
   * What a server sends after its leaf so that a client trusting only the root can build the
   * path: this CA and the intermediates above it, without self-signed roots ('' for a root CA).
   */
  readonly servedChainPem: string;
  readonly info: CertInfo;
  /** Parsed CA certificate (public data: DER, names, key id). */
  readonly cert: ParsedCertificate;
  readonly scheme: SignatureScheme;
  /** Earliest notAfter of the CA and its chain: nothing it signs is useful beyond that. */
  readonly expiresAt: Date;

  private constructor(cert: ParsedCertificate, chain: ParsedCertificate[], key: KeyObject) {
    this.#key = key;
    this.cert = cert;
    this.certPem = cert.pem;
    this.chainPem = chain.map((c) => c.pem).join('');
    this.bundlePem = this.certPem + this.chainPem;
    this.servedChainPem = [cert, ...chain].filter((c) => !c.selfIssued).map((c) => c.pem).join('');
    this.info = parseCertificate(cert.pem);
    this.scheme = signatureSchemeFor(key);
    this.expiresAt = new Date(Math.min(...[cert, ...chain].map((c) => c.notAfter.getTime())));
  }

  static {
    construct = (cert, chain, key) => new CertificateAuthority(cert, chain, key);
    keyOf = (ca) => ca.#key;
  }

  /** Key identifier that leaves carry as authorityKeyIdentifier: the CA's SKI, or computed like RFC 5280 method 1. */
  get keyId(): Buffer {
    return this.cert.subjectKeyIdBytes ?? keyIdentifier(this.cert.x509.publicKey.export({ type: 'spki', format: 'der' }));
  }

  /** Would a certificate issued now for `leafDays` days expire no later than this CA (and its chain)? */
  outlives(leafDays: number, now: Date = new Date()): boolean {
    return this.expiresAt.getTime() >= now.getTime() + leafDays * DAY_MS;
  }

  /**
   * Sign a TBSCertificate this CA issued and return the certificate DER. Refuses a TBS whose issuer
   * or signature algorithm is not this CA's, so this is a certificate-signing capability rather
   * than a general signing oracle.
   */
  signCertificate(tbsDer: Buffer): Buffer {
    const tbs = parseDer(tbsDer).value as Asn1[];
    const off = tbs[0]!.tagClass === 0x80 && tbs[0]!.type === 0 ? 1 : 0;
    if (!encodeDer(tbs[off + 1]!).equals(encodeDer(this.scheme.algorithmIdentifier()))) {
      throw new CertError(`TBS signature algorithm does not match this CA's (${this.scheme.name})`);
    }
    if (!encodeDer(tbs[off + 2]!).equals(this.cert.subjectNameDer)) {
      throw new CertError(`TBS issuer is not this CA ('${this.info.subjectCN}')`);
    }
    return assembleCertificate(tbsDer, this.scheme, signWith(this.#key, this.scheme, tbsDer));
  }

  toJSON(): { certPem: string; bundlePem: string; info: CertInfo } {
    return { certPem: this.certPem, bundlePem: this.bundlePem, info: this.info };
  }
}

/** Only CertStore may call this: the CA key in PEM, to be written to the local 0600 ca.key. */
export function exportCAKeyForStore(ca: CertificateAuthority): string {
  return exportKeyPem(keyOf(ca));
}

/** Public key of the CA's private key (tests compare it with the certificate). */
export function caPublicKeyDer(ca: CertificateAuthority): Buffer {
  return spkiDer(crypto.createPublicKey(keyOf(ca)));
}

export async function createCA(opts: CreateCAOptions = {}): Promise<CertificateAuthority> {
  const days = checkDays(opts.days ?? DEFAULT_CA_DAYS, 'CA');
  const commonName = opts.commonName ?? (opts.cluster ? `tiseal CA ${opts.cluster}` : 'tiseal CA');
  if (!commonName.trim() || commonName.length > 64) throw new CertError(`CA common name must be 1 to 64 characters, got '${commonName}'`);
  const now = opts.now ?? new Date();
  const key = await generateKeyPair({ keyType: opts.keyType, keyGen: opts.keyGen });
  const scheme = signatureSchemeFor(key.privateKey);
  const tbs = buildTbs(
    {
      serial: randomSerial(),
      subject: { commonName, organization: opts.organization },
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + days * DAY_MS),
      publicKey: key.publicKey,
      isCA: true,
      keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    },
    scheme,
  );
  const der = assembleCertificate(tbs, scheme, signWith(key.privateKey, scheme, tbs));
  return construct(parseCertificateFull(der), [], key.privateKey);
}

/** Validate a CA brought by the user (or loaded from disk) and wrap it. */
export function importCA(opts: ImportCAOptions): CertificateAuthority {
  const now = opts.now ?? new Date();
  const certs = parseBundle(opts.certPem);
  if (certs.length === 0) throw new CertError('the CA certificate file holds no PEM certificate', { suggestion: 'give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)' });
  const cert = certs[0]!;
  const given = [...certs.slice(1), ...(opts.chainPem ? parseBundle(opts.chainPem) : [])];
  const cn = `'${cert.subjectCN}'`;

  if (!cert.isCA) {
    throw new CertError(`certificate ${cn} is not a CA (basicConstraints cA is not TRUE)`, {
      suggestion: 'give the CA certificate, not a server or client certificate; a CA needs `basicConstraints=critical,CA:TRUE`',
    });
  }
  if (cert.keyUsage && !cert.keyUsage.includes('keyCertSign')) {
    throw new CertError(`CA certificate ${cn} may not sign certificates (keyUsage lacks keyCertSign)`, {
      suggestion: 'reissue the CA with `keyUsage=critical,keyCertSign,cRLSign`',
    });
  }
  const key = loadPrivateKey(opts.keyPem, opts.passphrase, 'CA private key');
  const matches = key.asymmetricKeyType === cert.x509.publicKey.asymmetricKeyType && safeCheck(() => cert.x509.checkPrivateKey(key));
  if (!matches) {
    throw new CertError(`the CA private key (${describeKey(key)}) does not belong to CA certificate ${cn}`, {
      suggestion: 'pass the key file that was generated together with this CA certificate',
    });
  }
  signatureSchemeFor(key); // throws a CertError for key types we cannot sign with
  if (!opts.allowExpired) {
    if (now < cert.notBefore) {
      throw new CertError(`CA certificate ${cn} is not valid before ${cert.notBefore.toISOString()}`, { suggestion: 'check the clock of this machine, or wait until the CA becomes valid' });
    }
    if (now > cert.notAfter) {
      throw new CertError(`CA certificate ${cn} expired at ${cert.notAfter.toISOString()}`, { suggestion: 'use a CA that is still valid, or let tiseal create a new one' });
    }
  }

  let chain: ParsedCertificate[] = [];
  const selfSigned = cert.selfIssued && safeCheck(() => cert.x509.verify(cert.x509.publicKey));
  if (selfSigned) {
    if (given.length > 0) {
      throw new CertError(`CA ${cn} is a self-signed root; a chain does not belong with it`, { suggestion: 'give the root alone, or give the intermediate CA as the certificate and the root as the chain' });
    }
  } else {
    if (given.length === 0) {
      throw new CertError(`CA ${cn} is an intermediate (issued by '${cert.issuerCN}') and no chain was given`, {
        suggestion: 'also give the chain up to the root (the issuing CA certificates), so hosts can verify the path',
      });
    }
    // The chain anchors itself: its root must be among the given certificates.
    const r = buildPath(cert, given, [], opts.allowExpired ? null : now);
    if (!r.ok) throw new CertError(`the chain of CA ${cn} does not verify: ${r.reason}`, { suggestion: 'give the issuing CA certificates up to the self-signed root, all currently valid' });
    chain = r.path.slice(1);
  }
  return construct(cert, chain, key);
}

function safeCheck(f: () => boolean): boolean {
  try {
    return f();
  } catch {
    return false;
  }
}

/** Read `<dir>/ca.crt` (CA first, then its chain) and `<dir>/ca.key`, and validate them like importCA. */
export function loadCA(dir: string, opts: LoadCAOptions = {}): CertificateAuthority {
  const certFile = path.join(dir, CA_CERT_FILE);
  const keyFile = path.join(dir, CA_KEY_FILE);
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw new CertError(`cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        suggestion: 'create the CA first (tiseal creates one when TLS is enabled), or import one',
        cause: e,
      });
    }
  };
  const certPemText = read(certFile);
  const keyPem = read(keyFile);
  const mode = fs.statSync(keyFile).mode & 0o777;
  if (mode & 0o077) {
    throw new CertError(`${keyFile} is readable by others (mode ${mode.toString(8).padStart(4, '0')})`, { suggestion: `run \`chmod 600 ${keyFile}\`` });
  }
  return importCA({ certPem: certPemText, keyPem, now: opts.now, allowExpired: opts.allowExpired });
}
