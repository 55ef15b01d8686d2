import * as net from 'net';
import * as tls from 'tls';
import type { Logger } from './log';
import { peerCommonName, ServerTls } from './tls';

/**
 * Stand-in for a gRPC port (TiKV 20160, TiFlash 3930/20170). Only the transport is real: TLS 1.2+,
 * a required client certificate when TLS is on, the CN allow-list. On top it speaks one line:
 * `ping\n` → `pong <component> <version> [store=<id>]\n`, so clients can prove the channel works.
 * One request per connection: the server closes after its answer.
 * A failed CN check answers like TiKV's gRPC services ("Common name check fail") and closes.
 * With `request` (TiKV only) it also serves the test.kv data path and the raft messages between
 * stores (tikv/rpc-handler.ts): lines starting `kv_` or `raft `, one answer line each.
 */
export interface RpcServerOptions {
  component: string;
  version: string;
  tls?: ServerTls;
  allowedCN?: string[];
  storeId?: () => string | undefined;
  request?: (line: string) => Promise<string>;
  log: Logger;
}

export function createRpcServer(o: RpcServerOptions): net.Server {
  const handle = (sock: net.Socket, cn?: string): void => {
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    if (o.allowedCN && o.allowedCN.length > 0 && !(cn && o.allowedCN.includes(cn))) {
      o.log.warn('Common name check fail', { cn: cn ?? '', allowed: o.allowedCN.join(',') });
      sock.end(`error: Common name check fail, reason: CN ${cn ?? '(none)'} is not allowed\n`);
      // Read on, so the client's close is seen and the socket freed (unread, it stayed open forever).
      sock.resume();
      return;
    }
    let buf = '';
    let answered = false;
    sock.on('data', (d: string) => {
      if (answered) return;
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === 'ping') {
          const id = o.storeId?.();
          sock.end(`pong ${o.component} ${o.version}${id ? ` store=${id}` : ''}\n`);
        } else if (o.request && (line.startsWith('kv_') || line.startsWith('raft '))) {
          void o.request(line).then((reply) => sock.end(reply + '\n'));
        } else if (line !== '' && !line.startsWith('PRI *') && line !== 'SM') {
          sock.end('error: unknown request\n');
        } else continue;
        // One answer, then close: gRPC's chttp2 transport drops a connection whose first bytes are
        // not the HTTP/2 preface ("Connect string mismatch", parsing.cc), so no non-gRPC client of
        // the real TiKV/TiFlash holds a connection open.
        answered = true;
        return;
      }
      if (buf.length > (o.request ? 64 << 20 : 65536)) sock.destroy(); // raft snapshots carry a whole region
    });
  };
  if (!o.tls) return net.createServer((s) => handle(s));
  const server = tls.createServer({ ...o.tls.serverOptions(), ALPNProtocols: ['h2'] }, (s) => handle(s, peerCommonName(s)));
  server.on('tlsClientError', (e) => o.log.warn('TLS handshake failed', { error: e.message }));
  return o.tls.attach(server);
}
