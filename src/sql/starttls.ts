import * as net from 'net';
import * as tls from 'tls';
import { describe, probeTlsOptions } from '../net/probe';

/** MySQL capability bits (include/mysql_com.h). */
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_LONG_PASSWORD = 0x1;

export interface MysqlTlsProbe {
  /** 'closed': nothing answered; 'plain': a MySQL server that does not offer TLS; 'tls': handshake completed; 'failed': TLS offered, handshake refused. */
  kind: 'closed' | 'plain' | 'tls' | 'failed';
  serverVersion?: string;
  /** Chain verified against `ca` and the certificate names the host we dialled. */
  authorized?: boolean;
  /** The chain alone verified against `ca` (an operator's certificate may name only the load balancer). */
  chainVerified?: boolean;
  error?: string;
  protocol?: string;
  peer?: ReturnType<typeof describe>;
}

export interface MysqlTlsProbeOptions {
  ca?: string;
  cert?: string;
  key?: string;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  ciphers?: string;
  timeoutMs?: number;
}

/** The greeting's server version and capability flags (protocol v10), or why it is not one. */
export function parseGreeting(payload: Buffer): { serverVersion: string; capabilities: number } | { error: string } {
  if (payload[0] === 0xff) return { error: `server refused the connection: ${payload.subarray(3).toString('utf8').replace(/^#\w{5}/, '')}` };
  if (payload[0] !== 10) return { error: `not a MySQL protocol v10 greeting (first byte ${payload[0]})` };
  const nul = payload.indexOf(0, 1);
  if (nul < 0 || payload.length < nul + 1 + 4 + 8 + 1 + 2) return { error: 'truncated MySQL greeting' };
  const serverVersion = payload.subarray(1, nul).toString('utf8');
  let off = nul + 1 + 4 + 8 + 1; // connection id, auth-plugin-data part 1, filler
  const low = payload.readUInt16LE(off);
  off += 2 + 1 + 2; // capabilities (low), charset, status
  const high = payload.length >= off + 2 ? payload.readUInt16LE(off) : 0;
  return { serverVersion, capabilities: (high << 16) | low };
}

/** SSLRequest (HandshakeResponse41 cut after the filler), sequence id 1. */
export function sslRequestPacket(): Buffer {
  const payload = Buffer.alloc(32);
  payload.writeUInt32LE(CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION, 0);
  payload.writeUInt32LE(16 * 1024 * 1024, 4);
  payload[8] = 45; // utf8mb4_general_ci
  const header = Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, 0, 1]);
  return Buffer.concat([header, payload]);
}

/**
 * What a MySQL port serves, the way `openssl s_client -starttls mysql` sees it: read the greeting,
 * and when it offers CLIENT_SSL send an SSLRequest and complete a TLS handshake. No credentials
 * needed and no session opened (the connection closes before the login).
 */
export function probeMysqlTls(host: string, port: number, opts: MysqlTlsProbeOptions = {}): Promise<MysqlTlsProbe> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    let settled = false;
    let secure: tls.TLSSocket | undefined;
    const sock = net.connect({ host, port });
    const done = (r: MysqlTlsProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      secure?.destroy();
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ kind: buf === undefined ? 'closed' : 'failed', error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    let buf: Buffer | undefined;
    sock.once('error', (e) => done({ kind: 'closed', error: e.message }));
    sock.on('data', (chunk: Buffer) => {
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      if (buf.length < 4) return;
      const len = buf.readUIntLE(0, 3);
      if (buf.length < 4 + len) return;
      sock.removeAllListeners('data');
      const g = parseGreeting(buf.subarray(4, 4 + len));
      if ('error' in g) return done({ kind: 'closed', error: g.error });
      if (!(g.capabilities & CLIENT_SSL)) return done({ kind: 'plain', serverVersion: g.serverVersion });
      sock.write(sslRequestPacket());
      const s = tls.connect({ socket: sock, ...probeTlsOptions(host, opts) });
      secure = s;
      s.once('secureConnect', () => {
        const raw = s.getPeerX509Certificate();
        // Hostname checked the way Go clients do (an IP SAN counts for an IP).
        const chainVerified = Boolean(opts.ca) && s.authorized;
        const authorized = chainVerified && raw !== undefined && (raw.checkHost(host) !== undefined || raw.checkIP(host) !== undefined);
        done({
          kind: 'tls',
          serverVersion: g.serverVersion,
          authorized,
          chainVerified,
          error: authorized || !opts.ca ? undefined : String(s.authorizationError ?? `certificate does not name ${host}`),
          protocol: s.getProtocol() ?? undefined,
          peer: raw ? describe(raw) : undefined,
        });
      });
      s.once('error', (e) => done({ kind: 'failed', serverVersion: g.serverVersion, error: e.message }));
    });
  });
}

export const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersionName = (typeof TLS_VERSIONS)[number];

/** Which TLS versions the port completes a handshake with (each tried alone; old ones need OpenSSL's security level 0). */
export async function acceptedTlsVersions(host: string, port: number): Promise<Record<TlsVersionName, boolean>> {
  const out = {} as Record<TlsVersionName, boolean>;
  for (const v of TLS_VERSIONS) {
    const old = v === 'TLSv1' || v === 'TLSv1.1';
    const r = await probeMysqlTls(host, port, { minVersion: v, maxVersion: v, ciphers: old ? 'DEFAULT:@SECLEVEL=0' : undefined, timeoutMs: 4000 });
    out[v] = r.kind === 'tls';
  }
  return out;
}
