import * as fs from 'fs';
import * as path from 'path';
import { CertError, UsageError } from '../../errors';
import { clusterNameFor, expandHome, parseDays, parseKeyType, type GlobalOptions } from '../../options';
import { KeyType, issueLeaf, keyTypeOf, writeFileAtomic } from '../../pki';
import { sqlCertStore } from '../../pki/sql-store';
import { mysqlPort } from '../../tasks/sql-tls/context';
import { loadTopology } from '../../topology';

/** Same rules as `cert client` (src/commands/cert-client.ts): the CN names files and goes into SQL. */
const CN_RE = /^[A-Za-z0-9@._-]{1,64}$/;

function parseFlags(flags: Record<string, unknown>): { cn: string; out: string; certDays: number; keyType?: KeyType } {
  const cn = String(flags.cn ?? '');
  if (!CN_RE.test(cn) || cn.startsWith('.') || cn.toLowerCase() === 'sql-ca') {
    throw new UsageError(`invalid --cn '${cn}': 1 to 64 characters of letters, digits and . _ @ - (no spaces, no leading dot, not sql-ca)`, 'e.g. --cn app1');
  }
  const out = String(flags.out ?? '.');
  if (!out) throw new UsageError('--out needs a directory');
  return { cn, out: path.resolve(expandHome(out)), certDays: parseDays(flags.certDays, '--cert-days', 365), keyType: parseKeyType(flags.keyType) };
}

/** `'…'` for SQL: the CN is restricted to [A-Za-z0-9._@-] by parseCertClientFlags, so nothing needs escaping. */
const q = (s: string) => `'${s}'`;

export interface SqlClientResult {
  cn: string;
  files: { cert: string; key: string; ca: string };
  serial: string;
  notAfter: string;
  subject: string;
  sql: { createUser: string; alterUser: string };
  mariadb: string;
  jdbc: string;
  goDsn: string;
}

/** Ready-to-paste lines for one client certificate against one TiDB (pure). */
export function sqlClientLines(cn: string, files: SqlClientResult['files'], host: string, port: number): Pick<SqlClientResult, 'subject' | 'sql' | 'mariadb' | 'jdbc' | 'goDsn'> {
  const subject = `/CN=${cn}`;
  return {
    subject,
    sql: { createUser: `CREATE USER ${q(cn)}@'%' REQUIRE SUBJECT ${q(subject)};`, alterUser: `ALTER USER ${q(cn)}@'%' REQUIRE SUBJECT ${q(subject)};` },
    mariadb: `mariadb -h ${host} -P ${port} -u ${cn} --ssl --ssl-verify-server-cert --ssl-ca=${files.ca} --ssl-cert=${files.cert} --ssl-key=${files.key}`,
    // Connector/J wants the client key in a keystore: see the note printed with it.
    jdbc: `jdbc:mariadb://${host}:${port}/test?user=${cn}&sslMode=verify-full&serverSslCert=${files.ca}`,
    goDsn: `${cn}@tcp(${host}:${port})/test?tls=tidb-sql`,
  };
}

/** `tiseal cert client --sql`: a client certificate from the SQL CA (never the cluster CA), and how to use it. */
export async function run(topologyFile: string, rawFlags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  if (rawFlags.p12) throw new UsageError('--p12 is not offered with --sql yet', 'convert it yourself: openssl pkcs12 -export -in NAME.crt -inkey NAME.key -certfile sql-ca.crt -out NAME.p12');
  const flags = parseFlags(rawFlags);
  const topology = loadTopology(topologyFile);
  const clusterName = clusterNameFor(topologyFile, opts.clusterName);
  const store = sqlCertStore(opts.stateDir, clusterName);
  if (!store.hasCA()) throw new CertError(`no SQL CA for cluster '${clusterName}' in ${store.dir}`, { suggestion: `run \`tiseal sql-tls enable ${topologyFile}\` first (SQL TLS with your own certificate: issue client certificates from your CA)` });
  const ca = store.loadCA();
  const tidb = topology.instances.find((i) => i.role === 'tidb');
  if (!tidb) throw new UsageError(`${topologyFile} has no tidb_servers`, 'client certificates for SQL are for TiDB’s MySQL port');
  const base = path.join(flags.out, flags.cn);
  const files = { cert: `${base}.crt`, key: `${base}.key`, ca: path.join(flags.out, 'sql-ca.crt') };
  const taken = [files.cert, files.key].filter((f) => fs.existsSync(f));
  if (fs.existsSync(files.ca) && fs.readFileSync(files.ca, 'utf8') !== ca.bundlePem) taken.push(files.ca);
  if (taken.length > 0 && !opts.yes) throw new CertError(`${taken.join(', ')} already exist${taken.length === 1 ? 's' : ''}`, { suggestion: 'pass --yes to overwrite, or choose another --out or --cn' });
  const keyType = flags.keyType ?? keyTypeOf(ca.cert.x509.publicKey) ?? 'rsa';
  const issued = await issueLeaf(ca, { commonName: flags.cn, usage: 'client', days: flags.certDays, keyType });
  const lines = sqlClientLines(flags.cn, files, tidb.host, mysqlPort(tidb));
  if (opts.dryRun) {
    process.stdout.write(`would issue a SQL client certificate CN=${flags.cn} for ${flags.certDays} days, signed by '${ca.info.subjectCN}', and write ${Object.values(files).join(', ')}\n`);
    return 0;
  }
  if (!fs.existsSync(flags.out)) {
    fs.mkdirSync(flags.out, { recursive: true, mode: 0o700 });
    fs.chmodSync(flags.out, 0o700);
  } else if (!fs.statSync(flags.out).isDirectory()) throw new UsageError(`--out ${flags.out} exists and is not a directory`, 'give a directory (it is created when missing)');
  await writeFileAtomic(files.key, issued.keyPem, { mode: 0o600, overwrite: true });
  await writeFileAtomic(files.cert, issued.certPem, { mode: 0o644, overwrite: true });
  await writeFileAtomic(files.ca, ca.bundlePem, { mode: 0o644, overwrite: true });
  const result: SqlClientResult = { cn: flags.cn, files, serial: issued.info.serialHex, notAfter: issued.info.notAfter.toISOString(), ...lines };
  if (opts.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  }
  process.stdout.write(
    [
      `Issued SQL client certificate CN=${flags.cn} (serial ${result.serial}, expires ${result.notAfter.slice(0, 10)}, signed by '${ca.info.subjectCN}')`,
      `  ${files.cert}  certificate (clientAuth only)`,
      `  ${files.key}  private key (0600)`,
      `  ${files.ca}  SQL CA bundle (verifies TiDB)`,
      '',
      'On TiDB (as an administrator), a user that must present this certificate:',
      `  ${lines.sql.createUser}`,
      `  -- or, for an existing user: ${lines.sql.alterUser}`,
      '',
      '# mariadb / mysql',
      `  ${lines.mariadb}`,
      '# JDBC (MariaDB Connector/J; the client key goes in a PKCS#12 keyStore=…&keyStorePassword=…)',
      `  ${lines.jdbc}`,
      '# Go (go-sql-driver/mysql): mysql.RegisterTLSConfig("tidb-sql", &tls.Config{RootCAs: <sql-ca.crt>, Certificates: <crt+key>, ServerName: <TiDB host>})',
      `  ${lines.goDsn}`,
    ].join('\n') + '\n',
  );
  return 0;
}
