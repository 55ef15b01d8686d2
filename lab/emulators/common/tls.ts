import * as fs from 'fs';
import * as net from 'net';
import * as tls from 'tls';
import type { Logger } from './log';

/**
 * Server TLS the way the real components do it: TLS 1.2 minimum, optional required client
 * certificate, and certificate reload without restart with the component's own policy:
 * - `every-handshake`: PD, TiDB, TiCDC re-read cert+key for each new connection (CA loaded once);
 * - `cert-mtime`: TiKV's gRPC port (security::Fetcher) reloads CA, cert and key for a new connection
 *   when the cert file's mtime changed;
 * - `after-failed-handshake`: TiKV's status server (and the TiFlash proxy's, the same code) keeps its
 *   context and reloads only after a handshake that fails (see `afterFailedHandshake`);
 * - `never`: loaded once at start.
 */
export type ReloadPolicy = 'every-handshake' | 'cert-mtime' | 'after-failed-handshake' | 'never';

export interface TlsPaths {
  ca?: string;
  cert: string;
  key: string;
}

export interface ServerTlsConfig {
  paths: TlsPaths;
  requireClientCert: boolean;
  reload: ReloadPolicy;
  /** Whether a reload also re-reads the CA (TiKV yes; PD/TiDB/CDC load it once). */
  reloadCA: boolean;
  /** ALPN list, or 'http1-else-h2': HTTP/1.1 when the client offers it (curl, Go's http client), else h2 (gRPC clients offer only h2). */
  alpn?: string[] | 'http1-else-h2';
  /**
   * A Go component (PD, TiDB, TiCDC): like Go 1.22+, TLS 1.2 minimum unless the process runs with
   * `GODEBUG=tls10server=1`, which restores Go's old TLS 1.0 server minimum (planted by the audit test).
   */
  goRuntime?: boolean;
  /**
   * rust-openssl `SslAcceptor::mozilla_modern` (openssl/src/ssl/connector.rs: Mozilla's modern v4
   * profile — NO_TLSV1 | NO_TLSV1_1 | NO_TLSV1_3, server cipher preference, ECDHE suites only), which
   * TiKV's status server builds its acceptor with (tikv v6.5–v8.5 src/server/status_server/mod.rs;
   * TiFlash's proxy the same in proxy_components/proxy_server/src/status_server/mod.rs): TLS 1.2
   * and nothing else, so a client that offers only TLS 1.3 or only RSA key exchange is refused.
   */
  mozillaModern?: boolean;
}

/** The cipher list of rust-openssl's mozilla_modern (OpenSSL names). */
export const MOZILLA_MODERN_CIPHERS =
  'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:' +
  'ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:' +
  'ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256';

export class TlsFileError extends Error {
  constructor(readonly file: string, readonly code: string | undefined, message: string) {
    super(message);
  }
}

export function readTlsFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const reason = err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied' : err.message;
    throw new TlsFileError(file, err.code, `open ${file}: ${reason}`);
  }
}

interface Loaded {
  ca?: Buffer;
  cert: Buffer;
  key: Buffer;
}

export class ServerTls {
  private loaded: Loaded;
  /** The cert's mtime at the last check; the status server starts with none (`cert_last_modified_time = None`). */
  private certMtimeMs?: number;
  private server?: tls.Server;

  constructor(readonly cfg: ServerTlsConfig, private readonly log?: Logger) {
    this.loaded = this.read(true);
    if (cfg.reload !== 'after-failed-handshake') this.certMtimeMs = fs.statSync(cfg.paths.cert, { throwIfNoEntry: false })?.mtimeMs;
    // Validate now so a bad key/cert pair fails at start, like the real components.
    tls.createSecureContext(this.contextOptions());
  }

  /**
   * tikv components/security/src/lib.rs SecurityConfig::is_modified: true when the cert's mtime
   * differs from the last one seen (or none was seen yet), which it then remembers; a stat error
   * is logged and changes nothing.
   */
  private certModified(): boolean {
    let m: number;
    try {
      m = fs.statSync(this.cfg.paths.cert).mtimeMs;
    } catch (e) {
      this.log?.error('Failed to load certificate file metadata', { error: (e as Error).message });
      return false;
    }
    if (m === this.certMtimeMs) return false;
    this.certMtimeMs = m;
    return true;
  }

  private read(withCA: boolean): Loaded {
    const ca = withCA ? (this.cfg.paths.ca ? readTlsFile(this.cfg.paths.ca) : undefined) : this.loaded.ca;
    return { ca, cert: readTlsFile(this.cfg.paths.cert), key: readTlsFile(this.cfg.paths.key) };
  }

  contextOptions(): tls.SecureContextOptions {
    const tls10 = this.cfg.goRuntime && /(^|,)tls10server=1(,|$)/.test(process.env.GODEBUG ?? '');
    // OpenSSL 3 needs security level 0 for the TLS 1.0/1.1 handshake hash (Go needs no such switch).
    const base = { ca: this.loaded.ca, cert: this.loaded.cert, key: this.loaded.key };
    if (this.cfg.mozillaModern) return { ...base, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: MOZILLA_MODERN_CIPHERS, honorCipherOrder: true };
    return { ...base, minVersion: tls10 ? 'TLSv1' : 'TLSv1.2', ...(tls10 ? { ciphers: 'DEFAULT@SECLEVEL=0' } : {}) };
  }

  serverOptions(): tls.TlsOptions {
    return {
      ...this.contextOptions(),
      requestCert: this.cfg.requireClientCert,
      rejectUnauthorized: this.cfg.requireClientCert,
      ...(this.cfg.alpn === 'http1-else-h2'
        ? {
            ALPNCallback: ({ protocols }: { protocols: string[] }) =>
              protocols.includes('http/1.1') ? 'http/1.1' : protocols.includes('h2') ? 'h2' : protocols[0],
          }
        : { ALPNProtocols: this.cfg.alpn }),
    };
  }

  /** On a new connection, reloads when the policy says so; keeps the old material when the new files are broken (as TiKV does). */
  maybeReload(): void {
    if (this.cfg.reload === 'never' || this.cfg.reload === 'after-failed-handshake') return;
    if (this.cfg.reload === 'cert-mtime' && !this.certModified()) return;
    this.reload();
  }

  /**
   * tikv v6.5.0–v8.5.x src/server/status_server/mod.rs tls_incoming (the same in
   * pingcap/tidb-engine-ext proxy_components/proxy_server/src/status_server/mod.rs):
   *   Err(_) => { error!("Status server error: TLS handshake error"); handle_ssl_error(&mut context); continue; }
   * and handle_ssl_error builds a new acceptor only `if security_config.is_modified(..)`. A
   * handshake that succeeds never reloads; the failed connection itself is dropped, the next one
   * gets the new context.
   */
  afterFailedHandshake(): void {
    this.log?.error('Status server error: TLS handshake error');
    if (this.certModified()) this.reload();
  }

  private reload(): void {
    try {
      const next = this.read(this.cfg.reloadCA);
      const before = this.loaded;
      this.loaded = next;
      tls.createSecureContext(this.contextOptions());
      if (this.server) this.server.setSecureContext(this.contextOptions());
      if (this.cfg.reload !== 'every-handshake' || !before.cert.equals(next.cert)) {
        this.log?.info('certificate reloaded', { cert: this.cfg.paths.cert });
      }
    } catch (e) {
      this.log?.error('Failed to reload TLS certificate, keep the old one', { error: (e as Error).message });
    }
  }

  /** Hooks reload in front of Node's own connection listener so the new context serves this very handshake. */
  attach<S extends tls.Server>(server: S): S {
    this.server = server;
    if (this.cfg.reload === 'after-failed-handshake') {
      // Only a handshake OpenSSL did not finish counts (`SSL_accept` failed): Node also reports a
      // reset that arrives after the handshake finished, which TiKV sees as a request error instead.
      server.on('tlsClientError', (_e: Error, sock: tls.TLSSocket) => {
        if (!(sock as tls.TLSSocket & { _secureEstablished?: boolean })._secureEstablished) this.afterFailedHandshake();
      });
    } else {
      server.prependListener('connection', () => this.maybeReload());
    }
    return server;
  }
}

/**
 * A CN check inside the handshake (Poco's `setAdhocVerification`, TiFlash's HTTPS and metrics
 * ports): a certificate whose CN is not listed never gets a request through. Node cannot fail the
 * handshake from a callback, so the connection is closed right after it instead.
 */
export function closeUnlessAllowedCN(server: tls.Server, allowed: string[], log?: Logger): void {
  if (allowed.length === 0) return;
  server.prependListener('secureConnection', (sock: tls.TLSSocket) => {
    const cn = peerCommonName(sock);
    if (cn !== undefined && allowed.includes(cn)) return;
    log?.warn('certificate CN check failed, connection closed', { cn: cn ?? '', allowed: allowed.join(',') });
    sock.destroy();
  });
}

export function peerCommonName(socket: tls.TLSSocket): string | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.subject) return undefined;
  const cn = cert.subject.CN as unknown;
  return Array.isArray(cn) ? String(cn[0]) : typeof cn === 'string' ? cn : undefined;
}

/**
 * A Go client's `VerifyPeerCertificate` CN check on the SERVER it dials (TiCDC
 * pkg/security/credential.go addVerifyPeerCertificate; PD < v8.4 grpcutil's AllowedCN): every
 * certificate of the verified chain counts, as Go walks `verifiedChains`. Returns Go's error text.
 */
export function serverCNCheck(allowed: string[], what = 'cluster-verify-cn'): NonNullable<tls.ConnectionOptions['checkServerIdentity']> {
  if (what === 'etcd') {
    // etcd pkg/transport TLSInfo baseConfig (PD's client config too): only chains[0], the leaf.
    return (host, cert) => {
      const hostErr = tls.checkServerIdentity(host, cert);
      if (hostErr) return hostErr;
      const cn = cert.subject?.CN as unknown;
      const name = Array.isArray(cn) ? String(cn[0]) : typeof cn === 'string' ? cn : '';
      return allowed.includes(name) ? undefined : new Error('CommonName authentication failed');
    };
  }
  return (host, cert) => {
    const hostErr = tls.checkServerIdentity(host, cert);
    if (hostErr) return hostErr;
    const cns: string[] = [];
    const seen = new Set<unknown>();
    for (let c: tls.DetailedPeerCertificate | undefined = cert as tls.DetailedPeerCertificate; c && !seen.has(c); c = c.issuerCertificate) {
      seen.add(c);
      const cn = c.subject?.CN as unknown;
      const name = Array.isArray(cn) ? String(cn[0]) : typeof cn === 'string' ? cn : '';
      cns.push(name);
      if (allowed.includes(name)) return undefined;
    }
    return new Error(
      `client certificate authentication failed. The Common Name from the client certificate [${cns.join(' ')}] was not found in the configuration ${what} with value: [${allowed.join(' ')}]`,
    );
  };
}

/**
 * PD's client TLS (tikv/pd pkg/utils/grpcutil/grpcutil.go ToTLSConfig → etcd TLSInfo.ClientConfig):
 * `cert-allowed-cn` lands in the client config as well, so the servers PD calls must carry an
 * allowed CN (before v8.4 the one CN; from v8.4 AllowedCNs, any of them).
 */
export function pdClientTlsOptions(paths: Partial<TlsPaths>, allowedCN: string[]): tls.ConnectionOptions {
  const o = clientTlsOptions(paths);
  return allowedCN.length ? { ...o, checkServerIdentity: serverCNCheck(allowedCN, 'etcd') } : o;
}

/** Client-side TLS options, read fresh per connection (every component re-reads client certs per new connection). */
export function clientTlsOptions(paths: Partial<TlsPaths>): tls.ConnectionOptions {
  return {
    ca: paths.ca ? readTlsFile(paths.ca) : undefined,
    cert: paths.cert ? readTlsFile(paths.cert) : undefined,
    key: paths.key ? readTlsFile(paths.key) : undefined,
    minVersion: 'TLSv1.2',
  };
}

/** Splits "host:port" (IPv6 in brackets allowed) for listen(). */
export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, ''));
  if (!m) throw new Error(`invalid address "${addr}" (expected host:port)`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

export function listen(server: net.Server, addr: string): Promise<void> {
  const { host, port } = splitHostPort(addr);
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
