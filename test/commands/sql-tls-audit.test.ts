import { sqlTlsFindings } from '../../src/audit/sql-tls';
import { judgeSqlTls, SqlTlsInstanceStatus } from '../../src/commands/sql-tls/status';

const row = (o: Partial<SqlTlsInstanceStatus>): SqlTlsInstanceStatus => {
  const s: SqlTlsInstanceStatus = {
    id: 'tidb-4000', host: '10.0.0.1', port: 4000, unit: 'tidb-4000.service', configured: 'on', requireSecureTransport: true, offered: 'tls', verified: true, protocol: 'TLSv1.3',
    certificate: { subject: 'CN=tidb', issuer: 'CN=tiseal SQL CA c', serial: '01', notAfter: '2099-01-01T00:00:00.000Z', daysLeft: 400, sans: [] },
    tlsVersions: { TLSv1: false, 'TLSv1.1': false, 'TLSv1.2': true, 'TLSv1.3': true }, level: 'ok', problems: [], ...o,
  };
  judgeSqlTls(s);
  return s;
};
const levels = (r: SqlTlsInstanceStatus) => sqlTlsFindings({ cluster: 'c', instances: [r], level: r.level }).map((f) => `${f.level} ${f.evidence}`);

describe('audit check sql-tls and sql-tls status levels', () => {
  it('passes a verified, current, TLS1.2+ port with require-secure-transport', () => {
    const r = row({});
    expect(r.level).toBe('ok');
    expect(levels(r)).toEqual(['PASS TLS offered (TLSv1.3), verified against the SQL CA, 400 days left', 'PASS TLS 1.0/1.1 refused', 'PASS require_secure_transport is ON']);
  });
  it('warns for plaintext, require off and a certificate about to expire; fails TLS 1.0 and unverified certificates', () => {
    expect(levels(row({ offered: 'plain', requireSecureTransport: false, certificate: undefined, tlsVersions: undefined, configured: 'off' }))[0]).toMatch(/^WARN TLS is not offered/);
    const soon = row({ requireSecureTransport: false, certificate: { subject: 'CN=tidb', issuer: 'CN=x', serial: '1', notAfter: '2026-12-01', daysLeft: 3, sans: [] } });
    expect(soon.level).toBe('warning');
    expect(levels(soon)).toEqual(['WARN certificate expires in 3 days', 'PASS TLS 1.0/1.1 refused', 'WARN require_secure_transport is OFF: plaintext logins are still accepted']);
    const old = row({ tlsVersions: { TLSv1: true, 'TLSv1.1': true, 'TLSv1.2': true, 'TLSv1.3': true } });
    expect(levels(old)).toContain('FAIL accepts TLSv1 and TLSv1.1');
    const bad = row({ verified: false });
    expect(bad.level).toBe('error');
    expect(levels(bad)[0]).toMatch(/^FAIL served certificate \(issuer CN=x|^FAIL served certificate/);
    expect(row({ configured: 'on', offered: 'plain', certificate: undefined, tlsVersions: undefined }).problems).toContain('configured for TLS but the MySQL port offers none (restart pending?)');
  });
  // From v6.1 require_secure_transport is read live (tidb.toml's key is ignored by TiDB).
  it('require read live: ON without TLS fails, unreadable warns, a stale tidb.toml key warns', () => {
    const locked = row({ offered: 'plain', configured: 'off', certificate: undefined, tlsVersions: undefined });
    expect(locked.level).toBe('error');
    expect(levels(locked)).toEqual(['FAIL require_secure_transport is ON but TLS is not offered: every TCP client is refused (3159)']);
    const unknown = row({ requireSecureTransport: null, requireError: 'ERROR 1045 (28000): Access denied' });
    expect(unknown.problems).toEqual(['require_secure_transport could not be read: ERROR 1045 (28000): Access denied']);
    expect(levels(unknown)).toContain('WARN require_secure_transport could not be read: ERROR 1045 (28000): Access denied');
    const stale = row({ requireSecureTransport: false, staleRequireKey: true, tidbVersion: 'v8.5.1' });
    expect(stale.problems).toContain('tidb.toml sets require-secure-transport, which TiDB v8.5.1 ignores (a system variable since v6.1): delete the key');
    expect(levels(stale)).toContain('WARN tidb.toml sets require-secure-transport, which TiDB v8.5.1 ignores (a system variable since v6.1)');
  });
});
