import * as net from 'net';
import * as tls from 'tls';
import type { Logger } from './log';
import { peerCommonName, ServerTls } from './tls';

/**
 * Stand-in for a gRPC port (TiKV 20160, TiFlash 3930/20170). Only the transport is real: TLS 1.2+,
 * a required client certificate when TLS is on, the CN allow-list. On top it speaks one line:
 * `ping\n` → `pong <component> <version> [store=<id>]\n`, so clients can prove the channel works.
 * A failed CN check answers like TiKV's gRPC services ("Common name check fail") and closes.
 * With `kv` (TiKV only) it also serves the test.kv data path, stand-in for kvrpcpb Get / a committed
 * write: `kv_get <store_id> <hex key> <ts>` → `value <hex>` | `notfound`;
 * `kv_put <store_id> <hex key> <hex value> <ts>` → `ok <existed 0|1>`. A request for another store
 * id gets `error: StoreNotMatch …` (errorpb.StoreNotMatch).
 */
export interface KvHandler {
  get(key: string, ts: bigint): string | undefined;
  put(key: string, value: string, ts: bigint): boolean;
}

export interface RpcServerOptions {
  component: string;
  version: string;
  tls?: ServerTls;
  allowedCN?: string[];
  storeId?: () => string | undefined;
  kv?: KvHandler;
  log: Logger;
}

function kvLine(o: RpcServerOptions, parts: string[]): string {
  const [op, store] = parts;
  const self = o.storeId?.();
  if (!o.kv || !self) return 'error: unknown request';
  if (store !== self) return `error: StoreNotMatch request_store_id=${store} actual_store_id=${self}`;
  const hex = (h: string | undefined): string => Buffer.from(h ?? '', 'hex').toString('utf8');
  try {
    if (op === 'kv_get' && parts.length === 4) {
      const v = o.kv.get(hex(parts[2]), BigInt(parts[3]));
      return v === undefined ? 'notfound' : `value ${Buffer.from(v, 'utf8').toString('hex')}`;
    }
    if (op === 'kv_put' && parts.length === 5) return `ok ${o.kv.put(hex(parts[2]), hex(parts[3]), BigInt(parts[4])) ? 1 : 0}`;
  } catch (e) {
    o.log.error('kv request failed', { error: (e as Error).message });
    return `error: ${(e as Error).message}`;
  }
  return 'error: unknown request';
}

export function createRpcServer(o: RpcServerOptions): net.Server {
  const handle = (sock: net.Socket, cn?: string): void => {
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    if (o.allowedCN && o.allowedCN.length > 0 && !(cn && o.allowedCN.includes(cn))) {
      o.log.warn('Common name check fail', { cn: cn ?? '', allowed: o.allowedCN.join(',') });
      sock.end(`error: Common name check fail, reason: CN ${cn ?? '(none)'} is not allowed\n`);
      return;
    }
    let buf = '';
    sock.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === 'ping') {
          const id = o.storeId?.();
          sock.write(`pong ${o.component} ${o.version}${id ? ` store=${id}` : ''}\n`);
        } else if (line.startsWith('kv_')) {
          sock.write(kvLine(o, line.split(' ')) + '\n');
        } else if (line !== '' && !line.startsWith('PRI *') && line !== 'SM') {
          sock.write('error: unknown request\n');
        }
      }
      if (buf.length > 65536) sock.destroy();
    });
  };
  if (!o.tls) return net.createServer((s) => handle(s));
  const server = tls.createServer({ ...o.tls.serverOptions(), ALPNProtocols: ['h2'] }, (s) => handle(s, peerCommonName(s)));
  server.on('tlsClientError', (e) => o.log.warn('TLS handshake failed', { error: e.message }));
  return o.tls.attach(server);
}
