import * as TOML from '@iarna/toml';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { PreflightError, StepError } from '../../errors';
import { LiveRequire, readLiveRequire, requireIsSysvar, SECURE_TRANSPORT_REQUIRED } from '../../sql/require';
import { openSqlSession, SqlSession, sqlErrorText, SqlTarget } from '../../sql/session';
import { probeMysqlTls } from '../../sql/starttls';
import { readSqlTlsKeys } from '../../sql/tidb-keys';
import type { Instance } from '../../topology/types';
import { executorFor } from '../context';
import { readRemoteText } from '../remote';
import { fileAction } from '../certs/stage';
import { mapLimit, readConcurrency, sleep } from '../../util/concurrency';
import { mysqlPort, SqlTlsContext, tidbInstances } from './context';
import { tidbToml } from './stage';

export { SECURE_TRANSPORT_REQUIRED };

/** A verified TLS session when tiseal holds the SQL CA (unverified otherwise, e.g. `disable` of an operator's own certificate). */
const tlsTarget = (ctx: SqlTlsContext, inst: Instance): SqlTarget => ({ host: inst.host, port: mysqlPort(inst), tls: { ca: ctx.sql.caPem, verify: ctx.sql.caPem !== undefined } });

const loginFix = 'check --sql-user/--sql-password-file and that SQL TLS is on (`tiseal sql-tls status`); with require_secure_transport ON and ssl-ca set, a TiDB restarted since demands a client certificate: pass --sql-cert/--sql-key (pingcap/tidb#69870)';

async function withTlsSession<T>(ctx: SqlTlsContext, inst: Instance, fn: (s: SqlSession) => Promise<T>): Promise<T> {
  let s: SqlSession;
  try {
    // SET GLOBAL require_secure_transport = ON is refused from a plaintext session, so always over TLS.
    s = await openSqlSession(tlsTarget(ctx, inst), ctx.sql.creds);
  } catch (e) {
    throw new StepError(`${inst.host}:${mysqlPort(inst)}: cannot log in over TLS as ${ctx.sql.creds.user}: ${sqlErrorText(e)}`, { suggestion: loginFix });
  }
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Live value of require_secure_transport on one TiDB (over TLS) and its release. */
export async function liveRequire(ctx: SqlTlsContext, inst: Instance): Promise<LiveRequire> {
  try {
    return await readLiveRequire(tlsTarget(ctx, inst), ctx.sql.creds);
  } catch (e) {
    throw new StepError(`${inst.host}:${mysqlPort(inst)}: cannot read require_secure_transport over TLS as ${ctx.sql.creds.user}: ${sqlErrorText(e)}`, { suggestion: loginFix });
  }
}

/** Over whatever the MySQL port offers now (TLS, unverified: only a value is read), for a TiDB that may not serve TLS. */
export async function liveRequireAnyTransport(ctx: SqlTlsContext, inst: Instance): Promise<LiveRequire & { tls: boolean }> {
  const probe = await probeMysqlTls(inst.host, mysqlPort(inst), { ca: ctx.sql.caPem, timeoutMs: 5000 });
  const tls = probe.kind === 'tls';
  try {
    return { ...(await readLiveRequire({ host: inst.host, port: mysqlPort(inst), tls: tls ? { ca: ctx.sql.caPem, verify: false } : undefined }, ctx.sql.creds)), tls };
  } catch (e) {
    throw new StepError(`${inst.host}:${mysqlPort(inst)}: cannot read require_secure_transport as ${ctx.sql.creds.user}: ${sqlErrorText(e)}`, { suggestion: loginFix });
  }
}

/**
 * require_secure_transport as the TiDBs apply it, read once per run (cluster-wide from v6.1, so any TiDB
 * that answers tells; `first` is asked first). Throws the first TiDB's error when none answers.
 */
export async function clusterRequire(ctx: SqlTlsContext, first: Instance): Promise<boolean> {
  if (ctx.sql.requireOn !== undefined) return ctx.sql.requireOn;
  let err: unknown;
  for (const inst of [first, ...tidbInstances(ctx).filter((i) => i !== first)]) {
    try {
      ctx.sql.requireOn = (await liveRequireAnyTransport(ctx, inst)).on;
      return ctx.sql.requireOn;
    } catch (e) {
      err ??= e;
    }
  }
  throw err;
}

/** The release of a TiDB when SQL did not tell: the topology's. */
const topologyVersion = (ctx: Pick<SqlTlsContext, 'topology'>, inst: Instance) => ctx.topology.componentVersions?.tidb ?? ctx.topology.clusterVersion;

async function setRequire(ctx: SqlTlsContext, inst: Instance, on: boolean): Promise<void> {
  await withTlsSession(ctx, inst, async (s) => {
    await s.query(`SET GLOBAL require_secure_transport = ${on ? 'ON' : 'OFF'}`);
  }).catch((e) => {
    if (e instanceof StepError) throw e;
    throw new StepError(`${inst.host}:${mysqlPort(inst)}: SET GLOBAL require_secure_transport: ${sqlErrorText(e)}`, { suggestion: 'TiDB older than v6.1 has no such variable: set require-secure-transport in tidb.toml and restart' });
  });
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
 * One TiDB: `SET GLOBAL require_secure_transport` (live, no restart). From v6.1 that is all: the value
 * persists to the cluster and every TiDB applies it at once (so the next TiDB usually finds it done),
 * and tidb.toml's key is ignored (removedConfig): none is written, one already there is left alone
 * (`sql-tls disable` removes it). Before v6.1 the key in tidb.toml is what survives a restart.
 * The gate: a plaintext login is refused with 3159 (or works again).
 */
export function sqlRequireSteps(ctx: Pick<SqlTlsContext, 'topology'>): Step<SqlTlsContext>[] {
  return tidbInstances(ctx).map((inst) => ({
    id: `sql-require-${inst.id}@${inst.host}`,
    title: `require_secure_transport on ${inst.unit} on ${inst.host}`,
    async decide(c: SqlTlsContext) {
      const on = c.sql.want === 'on';
      const live = await liveRequire(c, inst);
      const version = live.version ?? topologyVersion(c, inst);
      const actions = [];
      if (live.on !== on) {
        actions.push({
          title: `SET GLOBAL require_secure_transport = ${on ? 'ON' : 'OFF'} on ${inst.host}:${mysqlPort(inst)}${requireIsSysvar(version) ? ' (persisted; every TiDB applies it)' : ''}`,
          run: () => setRequire(c, inst, on),
        });
      }
      if (requireIsSysvar(version)) return actions.length ? { actions } : noop(`already ${on ? 'required' : 'not required'} (TiDB ${version ?? '≥ v6.1'}: a cluster-wide variable)`);
      const exec = await executorFor(c, inst);
      const file = tidbToml(inst);
      const text = (await readRemoteText(exec, file)) ?? '';
      const doc = TOML.parse(text) as Record<string, unknown>;
      if (readSqlTlsKeys(doc).requireSecureTransport !== on) {
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

/** How long a TiDB may take to apply a changed require_secure_transport: TiDB's sysvar cache reloads every 30 s when it missed the etcd notification (domain.go LoadSysVarCacheLoop). */
const SYSVAR_RELOAD_MS = 30_000;

/**
 * `disable`, before the first restart: a TiDB restarted without TLS while require_secure_transport is
 * ON refuses every TCP client (3159), and from v6.1 the ON persists across that restart. So it goes
 * OFF first, over TLS from a TiDB that still serves it (from v6.1 once: every TiDB applies it).
 */
export const sqlRequireOffStep: Step<SqlTlsContext> = {
  id: 'sql-require-off',
  title: 'require_secure_transport OFF before any TiDB restarts without TLS',
  async decide(c) {
    const lives = await mapLimit(tidbInstances(c), readConcurrency(c.opts), async (inst) => ({ inst, ...(await liveRequireAnyTransport(c, inst)) }));
    const on = lives.filter((l) => l.on);
    if (on.length === 0) return noop('require_secure_transport is OFF on every TiDB');
    const sysvar = requireIsSysvar(lives.find((l) => l.version)?.version ?? topologyVersion(c, on[0].inst));
    const withTls = lives.filter((l) => l.tls);
    const targets = sysvar ? withTls.slice(0, 1) : on.filter((l) => l.tls);
    if (targets.length === 0) {
      const i = on[0].inst;
      throw new StepError(`${i.host}:${mysqlPort(i)}: require_secure_transport is ON but no TiDB offers TLS to turn it OFF from: every TCP client is refused`, { suggestion: `on a TiDB host, log in through TiDB's unix socket (\`socket\` in tidb.toml; require_secure_transport does not cover it) and run SET GLOBAL require_secure_transport = OFF, then re-run \`tiseal sql-tls disable\`` });
    }
    return {
      actions: targets.map(({ inst }) => ({
        title: `SET GLOBAL require_secure_transport = OFF on ${inst.host}:${mysqlPort(inst)}${sysvar ? ' (persisted; every TiDB applies it)' : ''}`,
        run: () => setRequire(c, inst, false),
      })),
    };
  },
  async verify(c) {
    const deadline = Date.now() + SYSVAR_RELOAD_MS + 5000;
    for (const inst of tidbInstances(c)) {
      for (;;) {
        const live = await liveRequireAnyTransport(c, inst);
        if (!live.on) break;
        if (Date.now() >= deadline) throw new StepError(`${inst.host}:${mysqlPort(inst)}: require_secure_transport is still ON after SET GLOBAL … OFF`, { suggestion: `check ${inst.logDir}/tidb.log on ${inst.host}; nothing was restarted, re-run \`tiseal sql-tls disable\`` });
        await sleep(500);
      }
    }
  },
};
