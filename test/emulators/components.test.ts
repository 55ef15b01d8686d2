import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { parseJsonLossless } from '../../lab/emulators/common/json';
import { buildEmulators, curl, EmuEnv, loopbackNet, Pki, Proc, startEmulator, startPd, startTikv, stopAll, tmpDir, waitFor, writeFile } from './helpers';

jest.setTimeout(150000);

const IP = loopbackNet(__filename);
let build: string;
let base: string;
let pki: Pki;
let other: Pki;
const certs: Record<string, { cert: string; key: string }> = {};
const mtls = (c: { cert: string; key: string }) => ({ ca: pki.ca, cert: c.cert, key: c.key });
const TLS_PD = (): string => `${IP(2)}:2379`;
const PLAIN_PD = (): string => `${IP(1)}:2379`;
const unescape = (s: string): string => s.replace(/\\"/g, '"');

const env = (): EmuEnv => ({ build, base, ip: IP });

function stores(tlsPd: boolean): Record<string, unknown>[] {
  const r = tlsPd ? curl(`https://${TLS_PD()}/pd/api/v1/stores`, mtls(certs.client)) : curl(`http://${PLAIN_PD()}/pd/api/v1/stores`);
  return ((parseJsonLossless(r.body) as Record<string, unknown>).stores as Record<string, unknown>[]).map((s) => s.store as Record<string, unknown>);
}

beforeAll(async () => {
  build = buildEmulators();
  base = tmpDir('comp');
  pki = new Pki(path.join(base, 'tls'));
  other = new Pki(path.join(base, 'other-ca'));
  for (const [name, n] of [['pd', 2], ['tikv', 11], ['tidb', 20], ['cdc', 30], ['tiflash', 40], ['client', 0], ['prometheus', 0]] as const) {
    certs[name] = pki.issue(name, name, n ? [IP(n)] : []);
  }
  startPd(env(), 1, { toml: '' });
  startPd(env(), 2, { scheme: 'https', toml: `[security]\ncacert-path = "${pki.ca}"\ncert-path = "${certs.pd.cert}"\nkey-path = "${certs.pd.key}"\n` });
  await waitFor('PDs up', () => curl(`http://${PLAIN_PD()}/pd/api/v1/members`).http === 200 &&
    curl(`https://${TLS_PD()}/pd/api/v1/members`, mtls(certs.client)).http === 200 || undefined, 30000);
  startTikv(env(), 10, { pd: PLAIN_PD(), toml: '' });
  startTikv(env(), 11, { pd: TLS_PD(), toml: `[security]\nca-path = "${pki.ca}"\ncert-path = "${certs.tikv.cert}"\nkey-path = "${certs.tikv.key}"\n` });
  await waitFor('stores Up', () => stores(false).some((s) => s.state_name === 'Up') && stores(true).some((s) => s.state_name === 'Up') || undefined);
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(base, { recursive: true, force: true });
});

describe('cdc', () => {
  const cdc = (args: string[], toml = ''): Proc => {
    const dir = path.join(base, `cdc-${Math.random().toString(36).slice(2, 8)}`);
    writeFile(path.join(dir, 'conf/cdc.toml'), toml);
    return startEmulator(build, 'cdc', ['server', '--addr', `${IP(30)}:8300`, '--advertise-addr', `${IP(30)}:8300`,
      '--data-dir', path.join(dir, 'data'), '--config', 'conf/cdc.toml', '--log-file', 'log/cdc.log', ...args], { cwd: dir });
  };
  const tlsFlags = (): string[] => ['--ca', pki.ca, '--cert', certs.cdc.cert, '--key', certs.cdc.key];

  test('refuses an http PD URL with certificates and an https one without', async () => {
    const a = cdc(['--pd', `http://${TLS_PD()}`, ...tlsFlags()]);
    const b = cdc(['--pd', `https://${TLS_PD()}`]);
    expect(await a.exited).toBe(1);
    expect(a.output()).toContain('Error: [CDC:ErrInvalidServerOption]PD endpoint scheme should be https');
    expect(await b.exited).toBe(1);
    expect(b.output()).toContain('Error: [CDC:ErrInvalidServerOption]PD endpoint scheme should be http');
  });

  test('decodes cdc.toml strictly', async () => {
    const p = cdc(['--pd', `http://${PLAIN_PD()}`], '[security]\nca_path = "x"\n');
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain("component TiCDC server's config file conf/cdc.toml contained unknown configuration options: security.ca_path");
  });

  test('with TLS: /status over https, TLS 1.2 minimum', async () => {
    const p = cdc(['--pd', `https://${TLS_PD()}`, ...tlsFlags()]);
    await waitFor('cdc status', () => curl(`https://${IP(30)}:8300/status`, { ca: pki.ca }).http === 200 || undefined);
    const st = JSON.parse(curl(`https://${IP(30)}:8300/status`, { ca: pki.ca }).body);
    expect(st).toMatchObject({ version: 'v8.5.1', is_owner: true });
    const old = spawnSync('curl', ['-sS', '--max-time', '5', '--cacert', pki.ca, '--tlsv1.0', '--tls-max', '1.1', `https://${IP(30)}:8300/status`], { encoding: 'utf8' });
    expect(old.status).not.toBe(0);
    expect(curl(`http://${IP(30)}:8300/status`).http).not.toBe(200);
    await p.stop();
  });

  // pingcap/tiflow v8.5.0 pkg/version/check.go checkPDVersion → pkg/httputil/httputil.go NewClient →
  // pkg/security/credential.go ToTLSConfigWithVerify(CertAllowedCN): VerifyPeerCertificate on the
  // CLIENT side checks the PD server's CN; the error is ErrCheckClusterVersionFromPD and the capture stops.
  test('--cert-allowed-cn also checks the CN of the PD it dials', async () => {
    const without = cdc(['--pd', `https://${TLS_PD()}`, ...tlsFlags(), '--cert-allowed-cn', 'tiseal,prometheus']);
    expect(await without.exited).toBe(1);
    expect(without.output()).toContain('[CDC:ErrCheckClusterVersionFromPD]failed to request PD');
    expect(without.output()).toContain('The Common Name from the client certificate [pd tiseal-test-ca] was not found in the configuration cluster-verify-cn with value: [tiseal prometheus cdc]');
    const withPd = cdc(['--pd', `https://${TLS_PD()}`, ...tlsFlags(), '--cert-allowed-cn', 'pd,prometheus']);
    await waitFor('cdc status', () => curl(`https://${IP(30)}:8300/status`, { ca: pki.ca, ...certs.prometheus }).http === 200 || undefined);
    // Its own CN is added (AddSelfCommonName), the client's is not listed.
    expect(curl(`https://${IP(30)}:8300/status`, { ca: pki.ca, ...certs.cdc }).http).toBe(200);
    expect(curl(`https://${IP(30)}:8300/status`, mtls(certs.client)).http).toBe(0);
    await withPd.stop();
  });
});

describe('tidb', () => {
  // A TiDB that must give up on the cluster is given a 3 s boot budget; one that must come up keeps
  // the default (60 s): 3 s is too little for a first PD + TiKV round trip on a loaded machine.
  const tidb = (n: number, toml: string, vars: Record<string, string> = {}): Proc => {
    const dir = path.join(base, `tidb-${n}`);
    writeFile(path.join(dir, 'conf/tidb.toml'), toml);
    return startEmulator(build, 'tidb-server', ['-P', '4000', '--status=10080', `--host=${IP(n)}`, `--advertise-address=${IP(n)}`,
      '--store=tikv', `--path=${TLS_PD()}`, `--log-slow-query=${path.join(dir, 'log/slow.log')}`, '--config=conf/tidb.toml',
      '--log-file=log/tidb.log'], { cwd: dir, env: vars });
  };
  const GIVES_UP = { TISEAL_EMULATOR_BOOT_TIMEOUT_MS: '3000' };
  const clusterToml = (ca: string, c: { cert: string; key: string }, extra = ''): string =>
    `[security]\ncluster-ssl-ca = "${ca}"\ncluster-ssl-cert = "${c.cert}"\ncluster-ssl-key = "${c.key}"\n${extra}`;

  test('unknown flag exits 2 like Go flag', async () => {
    const p = startEmulator(build, 'tidb-server', ['-nope'], { cwd: base });
    expect(await p.exited).toBe(2);
    expect(p.output()).toContain('flag provided but not defined: -nope');
  });

  test('wrong cluster TLS material: no status port, exits with the reason', async () => {
    const wrong = other.issue('tidb-other', 'tidb', [IP(21)]);
    const p = tidb(21, clusterToml(other.ca, wrong), GIVES_UP);
    expect(await p.exited).toBe(1);
    expect(unescape(p.output())).toContain('PD server timeout');
    expect(curl(`https://${IP(21)}:10080/status`, { ca: pki.ca }).http).toBe(0);
    const none = tidb(22, '', GIVES_UP);
    expect(await none.exited).toBe(1);
  });

  test('right material: https status, MySQL greeting with the TiDB version', async () => {
    const p = tidb(20, clusterToml(pki.ca, certs.tidb, '[unknown]\nx = 1\n'));
    await waitFor('tidb status', () => curl(`https://${IP(20)}:10080/status`, { ca: pki.ca }).http === 200 || undefined, 60000); // a loaded machine: PD, TiKV and TiDB start together
    expect(JSON.parse(curl(`https://${IP(20)}:10080/status`, { ca: pki.ca }).body)).toMatchObject({ version: '8.0.11-TiDB-v8.5.1' });
    expect(p.output()).toContain('contained invalid configuration options: unknown, unknown.x;');
    const greeting = await new Promise<Buffer>((resolve, reject) => {
      const s = net.connect(4000, IP(20));
      s.once('data', (d: Buffer) => {
        s.destroy();
        resolve(d);
      });
      s.on('error', reject);
    });
    expect(greeting[4]).toBe(10);
    expect(greeting.subarray(5).toString('latin1')).toContain('8.0.11-TiDB-v8.5.1\0');
    expect(fs.existsSync(path.join(base, 'tidb-20/log/slow.log'))).toBe(true);
  });
});

describe('tiflash', () => {
  let seq = 0;
  const tiflash = (n: number, security: string, learnerSecurity: string, o: { version?: string; httpKey?: string } = {}): Proc => {
    const dir = path.join(base, `tiflash-${n}-${seq++}`);
    writeFile(path.join(dir, 'conf/tiflash-learner.toml'), learnerSecurity);
    writeFile(path.join(dir, 'conf/tiflash.toml'), [
      `listen_host = "${IP(n)}"`, `tmp_path = "${dir}/tmp"`, `path = "${dir}/data"`, 'tcp_port = 9000', `${o.httpKey ?? 'http_port'} = 8123`,
      '[flash]', `service_addr = "${IP(n)}:3930"`,
      '[flash.proxy]', `addr = "${IP(n)}:20170"`, `advertise-addr = "${IP(n)}:20170"`, `status-addr = "${IP(n)}:20292"`,
      `config = "${dir}/conf/tiflash-learner.toml"`, `data-dir = "${dir}/data/flash"`,
      '[logger]', `log = "${dir}/log/tiflash.log"`,
      '[raft]', `pd_addr = "${TLS_PD()}"`,
      '[status]', 'metrics_port = 8234',
      security,
    ].join('\n'));
    return startEmulator(build, 'tiflash', ['server', '--config-file', 'conf/tiflash.toml'], { cwd: dir, version: o.version });
  };
  const mainTls = (extra = '', c = certs.tiflash): string => `[security]\nca_path = "${pki.ca}"\ncert_path = "${c.cert}"\nkey_path = "${c.key}"\n${extra}`;
  const learnerTls = (): string => `[security]\nca-path = "${pki.ca}"\ncert-path = "${certs.tiflash.cert}"\nkey-path = "${certs.tiflash.key}"\n`;

  test('tiflash.toml needs underscore keys, all three', async () => {
    const partial = tiflash(41, `[security]\nca_path = "${pki.ca}"\n`, learnerTls());
    expect(await partial.exited).toBe(1);
    expect(partial.output()).toContain('ca_path, cert_path, key_path must be set at the same time.');
    const learnerPartial = tiflash(42, `[security]\nca_path = "${pki.ca}"\ncert_path = "${certs.tiflash.cert}"\nkey_path = "${certs.tiflash.key}"\n`, `[security]\ncert-path = "${certs.tiflash.cert}"\n`);
    expect(await learnerPartial.exited).toBe(1);
    expect(learnerPartial.output()).toContain('ca, cert and private key should be all configured.');
  });

  test('dashed keys in tiflash.toml are not TiFlash keys: TLS stays off and the TLS PD is unreachable', async () => {
    const p = tiflash(43, `[security]\nca-path = "${pki.ca}"\ncert-path = "${certs.tiflash.cert}"\nkey-path = "${certs.tiflash.key}"\n`, learnerTls());
    await waitFor('retrying PD', () => p.output().includes('TiFlash server cannot reach PD') || undefined);
    expect(p.output()).toContain('No security config is set.');
    expect(p.exitCode()).toBeUndefined();
    expect(stores(true).some((s) => s.address === `${IP(43)}:3930`)).toBe(false);
    await p.stop();
  });

  test('underscore keys + learner TLS: a tiflash store Up, TLS on the proxy port', async () => {
    tiflash(40, `[security]\nca_path = "${pki.ca}"\ncert_path = "${certs.tiflash.cert}"\nkey_path = "${certs.tiflash.key}"\n`, learnerTls());
    const s = await waitFor('tiflash store Up', () => stores(true).find((x) => x.address === `${IP(40)}:3930` && x.peer_address === `${IP(40)}:20170` && x.state_name === 'Up'), 20000);
    expect(s.labels).toEqual([{ key: 'engine', value: 'tiflash' }]);
    await waitFor('proxy status', () => curl(`https://${IP(40)}:20292/status`, { ca: pki.ca }).http === 200 || undefined);
    const r = spawnSync('openssl', ['s_client', '-quiet', '-connect', `${IP(40)}:20170`, '-CAfile', pki.ca, '-cert', certs.client.cert, '-key', certs.client.key], { input: 'ping\n', encoding: 'utf8', timeout: 10000 });
    expect(r.stdout).toMatch(/^pong tiflash-proxy v8\.5\.1 store=\d+/);
    // pingcap/tiflash v7.1.0 dbms/src/Server/Server.cpp: the HTTP service is gone; only tcp_port and
    // tcp_port_secure remain in the listen loop, so http_port = 8123 opens nothing, plain or TLS.
    expect(curl(`http://${IP(40)}:8123/`).code).toBe(7);
    expect(curl(`https://${IP(40)}:8123/`, mtls(certs.client)).code).toBe(7);
  });

  // pingcap/tiflash v6.5.0 dbms/src/Server/Server.cpp: no https_port and has_tls_config →
  //   throw Exception("tls config is set but https_port is not set ", ErrorCodes::INVALID_CONFIG_PARAMETER);
  test('before v7.1, TLS without https_port: TiFlash refuses to start', async () => {
    const p = tiflash(44, mainTls(), learnerTls(), { version: 'v6.5.0' });
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain('tls config is set but https_port is not set ');
  });

  // v6.5.0 Server.cpp (https_port) and MetricsPrometheus.cpp: Poco Context VERIFY_STRICT (client
  // certificate required) + setAdhocVerification(allowed_common_names.count(cert.commonName())).
  test('before v7.1, https_port and the metrics port need a client certificate with an allowed CN', async () => {
    const own = pki.issue('tiflash-45', 'tiflash', [IP(45)]);
    tiflash(45, mainTls('cert_allowed_cn = ["tidb", "prometheus"]\n', own), learnerTls(), { version: 'v6.5.0', httpKey: 'https_port' });
    await waitFor('tiflash https_port', () => curl(`https://${IP(45)}:8123/`, { ca: pki.ca, ...certs.prometheus }).http === 200 || undefined, 30000);
    for (const port of [8123, 8234]) {
      const url = `https://${IP(45)}:${port}/${port === 8234 ? 'metrics' : ''}`;
      expect(curl(url, { ca: pki.ca }).http).toBe(0);
      expect(curl(url, mtls(certs.client)).http).toBe(0);
      expect(curl(url, { ca: pki.ca, ...certs.prometheus }).http).toBe(200);
    }
    expect(curl(`http://${IP(45)}:8123/`).http).toBe(0);
  });

  test('before v7.1 without TLS: http_port serves plain HTTP', async () => {
    const dir = path.join(base, 'tiflash-plain');
    writeFile(path.join(dir, 'conf/tiflash-learner.toml'), '');
    writeFile(path.join(dir, 'conf/tiflash.toml'), [
      `listen_host = "${IP(46)}"`, `path = "${dir}/data"`, 'http_port = 8123', '[flash]', `service_addr = "${IP(46)}:3930"`,
      '[flash.proxy]', `addr = "${IP(46)}:20170"`, `status-addr = "${IP(46)}:20292"`, `config = "${dir}/conf/tiflash-learner.toml"`,
      `data-dir = "${dir}/data/flash"`, '[raft]', `pd_addr = "${PLAIN_PD()}"`, '[status]', 'metrics_port = 8234',
    ].join('\n'));
    startEmulator(build, 'tiflash', ['server', '--config-file', 'conf/tiflash.toml'], { cwd: dir, version: 'v6.5.0' });
    await waitFor('plain http_port', () => curl(`http://${IP(46)}:8123/`).http === 200 || undefined, 30000);
    expect(curl(`http://${IP(46)}:8234/metrics`).http).toBe(200);
  });
});
