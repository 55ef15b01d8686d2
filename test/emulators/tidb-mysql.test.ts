/**
 * The TiDB emulator's MySQL port, driven by real clients: Debian's `mariadb`, the `mysql2` package
 * and `openssl s_client -starttls mysql`. The cluster under it runs with cluster TLS, so every
 * test.kv statement proves the route PD (TSO) → TiKV over TLS. Each test cites the pingcap/tidb
 * (or tikv/pd) file whose behaviour it checks.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import * as mysql from 'mysql2/promise';
import { parseJsonLossless } from '../../lab/emulators/common/json';
import { buildEmulators, curl, loopbackNet, openssl, Pki, Proc, startEmulator, startPd, startTikv, stopAll, tmpDir, waitFor, writeFile } from './helpers';

jest.setTimeout(180000);

const IP = loopbackNet(__filename);
let build: string;
let base: string;
let pki: Pki; // cluster CA
let sql: Pki; // SQL CA, kept apart from the cluster CA
let other: Pki;
const c: Record<string, { cert: string; key: string }> = {};
let pd: Proc;
let kvB: Proc;
const PD = (): string => `${IP(1)}:2379`;
const mtls = (x: { cert: string; key: string }) => ({ ca: pki.ca, cert: x.cert, key: x.key });

function clusterToml(extra = ''): string {
  return `[security]\ncluster-ssl-ca = "${pki.ca}"\ncluster-ssl-cert = "${c.tidb.cert}"\ncluster-ssl-key = "${c.tidb.key}"\n${extra}`;
}

function startTidb(n: number, toml: string, env: Record<string, string> = {}, extraArgs: string[] = []): Proc {
  const dir = path.join(base, `tidb-${n}`);
  writeFile(path.join(dir, 'conf/tidb.toml'), toml);
  return startEmulator(build, 'tidb-server', ['-P', '4000', '--status=10080', `--host=${IP(n)}`, `--status-host=${IP(n)}`, '--store=tikv', `--path=${PD()}`,
    '--config=conf/tidb.toml', '--log-file=log/tidb.log', ...extraArgs], { cwd: dir, env: { TISEAL_EMULATOR_BOOT_TIMEOUT_MS: '20000', ...env } });
}

// TiKV's own raftstore keys: 100 ms ticks, so a region whose store came back elects in 1–2 s, not 10–20 s.
const RAFT = '[raftstore]\nraft-base-tick-interval = "100ms"\nraft-store-max-leader-lease = "900ms"\n';
// TiDB 20's backoff budget (TISEAL_EMULATOR_KV_BACKOFF_MS; client-go's 20 s is the default, checked
// in kv-backoff.test.ts): the outage test needs it spent, not 20 s long.
const BACKOFF_MS = 4000;

function tikvAt(n: number): Proc {
  const toml = `[security]\nca-path = "${pki.ca}"\ncert-path = "${c[`tikv${n}`].cert}"\nkey-path = "${c[`tikv${n}`].key}"\n${RAFT}`;
  return startTikv({ build, base, ip: IP }, n, { pd: PD(), toml });
}

const tidbUp = (n: number, p: Proc): Promise<true> =>
  waitFor(`tidb ${n} MySQL port`, () => {
    if (p.exitCode() !== undefined) throw new Error(`exited ${p.exitCode()}: ${p.output().slice(-2000)}`);
    return new Promise<true | undefined>((r) => {
      const s = net.connect(4000, IP(n));
      s.once('data', () => { s.destroy(); r(true); });
      s.once('error', () => r(undefined));
    });
  }, 30000);

/** The real mariadb client; returns exit code and output (ERROR lines are on stderr). */
function mariadb(n: number, sqlText: string, args: string[] = []): { code: number; out: string; err: string } {
  const r = spawnSync('mariadb', ['-h', IP(n), '-P', '4000', '-u', 'root', '--connect-timeout=5', ...args, '-N', '-B', '-e', sqlText], { encoding: 'utf8', timeout: 30000 });
  return { code: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

/** Serial of the certificate `openssl s_client -starttls mysql` receives. */
function servedSerial(n: number, extra: string[] = []): string {
  const r = spawnSync('openssl', ['s_client', '-starttls', 'mysql', '-connect', `${IP(n)}:4000`, ...extra], { input: '', encoding: 'utf8', timeout: 15000 });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout ?? '');
  if (!pem) return `none: ${(r.stdout ?? '').slice(0, 300)} ${(r.stderr ?? '').slice(0, 300)}`;
  const f = path.join(base, `served-${Date.now()}.pem`);
  fs.writeFileSync(f, pem[0]);
  return openssl(['x509', '-in', f, '-noout', '-serial']).trim();
}

function stores(): Record<string, unknown>[] {
  const r = curl(`https://${PD()}/pd/api/v1/stores`, mtls(c.client));
  return ((parseJsonLossless(r.body) as Record<string, unknown>).stores as Record<string, unknown>[]).map((s) => s.store as Record<string, unknown>);
}

beforeAll(async () => {
  build = buildEmulators();
  base = tmpDir('tidb-mysql');
  pki = new Pki(path.join(base, 'cluster-ca'));
  sql = new Pki(path.join(base, 'sql-ca'));
  other = new Pki(path.join(base, 'other-ca'));
  for (const [name, n] of [['pd', 1], ['tikv10', 10], ['tikv11', 11], ['tidb', 20], ['client', 0]] as const) c[name] = pki.issue(name, name, n ? [IP(n)] : []);
  c.sql = sql.issue('sql-server', 'tidb-sql', [IP(30), IP(31), IP(32)], '0x1001');
  c.sqlClient = sql.issue('sql-client', 'app', []);
  c.otherClient = other.issue('other-client', 'app', []);
  pd = startPd({ build, base, ip: IP }, 1, { scheme: 'https', dir: 'pd', toml: `[security]\ncacert-path = "${pki.ca}"\ncert-path = "${c.pd.cert}"\nkey-path = "${c.pd.key}"\n` });
  await waitFor('PD up', () => curl(`https://${PD()}/pd/api/v1/members`, mtls(c.client)).http === 200 || undefined, 30000);
  tikvAt(10);
  kvB = tikvAt(11);
  await waitFor('stores Up', () => stores().filter((s) => s.state_name === 'Up').length === 2 || undefined, 30000);
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(base, { recursive: true, force: true });
});

describe('plaintext TiDB (no ssl-*)', () => {
  beforeAll(async () => {
    await tidbUp(20, startTidb(20, clusterToml(), { TISEAL_EMULATOR_KV_BACKOFF_MS: String(BACKOFF_MS) }));
  });

  // pkg/server/server.go NewServer: CLIENT_SSL is offered only when a TLS config was loaded.
  test('greeting: protocol 10, TiDB version, no CLIENT_SSL', async () => {
    const greeting = await new Promise<Buffer>((resolve, reject) => {
      const s = net.connect(4000, IP(20));
      s.once('data', (d: Buffer) => { s.destroy(); resolve(d); });
      s.once('error', reject);
    });
    const p = greeting.subarray(4);
    expect(p[0]).toBe(10);
    const nul = p.indexOf(0, 1);
    expect(p.subarray(1, nul).toString()).toBe('8.0.11-TiDB-v8.5.1');
    const capsLow = p.readUInt16LE(nul + 1 + 4 + 8 + 1);
    expect(capsLow & 0x800).toBe(0);
    expect(capsLow & 0x200).toBe(0x200);
    expect(servedSerial(20)).toMatch(/^none/);
    expect(mariadb(20, 'SELECT 1', ['--ssl', '--ssl-verify-server-cert']).err).toContain('SSL is required, but the server does not support it');
  });

  // pkg/server/conn.go dispatch (COM_QUERY, COM_INIT_DB, COM_PING) and writeResultSet; pkg/executor for the answers.
  test('mariadb: SELECT 1, @@version, tidb_version(), USE, unknown database', () => {
    expect(mariadb(20, 'SELECT 1', ['--skip-ssl'])).toMatchObject({ code: 0, out: '1\n' });
    expect(mariadb(20, 'SELECT @@version', ['--skip-ssl']).out).toBe('8.0.11-TiDB-v8.5.1\n');
    expect(mariadb(20, 'SELECT tidb_version()', ['--skip-ssl', '-r']).out).toContain('Release Version: v8.5.1\nEdition: Community');
    expect(mariadb(20, 'SELECT 1', ['--skip-ssl', '-D', 'test']).code).toBe(0);
    const bad = mariadb(20, 'SELECT 1', ['--skip-ssl', '-D', 'nodb']);
    expect(bad.err).toContain("ERROR 1049 (42000): Unknown database 'nodb'");
    // Interactive (on a tty) the client sends its own statements first (select @@version_comment …).
    const tty = spawnSync('script', ['-qec', `mariadb -h ${IP(20)} -P 4000 -u root --skip-ssl test`, '/dev/null'],
      { input: 'SELECT 1;\nquit\n', encoding: 'utf8', timeout: 30000 });
    expect(tty.stdout).toContain('TiDB Server (Apache License 2.0) Community Edition, MySQL 8.0 compatible');
    expect(tty.stdout).toMatch(/\| 1 \|/);
  });

  // Every test.kv statement: TSO from the PD leader, then the key's store, both over cluster TLS
  // (pkg/store/driver/error/error.go for the error mapping).
  test('mariadb: CREATE TABLE no-op, REPLACE then SELECT through PD and TiKV', () => {
    const r = mariadb(20, "CREATE TABLE IF NOT EXISTS test.kv (k VARCHAR(64) PRIMARY KEY, v TEXT); REPLACE INTO test.kv (k, v) VALUES ('a''b', 'x\\ny'); SELECT v FROM test.kv WHERE k = 'a''b'; SELECT v FROM test.kv WHERE k = 'absent'", ['--skip-ssl', '-r']);
    expect(r).toMatchObject({ code: 0, out: 'x\ny\n' });
    // The value is on both TiKV stores' disks: each region has a replica on every store (max-replicas 3, two stores).
    const raftDir = (n: number): string => path.join(base, `tikv-${n}/data/emulator-raft`);
    const onDisk = [10, 11].map((n) => fs.readdirSync(raftDir(n)).filter((f) => /^region-\d+\.json$/.test(f)).map((f) => fs.readFileSync(path.join(raftDir(n), f), 'utf8')).join('\n'));
    expect(onDisk.filter((t) => t.includes('"a\'b"')).length).toBe(2);
    expect(mariadb(20, "SELECT v FROM test.kv WHERE k = '" + 'k'.repeat(65) + "'", ['--skip-ssl']).code).toBe(0);
    expect(mariadb(20, "REPLACE INTO test.kv (k, v) VALUES ('" + 'k'.repeat(65) + "', 'v')", ['--skip-ssl']).err).toContain('ERROR 1406 (22001)');
  });

  test('mysql2: connect, SELECT 1, REPLACE (1 then 2 affected rows), SELECT, ping, unsupported → 1105', async () => {
    const conn = await mysql.createConnection({ host: IP(20), port: 4000, user: 'root' });
    try {
      const [one] = await conn.query('SELECT 1');
      expect(one).toEqual([{ 1: 1 }]);
      const key = `m2-${Date.now()}`;
      const [r1] = await conn.query(`REPLACE INTO test.kv (k, v) VALUES ('${key}', 'first')`);
      expect((r1 as mysql.ResultSetHeader).affectedRows).toBe(1);
      const [r2] = await conn.query(`REPLACE INTO test.kv (k, v) VALUES ('${key}', 'second')`);
      expect((r2 as mysql.ResultSetHeader).affectedRows).toBe(2);
      const [got] = await conn.query(`SELECT v FROM test.kv WHERE k = '${key}'`);
      expect((got as { v: Buffer | string }[]).map((x) => String(x.v))).toEqual(['second']);
      await conn.ping();
      await expect(conn.query('SELECT * FROM mysql.user')).rejects.toMatchObject({ errno: 1105, sqlState: 'HY000', message: expect.stringContaining('not supported by the emulator') });
    } finally {
      await conn.end();
    }
  });

  // pkg/server/conn.go writeError: unknown statements come back as ERROR 1105 (HY000).
  test('unsupported statement → ERROR 1105 (HY000) … not supported by the emulator', () => {
    const r = mariadb(20, 'SELECT 2', ['--skip-ssl']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^ERROR 1105 \(HY000\) at line 1: .*not supported by the emulator/m);
  });

  // pkg/sessionctx/variable/sysvar.go RequireSecureTransport validation.
  test('SET GLOBAL require_secure_transport = ON from a plaintext session is refused', () => {
    const r = mariadb(20, 'SET GLOBAL require_secure_transport = ON', ['--skip-ssl']);
    expect(r.err).toContain('ERROR 1105 (HY000) at line 1: require_secure_transport can only be set to ON if the connection issuing the change is secure');
    expect(mariadb(20, 'SELECT @@global.require_secure_transport', ['--skip-ssl']).out).toBe('OFF\n');
  });

  test('the clients sent nothing unsupported on their own (tidb log)', () => {
    const log = fs.readFileSync(path.join(base, 'tidb-20/log/tidb.log'), 'utf8');
    const refused = [...log.matchAll(/"command dispatched failed".*?\[sql=(.*?)\] \[err="\[1105\]tiseal emulator/g)].map((m) => m[1]);
    expect(refused).toEqual(['"SELECT * FROM mysql.user"', '"SELECT 2"']);
  });

  // A region needs a majority of its peers: with one of two stores stopped no write commits. TiDB
  // (client-go region_request.go + Backoffer) retries until its budget (20 s; BACKOFF_MS here) is
  // spent, then pkg/store/driver/error/error.go maps the region error to 9005.
  test('one of two TiKV stores stopped: no majority → 9005 after the backoff budget; works again when it is back', async () => {
    for (let i = 0; i < 4; i++) expect(mariadb(20, `REPLACE INTO test.kv (k, v) VALUES ('route-${i}', 'v${i}')`, ['--skip-ssl']).code).toBe(0);
    await kvB.stop();
    const t0 = Date.now();
    const down = spawnSync('mariadb', ['-h', IP(20), '-P', '4000', '-u', 'root', '--skip-ssl', '-N', '-B', '-e', "REPLACE INTO test.kv (k, v) VALUES ('route-0', 'x')"],
      { encoding: 'utf8', timeout: 90000 });
    expect(down.stderr).toContain('ERROR 9005 (HY000) at line 1: Region is unavailable');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(BACKOFF_MS); // the sleeps alone add up to the budget
    kvB = tikvAt(11);
    await waitFor('store 11 Up again', () => stores().filter((s) => s.state_name === 'Up').length === 2 || undefined, 30000);
    await waitFor('a majority again', () => mariadb(20, "SELECT v FROM test.kv WHERE k = 'route-1'", ['--skip-ssl']).out === 'v1\n' || undefined, 60000);
  });
});

describe('TLS for MySQL clients (ssl-ca/ssl-cert/ssl-key)', () => {
  const sslToml = (extra = ''): string => clusterToml(`ssl-ca = "${sql.ca}"\nssl-cert = "${c.sql.cert}"\nssl-key = "${c.sql.key}"\n${extra}`);
  const verify = (): string[] => ['--ssl', '--ssl-ca', sql.ca, '--ssl-verify-server-cert'];
  let tidb30: Proc;

  beforeAll(async () => {
    tidb30 = startTidb(30, sslToml());
    await tidbUp(30, tidb30);
  });

  // pkg/server/conn.go readOptionalSSLRequestAndHandshakeResponse + upgradeToTLS; statusvar.go Ssl_*.
  test('mariadb --ssl --ssl-ca --ssl-verify-server-cert; SHOW STATUS LIKE Ssl_%; plaintext still accepted', () => {
    const r = mariadb(30, "SHOW STATUS LIKE 'Ssl_%'", verify());
    expect(r.code).toBe(0);
    const st = Object.fromEntries(r.out.trim().split('\n').map((l) => l.split('\t')));
    expect(st.Ssl_version).toMatch(/^TLSv1\.[23]$/);
    expect(st.Ssl_cipher).not.toBe('');
    expect(st.Ssl_server_not_after).toMatch(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} UTC$/);
    const plain = mariadb(30, "SHOW STATUS LIKE 'Ssl_version'", ['--skip-ssl']);
    expect(plain.out).toBe('Ssl_version\t\n');
    // A client checking the name against another CA refuses the server.
    expect(mariadb(30, 'SELECT 1', ['--ssl', '--ssl-ca', other.ca, '--ssl-verify-server-cert']).code).not.toBe(0);
  });

  test('mysql2 with ssl { ca }: TLS session, data path works', async () => {
    const conn = await mysql.createConnection({ host: IP(30), port: 4000, user: 'root', ssl: { ca: fs.readFileSync(sql.ca, 'utf8') } });
    try {
      const [st] = await conn.query("SHOW STATUS LIKE 'Ssl_version'");
      expect((st as { Value: string }[])[0].Value).toMatch(/^TLSv1\.[23]$/);
      await conn.query("REPLACE INTO test.kv (k, v) VALUES ('tls-key', 'tls-value')");
      const [got] = await conn.query("SELECT v FROM test.kv WHERE k = 'tls-key'");
      expect((got as { v: Buffer }[]).map((x) => String(x.v))).toEqual(['tls-value']);
    } finally {
      await conn.end();
    }
  });

  // pkg/util/processinfo.go ToRowForShow: Host ip:port, Command, Info; no TLS column (as TiDB).
  test('SHOW PROCESSLIST lists every session; only SHOW STATUS tells TLS from plaintext', async () => {
    const tlsConn = await mysql.createConnection({ host: IP(30), port: 4000, user: 'root', ssl: { ca: fs.readFileSync(sql.ca, 'utf8') } });
    const plain = await mysql.createConnection({ host: IP(30), port: 4000, user: 'root', database: 'test' });
    try {
      const [list] = await tlsConn.query('SHOW PROCESSLIST');
      const rows = list as Record<string, unknown>[];
      expect(Object.keys(rows[0])).toEqual(['Id', 'User', 'Host', 'db', 'Command', 'Time', 'State', 'Info']);
      expect(rows.map((r) => [r.Command, r.Info, r.db])).toEqual(expect.arrayContaining([['Query', 'SHOW PROCESSLIST', null], ['Sleep', null, 'test']]));
      expect(String(rows[0].Host)).toMatch(/^127\.[\d.]+:\d+$/);
      const [p] = await plain.query("SHOW STATUS LIKE 'Ssl_cipher'");
      expect(p).toEqual([{ Variable_name: 'Ssl_cipher', Value: '' }]);
    } finally {
      await tlsConn.end();
      await plain.end();
    }
  });

  // pkg/util/misc.go LoadTLSCertificates: with ssl-ca, a presented client certificate is verified.
  test('client certificate: from ssl-ca accepted, from another CA refused', () => {
    const ok = mariadb(30, 'SELECT 1', [...verify(), '--ssl-cert', c.sqlClient.cert, '--ssl-key', c.sqlClient.key]);
    expect(ok).toMatchObject({ code: 0, out: '1\n', err: '' });
    const bad = mariadb(30, 'SELECT 1', [...verify(), '--ssl-cert', c.otherClient.cert, '--ssl-key', c.otherClient.key]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/ERROR 20\d\d/);
  });

  // sysvar.go RequireSecureTransport + conn.go: plaintext login refused with 3159 (08004).
  test('require_secure_transport: SET GLOBAL from TLS, plaintext refused with 3159, then OFF', () => {
    expect(mariadb(30, 'SET GLOBAL require_secure_transport = ON', verify()).code).toBe(0);
    expect(mariadb(30, 'SELECT @@global.require_secure_transport', verify()).out).toBe('ON\n');
    const plain = mariadb(30, 'SELECT 1', ['--skip-ssl']);
    expect(plain.code).toBe(1);
    expect(plain.err).toContain('ERROR 3159 (08004): Connections using insecure transport are prohibited while --require_secure_transport=ON.');
    expect(mariadb(30, 'SELECT 1', verify()).out).toBe('1\n');
    expect(mariadb(30, 'SET GLOBAL require_secure_transport = OFF', verify()).code).toBe(0);
    expect(mariadb(30, 'SELECT 1', ['--skip-ssl']).out).toBe('1\n');
  });

  // pkg/executor/simple.go executeAlterInstance: re-reads the files; a broken pair keeps the old config.
  test('ALTER INSTANCE RELOAD TLS changes the served serial; a broken pair keeps the old one', () => {
    expect(servedSerial(30)).toBe('serial=1001');
    const fresh = sql.issue('sql-server-2', 'tidb-sql', [IP(30), IP(31), IP(32)], '0x2002');
    fs.copyFileSync(fresh.cert, c.sql.cert);
    fs.copyFileSync(fresh.key, c.sql.key);
    expect(servedSerial(30)).toBe('serial=1001'); // files alone change nothing: TiDB loads them once
    expect(mariadb(30, 'ALTER INSTANCE RELOAD TLS', verify()).code).toBe(0);
    expect(servedSerial(30)).toBe('serial=2002');
    // Broken: certificate of one pair, key of another.
    fs.copyFileSync(path.join(sql.dir, 'sql-client.pem'), c.sql.key);
    const broken = mariadb(30, 'ALTER INSTANCE RELOAD TLS', verify());
    expect(broken.err).toContain('ERROR 1105 (HY000) at line 1: tls: private key does not match public key');
    expect(servedSerial(30)).toBe('serial=2002');
    expect(mariadb(30, 'SELECT 1', verify()).out).toBe('1\n');
    fs.copyFileSync(fresh.key, c.sql.key);
  });

  // pkg/util/misc.go: tls-version is the minimum protocol version.
  test('tls-version = "TLSv1.3" refuses a TLS 1.2 client', async () => {
    await tidbUp(31, startTidb(31, sslToml('tls-version = "TLSv1.3"\n')));
    expect(servedSerial(31, ['-tls1_2'])).toMatch(/^none/);
    expect(servedSerial(31, ['-tls1_3'])).toMatch(/^serial=/);
  });

  // pkg/config/config.go (v6.1+): `removedConfig` lists "security.require-secure-transport", no longer a
  // field of config.Security: reported as an invalid option, tolerated even under --config-check
  // (isAllRemovedConfigItems), and it does nothing.
  test('v6.1+: require-secure-transport in tidb.toml is ignored (removedConfig); plaintext still accepted', async () => {
    const p = startTidb(32, sslToml('require-secure-transport = true\n'));
    await tidbUp(32, p);
    expect(p.output()).toContain('contained invalid configuration options: security.require-secure-transport;');
    expect(mariadb(32, 'SELECT 1', ['--skip-ssl'])).toMatchObject({ code: 0, out: '1\n' });
    expect(mariadb(32, 'SELECT @@global.require_secure_transport', verify()).out).toBe('OFF\n');
    const check = startTidb(34, sslToml('require-secure-transport = true\n'), {}, ['--config-check']);
    expect(await check.exited).toBe(0);
    expect(check.output()).toContain('The following configuration options are no longer supported in this version of TiDB. Check the release notes for more information: security.require-secure-transport');
  });

  // v6.1+: sessionctx/variable/sysvar.go RequireSecureTransport is a GLOBAL variable; domain.go
  // NotifyUpdateSysVarCache puts etcd key "/tidb/sysvars", which every TiDB's LoadSysVarCacheLoop watches
  // (its 30 s reload is only the fallback); sysvar_cache.go rebuildSysVarCache runs SetGlobal "on all tidb
  // servers". It persists: a TiDB loads it at bootstrap, before NewServer loads its TLS config, so with
  // ssl-ca that TLS config demands client certificates (misc.go LoadTLSCertificates: `requireTLS :=
  // tlsutil.RequireSecureTransport.Load()` → RequireAndVerifyClientCert; pingcap/tidb#69870). From v6.1
  // NewServer has no require check of its own: a TiDB without TLS starts and conn.go refuses every TCP
  // client (`tlsutil.RequireSecureTransport.Load() && !cc.isUnixSocket`).
  test('v6.1+: SET GLOBAL require_secure_transport applies on every TiDB at once and persists across restarts', async () => {
    const withCert = [...verify(), '--ssl-cert', c.sqlClient.cert, '--ssl-key', c.sqlClient.key];
    const refused = (n: number) => /ERROR 3159 \(08004\)/.test(mariadb(n, 'SELECT 1', ['--skip-ssl']).err) || undefined;
    const accepted = (n: number) => mariadb(n, 'SELECT 1', ['--skip-ssl']).out === '1\n' || undefined;
    try {
      expect(mariadb(30, 'SET GLOBAL require_secure_transport = ON', verify()).code).toBe(0);
      // TiDB 20 offers no TLS: through the watch it refuses every client well before the 30 s reload
      // (10 s: room for a loaded machine, still a third of the reload).
      await waitFor('TiDB 20 applies ON', () => refused(20), 10000);
      expect(mariadb(32, 'SELECT @@global.require_secure_transport', verify()).out).toBe('ON\n');

      await tidb30.stop();
      tidb30 = startTidb(30, sslToml());
      await tidbUp(30, tidb30);
      expect(refused(30)).toBe(true);
      const noCert = mariadb(30, 'SELECT 1', verify());
      expect(noCert.code).not.toBe(0);
      expect(mariadb(30, 'SELECT @@global.require_secure_transport', withCert)).toMatchObject({ out: 'ON\n', err: '' });
      await tidbUp(33, startTidb(33, clusterToml()));
      expect(refused(33)).toBe(true);

      expect(mariadb(30, 'SET GLOBAL require_secure_transport = OFF', withCert).code).toBe(0);
      await waitFor('TiDB 20 applies OFF', () => accepted(20), 10000);
      await waitFor('TiDB 33 applies OFF', () => accepted(33), 10000);
      expect(accepted(30)).toBe(true);
      // The TLS config loaded under ON keeps demanding client certificates until it is reloaded.
      expect(mariadb(30, 'SELECT 1', verify()).code).not.toBe(0);
      expect(mariadb(30, 'ALTER INSTANCE RELOAD TLS', withCert).code).toBe(0);
      expect(mariadb(30, 'SELECT 1', verify()).out).toBe('1\n');
    } finally {
      mariadb(30, 'SET GLOBAL require_secure_transport = OFF', withCert);
    }
  });
});

describe('root password (emulator-only TISEAL_EMULATOR_ROOT_PASSWORD_FILE)', () => {
  test('mysql_native_password: right password in, wrong or missing refused with 1045', async () => {
    const pw = writeFile(path.join(base, 'root-password'), 's3cret\n');
    await tidbUp(40, startTidb(40, clusterToml(), { TISEAL_EMULATOR_ROOT_PASSWORD_FILE: pw }));
    expect(mariadb(40, 'SELECT 1', ['--skip-ssl', '-ps3cret']).out).toBe('1\n');
    expect(mariadb(40, 'SELECT 1', ['--skip-ssl', '-pwrong']).err).toContain(`ERROR 1045 (28000): Access denied for user 'root'@'127.`);
    expect(mariadb(40, 'SELECT 1', ['--skip-ssl']).err).toContain('(using password: NO)');
    await expect(mysql.createConnection({ host: IP(40), port: 4000, user: 'root', password: 's3cret' }).then((x) => x.end())).resolves.toBeUndefined();
  });
});

describe('PD down', () => {
  // pkg/store/driver/error/error.go ToTiDBErr: PD unreachable → 9001 "PD server timeout: …".
  test('no TSO without PD → ERROR 9001 (HY000) PD server timeout', async () => {
    await pd.stop();
    const r = mariadb(20, "SELECT v FROM test.kv WHERE k = 'x'", ['--skip-ssl']);
    expect(r.err).toContain('ERROR 9001 (HY000) at line 1: PD server timeout: ');
    expect(mariadb(20, 'SELECT 1', ['--skip-ssl']).out).toBe('1\n');
  });
});
