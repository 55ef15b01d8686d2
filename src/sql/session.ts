/**
 * SQL from the control machine to TiDB's MySQL port, with mysql2.
 *
 * Why direct and not `mysql`/`mariadb` over SSH on the TiDB host: tiseal already dials PD, TiKV and
 * TiDB's status port from this machine (src/pd/client.ts, src/net/probe.ts), so TiDB's MySQL port is
 * reachable the same way; a client on the host would need a MySQL client installed there and the
 * password passed to a remote process, and it would check TLS from the server's own loopback
 * instead of the network path the applications use. mysql2 is CommonJS, pure JS, Node >= 8.
 */
import * as fs from 'fs';
import type * as mysqlTypes from 'mysql2/promise';
import { UsageError, localIoError } from '../errors';

export interface SqlCredentials {
  user: string;
  password: string;
  /** Client certificate (PEM) presented over TLS, for users created `REQUIRE SUBJECT/X509`. */
  cert?: string;
  key?: string;
}

/** `--sql-user` (default root), `--sql-password-file` (the password is never a command-line argument), `--sql-cert`/`--sql-key`. */
export function sqlCredentials(flags: Record<string, unknown>): SqlCredentials {
  const user = String(flags.sqlUser ?? 'root');
  if (!/^[^\x00-\x1f\x7f]{1,32}$/.test(user)) throw new UsageError(`invalid --sql-user ${JSON.stringify(user)}`, 'give a MySQL user name (1 to 32 characters)');
  const read = (flag: string, file: unknown) => {
    try {
      return fs.readFileSync(String(file), 'utf8');
    } catch (e) {
      throw localIoError(e, String(file), `read ${flag}`, `check the path given to ${flag}`);
    }
  };
  const password = flags.sqlPasswordFile ? read('--sql-password-file', flags.sqlPasswordFile).replace(/\r?\n$/, '') : '';
  if (Boolean(flags.sqlCert) !== Boolean(flags.sqlKey)) throw new UsageError('--sql-cert and --sql-key go together', 'pass both files of the client certificate');
  return { user, password, cert: flags.sqlCert ? read('--sql-cert', flags.sqlCert) : undefined, key: flags.sqlKey ? read('--sql-key', flags.sqlKey) : undefined };
}

export interface SqlTarget {
  host: string;
  port: number;
  /** TLS: verify the chain against `ca` (mysql2 checks no IP address; probeMysqlTls does). Undefined: plaintext. */
  tls?: { ca?: string; verify: boolean };
}

export interface SqlSession {
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/** One MySQL session. Errors keep the server's code and message (e.g. 3159 for plaintext under require-secure-transport). */
export async function openSqlSession(target: SqlTarget, creds: SqlCredentials, timeoutMs = 8000): Promise<SqlSession> {
  const mysql: typeof mysqlTypes = await import('mysql2/promise');
  const conn = await mysql.createConnection({
    host: target.host,
    port: target.port,
    user: creds.user,
    password: creds.password,
    connectTimeout: timeoutMs,
    ssl: target.tls ? { ca: target.tls.ca, cert: creds.cert, key: creds.key, rejectUnauthorized: target.tls.verify, minVersion: 'TLSv1.2' } : undefined,
  });
  conn.on('error', () => undefined); // a server closing an idle session must not crash tiseal
  return {
    async query(sql) {
      const [rows] = await conn.query({ sql, timeout: timeoutMs });
      return rows as Array<Record<string, unknown>>;
    },
    close: () => conn.end().catch(() => conn.destroy()),
  };
}

/** "ERROR 3159 (08004): Connections using…" from a mysql2 error, else its message. */
export function sqlErrorText(e: unknown): string {
  const x = e as { errno?: number; sqlState?: string; sqlMessage?: string; message?: string };
  return x.errno && x.sqlMessage ? `ERROR ${x.errno} (${x.sqlState ?? 'HY000'}): ${x.sqlMessage}` : String(x.message ?? e);
}
