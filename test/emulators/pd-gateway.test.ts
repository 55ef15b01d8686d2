/**
 * PD v8.4+ with more than one CN in cert-allowed-cn: etcd's JSON gateway (`/v3/*` over HTTP) fails
 * every call, gRPC works.
 *
 * tikv/pd server/config/config.go (v8.4.0+), GenEmbedEtcdConfig:
 *   // Only check client cert when there are multiple CNs.
 *   if len(c.Security.CertAllowedCNs) > 1 { cfg.ClientTLSInfo.AllowedCNs = c.Security.CertAllowedCNs }
 * etcd v3.5 server/embed/etcd.go grpcGatewayDial:
 *   tlscfg, tlsErr := e.cfg.ClientTLSInfo.ServerConfig() … dtls := tlscfg.Clone()
 *   // trust local server
 *   dtls.InsecureSkipVerify = true
 * client/pkg/transport/listener.go baseConfig: VerifyPeerCertificate over verifiedChains (nil with
 * InsecureSkipVerify) → errors.New("client certificate authentication failed"); the gateway's
 * connection logs "grpc: addrConn.createTransport failed to connect … authentication handshake
 * failed" (etcd-io/etcd#15755) and grpc-gateway answers codes.Unavailable (14) as HTTP 503.
 * PD's own HTTP API and clientv3 (TiUP, pd-ctl, etcdctl) are unaffected.
 *
 * The PDs here run the real etcd under the emulator, and tiseal's own gRPC client (src/pd) is
 * checked against them.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { GATEWAY_DIAL_ERROR } from '../../lab/emulators/pd/etcd-grpc';
import { PdClient } from '../../src/pd/client';
import { buildEmulators, curl, loopbackNet, Pki, Proc, startPd, stopAll, tmpDir, waitFor } from './helpers';

jest.setTimeout(120000);

const IP = loopbackNet(__filename);
let build: string;
let base: string;
let pki: Pki;
let pd: { cert: string; key: string };
let tiseal: { cert: string; key: string };

const CNS = ['pd', 'tikv', 'tidb', 'tiseal'];

function pdAt(n: number, o: { scheme?: 'http' | 'https'; allowed?: string[]; version?: string; join?: number } = {}): Proc {
  const scheme = o.scheme ?? 'https';
  const sec = scheme === 'https'
    ? `[security]\ncacert-path = "${pki.ca}"\ncert-path = "${pd.cert}"\nkey-path = "${pd.key}"\n` +
      (o.allowed ? `cert-allowed-cn = [${o.allowed.map((c) => JSON.stringify(c)).join(', ')}]\n` : '')
    : '';
  return startPd({ build, base, ip: IP }, n, {
    scheme, toml: sec, version: o.version ?? 'v8.5.1', cluster: o.join ? [`--join=${scheme}://${IP(o.join)}:2379`] : undefined,
  });
}

const withCert = (c: { cert: string; key: string }) => ({ ca: pki.ca, cert: c.cert, key: c.key });
const tisealTls = () => ({ ca: fs.readFileSync(pki.ca), cert: fs.readFileSync(tiseal.cert), key: fs.readFileSync(tiseal.key) });
const gatewayList = (n: number, scheme = 'https') => curl(`${scheme}://${IP(n)}:2379/v3/cluster/member/list`, { ...withCert(tiseal), method: 'POST', data: '{}' });
const up = (n: number, scheme = 'https') =>
  waitFor(`pd-${n} up`, () => curl(`${scheme}://${IP(n)}:2379/pd/api/v1/members`, withCert(tiseal)).http === 200 || undefined, 30000).catch((e: Error) => {
    const log = path.join(base, `pd-${n}`, 'log/pd.log');
    throw new Error(`${e.message}\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-3000) : ''}`);
  });

beforeAll(() => {
  build = buildEmulators();
  base = tmpDir('pdgw');
  pki = new Pki(path.join(base, 'tls'));
  pd = pki.issue('pd', 'pd', [1, 2, 3, 4, 5].map(IP));
  tiseal = pki.issue('tiseal', 'tiseal', []);
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(base, { recursive: true, force: true });
});

test('v8.5 with several CNs: every /v3 gateway call fails with 503, gRPC (etcdctl, tiseal) and the PD API work; joins go over gRPC', async () => {
  const p1 = pdAt(1, { allowed: CNS });
  await up(1);
  const gw = gatewayList(1);
  expect(gw.http).toBe(503);
  expect(JSON.parse(gw.body)).toEqual({ error: GATEWAY_DIAL_ERROR, code: 14, message: GATEWAY_DIAL_ERROR });
  const put = curl(`https://${IP(1)}:2379/v3/kv/put`, { ...withCert(tiseal), method: 'POST', data: JSON.stringify({ key: 'YQ==', value: 'Yg==' }) });
  expect(put.http).toBe(503);

  const ctl = spawnSync('etcdctl', ['--endpoints', `https://${IP(1)}:2379`, '--cacert', pki.ca, '--cert', tiseal.cert, '--key', tiseal.key, 'member', 'list'], {
    encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' },
  });
  expect(ctl.stdout).toContain(`pd-1, https://${IP(1)}:2380, https://${IP(1)}:2379`);

  // A second PD joins through pd-1 (member list/add over gRPC, as PD's join.go does with clientv3).
  const p2 = pdAt(2, { allowed: CNS, join: 1 });
  await up(2);
  const client = new PdClient([`${IP(1)}:2379`], tisealTls(), { tlsOnly: 'test' });
  await waitFor('pd-2 listed with its name', async () => (await client.etcdMembers()).some((m) => m.name === 'pd-2') || undefined, 30000);

  // tiseal: member list and update over gRPC, IDs exact (uint64 as decimal strings).
  const members = await client.etcdMembers();
  const one = members.find((m) => m.name === 'pd-1')!;
  expect(one.id).toMatch(/^\d+$/);
  expect(BigInt(one.id) > 0n).toBe(true);
  expect(one.peerUrls).toEqual([`https://${IP(1)}:2380`]);
  expect(one.clientUrls).toEqual([`https://${IP(1)}:2379`]);
  await client.etcdMemberUpdate(one.id, [`https://${IP(1)}:2380`]);
  expect(client.scheme).toBe('https');
  // What etcd answers as an error is reported as PD's refusal, not as "unreachable".
  await expect(client.etcdMemberUpdate('12345', [`https://${IP(1)}:2380`])).rejects.toThrow(/refused etcd member update 12345: .*member not found/);

  // Leader transfer (MoveLeader to the leader's client URL over gRPC) works too.
  const leaderName = async () => JSON.parse(curl(`https://${IP(1)}:2379/pd/api/v1/leader`, withCert(tiseal)).body).name as string;
  const target = (await leaderName()) === 'pd-1' ? 'pd-2' : 'pd-1';
  expect(curl(`https://${IP(2)}:2379/pd/api/v1/leader/transfer/${target}`, { ...withCert(tiseal), method: 'POST' }).http).toBe(200);
  await waitFor(`leader ${target}`, async () => (await leaderName()) === target || undefined, 20000);
  await p2.stop();
  await p1.stop();
});

test('the gateway still works with one CN, before v8.4, and on a plaintext client port', async () => {
  const one = pdAt(3, { allowed: ['tiseal'] });
  const old = pdAt(4, { allowed: ['pd'], version: 'v8.1.2' });
  const plain = pdAt(5, { scheme: 'http' });
  await Promise.all([up(3), up(4), up(5, 'http')]);
  for (const [n, scheme] of [[3, 'https'], [4, 'https'], [5, 'http']] as const) {
    const r = gatewayList(n, scheme);
    expect([n, r.http]).toEqual([n, 200]);
    expect(JSON.parse(r.body).members[0].name).toBe(`pd-${n}`);
  }
  // tiseal over h2c before TLS: the scheme fallback finds http.
  const client = new PdClient([`${IP(5)}:2379`], tisealTls());
  expect((await client.etcdMembers()).map((m) => m.name)).toEqual(['pd-5']);
  expect(client.scheme).toBe('http');
  await Promise.all([one.stop(), old.stop(), plain.stop()]);
});
