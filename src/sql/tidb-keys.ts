import * as path from 'path';
import type { Instance } from '../topology/types';

/**
 * TiDB's MySQL-client TLS lives in the same `[security]` table as the cluster TLS
 * (`cluster-ssl-*`, src/components/security-keys.ts) but under other keys: each feature sets and
 * removes only its own, so `tls disable` keeps `ssl-*` and `sql-tls disable` keeps `cluster-ssl-*`.
 */
export const SQL_TLS_KEYS = ['ssl-ca', 'ssl-cert', 'ssl-key', 'tls-version', 'require-secure-transport'] as const;

/** Files beside the cluster ones in <deploy>/tls/. */
export function sqlTlsPaths(inst: Pick<Instance, 'deployDir'>): { dir: string; ca: string; cert: string; key: string } {
  const dir = path.posix.join(inst.deployDir, 'tls');
  return { dir, ca: path.posix.join(dir, 'sql-ca.crt'), cert: path.posix.join(dir, 'sql.crt'), key: path.posix.join(dir, 'sql.pem') };
}

export interface SqlTlsSettings {
  ca: string;
  cert: string;
  key: string;
  /** Minimum TLS version (TiDB `tls-version`); undefined leaves what the operator set. */
  tlsVersion?: string;
}

type Table = Record<string, unknown>;

function security(doc: Table, create: boolean): Table | undefined {
  const s = doc.security;
  if (s && typeof s === 'object' && !Array.isArray(s)) return s as Table;
  if (!create) return undefined;
  doc.security = {};
  return doc.security as Table;
}

/** Set (settings) or remove (null: every SQL TLS key, require-secure-transport too) TiDB's client TLS keys. True when `doc` changed. */
export function applySqlTlsKeys(doc: Table, settings: SqlTlsSettings | null): boolean {
  const before = JSON.stringify(doc);
  if (settings) {
    const t = security(doc, true)!;
    t['ssl-ca'] = settings.ca;
    t['ssl-cert'] = settings.cert;
    t['ssl-key'] = settings.key;
    if (settings.tlsVersion) t['tls-version'] = settings.tlsVersion;
  } else {
    const t = security(doc, false);
    if (t) {
      for (const k of SQL_TLS_KEYS) delete t[k];
      if (Object.keys(t).length === 0) delete doc.security;
    }
  }
  return JSON.stringify(doc) !== before;
}

export interface SqlTlsConfig {
  state: 'on' | 'off' | 'partial';
  ca?: string;
  cert?: string;
  key?: string;
  tlsVersion?: string;
  requireSecureTransport: boolean;
}

/** What tidb.toml says about client TLS (TiDB offers TLS only with both ssl-cert and ssl-key). */
export function readSqlTlsKeys(doc: Table): SqlTlsConfig {
  const t = security(doc, false) ?? {};
  const val = (k: string) => (typeof t[k] === 'string' && t[k] !== '' ? (t[k] as string) : undefined);
  const [ca, cert, key] = [val('ssl-ca'), val('ssl-cert'), val('ssl-key')];
  const set = [ca, cert, key].filter(Boolean).length;
  return { state: set === 3 ? 'on' : set === 0 ? 'off' : 'partial', ca, cert, key, tlsVersion: val('tls-version'), requireSecureTransport: t['require-secure-transport'] === true };
}
