import * as TOML from '@iarna/toml';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { PreflightError, StepError } from '../../errors';
import { openSqlSession, SqlSession, sqlErrorText } from '../../sql/session';
import { probeMysqlTls } from '../../sql/starttls';
import { readSqlTlsKeys } from '../../sql/tidb-keys';
import type { Instance } from '../../topology/types';
import { executorFor } from '../context';
import { readRemoteText } from '../remote';
import { fileAction } from '../certs/stage';
import { mysqlPort, SqlTlsContext, tidbInstances } from './context';
import { tidbToml } from './stage';

/** TiDB's refusal of a plaintext login under require_secure_transport (ER_SECURE_TRANSPORT_REQUIRED). */
export const SECURE_TRANSPORT_REQUIRED = 3159;

async function withTlsSession<T>(ctx: SqlTlsContext, inst: Instance, fn: (s: SqlSession) => Promise<T>): Promise<T> {
  let s: SqlSession;
  try {
    // SET GLOBAL require_secure_transport = ON is refused from a plaintext session, so always over TLS.
    s = await openSqlSession({ host: inst.host, port: mysqlPort(inst), tls: { ca: ctx.sql.caPem, verify: true } }, ctx.sql.creds);
  } catch (e) {
    throw new StepError(`${inst.host}:${mysqlPort(inst)}: cannot log in over TLS as ${ctx.sql.creds.user}: ${sqlErrorText(e)}`, { suggestion: 'check --sql-user/--sql-password-file and that SQL TLS is on (`tiseal sql-tls status`)' });
  }
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const isOn = (v: unknown) => /^(1|ON|true)$/i.test(String(v ?? ''));

/** Live value of require_secure_transport on one TiDB. */
export async function liveRequire(ctx: SqlTlsContext, inst: Instance): Promise<boolean> {
  return withTlsSession(ctx, inst, async (s) => isOn(Object.values((await s.query('SELECT @@global.require_secure_transport'))[0] ?? {})[0]));
}

/** Sessions on every TiDB (TiDB's processlist does not say which are plaintext: shown so the operator can judge). */
export async function sessionsByClient(ctx: SqlTlsContext): Promise<string[]> {
  const out: string[] = [];
  for (const inst of tidbInstances(ctx)) {
    const rows = await withTlsSession(ctx, inst, (s) => s.query('SHOW PROCESSLIST'));
    const counts = new Map<string, number>();
    for (const r of rows) {
      const who = `${String(r.User ?? '?')}@${String(r.Host ?? '?').replace(/:\d+$/, '')}`;
      counts.set(who, (counts.get(who) ?? 0) + 1);
    }
    out.push(`${inst.host}:${mysqlPort(inst)}: ${[...counts].map(([w, n]) => `${w} ×${n}`).join(', ') || 'no sessions'}`);
  }
  return out;
}

/** Every TiDB must offer TLS before plaintext is refused. */
export async function checkRequirable(ctx: SqlTlsContext): Promise<void> {
  if (ctx.sql.want === 'off') return;
  for (const inst of tidbInstances(ctx)) {
    const p = await probeMysqlTls(inst.host, mysqlPort(inst), { ca: ctx.sql.caPem });
    if (p.kind !== 'tls') throw new PreflightError(`${inst.host}:${mysqlPort(inst)} ${inst.unit}: the MySQL port offers no TLS (${p.error ?? p.kind}); requiring it would lock every client out`, { suggestion: 'run `tiseal sql-tls enable` first; nothing was changed' });
  }
}

/**
 * One TiDB: `SET GLOBAL require_secure_transport` (live, no restart) and `require-secure-transport`
 * in tidb.toml (so a restart keeps it); the gate: a plaintext login is refused with 3159 (or works again).
 */
export function sqlRequireSteps(ctx: Pick<SqlTlsContext, 'topology'>): Step<SqlTlsContext>[] {
  return tidbInstances(ctx).map((inst) => ({
    id: `sql-require-${inst.id}@${inst.host}`,
    title: `require_secure_transport on ${inst.unit} on ${inst.host}`,
    async decide(c: SqlTlsContext) {
      const on = c.sql.want === 'on';
      const exec = await executorFor(c, inst);
      const file = tidbToml(inst);
      const text = (await readRemoteText(exec, file)) ?? '';
      const doc = TOML.parse(text) as Record<string, unknown>;
      const cfg = readSqlTlsKeys(doc);
      const live = await liveRequire(c, inst);
      const actions = [];
      if (live !== on) {
        actions.push({
          title: `SET GLOBAL require_secure_transport = ${on ? 'ON' : 'OFF'} on ${inst.host}:${mysqlPort(inst)}`,
          run: () =>
            withTlsSession(c, inst, async (s) => {
              await s.query(`SET GLOBAL require_secure_transport = ${on ? 'ON' : 'OFF'}`);
            }).catch((e) => {
              if (e instanceof StepError) throw e;
              throw new StepError(`${inst.host}:${mysqlPort(inst)}: SET GLOBAL require_secure_transport: ${sqlErrorText(e)}`, { suggestion: 'TiDB older than v6.1 has no such variable: set require-secure-transport in tidb.toml and restart' });
            }),
        });
      }
      if (cfg.requireSecureTransport !== on) {
        const sec = (doc.security && typeof doc.security === 'object' ? doc.security : (doc.security = {})) as Record<string, unknown>;
        if (on) sec['require-secure-transport'] = true;
        else delete sec['require-secure-transport'];
        if (Object.keys(sec).length === 0) delete doc.security;
        actions.push(fileAction(c, inst, file, text, TOML.stringify(doc as TOML.JsonMap), 0o644));
      }
      return actions.length ? { actions } : noop(`already ${on ? 'required' : 'not required'}, live and in tidb.toml`);
    },
    async verify(c: SqlTlsContext) {
      const on = c.sql.want === 'on';
      try {
        const s = await openSqlSession({ host: inst.host, port: mysqlPort(inst) }, c.sql.creds);
        await s.close();
        if (on) throw new StepError(`${inst.host}:${mysqlPort(inst)}: a plaintext login still works after require_secure_transport = ON`, { suggestion: `check ${inst.logDir}/tidb.log on ${inst.host}` });
      } catch (e) {
        if (e instanceof StepError) throw e;
        const errno = (e as { errno?: number }).errno;
        if (!on || errno !== SECURE_TRANSPORT_REQUIRED) throw new StepError(`${inst.host}:${mysqlPort(inst)}: plaintext login: ${sqlErrorText(e)}`, { suggestion: on ? 'expected ERROR 3159; check the TiDB version and log' : 'check the TiDB log' });
      }
    },
  }));
}
