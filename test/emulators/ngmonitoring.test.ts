/**
 * ng-monitoring emulator against pingcap/ng-monitoring (master, ec43d0ad):
 * - config/config.go: `toml.DecodeFile` (BurntSushi, not strict: unknown keys are skipped, a wrong
 *   type fails), `valid()`; main.go `stdlog.Fatalf("Failed to initialize config, err: %s")` = exit 1;
 *   plain `pflag.Parse()` = "unknown flag: --x", exit 2;
 * - Security.GetTLSConfig: TLS only when ca-path, cert-path and key-path are all set;
 *   GetHTTPScheme: then `https`; buildTLSConfig → log.Fatal("Failed to load certificates");
 * - component/domain/client.go: `<scheme>://<endpoint>` + GetHealth, retried forever ("create
 *   pd/etcd client failed" every 5 s), so a plaintext ng-monitoring never reaches a TLS PD and
 *   keeps running; TiUP's `[security]` (the prometheus certificate) reaches it;
 * - service/service.go: the port is plain HTTP with or without [security] (net.Listen, no TLS);
 *   /health, /config (the running config), /continuous_profiling/estimate_size (instances found
 *   through PD, conprof/http/api.go).
 */
import * as fs from 'fs';
import * as path from 'path';
import { buildEmulators, curl, loopbackNet, Pki, Proc, startEmulator, startPd, stopAll, tmpDir, waitFor, writeFile } from './helpers';

jest.setTimeout(120000);

const IP = loopbackNet(__filename);
let build: string;
let base: string;
let pki: Pki;
const certs: Record<string, { cert: string; key: string }> = {};
const PLAIN_PD = (): string => `${IP(1)}:2379`;
const TLS_PD = (): string => `${IP(2)}:2379`;
const NG = (): string => `${IP(40)}:12020`;
// conprof/http/api.go getProfileEstimateSize(PD) × 86400 / 60 s
const ONE_PD_PROFILE_SIZE = 1440 * (20 + 25 + 100 + 30) * 1024;

const pdAt = (n: number, scheme: 'http' | 'https', toml: string): Proc => startPd({ build, base, ip: IP }, n, { scheme, toml });

/** TiUP's ngmonitoring.toml.tpl (with the test's listen address), and `[security]` as TiUP writes it with TLS on. */
function tiupToml(dir: string, pd: string, tls: boolean, extra = ''): string {
  const security = tls ? `\n[security]\nca-path = "${pki.ca}"\ncert-path = "${certs.prometheus.cert}"\nkey-path = "${certs.prometheus.key}"` : '';
  return `# NG Monitoring Server Configuration.

# Server address.
address = "${NG()}"
advertise-address = "${NG()}"

[log]
# Log path
path = "${dir}/log"

# Log level: INFO, WARN, ERROR
level = "INFO"

[pd]
# Addresses of PD instances within the TiDB cluster. Multiple addresses are separated by commas, e.g. "10.0.0.1:2379","10.0.0.2:2379"
endpoints = ["${pd}"]${security}
${extra}
[storage]
path = "${dir}/data"`;
}

/** run_prometheus.sh.tpl's ng-wrapper.sh: `bin/ng-monitoring-server --config <deploy>/conf/ngmonitoring.toml`. */
function ngm(toml: string | ((dir: string) => string), extraArgs: string[] = []): { proc: Proc; dir: string } {
  const dir = path.join(base, `ng-${Math.random().toString(36).slice(2, 8)}`);
  const conf = writeFile(path.join(dir, 'conf/ngmonitoring.toml'), typeof toml === 'string' ? toml : toml(dir));
  return { proc: startEmulator(build, 'ngmonitoring', ['--config', conf, ...extraArgs], { cwd: dir }), dir };
}

const estimate = (): { instance_count: number; profile_size: number } | undefined => {
  const r = curl(`http://${NG()}/continuous_profiling/estimate_size`);
  return r.http === 200 ? JSON.parse(r.body) : undefined;
};

beforeAll(async () => {
  build = buildEmulators();
  base = tmpDir('ngm');
  pki = new Pki(path.join(base, 'tls'));
  for (const [name, n] of [['pd', 2], ['prometheus', 0], ['client', 0]] as const) certs[name] = pki.issue(name, name, n ? [IP(n)] : []);
  pdAt(1, 'http', '');
  pdAt(2, 'https', `[security]\ncacert-path = "${pki.ca}"\ncert-path = "${certs.pd.cert}"\nkey-path = "${certs.pd.key}"\n`);
  await waitFor('PDs up', () => (curl(`http://${PLAIN_PD()}/pd/api/v1/health`).http === 200 &&
    curl(`https://${TLS_PD()}/pd/api/v1/health`, { ca: pki.ca, ...certs.client }).http === 200) || undefined, 30000);
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(base, { recursive: true, force: true });
});

test('TiUP\'s plaintext ngmonitoring.toml: reaches a plaintext PD over http; /health and /config on a plain HTTP port', async () => {
  const { proc } = ngm((d) => tiupToml(d, PLAIN_PD(), false));
  await waitFor('PD found', () => estimate()?.instance_count === 1 || undefined);
  expect(estimate()).toEqual({ instance_count: 1, profile_size: ONE_PD_PROFILE_SIZE });
  expect(JSON.parse(curl(`http://${NG()}/health`).body)).toEqual({ health: true });
  expect(curl(`http://${NG()}/metrics`).http).toBe(200); // TiUP's prometheus.yml job "ng-monitoring"
  expect(JSON.parse(curl(`http://${NG()}/config`).body)).toMatchObject({ pd: { endpoints: [PLAIN_PD()] }, security: { ca_path: '', cert_path: '', key_path: '' } });
  await proc.stop();
});

test('no [security] against a TLS PD: never reaches it, keeps retrying and running (the pre-fix ngmonitoring.toml)', async () => {
  const { proc, dir } = ngm((d) => tiupToml(d, TLS_PD(), false));
  await waitFor('a retry warning', () => /create pd\/etcd client failed/.test(fs.readFileSync(path.join(dir, 'log/ng.log'), 'utf8')) || undefined, 15000);
  expect(proc.exitCode()).toBeUndefined();
  expect(estimate()).toEqual({ instance_count: 0, profile_size: 0 });
  await proc.stop();
});

test('TiUP\'s [security] with the prometheus certificate reaches the TLS PD over https; its own port stays plain HTTP', async () => {
  const { proc, dir } = ngm((d) => tiupToml(d, TLS_PD(), true));
  await waitFor('PD found over TLS', () => estimate()?.instance_count === 1 || undefined);
  expect(fs.readFileSync(path.join(dir, 'log/ng.log'), 'utf8')).toMatch(new RegExp(`create pd client success.*https://${TLS_PD().replace(/\./g, '\\.')}`));
  expect(JSON.parse(curl(`http://${NG()}/config`).body).security).toEqual({ ca_path: pki.ca, cert_path: certs.prometheus.cert, key_path: certs.prometheus.key });
  expect(curl(`https://${NG()}/health`, { ca: pki.ca }).code).not.toBe(0);
  await proc.stop();
});

test('[security] against a plaintext PD: the TLS handshake fails, PD is never reached', async () => {
  const { proc, dir } = ngm((d) => tiupToml(d, PLAIN_PD(), true));
  await waitFor('a retry warning', () => /create pd\/etcd client failed/.test(fs.readFileSync(path.join(dir, 'log/ng.log'), 'utf8')) || undefined, 15000);
  expect(estimate()).toEqual({ instance_count: 0, profile_size: 0 });
  await proc.stop();
});

test('only all three [security] paths turn TLS on: a partial [security] still dials plain http', async () => {
  const { proc } = ngm((d) => tiupToml(d, PLAIN_PD(), false, `\n[security]\nca-path = "${pki.ca}"\n`));
  await waitFor('PD found over http', () => estimate()?.instance_count === 1 || undefined);
  await proc.stop();
});

test('config as strict as BurntSushi decoding: unknown keys skipped, wrong types and invalid values exit 1; unknown flags exit 2; bad certificates are fatal', async () => {
  const unknownKey = ngm((d) => tiupToml(d, PLAIN_PD(), false, '\n[no-such-table]\nkey = 1\n'));
  await waitFor('started despite an unknown key', () => estimate()?.instance_count === 1 || undefined);
  await unknownKey.proc.stop();

  const cases: [string | ((d: string) => string), string[], number, RegExp][] = [
    [(d) => tiupToml(d, PLAIN_PD(), false).replace(/endpoints = \[.*\]/, `endpoints = "${PLAIN_PD()}"`), [], 1,
      /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d Failed to initialize config, err: toml: .*"pd\.endpoints".*incompatible types: TOML value has type string; destination has type slice/m],
    [(d) => tiupToml(d, PLAIN_PD(), false).replace('level = "INFO"', 'level = "info"'), [], 1, /Failed to initialize config, err: log level should be DEBUG, INFO, WARN or ERROR/],
    [(d) => tiupToml(d, PLAIN_PD(), false).replace(/endpoints = \[.*\]/, 'endpoints = []'), [], 1, /unexpected empty pd endpoints/],
    [(d) => tiupToml(d, PLAIN_PD(), false).replace(`address = "${NG()}"`, 'address = "0.0.0.0:0"'), [], 1, /address 0\.0\.0\.0:0 is invalid, err: port cannot be set to 0/],
    [(d) => tiupToml(d, PLAIN_PD(), false), ['--no-such-flag'], 2, /^unknown flag: --no-such-flag/m],
    [(d) => tiupToml(d, PLAIN_PD(), true).replace(certs.prometheus.cert, '/nonexistent/prometheus.crt'), [], 1, /Failed to load certificates/],
  ];
  for (const [toml, args, code, msg] of cases) {
    const { proc } = ngm(toml, args);
    expect(await proc.exited).toBe(code);
    expect(proc.output()).toMatch(msg);
  }
});
