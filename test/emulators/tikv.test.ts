import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseJsonLossless } from '../../lab/emulators/common/json';
import { buildEmulators, curl, EmuEnv, loopbackNet, openssl, Pki, Proc, startEmulator, startPd, startTikv, stopAll, tmpDir, waitFor, writeFile } from './helpers';

jest.setTimeout(150000);

const IP = loopbackNet(__filename);
let build: string;
let base: string;
let pki: Pki;
let pdCert: { cert: string; key: string };
let client: { cert: string; key: string };

const env = (): EmuEnv => ({ build, base, ip: IP });
const pdAt = (n: number, scheme: 'http' | 'https', toml: string): Proc => startPd(env(), n, { scheme, toml });
const tikvAt = (n: number, pd: string, toml: string, dir = `tikv-${n}`): Proc => startTikv(env(), n, { pd, toml, dir, advertise: true });

function stores(url: string, tls = false): Record<string, unknown>[] {
  const r = curl(`${url}/pd/api/v1/stores`, tls ? { ca: pki.ca, cert: client.cert, key: client.key } : {});
  if (r.http !== 200) throw new Error(`stores: ${r.http} ${r.body}`);
  return ((parseJsonLossless(r.body) as Record<string, unknown>).stores as Record<string, unknown>[]).map((s) => s.store as Record<string, unknown>);
}

const secToml = (c: { cert: string; key: string }, extra = ''): string =>
  `[security]\nca-path = "${pki.ca}"\ncert-path = "${c.cert}"\nkey-path = "${c.key}"\n${extra}`;

const PLAIN_PD = (): string => `${IP(1)}:2379`;

beforeAll(async () => {
  build = buildEmulators();
  base = tmpDir('tikv');
  pki = new Pki(path.join(base, 'tls'));
  pdCert = pki.issue('pd', 'pd', [IP(2)]);
  client = pki.issue('client', 'client', []);
  pdAt(1, 'http', '[schedule]\nmax-store-down-time = "6s"\n');
  pdAt(2, 'https', `[security]\ncacert-path = "${pki.ca}"\ncert-path = "${pdCert.cert}"\nkey-path = "${pdCert.key}"\n`);
  await waitFor('PDs up', () => curl(`http://${PLAIN_PD()}/pd/api/v1/members`).http === 200 &&
    curl(`https://${IP(2)}:2379/pd/api/v1/members`, { ca: pki.ca, cert: client.cert, key: client.key }).http === 200 || undefined, 30000);
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(base, { recursive: true, force: true });
});

test('config errors exit 1 with TiKV messages', async () => {
  const onlyCa = tikvAt(20, PLAIN_PD(), `[security]\nca-path = "${pki.ca}"\n`);
  const missing = tikvAt(21, PLAIN_PD(), secToml({ cert: path.join(base, 'nope.crt'), key: client.key }));
  const flag = startEmulator(build, 'tikv-server', ['--adress', 'x'], { cwd: base });
  const noPd = startEmulator(build, 'tikv-server', ['--addr', `${IP(22)}:20160`], { cwd: base });
  expect(await onlyCa.exited).toBe(1);
  expect(onlyCa.output()).toContain('invalid configuration: ca, cert and private key should be all configured.');
  expect(await missing.exited).toBe(1);
  expect(missing.output().replace(/\\"/g, '"')).toContain(`invalid configuration: failed to open ${path.join(base, 'nope.crt')} to load cert key: Os { code: 2, kind: NotFound, message: "No such file or directory" }`);
  expect(await flag.exited).toBe(1);
  expect(flag.output()).toContain("error: Found argument '--adress' which wasn't expected");
  expect(await noPd.exited).toBe(1);
  expect(noPd.output()).toContain('please specify pd.endpoints.');
});

test('a TiKV heartbeats to PD and is Up; a restart keeps its store id', async () => {
  const kv = tikvAt(10, `http://${PLAIN_PD()}`, '[server]\nlabels = { zone = "z1" }\n');
  const s = await waitFor('store Up', () => stores(`http://${PLAIN_PD()}`).find((x) => x.address === `${IP(10)}:20160` && x.state_name === 'Up'));
  expect(s).toMatchObject({ status_address: `${IP(10)}:20180`, version: '8.5.1', labels: [{ key: 'zone', value: 'z1' }] });
  expect(typeof s.last_heartbeat).toBe('bigint');
  // TiKV opens its status port last (components/server/src/server.rs: run_status_server after node.start), so Up in PD comes first.
  await waitFor('status port', () => curl(`http://${IP(10)}:20180/status`).http === 200 || undefined);
  await kv.stop();
  tikvAt(10, PLAIN_PD(), '[server]\nlabels = { zone = "z1" }\n');
  await waitFor('status port back', () => curl(`http://${IP(10)}:20180/status`).http === 200 || undefined);
  const all = stores(`http://${PLAIN_PD()}`).filter((x) => x.address === `${IP(10)}:20160`);
  expect(all.map((x) => x.id)).toEqual([s.id]);
});

test('a TiKV with TLS against a plaintext PD never heartbeats: the store goes Down', async () => {
  const first = tikvAt(11, PLAIN_PD(), '');
  const s = await waitFor('store Up', () => stores(`http://${PLAIN_PD()}`).find((x) => x.address === `${IP(11)}:20160` && x.state_name === 'Up'));
  await first.stop();
  const kv11 = pki.issue('tikv-11', 'tikv', [IP(11)]);
  const tlsKv = tikvAt(11, PLAIN_PD(), secToml(kv11));
  await waitFor('store Down', () => stores(`http://${PLAIN_PD()}`).find((x) => x.id === s.id && x.state_name === 'Down'), 20000, 500);
  expect(tlsKv.exitCode()).toBeUndefined();
  expect(tlsKv.output()).toContain('PD failed to respond');
  // Like TiKV, no port is open while PD cannot be reached.
  expect(curl(`http://${IP(11)}:20180/status`).code).not.toBe(0);
});

test('TLS TiKV: Up through a TLS PD, CN rules, and certificate reload on mtime change', async () => {
  const kv = pki.issue('tikv-12', 'tikv', [IP(12)], '0x1001');
  const cnList = 'cert-allowed-cn = ["tidb", "pd", "tikv"]\n';
  tikvAt(12, `${IP(2)}:2379`, secToml(kv, cnList));
  await waitFor('TLS store Up', () => stores(`https://${IP(2)}:2379`, true).find((x) => x.address === `${IP(12)}:20160` && x.state_name === 'Up'));
  await waitFor('TLS status port', () => curl(`https://${IP(12)}:20180/status`, { ca: pki.ca, cert: client.cert, key: client.key }).http === 200 || undefined);
  const serial = (): string => {
    const r = spawnSync('openssl', ['s_client', '-connect', `${IP(12)}:20160`, '-CAfile', pki.ca, '-cert', client.cert, '-key', client.key], { input: '', encoding: 'utf8', timeout: 10000 });
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
    if (!pem) throw new Error(`no certificate from s_client: ${r.stderr}`);
    const out = spawnSync('openssl', ['x509', '-noout', '-serial'], { input: pem, encoding: 'utf8' });
    return out.stdout.trim();
  };
  expect(serial()).toBe('serial=1001');
  // Status port: /status is exempt from the CN check, other paths need an allowed CN.
  const tikvClient = { ca: pki.ca, cert: kv.cert, key: kv.key };
  expect(curl(`https://${IP(12)}:20180/status`, { ca: pki.ca, cert: client.cert, key: client.key }).http).toBe(200);
  expect(curl(`https://${IP(12)}:20180/debug/store`, { ca: pki.ca, cert: client.cert, key: client.key }).http).toBe(403);
  expect(curl(`https://${IP(12)}:20180/debug/store`, tikvClient).http).toBe(200);
  // tikv v8.5.0 src/server/status_server/mod.rs should_check_cert: only GET /metrics, /status,
  // /config and /debug/pprof/profile skip the check; POST /config ("will modify the configuration") does not.
  expect(curl(`https://${IP(12)}:20180/config`, { ca: pki.ca, cert: client.cert, key: client.key }).http).toBe(200);
  const post = curl(`https://${IP(12)}:20180/config`, { ca: pki.ca, cert: client.cert, key: client.key, method: 'POST', data: '{}' });
  expect(`${post.http} ${post.body}`).toBe('403 certificate role error');
  expect(curl(`https://${IP(12)}:20180/status`, { ca: pki.ca }).code).not.toBe(0);
  // The server port checks the CN after the handshake (gRPC: "Common name check fail").
  const ping = (cert: string, key: string): string =>
    spawnSync('openssl', ['s_client', '-quiet', '-connect', `${IP(12)}:20160`, '-CAfile', pki.ca, '-cert', cert, '-key', key], { input: 'ping\n', encoding: 'utf8', timeout: 10000 }).stdout;
  expect(ping(client.cert, client.key)).toContain('Common name check fail');
  expect(ping(kv.cert, kv.key)).toMatch(/^pong tikv 8\.5\.1 store=\d+/);
  // No client certificate: the handshake itself fails.
  const anon = spawnSync('openssl', ['s_client', '-connect', `${IP(12)}:20160`, '-CAfile', pki.ca], { input: 'ping\n', encoding: 'utf8', timeout: 10000 });
  expect(anon.stdout + anon.stderr).not.toContain('pong');
  // Re-issue into the same files (key first, cert last: TiKV watches the cert's mtime).
  const next = pki.issue('tikv-12-next', 'tikv', [IP(12)], '0x2002');
  fs.copyFileSync(next.key, kv.key);
  fs.copyFileSync(next.cert, kv.cert);
  await waitFor('new serial', () => serial() === 'serial=2002' || undefined, 10000);
  expect(openssl(['x509', '-in', kv.cert, '-noout', '-serial']).trim()).toBe('serial=2002');
});

test('encryption at rest: master key file format and the key dictionary', async () => {
  const keyA = writeFile(path.join(base, 'keys/a.key'), 'a'.repeat(64) + '\n');
  const keyB = writeFile(path.join(base, 'keys/b.key'), 'b'.repeat(64) + '\n');
  const short = writeFile(path.join(base, 'keys/short.key'), 'a'.repeat(64));
  const bad = writeFile(path.join(base, 'keys/bad.key'), 'g'.repeat(64) + '\n');
  const enc = (master: string, prev?: string, method = 'aes256-ctr'): string =>
    `[security.encryption]\ndata-encryption-method = "${method}"\n[security.encryption.master-key]\ntype = "file"\npath = "${master}"\n` +
    (prev ? `[security.encryption.previous-master-key]\ntype = "file"\npath = "${prev}"\n` : '');
  const run = async (toml: string, expectExit?: number): Promise<Proc> => {
    const p = tikvAt(13, PLAIN_PD(), toml, 'tikv-enc');
    if (expectExit !== undefined) {
      expect(await p.exited).toBe(expectExit);
    } else {
      await waitFor('TiKV started', () => curl(`http://${IP(13)}:20180/status`).http === 200 || undefined);
      await p.stop();
    }
    return p;
  };
  expect((await run(enc(short), 1)).output()).toContain('mismatch master key file size, expected 65, actual 64.');
  expect((await run(enc(bad), 1)).output()).toContain("failed to decode master key from file: Invalid character 'g' at position 0");
  const badMethod = await run('[security.encryption]\ndata-encryption-method = "aes512-ctr"\n', 1);
  expect(badMethod.output()).toContain('expected a encryption method');
  await run(enc(keyA));
  const wrong = await run(enc(keyB), 1);
  expect(wrong.output()).toContain('Encryption failed to initialize: Both master key failed, current key Wrong master key error decrypt in GCM mode failed');
  expect(wrong.output()).toContain('code: KV:Encryption:BothMasterKeyFail');
  // Rotation: new key as master-key, old as previous-master-key; afterwards the new key alone opens it.
  expect((await run(enc(keyB, keyA))).output()).toContain('encryption: persisted result after replace master key.');
  await run(enc(keyB));
  // A plaintext master key cannot open a dictionary written under a file key.
  const plain = await run('[security.encryption]\ndata-encryption-method = "plaintext"\n', 1);
  expect(plain.output()).toContain('encryption method mismatch');
});

test('tikv-server -V prints TiKV version format', async () => {
  const p = startEmulator(build, 'tikv-server', ['-V'], { cwd: base, version: 'v7.5.1' });
  expect(await p.exited).toBe(0);
  expect(p.output()).toMatch(/^TiKV \nRelease Version:\s+7\.5\.1/);
});
