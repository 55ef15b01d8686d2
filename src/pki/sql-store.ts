import { CertStore } from './store';

/**
 * The SQL CA: `<state-dir>/clusters/<name>/sql-tls/`, apart from the cluster CA in tls/. MySQL
 * clients (applications, people) trust it; it never signs a component certificate, and the cluster
 * CA never signs a MySQL server certificate, so trusting one never grants the other.
 */
export const SQL_TLS_SUBDIR = 'sql-tls';

export function sqlCertStore(stateDir: string, cluster: string): CertStore {
  return new CertStore(stateDir, cluster, SQL_TLS_SUBDIR);
}

export const sqlCaCommonName = (cluster: string) => `tiseal SQL CA ${cluster}`.slice(0, 64);
