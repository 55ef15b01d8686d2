import * as http2 from 'http2';
import type * as tls from 'tls';
import { Json } from '../common/json';
import { Gateway, GatewayError } from './etcd';

/**
 * What a PD asks another PD's etcd (join: member list/add/remove; leader transfer: MoveLeader) goes
 * over gRPC, as real PD's clientv3 does (server/join/join.go, pkg/utils/etcdutil). Not over the JSON
 * gateway: from v8.4 with several CNs the gateway of a TLS PD fails every call (gatewayFailure).
 * The hosts have node's built-ins only, so this is a minimal unary gRPC client over http2 with the
 * few etcdserverpb messages encoded by hand (field numbers from etcd api/etcdserverpb/rpc.proto).
 * It keeps Gateway's interface so join.ts and api.ts call it the same way.
 */

/**
 * The gateway's answer when its own dial fails: etcd 3.5 server/embed/etcd.go grpcGatewayDial
 * clones ClientTLSInfo.ServerConfig() with `dtls.InsecureSkipVerify = true`; with AllowedCNs set
 * (tikv/pd server/config/config.go: "Only check client cert when there are multiple CNs") the
 * VerifyPeerCertificate of client/pkg/transport/listener.go gets no verified chain and returns
 * "client certificate authentication failed", so the gateway's connection never comes up and
 * grpc-gateway v1 (DefaultHTTPError) answers codes.Unavailable as HTTP 503 with this JSON body.
 */
export const GATEWAY_DIAL_ERROR = 'connection error: desc = "transport: authentication handshake failed: client certificate authentication failed"';
export function gatewayFailure(): { status: number; body: string } {
  return { status: 503, body: JSON.stringify({ error: GATEWAY_DIAL_ERROR, code: 14, message: GATEWAY_DIAL_ERROR }) };
}

// --- protobuf wire format (varint 0, length-delimited 2) ---
function varint(n: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}
const key = (field: number, wire: number): Buffer => varint(BigInt((field << 3) | wire));
export const pbUint = (field: number, v: bigint): Buffer => (v === 0n ? Buffer.alloc(0) : Buffer.concat([key(field, 0), varint(v)]));
export function pbBytes(field: number, v: string | Buffer): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return Buffer.concat([key(field, 2), varint(BigInt(b.length)), b]);
}

type Fields = Map<number, Array<bigint | Buffer>>;
export function pbDecode(buf: Buffer): Fields {
  const out: Fields = new Map();
  let i = 0;
  const readVarint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[i++];
      r |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return r;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const k = Number(readVarint());
    const field = k >> 3;
    const wire = k & 7;
    let v: bigint | Buffer;
    if (wire === 0) v = readVarint();
    else if (wire === 2) {
      const len = Number(readVarint());
      v = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) {
      v = buf.subarray(i, i + 8);
      i += 8;
    } else if (wire === 5) {
      v = buf.subarray(i, i + 4);
      i += 4;
    } else throw new Error(`protobuf: unsupported wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(v);
    out.set(field, list);
  }
  return out;
}
const str = (f: Fields, n: number): string[] => (f.get(n) ?? []).map((b) => (b as Buffer).toString('utf8'));
const uint = (f: Fields, n: number): bigint => ((f.get(n) ?? [])[0] as bigint | undefined) ?? 0n;

/** etcdserverpb.Member (ID 1, name 2, peerURLs 3, clientURLs 4, isLearner 5) in the gateway's JSON shape. */
function memberJson(b: Buffer): Record<string, Json> {
  const f = pbDecode(b);
  return { ID: uint(f, 1).toString(), name: str(f, 2)[0] ?? '', peerURLs: str(f, 3), clientURLs: str(f, 4), isLearner: uint(f, 5) === 1n };
}
const members = (f: Fields, n: number): Record<string, Json>[] => (f.get(n) ?? []).map((b) => memberJson(b as Buffer));

/** One unary call; a gRPC status from the server becomes GatewayError (code as status), a transport failure a plain Error. */
export function grpcUnary(baseUrl: string, method: string, req: Buffer, tlsOpts: (() => tls.ConnectionOptions) | undefined, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const secure = baseUrl.startsWith('https://');
    const session = http2.connect(baseUrl, secure ? { ...(tlsOpts?.() ?? {}), ALPNProtocols: ['h2'] } : {});
    const timer = setTimeout(() => fail(new Error(`${baseUrl}${method}: no answer within ${timeoutMs} ms`)), timeoutMs);
    let done = false;
    const finish = (): void => {
      done = true;
      clearTimeout(timer);
      session.close();
      session.destroy();
    };
    const fail = (e: Error): void => {
      if (done) return;
      finish();
      reject(e);
    };
    session.on('error', fail);
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(req.length, 1);
    const stream = session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    const settle = (trailers: http2.IncomingHttpHeaders): void => {
      if (done) return;
      const status = Number(trailers['grpc-status'] ?? headers['grpc-status'] ?? NaN);
      const message = decodeURIComponent(String(trailers['grpc-message'] ?? headers['grpc-message'] ?? ''));
      if (Number.isNaN(status)) return fail(new Error(`${baseUrl}${method}: no grpc-status (HTTP ${headers[':status'] ?? '?'})`));
      if (status !== 0) {
        finish();
        return reject(new GatewayError(message || `grpc status ${status}`, status));
      }
      const body = Buffer.concat(chunks);
      finish();
      resolve(body.length >= 5 ? body.subarray(5, 5 + body.readUInt32BE(1)) : Buffer.alloc(0));
    };
    stream.on('response', (h) => (headers = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('trailers', (t) => settle(t));
    stream.on('end', () => settle({}));
    stream.on('error', fail);
    stream.end(Buffer.concat([frame, req]));
  });
}

/** Gateway's interface (members(), call('/v3/...')) over gRPC, for another PD's client URL. */
export class GrpcGateway extends Gateway {
  constructor(baseUrl: string, private readonly grpcTls?: () => tls.ConnectionOptions) {
    super(baseUrl, grpcTls);
  }

  override async call(p: string, body: Record<string, Json> = {}, timeoutMs = 5000): Promise<Record<string, Json>> {
    const rpc = (method: string, req: Buffer) => grpcUnary(this.baseUrl, method, req, this.grpcTls, timeoutMs).then(pbDecode);
    const id = (v: Json | undefined): bigint => BigInt(String(v ?? '0'));
    switch (p) {
      case '/v3/cluster/member/list':
        return { members: members(await rpc('/etcdserverpb.Cluster/MemberList', Buffer.alloc(0)), 2) };
      case '/v3/cluster/member/add': {
        const urls = ((body.peerURLs as string[] | undefined) ?? []).map((u) => pbBytes(1, u));
        const f = await rpc('/etcdserverpb.Cluster/MemberAdd', Buffer.concat([...urls, pbUint(2, body.isLearner === true ? 1n : 0n)]));
        const m = f.get(2)?.[0];
        return { member: m ? memberJson(m as Buffer) : null, members: members(f, 3) };
      }
      case '/v3/cluster/member/remove':
        return { members: members(await rpc('/etcdserverpb.Cluster/MemberRemove', pbUint(1, id(body.ID))), 2) };
      case '/v3/maintenance/transfer-leadership':
        await rpc('/etcdserverpb.Maintenance/MoveLeader', pbUint(1, id(body.targetID)));
        return {};
      default:
        throw new Error(`GrpcGateway: ${p} is not mapped to a gRPC call`);
    }
  }
}

/** etcdserverpb.ResponseHeader.revision (field 3) of a response's header (field 1). */
function headerRevision(f: Fields): bigint {
  const h = f.get(1)?.[0];
  return h ? uint(pbDecode(h as Buffer), 3) : 0n;
}

/** KV.Range of one key (RangeRequest key 1): its value (mvccpb.KeyValue value 5) and the store revision. */
export async function etcdGet(baseUrl: string, k: string, tlsOpts: (() => tls.ConnectionOptions) | undefined, timeoutMs = 3000): Promise<{ value?: string; revision: bigint }> {
  const f = pbDecode(await grpcUnary(baseUrl, '/etcdserverpb.KV/Range', pbBytes(1, k), tlsOpts, timeoutMs));
  const kv = f.get(2)?.[0];
  const value = kv ? ((pbDecode(kv as Buffer).get(5)?.[0] as Buffer | undefined) ?? Buffer.alloc(0)).toString('utf8') : undefined;
  return { value, revision: headerRevision(f) };
}

/** KV.Put (PutRequest key 1, value 2). */
export async function etcdPut(baseUrl: string, k: string, v: string, tlsOpts: (() => tls.ConnectionOptions) | undefined, timeoutMs = 3000): Promise<void> {
  await grpcUnary(baseUrl, '/etcdserverpb.KV/Put', Buffer.concat([pbBytes(1, k), pbBytes(2, v)]), tlsOpts, timeoutMs);
}

/**
 * Watch.Watch on one key from `startRevision` (WatchRequest create_request 1: key 1, start_revision 3):
 * `onEvents` gets the header revision of each response that carries events (WatchResponse events 11).
 * `done` settles when the stream ends (server gone, canceled: WatchResponse canceled 4, cancel_reason 6).
 */
export function etcdWatch(
  baseUrl: string,
  k: string,
  startRevision: bigint,
  tlsOpts: (() => tls.ConnectionOptions) | undefined,
  onEvents: (revision: bigint) => void,
): { done: Promise<string>; close: () => void } {
  const secure = baseUrl.startsWith('https://');
  let finish: (why: string) => void = () => undefined;
  const done = new Promise<string>((resolve) => (finish = resolve));
  let session: http2.ClientHttp2Session;
  try {
    session = http2.connect(baseUrl, secure ? { ...(tlsOpts?.() ?? {}), ALPNProtocols: ['h2'] } : {});
  } catch (e) {
    return { done: Promise.resolve((e as Error).message), close: () => undefined };
  }
  const end = (why: string): void => {
    finish(why);
    session.destroy();
  };
  session.on('error', (e) => end(e.message));
  session.on('close', () => end('connection closed'));
  const stream = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', te: 'trailers' });
  const create = pbBytes(1, Buffer.concat([pbBytes(1, k), pbUint(3, startRevision)]));
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(create.length, 1);
  stream.write(Buffer.concat([frame, create]));
  let buf = Buffer.alloc(0);
  stream.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const msg = buf.subarray(5, 5 + buf.readUInt32BE(1));
      buf = buf.subarray(5 + msg.length);
      const f = pbDecode(msg);
      if (uint(f, 4) === 1n) return end(`watch canceled: ${str(f, 6)[0] ?? ''}`);
      if (f.get(11)?.length) onEvents(headerRevision(f));
    }
  });
  stream.on('error', (e) => end(e.message));
  stream.on('close', () => end('watch stream closed'));
  return { done, close: () => end('closed') };
}
