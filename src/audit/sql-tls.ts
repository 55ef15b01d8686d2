import type { SqlTlsInstanceStatus, SqlTlsStatusReport } from '../commands/sql-tls/status';
import { WARN_DAYS } from '../commands/sql-tls/status';

/** Same shape as `Finding` in src/commands/audit.ts (kept local: audit imports this module). */
export interface SqlTlsFinding {
  check: 'sql-tls';
  level: 'PASS' | 'WARN' | 'FAIL';
  target: string;
  evidence: string;
  fix?: string;
}

const ENABLE = 'tiseal sql-tls enable <topology>';

/**
 * The `sql-tls` audit check, per TiDB MySQL port (from `sql-tls status`): TLS offered and verified,
 * TLS 1.0/1.1 refused, require_secure_transport (live), certificate expiry.
 */
export function sqlTlsFindings(report: SqlTlsStatusReport): SqlTlsFinding[] {
  const out: SqlTlsFinding[] = [];
  const add = (s: SqlTlsInstanceStatus, level: SqlTlsFinding['level'], evidence: string, fix?: string) => out.push({ check: 'sql-tls', level, target: `${s.host}:${s.port} (tidb mysql)`, evidence, ...(fix ? { fix } : {}) });
  for (const s of report.instances) {
    if (s.offered === 'closed') {
      add(s, 'WARN', 'the MySQL port did not answer', `is ${s.unit} running?`);
      continue;
    }
    if (s.offered === 'plain' && s.requireSecureTransport) {
      add(s, 'FAIL', 'require_secure_transport is ON but TLS is not offered: every TCP client is refused (3159)', ENABLE);
      continue;
    }
    if (s.offered === 'plain') {
      add(s, 'WARN', 'TLS is not offered to MySQL clients: passwords and data cross the network in plaintext', ENABLE);
      continue;
    }
    if (s.offered === 'failed') {
      add(s, 'FAIL', 'TLS is offered but the handshake fails', `check ssl-cert/ssl-key in tidb.toml; ${ENABLE}`);
      continue;
    }
    const c = s.certificate;
    if (!s.verified) add(s, 'FAIL', `served certificate (issuer ${c?.issuer.replace(/\n/g, ', ') ?? '?'}) does not verify against the SQL CA for ${s.host}`, 'tiseal sql-tls rotate (or sql-tls enable)');
    else if (c && c.daysLeft < 0) add(s, 'FAIL', `certificate expired ${c.notAfter}`, 'tiseal sql-tls rotate');
    else if (c && c.daysLeft < WARN_DAYS) add(s, 'WARN', `certificate expires in ${c.daysLeft} days`, 'tiseal sql-tls rotate');
    else add(s, 'PASS', `TLS offered (${s.protocol ?? '?'}), verified against the SQL CA, ${c?.daysLeft ?? '?'} days left`);
    const old = s.tlsVersions ? (['TLSv1', 'TLSv1.1'] as const).filter((v) => s.tlsVersions![v]) : [];
    if (old.length) add(s, 'FAIL', `accepts ${old.join(' and ')}`, 'set tls-version = "TLSv1.2" in tidb.toml [security] (tiseal sql-tls enable --tls-version TLSv1.2)');
    else if (s.tlsVersions) add(s, 'PASS', 'TLS 1.0/1.1 refused');
    if (s.requireSecureTransport === null) add(s, 'WARN', `require_secure_transport could not be read: ${s.requireError ?? 'no SQL session'}`, 'give --sql-user/--sql-password-file (or --sql-cert/--sql-key)');
    else if (!s.requireSecureTransport) add(s, 'WARN', 'require_secure_transport is OFF: plaintext logins are still accepted', 'once every application uses TLS: tiseal sql-tls require <topology>');
    else add(s, 'PASS', 'require_secure_transport is ON');
    if (s.staleRequireKey) add(s, 'WARN', `tidb.toml sets require-secure-transport, which TiDB ${s.tidbVersion ?? 'v6.1+'} ignores (a system variable since v6.1)`, 'delete the key from tidb.toml [security]; `tiseal sql-tls require` sets the variable');
  }
  return out;
}
