import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { checkServerIdentity } from 'tls';
import type { ClientTls } from '../util/http';

/**
 * etcd's gRPC Cluster service on PD's client port, as TiUP calls it (clientv3 MemberList /
 * MemberUpdate, pkg/cluster/operation/pd_member.go). Not the JSON gateway: from PD v8.4 with more
 * than one CN in cert-allowed-cn, the embedded etcd's gateway dials PD's own gRPC with
 * InsecureSkipVerify and fails the CN check, so every `/v3/*` call over HTTP fails
 * (tikv/pd server/config/config.go, etcd-io/etcd#15755).
 */
export interface EtcdMember {
  /** uint64 as a decimal string (lossless) */
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
}

export type Scheme = 'http' | 'https';

/** Where proto/ is: above src/pd under ts-jest, above dist/src/pd when built. */
function protoFile(): string {
  let dir = __dirname;
  for (;;) {
    const f = path.join(dir, 'proto', 'etcd', 'rpc.proto');
    if (fs.existsSync(f)) return f;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find proto/etcd/rpc.proto above ${__dirname}`);
    dir = up;
  }
}

type Services = { Cluster: grpc.ServiceClientConstructor; KV: grpc.ServiceClientConstructor };
let services: Services | undefined;
function etcdServices(): Services {
  if (!services) {
    // longs as strings: member IDs are uint64 and must survive the round trip exactly.
    const def = protoLoader.loadSync(protoFile(), { keepCase: true, longs: String, defaults: true, arrays: true, oneofs: true });
    services = (grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Services }).etcdserverpb;
  }
  return services;
}

/** The Cluster service definition (also used by tests to serve it). */
export function etcdClusterService(): grpc.ServiceClientConstructor {
  return etcdServices().Cluster;
}

/** The KV service definition (also used by tests to serve it). */
export function etcdKvService(): grpc.ServiceClientConstructor {
  return etcdServices().KV;
}

/** A gRPC status from a server that answered (as opposed to no connection). */
export class EtcdRpcError extends Error {
  constructor(message: string, readonly code: grpc.status) {
    super(message);
  }
}

/** Codes that say "this endpoint/scheme did not serve the call": try the next one. */
export function isTransportFailure(e: unknown): boolean {
  const code = (e as { code?: number }).code;
  return code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED || code === undefined;
}

type RawMember = { ID?: string; name?: string; peerURLs?: string[]; clientURLs?: string[] };
const member = (m: RawMember): EtcdMember => ({ id: String(m.ID ?? '0'), name: m.name ?? '', peerUrls: m.peerURLs ?? [], clientUrls: m.clientURLs ?? [] });

/**
 * One call, one channel: closed afterwards, so nothing pooled outlives a PD restart.
 * https: TLS with the cluster CA and tiseal's client certificate; http: HTTP/2 without TLS (h2c),
 * what PD serves before the switch.
 */
async function unary<Req, Res>(endpoint: string, scheme: Scheme, tls: ClientTls | undefined, timeoutMs: number, method: string, req: Req, service: keyof Services = 'Cluster'): Promise<Res> {
  const Ctor = etcdServices()[service];
  const buf = (v: string | Buffer | undefined) => (v === undefined ? undefined : Buffer.isBuffer(v) ? v : Buffer.from(v));
  let creds: grpc.ChannelCredentials;
  const options: grpc.ChannelOptions = { 'grpc.enable_retries': 0 };
  if (scheme === 'https') {
    if (!tls) throw new Error(`${endpoint}: no CA to call PD over https`);
    const host = endpoint.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    // grpc-js sends the target host as SNI, and Node warns (DEP0123) for an IP: send PD's CN as
    // SNI instead (PD ignores SNI) and still verify the certificate against the real host.
    const ip = net.isIP(host) !== 0;
    if (ip) options['grpc.ssl_target_name_override'] = 'pd';
    creds = grpc.credentials.createSsl(buf(tls.ca)!, buf(tls.key) ?? null, buf(tls.cert) ?? null, ip ? { checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert) } : {});
  } else {
    creds = grpc.credentials.createInsecure();
  }
  const client = new Ctor(endpoint, creds, options);
  try {
    return await new Promise<Res>((resolve, reject) => {
      const fn = (client as unknown as Record<string, (r: Req, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void>)[method];
      fn.call(client, req, { deadline: Date.now() + timeoutMs }, (e, r) => {
        if (e) reject(new EtcdRpcError(`${scheme}://${endpoint} etcdserverpb.${service}/${method}: ${e.details || e.message}`, e.code));
        else resolve(r);
      });
    });
  } finally {
    client.close();
  }
}

export async function memberList(endpoint: string, scheme: Scheme, tls: ClientTls | undefined, timeoutMs: number): Promise<EtcdMember[]> {
  const r = await unary<Record<string, never>, { members?: RawMember[] }>(endpoint, scheme, tls, timeoutMs, 'MemberList', {});
  return (r.members ?? []).map(member);
}

export async function memberUpdate(endpoint: string, scheme: Scheme, tls: ClientTls | undefined, timeoutMs: number, id: string, peerUrls: string[]): Promise<EtcdMember[]> {
  const r = await unary<{ ID: string; peerURLs: string[] }, { members?: RawMember[] }>(endpoint, scheme, tls, timeoutMs, 'MemberUpdate', { ID: id, peerURLs: peerUrls });
  return (r.members ?? []).map(member);
}

export interface EtcdKv {
  key: string;
  value: Buffer;
  createRevision: string;
  modRevision: string;
}

type RawKv = { key?: Buffer; value?: Buffer; create_revision?: string; mod_revision?: string };
const kv = (k: RawKv): EtcdKv => ({ key: (k.key ?? Buffer.alloc(0)).toString('utf8'), value: k.value ?? Buffer.alloc(0), createRevision: String(k.create_revision ?? '0'), modRevision: String(k.mod_revision ?? '0') });

/**
 * One key. Linearizable by default: etcd answers only after a ReadIndex confirmed by a quorum, so
 * an answer proves the member is in a cluster with a quorum. `serializable`: the member's local
 * store, answered without one (what a member that lost its quorum still knows).
 */
export async function getKey(endpoint: string, scheme: Scheme, tls: ClientTls | undefined, timeoutMs: number, key: string, serializable = false): Promise<EtcdKv | undefined> {
  const r = await unary<Record<string, unknown>, { kvs?: RawKv[] }>(endpoint, scheme, tls, timeoutMs, 'Range', { key: Buffer.from(key), serializable }, 'KV');
  return r.kvs?.length ? kv(r.kvs[0]) : undefined;
}

/** Put `key` = `value` if `guard` holds: `guard.key`'s create revision compared with 0 (etcd's Txn). */
export async function putIfCreated(endpoint: string, scheme: Scheme, tls: ClientTls | undefined, timeoutMs: number, key: string, value: Buffer, guard: { key: string; exists: boolean }, valueWas?: Buffer): Promise<boolean> {
  const compare: Record<string, unknown>[] = [{ result: guard.exists ? 'NOT_EQUAL' : 'EQUAL', target: 'CREATE', key: Buffer.from(guard.key), create_revision: '0' }];
  if (valueWas) compare.push({ result: 'EQUAL', target: 'VALUE', key: Buffer.from(key), value: valueWas });
  const r = await unary<Record<string, unknown>, { succeeded?: boolean }>(endpoint, scheme, tls, timeoutMs, 'Txn', { compare, success: [{ request_put: { key: Buffer.from(key), value } }], failure: [] }, 'KV');
  return Boolean(r.succeeded);
}
