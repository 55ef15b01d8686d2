import * as TOML from '@iarna/toml';
import { applyTlsKeys } from '../../src/components';
import { applySqlTlsKeys, readSqlTlsKeys } from '../../src/sql/tidb-keys';

const sql = { ca: '/d/tls/sql-ca.crt', cert: '/d/tls/sql.crt', key: '/d/tls/sql.pem' };
const cluster = { paths: { dir: '/d/tls', ca: '/d/tls/ca.crt', cert: '/d/tls/tidb.crt', key: '/d/tls/tidb.pem' } };

describe('tidb.toml [security]: SQL TLS and cluster TLS keep out of each other’s keys', () => {
  it('sql-tls enable then disable leaves the cluster-ssl-* keys and the rest of the file as they were', () => {
    const doc = TOML.parse('[log]\nlevel = "info"\n[security]\ncluster-ssl-ca = "/d/tls/ca.crt"\ncluster-ssl-cert = "/d/tls/tidb.crt"\ncluster-ssl-key = "/d/tls/tidb.pem"\n') as Record<string, unknown>;
    const before = JSON.stringify(doc);
    expect(applySqlTlsKeys(doc, { ...sql, tlsVersion: 'TLSv1.2' })).toBe(true);
    expect(readSqlTlsKeys(doc)).toMatchObject({ state: 'on', ...sql, tlsVersion: 'TLSv1.2', requireSecureTransport: false });
    expect(applySqlTlsKeys(doc, { ...sql, tlsVersion: 'TLSv1.2' })).toBe(false);
    (doc.security as Record<string, unknown>)['require-secure-transport'] = true;
    expect(applySqlTlsKeys(doc, null)).toBe(true);
    expect(JSON.stringify(doc)).toBe(before);
  });

  it('tls disable (cluster) keeps ssl-* and the [security] table; sql-tls disable then prunes it', () => {
    const doc: Record<string, unknown> = {};
    applyTlsKeys('tidb', 'tidb.toml', doc, cluster);
    applySqlTlsKeys(doc, sql);
    expect(applyTlsKeys('tidb', 'tidb.toml', doc, null)).toBe(true);
    expect(doc).toEqual({ security: { 'ssl-ca': sql.ca, 'ssl-cert': sql.cert, 'ssl-key': sql.key } });
    applySqlTlsKeys(doc, null);
    expect(doc).toEqual({});
  });

  it('reads a half-set config as partial, and require-secure-transport only when true', () => {
    expect(readSqlTlsKeys({ security: { 'ssl-cert': 'x', 'require-secure-transport': 'true' } })).toMatchObject({ state: 'partial', requireSecureTransport: false });
    expect(readSqlTlsKeys({})).toMatchObject({ state: 'off' });
  });
});
