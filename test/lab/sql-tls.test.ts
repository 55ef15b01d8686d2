/**
 * `sql-tls enable|status|disable` on the lab, checked with independent clients (Debian's mariadb,
 * openssl s_client -starttls mysql): TLS from a SQL CA apart from the cluster CA, verified against
 * the TiDB's address; plaintext keeps working while TLS is offered; disable brings the port back
 * to plaintext. Then a second TiDB joins (a topology variant of this file only) and an application
 * behind a load balancer over the two (bench/sql-prober.ts) sees no failed statement while
 * `sql-tls enable` restarts them one at a time; then `require → disable → enable` under a prober with
 * --ssl-mode=PREFERRED, with TiDBs restarted by hand to show require_secure_transport persisted (v6.1+);
 * the same prober over one TiDB sees the outage. The lab's release by default; another with
 * TISEAL_LAB_VERSION (e.g. v6.5.12, the first #24 asks for besides v8.5; not in CI for time).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { labReset, type LabInfo } from '../../lab';
import { deployScript } from '../../lab/deploy';
import { waitStatus } from '../../lab/health';
import { resolveOptions } from '../../lab/options';
import type { SqlProbeReport, SqlProberConfig } from '../../bench/sql-prober';
import { SqlProberProcess } from '../../bench/sql-prober-process';
import { loadTopology } from '../../src/topology';
import { describeLab, ensureLab, sshOk } from './helpers';
import { validate } from '../support/json-schema';
import { makePki, type TestPki } from './certs';
import * as schema from '../../docs/sql-tls-status.schema.json';
import { clusterDir, labTopology, remoteChecksums, runTiseal, unitStartTimes } from './tiseal';

jest.setTimeout(10 * 60_000);

const TIDB = '10.77.0.14';
/** The second TiDB of the prober scenario: the TiFlash host, TiDB's default ports free there. */
const TIDB2 = '10.77.0.15';

function mariadbAt(host: string, args: string[], sql = 'SELECT 1'): { code: number | null; out: string } {
  const r = spawnSync('mariadb', ['-h', host, '-P', '4000', '-u', 'root', '--connect-timeout=5', '-N', '-B', ...args, '-e', sql], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}
const mariadb = (args: string[], sql?: string) => mariadbAt(TIDB, args, sql);

/** `systemctl restart` of a TiDB by hand (as an operator or a crash would), then its first login that reached TiDB at all. */
function restartByHand(info: LabInfo, host: string, args: string[]): { code: number | null; out: string } {
  const pid = () => sshOk(info, host, 'systemctl show -p MainPID --value tidb-4000').trim();
  const before = pid();
  sshOk(info, host, 'sudo -n systemctl restart tidb-4000');
  expect(pid()).not.toBe(before);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = mariadbAt(host, args);
    // 2002/2003: not listening yet; 2013: lost during the handshake
    if (!/ERROR 20(02|03|13)/.test(r.out) || Date.now() > deadline) return r;
    spawnSync('sleep', ['0.5']);
  }
}

/** openssl s_client -starttls mysql, verifying against `ca` and the IP: exit code, output, served serial. */
function starttls(ca: string): { code: number | null; out: string; serial?: string } {
  const r = spawnSync('openssl', ['s_client', '-starttls', 'mysql', '-connect', `${TIDB}:4000`, '-CAfile', ca, '-verify_ip', TIDB, '-verify_return_error'], { input: '', encoding: 'utf8', timeout: 15_000 });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout ?? '')?.[0];
  const serial = pem ? /serial=([0-9A-F]+)/.exec(spawnSync('openssl', ['x509', '-noout', '-serial'], { input: pem, encoding: 'utf8' }).stdout)?.[1] : undefined;
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? ''), serial };
}

describeLab('tiseal sql-tls on the lab', () => {
  let info: LabInfo;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
  }, 15 * 60_000);

  it('enables TLS for MySQL clients from a separate SQL CA, reports it, rotates it without a restart, and disables it again', async () => {
    const t = labTopology(info);
    const sqlCa = path.join(clusterDir(info), 'sql-tls', 'ca.crt');
    const tidb = t.instances.find((i) => i.role === 'tidb')!;
    const toml = `${tidb.deployDir}/conf/tidb.toml`;
    const tomlBefore = sshOk(info, TIDB, `sudo -n cat ${toml}`);
    expect(mariadb(['--skip-ssl']).out.trim()).toBe('1');

    // dry run: the plan, no change anywhere
    const files = remoteChecksums(info);
    const dry = await runTiseal(info, ['sql-tls', 'enable', info.topologyFile, '--dry-run']);
    expect(`${dry.code} ${dry.stderr}`).toBe('0 ');
    expect(dry.stdout).toMatch(/would restart tidb-4000\.service on 10\.77\.0\.14 \(offers no TLS\)|would restart tidb-4000.service on 10.77.0.14/);
    expect(dry.stdout).toMatch(/\+ssl-ca = "\/tidb-deploy\/tidb-4000\/tls\/sql-ca\.crt"/);
    expect(remoteChecksums(info)).toBe(files);

    const r = await runTiseal(info, ['sql-tls', 'enable', info.topologyFile, '--yes']);
    if (r.code !== 0) throw new Error(`sql-tls enable failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);
    // An independent client verifies the server against the SQL CA and the address it dialled.
    expect(mariadb(['--ssl', `--ssl-ca=${sqlCa}`, '--ssl-verify-server-cert']).out.trim()).toBe('1');
    expect(mariadb(['--ssl', `--ssl-ca=${sqlCa}`, '--ssl-verify-server-cert'], "SHOW STATUS LIKE 'Ssl_version'").out).toMatch(/Ssl_version\tTLSv1\.[23]/);
    expect(mariadb(['--skip-ssl']).out.trim()).toBe('1'); // plaintext clients keep working until `require`
    const served = starttls(sqlCa);
    expect(`${served.code} ${served.out.match(/Verify return code: .*/)?.[0]}`).toBe('0 Verify return code: 0 (ok)');
    // ...and not against the cluster CA: the two are apart.
    expect(starttls(path.join(clusterDir(info), 'tls', 'ca.crt')).code).not.toBe(0);
    const key = sshOk(info, TIDB, `sudo -n stat -c '%a %U' ${tidb.deployDir}/tls/sql.pem`).trim();
    expect(key).toBe('600 tidb');

    // a client certificate from `cert client --sql` is presented and accepted; one from the cluster CA is not
    let stranger: TestPki | undefined;
    const cc = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-sqlcc-'));
    try {
      const issued = await runTiseal(info, ['cert', 'client', info.topologyFile, '--sql', '--cn', 'app1', '--out', cc]);
      expect(`${issued.code} ${issued.stderr}`).toBe('0 ');
      expect(issued.stdout).toContain("CREATE USER 'app1'@'%' REQUIRE SUBJECT '/CN=app1';");
      expect(mariadb(['--ssl', `--ssl-ca=${sqlCa}`, '--ssl-verify-server-cert', `--ssl-cert=${cc}/app1.crt`, `--ssl-key=${cc}/app1.key`]).out.trim()).toBe('1');
      const foreign = makePki(); // another CA (openssl): TiDB verifies a presented certificate against ssl-ca
      stranger = foreign;
      const c = foreign.issue('app1', []);
      expect(mariadb(['--ssl', `--ssl-ca=${sqlCa}`, '--ssl-verify-server-cert', `--ssl-cert=${c.cert}`, `--ssl-key=${c.key}`]).code).not.toBe(0);
    } finally {
      stranger?.cleanup();
      fs.rmSync(cc, { recursive: true, force: true });
    }

    // status --json: documented schema, TLS offered and verified, require-secure-transport off = warning
    const st = await runTiseal(info, ['sql-tls', 'status', info.topologyFile, '--json']);
    const report = JSON.parse(st.stdout);
    expect(validate(schema, report)).toEqual([]);
    expect(st.code).toBe(3);
    const row = report.instances[0];
    expect(row).toMatchObject({ host: TIDB, port: 4000, configured: 'on', offered: 'tls', verified: true, requireSecureTransport: false, level: 'warning' });
    expect(row.certificate.serial.toUpperCase().replace(/^0+/, '')).toBe(served.serial!.replace(/^0+/, ''));
    expect(row.tlsVersions).toMatchObject({ TLSv1: false, 'TLSv1.1': false, 'TLSv1.2': true });

    // audit: the sql-tls check passes TLS and TLS versions, warns that plaintext logins are still accepted
    const au = await runTiseal(info, ['audit', info.topologyFile, '--json']);
    const sqlFindings = (JSON.parse(au.stdout).findings as Array<{ check: string; level: string; evidence: string }>).filter((f) => f.check === 'sql-tls').map((f) => `${f.level} ${f.evidence.replace(/\d+ days left/, 'N days left')}`);
    expect(sqlFindings).toEqual(['PASS TLS offered (TLSv1.3), verified against the SQL CA, N days left', 'PASS TLS 1.0/1.1 refused', 'WARN require_secure_transport is OFF: plaintext logins are still accepted']);

    // again: nothing to do, nothing restarted
    const started = unitStartTimes(info, t);
    const again = await runTiseal(info, ['sql-tls', 'enable', info.topologyFile, '--yes']);
    expect(again.code).toBe(0);
    expect(unitStartTimes(info, t)).toEqual(started);

    // rotate: new serial on the MySQL port (as openssl sees it), no unit restarted
    const rot = await runTiseal(info, ['sql-tls', 'rotate', info.topologyFile, '--yes']);
    if (rot.code !== 0) throw new Error(`sql-tls rotate failed (${rot.code}):\n${rot.stdout.slice(-3000)}\n${rot.stderr}`);
    const rotated = starttls(sqlCa);
    expect(`${rotated.code} ${rotated.out.match(/Verify return code: .*/)?.[0]}`).toBe('0 Verify return code: 0 (ok)');
    expect(rotated.serial).toMatch(/^[0-9A-F]+$/);
    expect(rotated.serial).not.toBe(served.serial);
    expect(unitStartTimes(info, t)).toEqual(started);
    expect(mariadb(['--ssl', `--ssl-ca=${sqlCa}`, '--ssl-verify-server-cert']).out.trim()).toBe('1');

    // require: plaintext refused with TiDB's 3159, TLS still fine, nothing restarted; rotate now refuses (pingcap/tidb#69870)
    const req = await runTiseal(info, ['sql-tls', 'require', info.topologyFile, '--yes']);
    if (req.code !== 0) throw new Error(`sql-tls require failed (${req.code}):\n${req.stdout.slice(-3000)}\n${req.stderr}`);
    expect(req.stdout).toMatch(/Sessions now/);
    const plain = mariadb(['--skip-ssl']);
    expect(plain.code).not.toBe(0);
    expect(plain.out).toMatch(/ERROR 3159 \(08004\).*Connections using insecure transport are prohibited while --require_secure_transport=ON\./);
    expect(mariadb(['--ssl', `--ssl-ca=${sqlCa}`, '--ssl-verify-server-cert']).out.trim()).toBe('1');
    // TiDB v6.1+: a persisted cluster-wide variable; tidb.toml's key would be ignored, so none is written.
    expect(sshOk(info, TIDB, `sudo -n cat ${toml}`)).not.toMatch(/require-secure-transport/);
    expect(unitStartTimes(info, t)).toEqual(started);
    const rotRefused = await runTiseal(info, ['sql-tls', 'rotate', info.topologyFile, '--yes']);
    expect(rotRefused.code).not.toBe(0);
    expect(rotRefused.stderr).toMatch(/require_secure_transport is ON and ssl-ca is set.*pingcap\/tidb#69870/);

    // disable from there: require goes too, plaintext is back
    const off = await runTiseal(info, ['sql-tls', 'disable', info.topologyFile, '--yes']);
    if (off.code !== 0) throw new Error(`sql-tls disable failed (${off.code}):\n${off.stdout.slice(-3000)}\n${off.stderr}`);
    expect(mariadb(['--skip-ssl']).out.trim()).toBe('1');
    expect(mariadb(['--ssl', `--ssl-ca=${sqlCa}`, '--ssl-verify-server-cert']).code).not.toBe(0);
    expect(starttls(sqlCa).code).not.toBe(0);
    const tomlAfter = sshOk(info, TIDB, `sudo -n cat ${toml}`);
    expect(tomlAfter).not.toMatch(/ssl-(ca|cert|key)|tls-version|require-secure-transport/);
    // TiUP's keys are all still there (only the SQL TLS keys went)
    for (const line of tomlBefore.split('\n').filter((l) => /^\s*[\w.-]+\s*=/.test(l))) expect(tomlAfter).toContain(line.split('=')[0].trim());
    expect(fs.existsSync(sqlCa)).toBe(true);
  });

  it('rolls TLS out over two TiDBs with no failed statement for an application behind a load balancer', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-2tidb-'));
    // Same base name as the lab's topology: same tiseal cluster (state dir, SQL CA).
    const variant = path.join(dir, path.basename(info.topologyFile));
    const doc = yaml.load(fs.readFileSync(info.topologyFile, 'utf8')) as { tidb_servers: Array<{ host: string }> };
    doc.tidb_servers.push({ host: TIDB2 });
    fs.writeFileSync(variant, yaml.dump(doc));
    const t2 = loadTopology(variant);
    const extra = t2.instances.filter((i) => i.role === 'tidb' && i.host === TIDB2);
    const script = deployScript(t2, TIDB2, resolveOptions().version, (i) => extra.includes(i));
    expect(script).not.toMatch(/tiflash/); // only the new TiDB; TiFlash on the same host is left alone
    let prober: SqlProberProcess | undefined;
    const probe = async (backends: string[], run: () => Promise<void>, ssl?: SqlProberConfig['ssl']): Promise<SqlProbeReport> => {
      // HAProxy as TiDB's docs configure it (`check inter 2000 rise 2`): a TiDB that is back gets traffic 2-4 s later.
      prober = new SqlProberProcess({ backends: backends.map((h) => `${h}:4000`), workers: 2, pauseMs: 20, timeoutMs: 3000, checkMs: 2000, rise: 2, keyPrefix: 'lab-sqlprobe', ssl });
      prober.start();
      await prober.answering(20);
      await run();
      await prober.allUp(); // the last TiDB back in rotation: the whole outage, if any, is in the report
      const rep = await prober.stop();
      prober = undefined;
      return rep;
    };
    const tiseal = async (args: string[]) => {
      const r = await runTiseal(info, [...args, variant, '--yes']);
      if (r.code !== 0) throw new Error(`tiseal ${args.join(' ')} failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);
      return r;
    };
    const summary = (r: SqlProbeReport) => `${r.statements} statements, ${r.failed} failed, ${r.connectionErrors} connection errors, ${r.retried} retried; ${r.events.map((e) => `${e.backend} ${e.state}`).join(', ')}`;
    try {
      sshOk(info, TIDB2, 'sudo -n bash -s', script);
      sshOk(info, TIDB2, `sudo -n systemctl start ${extra[0].unit}`);
      await waitStatus(extra, 'status_port', 10080, 60_000);

      const t0 = Date.now();
      const during = await probe([TIDB, TIDB2], async () => {
        const r = await tiseal(['sql-tls', 'enable']);
        // the second waits until a balancer can have taken the first back
        expect(r.stdout).toMatch(/restart tidb-4000\.service on 10\.77\.0\.15 \(offers no TLS; first 5 s for load balancers to take 10\.77\.0\.14:4000 back\)/);
      });
      const failed = during.records.filter((x) => !x.ok).slice(0, 5);
      expect(`${during.failed} failed ${JSON.stringify(failed)}`).toBe('0 failed []');
      // every statement recorded, both TiDBs served, each one was taken out and came back
      expect(during.records.map((x) => x.n)).toEqual([...Array(during.statements).keys()]);
      expect(during.statements).toBeGreaterThan(100);
      expect(during.perBackend[`${TIDB}:4000`]).toBeGreaterThan(20);
      expect(during.perBackend[`${TIDB2}:4000`]).toBeGreaterThan(20);
      expect(during.events.map((e) => `${e.backend} ${e.state}`)).toEqual([`${TIDB}:4000 down`, `${TIDB}:4000 up`, `${TIDB2}:4000 down`, `${TIDB2}:4000 up`]);
      expect(during.connectionErrors).toBeGreaterThan(0);
      process.stdout.write(`sql prober, sql-tls enable over 2 TiDBs (${Date.now() - t0} ms): ${summary(during)}\n`);
      const sqlCa = path.join(clusterDir(info), 'sql-tls', 'ca.crt');
      for (const h of [TIDB, TIDB2]) {
        const r = spawnSync('mariadb', ['-h', h, '-P', '4000', '-u', 'root', '--connect-timeout=5', '-N', '-B', '--ssl', `--ssl-ca=${sqlCa}`, '--ssl-verify-server-cert', '-e', "SHOW STATUS LIKE 'Ssl_version'"], { encoding: 'utf8', timeout: 30_000 });
        expect(`${h} ${r.stdout}${r.stderr}`).toMatch(new RegExp(`^${h.replace(/\./g, '\\.')} Ssl_version\tTLSv1\\.[23]`));
      }

      // require → disable → enable under an application with MySQL clients' default --ssl-mode=PREFERRED
      // (TLS when offered, else plaintext). From v6.1 require_secure_transport persists cluster-wide, so a
      // TiDB restarted by hand keeps it, and disable must turn it OFF before its first restart.
      const tlsArgs = ['--ssl', `--ssl-ca=${sqlCa}`, '--ssl-verify-server-cert'];
      const cc = path.join(dir, 'client');
      fs.mkdirSync(cc);
      const issued = await runTiseal(info, ['cert', 'client', variant, '--sql', '--cn', 'root', '--out', cc]);
      expect(`${issued.code} ${issued.stderr}`).toBe('0 ');
      const withCert = [...tlsArgs, `--ssl-cert=${cc}/root.crt`, `--ssl-key=${cc}/root.key`];
      // The emulated release ($TISEAL_LAB_VERSION: require_secure_transport is a persisted variable from v6.1).
      const version = resolveOptions().version;
      expect(mariadbAt(TIDB, tlsArgs, 'SELECT @@version').out.trim()).toBe(`8.0.11-TiDB-${version}`);
      const t1 = Date.now();
      const cycle = await probe(
        [TIDB, TIDB2],
        async () => {
          await tiseal(['sql-tls', 'require']);
          await prober!.allUp();
          // Persisted: the new process refuses plaintext; with ssl-ca set it now also demands a client
          // certificate over TLS (pkg/util/misc.go, pingcap/tidb#69870), so the prober loses this TiDB
          // until disable restarts it, and tiseal needs --sql-cert to read it. disable restarts this one
          // first, so the application keeps the other TiDB throughout.
          expect(restartByHand(info, TIDB, ['--skip-ssl']).out).toMatch(/ERROR 3159 \(08004\)/);
          expect(mariadbAt(TIDB, tlsArgs).code).not.toBe(0);
          expect(mariadbAt(TIDB, withCert).out.trim()).toBe('1');
          expect(mariadbAt(TIDB2, ['--skip-ssl']).out).toMatch(/ERROR 3159 \(08004\)/);
          await tiseal(['sql-tls', 'disable', '--sql-cert', `${cc}/root.crt`, '--sql-key', `${cc}/root.key`]);
          await prober!.allUp();
          // OFF persisted too: a TiDB restarted by hand accepts plaintext.
          expect(restartByHand(info, TIDB2, ['--skip-ssl']).out.trim()).toBe('1');
          await prober!.allUp();
          await tiseal(['sql-tls', 'enable']);
        },
        { ca: fs.readFileSync(sqlCa, 'utf8'), preferred: true },
      );
      process.stdout.write(`sql prober (ssl preferred), require → disable → enable over 2 TiDBs at ${version} (${Date.now() - t1} ms): ${summary(cycle)}\n`);
      expect(`${cycle.failed} failed ${JSON.stringify(cycle.records.filter((x) => !x.ok).slice(0, 5))}`).toBe('0 failed []');
      expect(cycle.records.map((x) => x.n)).toEqual([...Array(cycle.statements).keys()]);
      // The TiDB restarted under require stays out (no client certificate) until disable restarts it; then
      // the hand restart after disable, then enable's two restarts.
      const bounce = (h: string) => [`${h}:4000 down`, `${h}:4000 up`];
      expect(cycle.events.map((e) => `${e.backend} ${e.state}`)).toEqual([...bounce(TIDB), ...bounce(TIDB2), ...bounce(TIDB2), ...bounce(TIDB), ...bounce(TIDB2)]);
      for (const h of [TIDB, TIDB2]) expect(mariadbAt(h, tlsArgs, "SHOW STATUS LIKE 'Ssl_version'").out).toMatch(/^Ssl_version\tTLSv1\.[23]/);

      // The control: the same prober over one TiDB sees the restart (and disable rolls back both).
      const alone = await probe([TIDB], async () => void (await tiseal(['sql-tls', 'disable'])));
      process.stdout.write(`sql prober, sql-tls disable over 1 TiDB: ${summary(alone)}\n`);
      expect(alone.failed).toBeGreaterThan(0);
      expect(alone.records.filter((x) => !x.ok).every((x) => /^no backend could run it/.test(x.error!))).toBe(true);
    } finally {
      await prober?.stop();
      // Leave the lab's own topology: the extra TiDB goes (labReset would also remove it).
      sshOk(info, TIDB2, `sudo -n sh -c 'systemctl disable --now ${extra[0].unit} >/dev/null 2>&1; rm -f /etc/systemd/system/${extra[0].unit}; systemctl daemon-reload; rm -rf ${extra[0].deployDir} ${extra[0].logDir}'`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
