import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseJsonLossless } from '../../lab/emulators/common/json';
import { buildEmulators, curl, loopbackNet, Pki, Proc, startPd, stopAll, tmpDir, waitFor } from './helpers';

jest.setTimeout(120000);

const IP = loopbackNet(__filename);
let build: string;
let base: string;
let pki: Pki;
let pd: { cert: string; key: string };
let client: { cert: string; key: string };
let tidb: { cert: string; key: string };

function tlsToml(allowed?: string[]): string {
  return (
    `[security]\ncacert-path = "${pki.ca}"\ncert-path = "${pd.cert}"\nkey-path = "${pd.key}"\n` +
    (allowed ? `cert-allowed-cn = [${allowed.map((c) => JSON.stringify(c)).join(', ')}]\n` : '')
  );
}

function pdAt(n: number, scheme: 'http' | 'https', toml: string, version = 'v8.5.1', dir = `pd-${n}`, extra: string[] = []): Proc {
  return startPd({ build, base, ip: IP }, n, { scheme, toml, version, dir, extra });
}

const withCert = (c: { cert: string; key: string }) => ({ ca: pki.ca, cert: c.cert, key: c.key });

beforeAll(() => {
  build = buildEmulators();
  base = tmpDir('pdtls');
  pki = new Pki(path.join(base, 'tls'));
  pd = pki.issue('pd', 'pd', [1, 2, 3, 4, 5, 6].map(IP));
  client = pki.issue('client', 'client', []);
  tidb = pki.issue('tidb', 'tidb', []);
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(base, { recursive: true, force: true });
});

test('https PD requires a client certificate; etcdctl works over TLS through the client port', async () => {
  const p = pdAt(1, 'https', tlsToml());
  const url = `https://${IP(1)}:2379/pd/api/v1/members`;
  await waitFor('TLS PD up', () => curl(url, withCert(client)).http === 200 || undefined);
  const noCert = curl(url, { ca: pki.ca });
  expect(noCert.code).not.toBe(0);
  expect(noCert.http).toBe(0);
  const plain = curl(`http://${IP(1)}:2379/pd/api/v1/members`);
  expect(plain.http).not.toBe(200);
  const m = parseJsonLossless(curl(url, withCert(client)).body) as Record<string, unknown>;
  expect((m.members as Record<string, unknown>[])[0].client_urls).toEqual([`https://${IP(1)}:2379`]);
  const r = spawnSync('etcdctl', ['--endpoints', `https://${IP(1)}:2379`, '--cacert', pki.ca, '--cert', client.cert, '--key', client.key, 'member', 'list'], {
    encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' },
  });
  expect(r.stdout).toContain(`pd-1, https://${IP(1)}:2380, https://${IP(1)}:2379`);
  await p.stop();
});

test('https client URL without certificates fails like etcd/PD', async () => {
  const p = pdAt(2, 'https', '');
  expect(await p.exited).toBe(1);
  expect(p.output()).toContain(`TLS key/cert (--cert-file, --key-file) must be provided for client url https://${IP(2)}:2379 with HTTPS scheme`);
});

test('cert-allowed-cn before v8.4.0: one CN only (refused at start, not by --config-check), not checked on the client port', async () => {
  // tikv/pd v8.1.0 server/config/config.go GenEmbedEtcdConfig → grpcutil GetOneAllowedCN
  // (errs.ErrSecurityConfig "security config error: %s", "only supports one CN") runs in
  // CreateServer; cmd/pd-server/main.go handles --config-check before it.
  const check = pdAt(3, 'https', tlsToml(['pd', 'tidb']), 'v8.1.2', 'pd-3-check', ['--config-check']);
  expect(await check.exited).toBe(0);
  expect(check.output()).toContain('config check successful');
  const two = pdAt(3, 'https', tlsToml(['pd', 'tidb']), 'v8.1.2');
  expect(await two.exited).toBe(1);
  expect(two.output()).toMatch(/\["create server failed"\] \[error="\[PD:grpcutil:ErrSecurityConfig\]security config error: only supports one CN"\]/);
  const p = pdAt(3, 'https', tlsToml(['pd']), 'v8.1.2', 'pd-3b');
  const url = `https://${IP(3)}:2379/pd/api/v1/members`;
  await waitFor('v8.1 PD up', () => curl(url, withCert(client)).http === 200 || undefined);
  // CN "client" is not in the list, yet the client port lets it in (only the peer port checks it).
  expect(curl(url, withCert(client)).http).toBe(200);
  await p.stop();
});

test('cert-allowed-cn from v8.4.0: several CNs, checked on the client port', async () => {
  const p = pdAt(4, 'https', tlsToml(['pd', 'tidb']), 'v8.5.1');
  const url = `https://${IP(4)}:2379/pd/api/v1/members`;
  await waitFor('v8.5 PD up', () => curl(url, withCert(tidb)).http === 200 || undefined);
  const denied = curl(url, withCert(client));
  expect(denied.http).not.toBe(200);
  expect(denied.code).not.toBe(0);
  expect(curl(url, withCert(pd)).http).toBe(200);
  await p.stop();
});

// tikv/pd v8.5.1 server/config/config.go GenEmbedEtcdConfig: "Only check client cert when there
// are multiple CNs" — `if len(c.Security.CertAllowedCNs) > 1 { cfg.ClientTLSInfo.AllowedCNs = … }`.
test('cert-allowed-cn from v8.4.0 with one CN: the client port takes any certificate of the CA', async () => {
  const p = pdAt(6, 'https', tlsToml(['pd']), 'v8.5.1');
  const url = `https://${IP(6)}:2379/pd/api/v1/members`;
  await waitFor('v8.5 PD up', () => curl(url, withCert(pd)).http === 200 || undefined);
  expect(curl(url, withCert(client)).http).toBe(200);
  expect(curl(url, { ca: pki.ca }).http).not.toBe(200); // still a client certificate, though
  await p.stop();
});

test('stored peer URLs win over the config after a switch to https, until member update', async () => {
  const first = pdAt(5, 'http', '');
  await waitFor('http PD up', () => curl(`http://${IP(5)}:2379/pd/api/v1/members`).http === 200 || undefined);
  await first.stop();
  // Same data dir, now everything https.
  const second = pdAt(5, 'https', tlsToml());
  const url = `https://${IP(5)}:2379`;
  await waitFor('https PD up', () => curl(`${url}/pd/api/v1/members`, withCert(client)).http === 200 || undefined);
  const list = () => JSON.parse(curl(`${url}/v3/cluster/member/list`, { ...withCert(client), method: 'POST', data: '{}' }).body);
  const before = list().members[0];
  expect(before.peerURLs).toEqual([`http://${IP(5)}:2380`]);
  // The client URL is republished by etcd on start; the peer URL is not.
  expect(before.clientURLs).toEqual([`https://${IP(5)}:2379`]);
  const upd = curl(`${url}/v3/cluster/member/update`, { ...withCert(client), method: 'POST', data: JSON.stringify({ ID: before.ID, peerURLs: [`https://${IP(5)}:2380`] }) });
  expect(upd.http).toBe(200);
  expect(list().members[0].peerURLs).toEqual([`https://${IP(5)}:2380`]);
  const m = parseJsonLossless(curl(`${url}/pd/api/v1/members`, withCert(client)).body) as Record<string, unknown>;
  expect((m.members as Record<string, unknown>[])[0].peer_urls).toEqual([`https://${IP(5)}:2380`]);
  await second.stop();
});
