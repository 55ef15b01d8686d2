import { PreflightError } from '../../errors';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { openSqlSession, sqlErrorText } from '../../sql/session';
import { probeMysqlTls } from '../../sql/starttls';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { mysqlPort, SqlTlsContext, tidbInstances } from './context';

/**
 * Before any change: every TiDB answers on its MySQL port and the SQL credentials log in there
 * (the gates after each restart need them; finding out after the first restart is too late).
 * The session goes over TLS when the port offers it; the chain is verified later, by the gate.
 */
export const sqlPreflightStep: Step<SqlTlsContext> = {
  id: 'sql-preflight',
  title: 'Preflight: every TiDB MySQL port answers and the SQL credentials log in',
  async decide(ctx) {
    const insts = tidbInstances(ctx);
    if (insts.length === 0) throw new PreflightError('the topology has no tidb_servers', { suggestion: 'SQL TLS is TiDB’s MySQL port; nothing was changed' });
    const problems = await mapLimit(insts, readConcurrency(ctx.opts), async (inst) => {
      const at = `${inst.host}:${mysqlPort(inst)} ${inst.unit}`;
      const probe = await probeMysqlTls(inst.host, mysqlPort(inst), { timeoutMs: 5000 });
      if (probe.kind === 'closed') return `${at}: MySQL port does not answer (${probe.error})`;
      try {
        const s = await openSqlSession({ host: inst.host, port: mysqlPort(inst), tls: probe.kind === 'tls' ? { verify: false } : undefined }, ctx.sql.creds);
        try {
          await s.query('SELECT 1');
        } finally {
          await s.close();
        }
      } catch (e) {
        return `${at}: cannot log in as ${ctx.sql.creds.user}: ${sqlErrorText(e)}`;
      }
      return undefined;
    });
    const bad = problems.filter((p): p is string => p !== undefined);
    if (bad.length) {
      throw new PreflightError(bad[0] + (bad.length > 1 ? ` (and ${bad.length - 1} more)` : ''), {
        suggestion: 'start TiDB, or give a user that can log in with --sql-user and --sql-password-file (or --sql-cert/--sql-key); nothing was changed on any host',
      });
    }
    return noop(`${insts.length} TiDB(s): logged in as ${ctx.sql.creds.user}`);
  },
};
