import type * as tls from 'tls';
import { Column, errors, MysqlError, TYPE } from './mysql-packets';
import { goCertDate, MysqlTlsConfig, sslVersionName } from './mysql-tls';

/**
 * The statements the TiDB emulator answers, each in one exact shape (case and spacing free); anything
 * else is ERROR 1105 "… not supported by the emulator". What each answer models is cited inline.
 */
export interface SqlSession {
  id: number;
  user: string;
  host: string;
  port: number;
  db: string;
  secure?: tls.TLSSocket;
  command: 'Sleep' | 'Query';
  since: number;
  info: string | null;
  warnings: { level: string; code: number; message: string }[];
}

export interface KvRoute {
  /** Returns whether the key existed (REPLACE reports 2 affected rows then). */
  put(key: string, value: string): Promise<boolean>;
  get(key: string): Promise<string | undefined>;
}

export interface SqlContext {
  serverVersion: string;
  tidbVersionText: string;
  requireSecureTransport(): boolean;
  /** SET GLOBAL: from v6.1 persisted to the cluster and applied on every TiDB (tidb/sysvars.ts). */
  setRequireSecureTransport(on: boolean): Promise<void>;
  currentTls(): MysqlTlsConfig | undefined;
  /** ALTER INSTANCE RELOAD TLS; throws the load error (the old config is kept unless noRollback). */
  reloadTls(noRollbackOnError: boolean): void;
  sessions(): SqlSession[];
  kv: KvRoute;
}

export type SqlResult =
  | { kind: 'ok'; affectedRows?: number; warnings?: number }
  | { kind: 'rows'; columns: Column[]; rows: (string | null)[][] };

const STR = String.raw`'(?:[^'\\]|\\.|'')*'`;

/** A MySQL single-quoted literal (backslash escapes and doubled quotes, as the TiDB lexer reads them). */
export function unquote(lit: string): string {
  const body = lit.slice(1, -1);
  const map: Record<string, string> = { '0': '\0', "'": "'", '"': '"', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a', '\\': '\\', '%': '\\%', _: '\\_' };
  return body.replace(/\\(.)|''/gs, (m, c: string | undefined) => (m === "''" ? "'" : map[c!] ?? c!));
}

/** SQL LIKE (case-insensitive, as SHOW STATUS LIKE compares under a ci collation). */
function likeToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && i + 1 < pattern.length) re += pattern[++i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (c === '%') re += '.*';
    else if (c === '_') re += '.';
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'is');
}

const str = (name: string): Column => ({ name, type: TYPE.VAR_STRING });
const int = (name: string): Column => ({ name, type: TYPE.LONGLONG, length: 21 });
const rows = (columns: Column[], r: (string | null)[][]): SqlResult => ({ kind: 'rows', columns, rows: r });

/** Databases a fresh TiDB has (COM_INIT_DB / USE of anything else: ERROR 1049). */
export const DATABASES = ['INFORMATION_SCHEMA', 'METRICS_SCHEMA', 'PERFORMANCE_SCHEMA', 'mysql', 'sys', 'test'];

export function knownDb(db: string): boolean {
  return DATABASES.some((d) => d.toLowerCase() === db.toLowerCase());
}

/**
 * Session SSL status as pkg/sessionctx/variable/statusvar.go (Ssl_cipher, Ssl_cipher_list,
 * Ssl_verify_mode, Ssl_version: empty/0 on plaintext) plus pkg/server/stat.go (Ssl_server_not_after /
 * _before from the loaded server certificate).
 */
function sslStatus(s: SqlSession, ctx: SqlContext): [string, string][] {
  const out: [string, string][] = [];
  const t = s.secure;
  const cipher = t?.getCipher();
  out.push(['Ssl_cipher', cipher?.name ?? '']);
  out.push(['Ssl_cipher_list', t ? 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:' : '']);
  const cur = ctx.currentTls();
  out.push(['Ssl_server_not_after', cur ? goCertDate(cur.cert.validTo) : '']);
  out.push(['Ssl_server_not_before', cur ? goCertDate(cur.cert.validFrom) : '']);
  out.push(['Ssl_verify_mode', t ? String(0x01 | 0x04) : '0']);
  out.push(['Ssl_version', t ? sslVersionName(t.getProtocol()) : '']);
  return out;
}

export async function execute(sqlIn: string, s: SqlSession, ctx: SqlContext): Promise<SqlResult> {
  const sql = sqlIn.trim().replace(/;\s*$/, '').trim();
  const norm = sql.replace(/\s+/g, ' ');
  let m: RegExpExecArray | null;
  const prevWarnings = s.warnings;
  if (!/^show warnings$/i.test(norm)) s.warnings = [];

  if (/^select 1$/i.test(norm)) return rows([int('1')], [['1']]);
  if (/^select @@version$/i.test(norm)) return rows([str('@@version')], [[ctx.serverVersion]]);
  if (/^select tidb_version\(\)$/i.test(norm)) return rows([str('tidb_version()')], [[ctx.tidbVersionText]]);
  // The mysql/mariadb CLI asks this when it connects (client/mysql.cc); TiDB's default version_comment.
  if (/^select @@version_comment limit 1$/i.test(norm)) {
    return rows([str('@@version_comment')], [['TiDB Server (Apache License 2.0) Community Edition, MySQL 8.0 compatible']]);
  }
  if (/^set names [`'"]?\w+[`'"]?( collate [`'"]?\w+[`'"]?)?$/i.test(norm)) return { kind: 'ok' };
  if ((m = /^use `?(\w+)`?$/i.exec(norm))) {
    if (!knownDb(m[1])) throw errors.badDb(m[1]);
    s.db = m[1];
    return { kind: 'ok' };
  }
  // The mariadb CLI's auto-rehash asks these on an interactive connect with a database.
  if (/^show databases$/i.test(norm)) return rows([str('Database')], DATABASES.map((d) => [d]));
  if (/^show tables$/i.test(norm)) {
    if (!s.db) throw new MysqlError(1046, '3D000', 'No database selected');
    return rows([str(`Tables_in_${s.db}`)], s.db.toLowerCase() === 'test' ? [['kv']] : []);
  }
  if (/^show warnings$/i.test(norm)) {
    return rows([str('Level'), int('Code'), str('Message')], prevWarnings.map((w) => [w.level, String(w.code), w.message]));
  }
  // The table always exists: TiDB answers IF NOT EXISTS with Note 1050 (pkg/infoschema ErrTableExists).
  if (/^create table if not exists test\.kv ?\( ?k varchar\(64\) primary key ?, ?v text ?\)$/i.test(norm)) {
    s.warnings = [{ level: 'Note', code: 1050, message: "Table 'test.kv' already exists" }];
    return { kind: 'ok', warnings: 1 };
  }
  if ((m = new RegExp(String.raw`^replace\s+into\s+test\.kv\s*\(\s*k\s*,\s*v\s*\)\s+values\s*\(\s*(${STR})\s*,\s*(${STR})\s*\)$`, 'is').exec(sql))) {
    const k = unquote(m[1]);
    if ([...k].length > 64) throw new MysqlError(1406, '22001', "Data too long for column 'k' at row 1");
    const existed = await ctx.kv.put(k, unquote(m[2]));
    return { kind: 'ok', affectedRows: existed ? 2 : 1 };
  }
  if ((m = new RegExp(String.raw`^select\s+v\s+from\s+test\.kv\s+where\s+k\s*=\s*(${STR})$`, 'is').exec(sql))) {
    const v = await ctx.kv.get(unquote(m[1]));
    return rows([{ name: 'v', type: TYPE.BLOB, table: 'kv', schema: 'test', length: 65535 }], v === undefined ? [] : [[v]]);
  }
  if ((m = new RegExp(String.raw`^show (global |session )?status like (${STR})$`, 'i').exec(norm))) {
    const re = likeToRegExp(unquote(m[2]));
    return rows([str('Variable_name'), str('Value')], sslStatus(s, ctx).filter(([n]) => re.test(n)));
  }
  // pkg/sessionctx/variable/sysvar.go RequireSecureTransport: ON only from a TLS session.
  if ((m = /^set (?:global |@@global\.)require_secure_transport ?= ?'?(on|off|1|0|true|false)'?$/i.exec(norm))) {
    const on = /^(on|1|true)$/i.test(m[1]);
    if (on && !s.secure) throw errors.unknown('require_secure_transport can only be set to ON if the connection issuing the change is secure');
    await ctx.setRequireSecureTransport(on);
    return { kind: 'ok' };
  }
  if (/^select @@global\.require_secure_transport$/i.test(norm)) {
    return rows([str('@@global.require_secure_transport')], [[ctx.requireSecureTransport() ? 'ON' : 'OFF']]);
  }
  // pkg/executor/simple.go executeAlterInstance.
  if ((m = /^alter instance reload tls( no rollback on error)?$/i.exec(norm))) {
    try {
      ctx.reloadTls(!!m[1]);
    } catch (e) {
      throw errors.unknown((e as Error).message);
    }
    return { kind: 'ok' };
  }
  // pkg/util/processinfo.go ToRowForShow: Host is ip:port, State is the txn state; TLS is not shown.
  if ((m = /^show (full )?processlist$/i.exec(norm))) {
    const now = Date.now();
    return rows(
      [int('Id'), str('User'), str('Host'), str('db'), str('Command'), int('Time'), str('State'), str('Info')],
      ctx.sessions().map((x) => [
        String(x.id), x.user, `${x.host}:${x.port}`, x.db || null, x.command, String(Math.floor((now - x.since) / 1000)),
        'autocommit', x.info === null ? null : m![1] ? x.info : x.info.slice(0, 100),
      ]),
    );
  }
  throw errors.unknown(`tiseal emulator: statement not supported by the emulator: ${sql.length > 200 ? sql.slice(0, 200) + '…' : sql}`);
}
