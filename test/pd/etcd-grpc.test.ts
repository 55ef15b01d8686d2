/**
 * tiseal's etcd member calls go over etcd's gRPC Cluster service (not the JSON gateway): against a
 * loopback gRPC server serving the vendored proto, over h2c and over TLS with a client certificate.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import { PdClient } from '../../src/pd/client';
import { etcdClusterService } from '../../src/pd/etcd-grpc';
import { Pki, tmpDir } from '../emulators/helpers';

const BIG_ID = '18446744073709551615'; // uint64 max: a JS number would round it
type Seen = { method: string; req: Record<string, unknown>; peerCn?: string };

let dir: string;
let pki: Pki;
let tlsFiles: { ca: Buffer; cert: Buffer; key: Buffer };
const servers: grpc.Server[] = [];

function serve(creds: grpc.ServerCredentials, seen: Seen[], opts: { updateError?: grpc.status; host?: string } = {}): Promise<number> {
  const server = new grpc.Server();
  const cn = (call: grpc.ServerUnaryCall<unknown, unknown>): string | undefined => {
    const cert = call.getAuthContext()?.sslPeerCertificate;
    return cert?.subject?.CN as string | undefined;
  };
  server.addService(etcdClusterService().service, {
    MemberList: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      seen.push({ method: 'MemberList', req: call.request, peerCn: cn(call) });
      cb(null, { header: { cluster_id: '1' }, members: [{ ID: BIG_ID, name: 'pd-1', peerURLs: ['http://10.0.0.1:2380'], clientURLs: ['http://10.0.0.1:2379'] }] });
    },
    MemberUpdate: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      seen.push({ method: 'MemberUpdate', req: call.request, peerCn: cn(call) });
      if (opts.updateError !== undefined) return cb({ code: opts.updateError, details: 'etcdserver: member not found' } as grpc.ServiceError, null);
      cb(null, { members: [] });
    },
  });
  servers.push(server);
  return new Promise((resolve, reject) => server.bindAsync(`${opts.host ?? '127.0.0.1'}:0`, creds, (e, port) => (e ? reject(e) : resolve(port))));
}

const tlsCreds = (): grpc.ServerCredentials => {
  const f = (n: string) => fs.readFileSync(path.join(dir, 'tls', n));
  return grpc.ServerCredentials.createSsl(f('ca.crt'), [{ cert_chain: f('server.crt'), private_key: f('server.pem') }], true);
};

beforeAll(() => {
  dir = tmpDir('pdgrpc');
  pki = new Pki(path.join(dir, 'tls'));
  pki.issue('server', 'pd', ['127.0.0.1']);
  const c = pki.issue('client', 'tiseal', []);
  tlsFiles = { ca: fs.readFileSync(pki.ca), cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key) };
});

afterAll(() => {
  for (const s of servers) s.forceShutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('member list and update over h2c: uint64 IDs exact both ways', async () => {
  const seen: Seen[] = [];
  const port = await serve(grpc.ServerCredentials.createInsecure(), seen);
  const pd = new PdClient([`127.0.0.1:${port}`], undefined);
  const members = await pd.etcdMembers();
  expect(members).toEqual([{ id: BIG_ID, name: 'pd-1', peerUrls: ['http://10.0.0.1:2380'], clientUrls: ['http://10.0.0.1:2379'] }]);
  await pd.etcdMemberUpdate(BIG_ID, ['https://10.0.0.1:2380']);
  expect(seen.map((s) => s.method)).toEqual(['MemberList', 'MemberUpdate']);
  expect(seen[1].req).toEqual({ ID: BIG_ID, peerURLs: ['https://10.0.0.1:2380'] });
  await expect(pd.etcdMemberUpdate('0x10', [])).rejects.toThrow(/^etcd member ID must be a decimal uint64, got "0x10"$/);
  expect(seen).toHaveLength(2);
});

test('over TLS with the client certificate; an h2c-only client is not served', async () => {
  const seen: Seen[] = [];
  const port = await serve(tlsCreds(), seen);
  const pd = new PdClient([`127.0.0.1:${port}`], tlsFiles, { tlsOnly: 'meta.json records TLS' });
  expect((await pd.etcdMembers()).map((m) => m.id)).toEqual([BIG_ID]);
  expect(seen[0].peerCn).toBe('tiseal');
  // Without a certificate the server refuses the handshake: reported as unreachable over https.
  const noCert = new PdClient([`127.0.0.1:${port}`], { ca: tlsFiles.ca }, { tlsOnly: 'meta.json records TLS' });
  await expect(noCert.etcdMembers()).rejects.toThrow(/not reachable over https \(meta.json records TLS: plaintext is not tried\) for member list/);
  expect(seen).toHaveLength(1);
});

test('scheme fallback: https first during a switch, then h2c; never h2c once TLS is recorded', async () => {
  const seen: Seen[] = [];
  const port = await serve(grpc.ServerCredentials.createInsecure(), seen);
  const switching = new PdClient([`127.0.0.1:${port}`], tlsFiles);
  expect(await switching.etcdMembers()).toHaveLength(1);
  expect(switching.scheme).toBe('http');
  const recorded = new PdClient([`127.0.0.1:${port}`], tlsFiles, { tlsOnly: 'recorded' });
  await expect(recorded.etcdMembers()).rejects.toThrow(/over https/);
  expect(seen).toHaveLength(1);
});

test('a dead endpoint is skipped; an etcd error is an answer (no other endpoint asked)', async () => {
  const seenA: Seen[] = [];
  const seenB: Seen[] = [];
  const a = await serve(grpc.ServerCredentials.createInsecure(), seenA, { updateError: grpc.status.NOT_FOUND });
  const b = await serve(grpc.ServerCredentials.createInsecure(), seenB);
  const dead = await serve(grpc.ServerCredentials.createInsecure(), []);
  servers[servers.length - 1].forceShutdown();
  const pd = new PdClient([`127.0.0.1:${dead}`, `127.0.0.1:${a}`, `127.0.0.1:${b}`], undefined, { timeoutMs: 2000 });
  expect(await pd.etcdMembers()).toHaveLength(1);
  expect(seenA).toHaveLength(1);
  const err = await pd.etcdMemberUpdate('7', ['http://x:2380']).catch((e) => e);
  expect(err.message).toMatch(new RegExp(`PD 127.0.0.1:${a} refused etcd member update 7: .*member not found`));
  expect(err.suggestion).toMatch(/PD logs/);
  expect(seenB).toHaveLength(0);
});

test('the server certificate is checked against the endpoint address', async () => {
  const seen: Seen[] = [];
  const port = await serve(tlsCreds(), seen, { host: '127.0.0.2' });
  // The certificate names 127.0.0.1 (and localhost), not 127.0.0.2.
  const pd = new PdClient([`127.0.0.2:${port}`], tlsFiles, { tlsOnly: 'recorded' });
  await expect(pd.etcdMembers()).rejects.toThrow(/not reachable over https.*IP: 127\.0\.0\.2 is not in the cert's list/);
  expect(seen).toHaveLength(0);
});
