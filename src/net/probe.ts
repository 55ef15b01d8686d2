import * as net from 'net';
import * as tls from 'tls';
import { X509Certificate } from 'crypto';

export interface ProbeResult {
  /** 'tls': handshake completed; 'plain': TCP open but no TLS; 'closed': nothing listening / unreachable. */
  kind: 'tls' | 'plain' | 'closed';
  /** Set for kind 'tls' when the server accepted us and we verified it against `ca`. */
  authorized?: boolean;
  error?: string;
  peer?: { subject: string; serialHex: string; notAfter: string; sans: string[]; issuer: string; fingerprint256: string; keyType?: 'rsa' | 'ecdsa' };
  protocol?: string;
}

/**
 * Connect and try a TLS handshake (with our client cert when given). A server that requires a
 * client certificate rejects us right after the handshake; we still learn it speaks TLS.
 */
export interface ProbeTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  ciphers?: string;
}

/** A probe's client side: it verifies nothing itself (the caller judges the chain), TLS 1.2+ unless asked. */
export function probeTlsOptions(host: string, opts: ProbeTlsOptions): tls.ConnectionOptions {
  return {
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    servername: net.isIP(host) ? undefined : host,
    rejectUnauthorized: false,
    minVersion: opts.minVersion ?? 'TLSv1.2',
    maxVersion: opts.maxVersion,
    ciphers: opts.ciphers,
  };
}

export function probeTls(host: string, port: number, opts: ProbeTlsOptions & { timeoutMs?: number } = {}): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  return new Promise((resolve) => {
    let settled = false;
    let tcpOpen = false;
    const done = (r: ProbeResult, graceful = false) => {
      if (settled) return;
      settled = true;
      sock.on('error', () => undefined);
      if (graceful) closeGracefully(sock);
      else sock.destroy();
      resolve(r);
    };
    const sock = tls.connect({ host, port, ...probeTlsOptions(host, opts) });
    sock.setTimeout(timeoutMs, () => done({ kind: tcpOpen ? 'plain' : 'closed', error: `no TLS answer within ${timeoutMs} ms` }));
    sock.once('connect', () => {
      tcpOpen = true;
    });
    sock.once('secureConnect', () => {
      const raw = sock.getPeerX509Certificate();
      let authorized = sock.authorized;
      // We verify the hostname ourselves so an IP SAN counts the way Go clients count it.
      if (authorized && raw && !raw.checkHost(host) && !raw.checkIP(host)) authorized = false;
      done({
        kind: 'tls',
        authorized,
        error: authorized ? undefined : String(sock.authorizationError ?? 'certificate does not match host'),
        protocol: sock.getProtocol() ?? undefined,
        peer: raw ? describe(raw) : undefined,
      }, true);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      if (!tcpOpen || e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH' || e.code === 'ETIMEDOUT') return done({ kind: 'closed', error: e.message });
      // TCP was open but the TLS handshake failed: a plaintext server answers garbage or closes.
      const tlsAlert = /alert|certificate|handshake failure|unsupported protocol/i.test(e.message) && !/wrong version number|packet length too long|ECONNRESET/i.test(e.message);
      done({ kind: tlsAlert ? 'tls' : 'plain', authorized: false, error: e.message });
    });
  });
}

/**
 * Ends a TLS connection whose handshake finished on our side. Under TLS 1.3 our Finished may still
 * be queued; destroying the socket drops it and the server sees a failed handshake (TiKV's status
 * server then reloads its certificate and logs "TLS handshake error"). `end()` flushes it first.
 */
function closeGracefully(sock: tls.TLSSocket): void {
  sock.end();
  setTimeout(() => sock.destroy(), 2000).unref();
}

/**
 * One handshake that fails on the server's side on purpose: a plaintext HTTP request where the
 * ClientHello belongs (OpenSSL's SSL_accept fails with "http request"). TiKV's status server and
 * the TiFlash proxy's reload their certificate only after a failed handshake (tikv
 * src/server/status_server/mod.rs tls_incoming → handle_ssl_error). Resolves 'closed' once the
 * server dropped the connection (it has handled the failure, so the next connection sees the
 * reloaded certificate), 'unreachable' when nothing listens, 'timeout' otherwise.
 */
export function failHandshake(host: string, port: number, timeoutMs = 3000): Promise<'closed' | 'unreachable' | 'timeout'> {
  return new Promise((resolve) => {
    let connected = false;
    let settled = false;
    const done = (r: 'closed' | 'unreachable' | 'timeout') => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve(r);
    };
    const sock = net.connect({ host, port }, () => {
      connected = true;
      sock.write('GET / HTTP/1.0\r\n\r\n');
    });
    sock.setTimeout(timeoutMs, () => done(connected ? 'timeout' : 'unreachable'));
    sock.on('data', () => undefined);
    sock.on('error', () => done(connected ? 'closed' : 'unreachable'));
    sock.on('close', () => done(connected ? 'closed' : 'unreachable'));
  });
}

export function describe(cert: X509Certificate) {
  const sans = (cert.subjectAltName ?? '').split(/,\s*/).filter(Boolean);
  const t = cert.publicKey.asymmetricKeyType;
  const keyType = t === 'rsa' ? ('rsa' as const) : t === 'ec' ? ('ecdsa' as const) : undefined;
  return { subject: cert.subject, serialHex: cert.serialNumber.toLowerCase(), notAfter: cert.validTo, sans, issuer: cert.issuer, fingerprint256: cert.fingerprint256, keyType };
}
