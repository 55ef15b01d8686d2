import type { Step } from '../engine/step';
import { sqlCertificatesStep } from '../tasks/sql-tls/certs';
import type { SqlTlsContext } from '../tasks/sql-tls/context';
import { sqlRequireOffStep } from '../tasks/sql-tls/require';
import { sqlRestartSteps } from '../tasks/sql-tls/restart';
import { sqlStageStep } from '../tasks/sql-tls/stage';

/**
 * `sql-tls enable|disable` after preflight and confirmation. TiDB's MySQL port serves plaintext and
 * TLS at once, so both directions are outage-free when TiDBs restart one at a time behind a load
 * balancer: stage every TiDB first, then restart each and pass its gate before the next goes down.
 * Disable walks the same path and is the rollback of a partial enable; it first turns
 * require_secure_transport OFF, or the first TiDB back without TLS would refuse every client.
 */
export function sqlTlsSteps(ctx: Pick<SqlTlsContext, 'topology' | 'sql'>): Step<SqlTlsContext>[] {
  // OFF before staging too: if it is refused, no tidb.toml is rewritten yet, so no later restart
  // (by hand, a crash) brings a TiDB back without TLS under a persisted ON.
  return [sqlCertificatesStep, ...(ctx.sql.want === 'off' ? [sqlRequireOffStep] : []), sqlStageStep, ...sqlRestartSteps(ctx)];
}
