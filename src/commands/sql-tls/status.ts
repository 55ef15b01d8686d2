import * as TOML from '@iarna/toml';
import type { GlobalOptions } from '../../options';
import { sqlCertStore } from '../../pki/sql-store';
import { readLiveRequire, requireIsSysvar } from '../../sql/require';
import { SqlCredentials, sqlCredentials, sqlErrorText } from '../../sql/session';
import { acceptedTlsVersions, probeMysqlTls, TlsVersionName } from '../../sql/starttls';
import { readSqlTlsKeys, SqlTlsConfig, sqlTlsPaths } from '../../sql/tidb-keys';
import { executorFor } from '../../tasks/context';
import { readRemoteText } from '../../tasks/remote';
import { mysqlPort, tidbInstances } from '../../tasks/sql-tls/context';
import { tidbToml } from '../../tasks/sql-tls/stage';
import type { Instance } from '../../topology/types';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { openCluster } from '../cluster';

export const WARN_DAYS = 30;
type Level = 'ok' | 'warning' | 'error';

/** One TiDB in `sql-tls status --json` (docs/sql-tls-status.schema.json). */
export interface SqlTlsInstanceStatus {
  id: string;
  host: string;
  port: number;
  unit: string;
  /** What tidb.toml says; 'unknown' when it could not be read. */
  configured: SqlTlsConfig['state'] | 'unknown';
  tlsVersion?: string;
  /** `SELECT @@global.require_secure_transport` now (a plaintext login refused with 3159 also says ON); null when it could not be read. */
  requireSecureTransport: boolean | null;
  /** tidb.toml still sets `require-secure-transport`, which TiDB v6.1+ ignores. */
  staleRequireKey?: boolean;
  /** The TiDB release, from `SELECT @@version`. */
  tidbVersion?: string;
  /** What the MySQL port does now. */
  offered: 'tls' | 'plain' | 'closed' | 'failed';
  /** Served chain verifies against the SQL CA (tiseal's, else the host's tls/sql-ca.crt) and names the host. */
  verified: boolean;
  certificate?: { subject: string; issuer: string; serial: string; notAfter: string; daysLeft: number; sans: string[] };
  protocol?: string;
  /** Each TLS version tried alone. */
  tlsVersions?: Record<TlsVersionName, boolean>;
  level: Level;
  problems: string[];
  /** Why requireSecureTransport is null. */
  requireError?: string;
}

export interface SqlTlsStatusReport {
  cluster: string;
  ca?: { path: string; subject: string; notAfter: string; daysLeft: number };
  instances: SqlTlsInstanceStatus[];
  level: Level;
}

const days = (d: Date | string) => Math.floor((new Date(d).getTime() - Date.now()) / 86_400_000);
const worst = (l: Level[]): Level => (l.includes('error') ? 'error' : l.includes('warning') ? 'warning' : 'ok');

/** Problems of one TiDB: a config the port does not match (restart pending), an unverified or expiring certificate, old TLS versions. */
export function judgeSqlTls(s: SqlTlsInstanceStatus): void {
  const err: string[] = [];
  const warn: string[] = [];
  if (s.configured === 'partial') err.push('ssl-ca/ssl-cert/ssl-key are half set in tidb.toml');
  if (s.configured === 'on' && s.offered !== 'tls') err.push(`configured for TLS but the MySQL port ${s.offered === 'plain' ? 'offers none (restart pending?)' : s.offered}`);
  if (s.configured === 'off' && s.offered === 'tls') warn.push('TLS is off in tidb.toml but the port offers it (restart pending?)');
  if (s.requireSecureTransport && s.offered === 'plain') err.push('require_secure_transport is ON but the port offers no TLS: every TCP client is refused (3159)');
  if (s.offered === 'tls' && !s.verified) err.push('served certificate does not verify against the SQL CA for this host');
  if (s.certificate && s.certificate.daysLeft < 0) err.push(`certificate EXPIRED ${s.certificate.notAfter}`);
  else if (s.certificate && s.certificate.daysLeft < WARN_DAYS) warn.push(`certificate expires in ${s.certificate.daysLeft} days`);
  if (s.tlsVersions && (s.tlsVersions.TLSv1 || s.tlsVersions['TLSv1.1'])) warn.push('accepts TLS 1.0/1.1');
  if (s.requireSecureTransport === null && s.requireError) warn.push(`require_secure_transport could not be read: ${s.requireError}`);
  else if (s.offered === 'tls' && !s.requireSecureTransport) warn.push('require_secure_transport is OFF: plaintext logins are accepted');
  if (s.staleRequireKey) warn.push(`tidb.toml sets require-secure-transport, which TiDB ${s.tidbVersion ?? 'v6.1+'} ignores (a system variable since v6.1): delete the key`);
  s.problems = [...err, ...warn];
  s.level = err.length ? 'error' : warn.length ? 'warning' : 'ok';
}

/** require_secure_transport as this TiDB applies it, over what its port offers (TLS unverified: only a value is read). */
async function readRequire(inst: Instance, offered: string, ca: string | undefined, creds: SqlCredentials): Promise<{ on: boolean | null; version?: string; error?: string }> {
  if (offered !== 'tls' && offered !== 'plain') return { on: null };
  try {
    return await readLiveRequire({ host: inst.host, port: mysqlPort(inst), tls: offered === 'tls' ? { ca, verify: false } : undefined }, creds);
  } catch (e) {
    return { on: null, error: `${sqlErrorText(e)} (give --sql-user/--sql-password-file, or --sql-cert/--sql-key)` };
  }
}

async function instanceStatus(pool: Parameters<typeof executorFor>[0], inst: Instance, localCa: string | undefined, creds: SqlCredentials): Promise<SqlTlsInstanceStatus> {
  const exec = await executorFor(pool, inst);
  let config: SqlTlsConfig | undefined;
  let hostCa: string | undefined;
  try {
    const text = await readRemoteText(exec, tidbToml(inst));
    config = readSqlTlsKeys(text ? (TOML.parse(text) as Record<string, unknown>) : {});
    if (!localCa) hostCa = await readRemoteText(exec, sqlTlsPaths(inst).ca);
  } catch {
    config = undefined;
  }
  const port = mysqlPort(inst);
  const probe = await probeMysqlTls(inst.host, port, { ca: localCa ?? hostCa });
  const live = await readRequire(inst, probe.kind, localCa ?? hostCa, creds);
  const s: SqlTlsInstanceStatus = {
    id: inst.id,
    host: inst.host,
    port,
    unit: inst.unit,
    configured: config?.state ?? 'unknown',
    tlsVersion: config?.tlsVersion,
    requireSecureTransport: live.on,
    ...(live.version ? { tidbVersion: live.version } : {}),
    ...(live.error ? { requireError: live.error } : {}),
    ...(config?.requireSecureTransport && requireIsSysvar(live.version) ? { staleRequireKey: true } : {}),
    offered: probe.kind,
    verified: probe.authorized === true,
    protocol: probe.protocol,
    level: 'ok',
    problems: [],
  };
  if (probe.peer) s.certificate = { subject: probe.peer.subject, issuer: probe.peer.issuer, serial: probe.peer.serialHex, notAfter: new Date(probe.peer.notAfter).toISOString(), daysLeft: days(probe.peer.notAfter), sans: probe.peer.sans };
  if (probe.kind === 'tls') s.tlsVersions = await acceptedTlsVersions(inst.host, port);
  judgeSqlTls(s);
  return s;
}

export async function collectSqlTlsStatus(opened: { topology: import('../../topology/types').Topology; cluster: { name: string }; pool: Parameters<typeof executorFor>[0]['pool'] }, opts: GlobalOptions, creds: SqlCredentials): Promise<SqlTlsStatusReport> {
  const store = sqlCertStore(opts.stateDir, opened.cluster.name);
  const ca = store.hasCA() ? store.loadCA({ allowExpired: true }) : undefined;
  const report: SqlTlsStatusReport = { cluster: opened.cluster.name, instances: [], level: 'ok' };
  if (ca) report.ca = { path: store.caCertPath, subject: ca.info.subjectCN, notAfter: ca.info.notAfter.toISOString(), daysLeft: days(ca.info.notAfter) };
  report.instances = await mapLimit(tidbInstances(opened), readConcurrency(opts), (inst) => instanceStatus({ pool: opened.pool }, inst, ca?.bundlePem, creds));
  report.level = worst(report.instances.map((i) => i.level));
  return report;
}

function printText(r: SqlTlsStatusReport): void {
  const out: string[] = [`SQL TLS of cluster '${r.cluster}'${r.ca ? ` (SQL CA ${r.ca.subject}, until ${r.ca.notAfter.slice(0, 10)})` : ' (no SQL CA in the state dir)'}:`];
  for (const i of r.instances) {
    const versions = i.tlsVersions ? Object.entries(i.tlsVersions).filter(([, ok]) => ok).map(([v]) => v).join(',') : '-';
    const cert = i.certificate ? ` ${i.verified ? 'verified' : 'NOT verified'} serial ${i.certificate.serial.slice(0, 16)} issuer "${i.certificate.issuer.replace(/\n/g, ', ')}" until ${i.certificate.notAfter.slice(0, 10)}` : '';
    out.push(`  ${i.host}:${i.port} ${i.unit}: config ${i.configured}, port ${i.offered}${cert}; versions ${versions}; require_secure_transport ${i.requireSecureTransport === null ? 'unknown' : i.requireSecureTransport ? 'ON' : 'OFF'} [${i.level}]`);
    for (const p of i.problems) out.push(`    - ${p}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

/** `tiseal sql-tls status`: read-only; exit 0 ok, 3 warning, 1 error (as `tls status`). */
export async function run(topologyFile: string, flags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  const creds = sqlCredentials(flags);
  const opened = await openCluster(topologyFile, opts);
  try {
    const report = await collectSqlTlsStatus(opened, opts, creds);
    if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else printText(report);
    return report.level === 'error' ? 1 : report.level === 'warning' ? 3 : 0;
  } finally {
    await opened.close();
  }
}
