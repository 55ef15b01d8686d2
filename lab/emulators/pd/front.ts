import * as net from 'net';
import * as tls from 'tls';
import type { Logger } from '../common/log';
import { listen, peerCommonName, ServerTls } from '../common/tls';

/**
 * PD's client port. Like PD (etcd's cmux), one port serves both etcd gRPC (HTTP/2) and the HTTP
 * API: HTTP/2 connections (ALPN h2 or the h2c preface) are piped to the private etcd client port,
 * everything else to the private API server. TLS is terminated here: client certificate required
 * when a CA is configured, and from v8.4.0 the CN allow-list is enforced on this port too.
 */
export interface FrontOptions {
  listenUrl: string;
  tls?: ServerTls;
  allowedCN?: string[];
  apiPort: number;
  etcdPort: number;
  log: Logger;
}

function pipeTo(sock: net.Socket, port: number, first?: Buffer): void {
  const up = net.connect(port, '127.0.0.1');
  if (first) up.write(first);
  sock.pipe(up);
  up.pipe(sock);
  const kill = (): void => {
    sock.destroy();
    up.destroy();
  };
  sock.on('error', kill);
  up.on('error', kill);
  sock.on('close', () => up.destroy());
  up.on('close', () => sock.destroy());
}

export async function startFront(o: FrontOptions): Promise<net.Server> {
  const route = (sock: net.Socket, alpn?: string | false | null): void => {
    sock.on('error', () => sock.destroy());
    if (alpn === 'h2') return pipeTo(sock, o.etcdPort);
    sock.once('data', (chunk: Buffer) => {
      sock.pause();
      const isH2 = chunk.subarray(0, 3).toString('latin1') === 'PRI';
      pipeTo(sock, isH2 ? o.etcdPort : o.apiPort, chunk);
      sock.resume();
    });
  };
  let server: net.Server;
  if (o.tls) {
    const s = tls.createServer(o.tls.serverOptions(), (t) => {
      if (o.allowedCN && o.allowedCN.length) {
        const cn = peerCommonName(t);
        if (!cn || !o.allowedCN.includes(cn)) {
          o.log.warn('client certificate CN is not allowed, closing connection', { cn: cn ?? '', allowed: o.allowedCN.join(',') });
          t.destroy();
          return;
        }
      }
      route(t, t.alpnProtocol);
    });
    s.on('tlsClientError', (e) => o.log.warn('TLS handshake failed on client port', { error: e.message }));
    server = o.tls.attach(s);
  } else {
    server = net.createServer((s) => route(s));
  }
  await listen(server, new URL(o.listenUrl).host);
  return server;
}
