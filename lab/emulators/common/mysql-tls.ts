import * as crypto from 'crypto';
import * as fs from 'fs';
import * as tls from 'tls';
import type { Logger } from './log';

/**
 * TLS for MySQL clients, as pingcap/tidb pkg/util/misc.go LoadTLSCertificates builds it from
 * `[security] ssl-ca ssl-cert ssl-key tls-version`:
 * - no cert or key: no TLS at all (CLIENT_SSL not offered; auto-tls is not emulated);
 * - errors are Go's: `open <file>: no such file or directory`, `tls: failed to find any PEM data in
 *   certificate input`, `tls: private key does not match public key`;
 * - client certificates: with a CA they are verified when presented (VerifyClientCertIfGiven), and
 *   required (RequireAndVerifyClientCert) when require-secure-transport was on at load time; without a
 *   CA and require on, requested but not verified (RequestClientCert);
 * - `tls-version` is the minimum version (default TLS 1.2; unknown values warn and keep the default).
 */
export interface MysqlTlsPaths {
  ca: string;
  cert: string;
  key: string;
}

export interface MysqlTlsConfig {
  /** cert/key/ca/versions, loaded once per (re)load. */
  options: tls.SecureContextOptions;
  requestCert: boolean;
  /** Handshake fails without a valid client certificate. */
  requireClientCert: boolean;
  /** A presented certificate must chain to ssl-ca. */
  verifyClientCert: boolean;
  cert: crypto.X509Certificate;
  minVersion: tls.SecureVersion;
}

const TLS_VERSIONS: Record<string, tls.SecureVersion> = { 'TLSv1.0': 'TLSv1', 'TLSv1.1': 'TLSv1.1', 'TLSv1.2': 'TLSv1.2', 'TLSv1.3': 'TLSv1.3' };

function readGo(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const reason = err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new Error(`open ${file}: ${reason}`);
  }
}

/** Returns undefined when cert or key is not configured (TiDB: "Automatic TLS Certificate creation is disabled"). */
export function loadMysqlTls(
  p: MysqlTlsPaths,
  o: { tlsVersion: string; requireSecureTransport: boolean; log?: Logger },
): MysqlTlsConfig | undefined {
  if (!p.cert || !p.key) return undefined;
  // tls.LoadX509KeyPair: cert file first, then key file, then the pair.
  const certPem = readGo(p.cert);
  const keyPem = readGo(p.key);
  if (!/-----BEGIN CERTIFICATE-----/.test(certPem.toString('latin1'))) throw new Error('tls: failed to find any PEM data in certificate input');
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem.toString('latin1'))) throw new Error('tls: failed to find any PEM data in key input');
  let cert: crypto.X509Certificate;
  let key: crypto.KeyObject;
  try {
    cert = new crypto.X509Certificate(certPem);
  } catch (e) {
    throw new Error(`x509: malformed certificate (${(e as Error).message})`);
  }
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch {
    throw new Error('tls: failed to parse private key');
  }
  if (!cert.checkPrivateKey(key)) throw new Error('tls: private key does not match public key');

  let minVersion: tls.SecureVersion = 'TLSv1.2';
  if (o.tlsVersion) {
    const v = TLS_VERSIONS[o.tlsVersion];
    if (v) minVersion = v;
    else o.log?.warn('Invalid TLS version, using default instead', { 'tls-version': o.tlsVersion });
  }
  if (minVersion === 'TLSv1' || minVersion === 'TLSv1.1') o.log?.warn('Minimum TLS version allows pre-TLSv1.2 protocols, this is not recommended');

  let requestCert = o.requireSecureTransport;
  let requireClientCert = false;
  let verifyClientCert = false;
  let ca: Buffer | undefined;
  if (p.ca) {
    ca = readGo(p.ca);
    if (/-----BEGIN CERTIFICATE-----/.test(ca.toString('latin1'))) {
      requestCert = true;
      verifyClientCert = true;
      requireClientCert = o.requireSecureTransport;
    } else {
      ca = undefined; // AppendCertsFromPEM found nothing: no client verification
    }
  }
  const old = minVersion === 'TLSv1' || minVersion === 'TLSv1.1';
  // OpenSSL 3 needs security level 0 for TLS 1.0/1.1 (Go needs no such switch).
  const options: tls.SecureContextOptions = { cert: certPem, key: keyPem, ca, minVersion, maxVersion: 'TLSv1.3', ...(old ? { ciphers: 'DEFAULT@SECLEVEL=0' } : {}) };
  tls.createSecureContext(options);
  return { options, requestCert, requireClientCert, verifyClientCert, cert, minVersion };
}

/** Ssl_server_not_after / _before as TiDB formats them (Go layout "Jan _2 15:04:05 2006 MST"). */
export function goCertDate(s: string): string {
  const d = new Date(s);
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${d.getUTCFullYear()} UTC`;
}

/** Go's tls.VersionName / TiDB's tlsVersionString for the negotiated protocol. */
export function sslVersionName(proto: string | null): string {
  return proto === 'TLSv1' ? 'TLSv1' : proto ?? '';
}
