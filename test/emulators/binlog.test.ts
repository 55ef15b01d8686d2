/**
 * Pump and Drainer emulators against pingcap/tidb-binlog (master, ec3adceb):
 * - pkg/security/security.go ToTLSConfig: TLS only with `ssl-ca`; `ClientCAs` without `ClientAuth`
 *   (no client certificate asked) unless `cert-allowed-cn`, then RequireAndVerifyClientCert and
 *   "client certificate authentication failed. The Common Name from the client certificate …";
 * - pump/config.go, drainer/config.go: Go flags, util.StrictDecodeFile ("component pump's config
 *   file … contained unknown configuration options: …"), "tls config {…} error could not read ca
 *   certificate: …", cmd/{pump,drainer}/main.go log.Fatal("verifying flags failed…") = exit 1;
 * - PD is dialled twice: PD's Go client (tikv/pd client/grpcutil GetClientConn: TLS from `ssl-ca`,
 *   scheme ignored; "[pd] failed to get cluster id" → "creating pump server failed", exit 1) and
 *   clientv3 for the node registry (etcd v3.5.2 client/v3/internal/endpoint: `http` → CREDS_DROP,
 *   so a TLS pump given http:// PD URLs talks plaintext to a TLS PD: "fail to register node to
 *   etcd: context deadline exceeded" → "start pump server failed", exit 2).
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { buildEmulators, curl, loopbackNet, Pki, Proc, startEmulator, startPd, stopAll, tmpDir, waitFor, writeFile } from './helpers';

jest.setTimeout(150000);

const IP = loopbackNet(__filename);
let build: string;
let base: string;
let pki: Pki;
const certs: Record<string, { cert: string; key: string }> = {};
const PLAIN_PD = (): string => `${IP(1)}:2379`;
const TLS_PD = (): string => `${IP(2)}:2379`;
const security = (role: string, extra = ''): string =>
  `[security]\nssl-ca = "${pki.ca}"\nssl-cert = "${certs[role].cert}"\nssl-key = "${certs[role].key}"\n${extra}`;

const pdAt = (n: number, scheme: 'http' | 'https', toml: string): Proc => startPd({ build, base, ip: IP }, n, { scheme, toml, version: 'v8.1.2' });

/** The flags TiUP's run_pump.sh / run_drainer.sh pass (embed/templates/scripts/run_*.sh.tpl). */
function binlog(role: 'pump' | 'drainer', pdUrls: string, toml: string, opts: { version?: string; extra?: string[] } = {}): Proc {
  const n = role === 'pump' ? 50 : 60;
  const port = role === 'pump' ? 8250 : 8249;
  const dir = path.join(base, `${role}-${Math.random().toString(36).slice(2, 8)}`);
  writeFile(path.join(dir, `conf/${role}.toml`), toml);
  const self = `${IP(n)}:${port}`;
  const args = [`--node-id=${self}`, `--addr=${role === 'pump' ? `0.0.0.0:${port}` : self}`, ...(role === 'pump' ? [`--advertise-addr=${self}`] : []),
    `--pd-urls=${pdUrls}`, `--data-dir=${path.join(dir, 'data')}`, `--log-file=${path.join(dir, 'log', `${role}.log`)}`, `--config=conf/${role}.toml`, ...(opts.extra ?? [])];
  return startEmulator(build, role, args, { cwd: dir, version: opts.version ?? 'v8.1.2', env: { TISEAL_EMULATOR_BOOT_TIMEOUT_MS: '3000' } });
}

/** etcd keys under /tidb-binlog/v1/<kind>/ on the plaintext or the TLS PD (through its JSON gateway). */
function registered(kind: 'pumps' | 'drainers', tlsPd: boolean): string[] {
  const key = Buffer.from(`/tidb-binlog/v1/${kind}/`).toString('base64');
  const end = Buffer.from(`/tidb-binlog/v1/${kind}0`).toString('base64');
  const data = JSON.stringify({ key, range_end: end });
  const r = tlsPd
    ? curl(`https://${TLS_PD()}/v3/kv/range`, { ca: pki.ca, ...certs.client, method: 'POST', data })
    : curl(`http://${PLAIN_PD()}/v3/kv/range`, { method: 'POST', data });
  return ((JSON.parse(r.body).kvs ?? []) as { key: string }[]).map((kv) => Buffer.from(kv.key, 'base64').toString());
}

beforeAll(async () => {
  build = buildEmulators();
  base = tmpDir('binlog');
  pki = new Pki(path.join(base, 'tls'));
  for (const [name, n] of [['pd', 2], ['pump', 50], ['drainer', 60], ['client', 0], ['prometheus', 0]] as const) certs[name] = pki.issue(name, name, n ? [IP(n)] : []);
  pdAt(1, 'http', '');
  pdAt(2, 'https', `[security]\ncacert-path = "${pki.ca}"\ncert-path = "${certs.pd.cert}"\nkey-path = "${certs.pd.key}"\n`);
  await waitFor('PDs up', () => (curl(`http://${PLAIN_PD()}/pd/api/v1/members`).http === 200 &&
    curl(`https://${TLS_PD()}/pd/api/v1/members`, { ca: pki.ca, ...certs.client }).http === 200) || undefined, 30000);
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(base, { recursive: true, force: true });
});

describe('pump', () => {
  const url = (scheme: string): string => `${scheme}://${IP(50)}:8250/status`;

  test('plaintext: TiUP\'s flags, registered in PD\'s etcd, /status over http', async () => {
    const p = binlog('pump', `http://${PLAIN_PD()}`, '[storage]\nstop-write-at-available-space = "1 mib"\n');
    await waitFor('pump status', () => curl(url('http')).http === 200 || undefined);
    expect(JSON.parse(curl(url('http')).body).status[`${IP(50)}:8250`]).toMatchObject({ state: 'online', host: `${IP(50)}:8250` });
    expect(registered('pumps', false)).toContain(`/tidb-binlog/v1/pumps/${IP(50)}:8250`);
    await p.stop();
  });

  test('the TSO comes from the leader: a PD member answering 503 ("not leader") is passed over', async () => {
    // A follower that sorts first (pkg/types NewURLs sorts the PD URLs): members yes, TSO no, as PD answers.
    const follower = http.createServer((req, res) => {
      if (req.url === '/pd/api/v1/members') res.end(curl(`http://${PLAIN_PD()}/pd/api/v1/members`).body);
      else res.writeHead(503).end('"[PD:tso:ErrGenerateTimestamp]not leader"');
    });
    await new Promise<void>((r) => follower.listen(1379, IP(1), r));
    try {
      const p = binlog('pump', `http://${PLAIN_PD()},http://${IP(1)}:1379`, '');
      await waitFor('pump status', () => curl(url('http')).http === 200 || undefined);
      await p.stop();
    } finally {
      follower.close();
    }
  });

  test('[security] + https PD URLs: TLS port; no client certificate asked without cert-allowed-cn', async () => {
    const p = binlog('pump', `https://${TLS_PD()}`, security('pump'));
    await waitFor('pump https status', () => curl(url('https'), { ca: pki.ca }).http === 200 || undefined);
    expect(curl(url('http')).http).not.toBe(200);
    expect(registered('pumps', true)).toContain(`/tidb-binlog/v1/pumps/${IP(50)}:8250`);
    await p.stop();
  });

  test('cert-allowed-cn: a client certificate is required and a CN of its chain must be listed', async () => {
    const p = binlog('pump', `https://${TLS_PD()}`, security('pump', 'cert-allowed-cn = ["drainer", "tidb"]\n'));
    await waitFor('pump https status', () => curl(url('https'), { ca: pki.ca, ...certs.drainer }).http === 200 || undefined);
    expect(curl(url('https'), { ca: pki.ca }).http).not.toBe(200);
    expect(curl(url('https'), { ca: pki.ca, ...certs.prometheus }).http).not.toBe(200);
    await p.stop();
    expect(p.output()).toContain('client certificate authentication failed. The Common Name from the client certificate [prometheus tiseal-test-ca] was not found in the configuration cluster-verify-cn with value: [drainer tidb]');
  });

  test('TLS with the run script still on http:// (clientv3 drops TLS for http): exits 2, never serves', async () => {
    const p = binlog('pump', `http://${TLS_PD()}`, security('pump'));
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/\[ERROR\].*\["start pump server failed"\] \[error="fail to register node to etcd: context deadline exceeded"\]/);
    expect(curl(url('https'), { ca: pki.ca }).http).not.toBe(200);
  });

  test('no TLS with https:// PD URLs: PD\'s client cannot get the cluster id, exits 1', async () => {
    const p = binlog('pump', `https://${TLS_PD()}`, '');
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/\[FATAL\].*\["creating pump server failed"\] \[error="\[pd\] failed to get cluster id"\]/);
  });

  test('ssl-cert/ssl-key without ssl-ca: TLS stays off (ToTLSConfig returns nil)', async () => {
    const p = binlog('pump', `http://${PLAIN_PD()}`, `[security]\nssl-cert = "${certs.pump.cert}"\nssl-key = "${certs.pump.key}"\n`);
    await waitFor('pump status', () => curl(url('http')).http === 200 || undefined);
    await p.stop();
  });

  test('strict pump.toml, unreadable CA, unknown flag, version without TiDB Binlog', async () => {
    const bad = binlog('pump', `http://${PLAIN_PD()}`, '[security]\nssl_ca = "x"\n');
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toContain("[\"verifying flags failed. See 'pump --help'.\"] [error=\"component pump's config file conf/pump.toml contained unknown configuration options: security.ssl_ca\"]");
    const ca = binlog('pump', `https://${TLS_PD()}`, '[security]\nssl-ca = "/nonexistent/ca.crt"\n');
    expect(await ca.exited).toBe(1);
    expect(ca.output()).toContain('tls config {SSLCA:/nonexistent/ca.crt SSLCert: SSLKey: CertAllowedCN:[]} error could not read ca certificate: open /nonexistent/ca.crt: no such file or directory');
    const flag = binlog('pump', `http://${PLAIN_PD()}`, '', { extra: ['--ca=x'] });
    expect(await flag.exited).toBe(2);
    expect(flag.output()).toContain('flag provided but not defined: -ca');
    const gone = binlog('pump', `http://${PLAIN_PD()}`, '', { version: 'v8.4.0' });
    expect(await gone.exited).toBe(127);
  });
});

describe('drainer', () => {
  const url = (scheme: string): string => `${scheme}://${IP(60)}:8249/status`;
  const fileSink = '[syncer]\ndb-type = "file"\n';

  test('plaintext with a file downstream: registered, /status over http', async () => {
    const p = binlog('drainer', `http://${PLAIN_PD()}`, fileSink);
    await waitFor('drainer status', () => curl(url('http')).http === 200 || undefined);
    expect(registered('drainers', false)).toContain(`/tidb-binlog/v1/drainers/${IP(60)}:8249`);
    await p.stop();
  });

  test('TLS: https PD URLs serve TLS; http ones exit 2 at registration; the default MySQL downstream must be reachable', async () => {
    const ok = binlog('drainer', `https://${TLS_PD()}`, `${fileSink}${security('drainer', 'cert-allowed-cn = ["pump"]\n')}`);
    await waitFor('drainer https status', () => curl(url('https'), { ca: pki.ca, ...certs.pump }).http === 200 || undefined);
    expect(curl(url('https'), { ca: pki.ca, ...certs.client }).http).not.toBe(200);
    await ok.stop();
    const wrong = binlog('drainer', `http://${TLS_PD()}`, `${fileSink}${security('drainer')}`);
    expect(await wrong.exited).toBe(2);
    expect(wrong.output()).toMatch(/\["start drainer server failed"\] \[error="context deadline exceeded"\]/);
    const mysql = binlog('drainer', `http://${PLAIN_PD()}`, `[syncer.to]\nhost = "${IP(61)}"\nport = 3306\n`);
    expect(await mysql.exited).toBe(1);
    expect(mysql.output()).toContain(`["create drainer server failed"] [error="dial tcp ${IP(61)}:3306: connect: connection refused"]`);
  });
});
