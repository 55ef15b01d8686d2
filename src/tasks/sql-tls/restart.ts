import * as path from 'path';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { StepError } from '../../errors';
import { openSqlSession, sqlErrorText } from '../../sql/session';
import { probeMysqlTls } from '../../sql/starttls';
import { sqlTlsPaths } from '../../sql/tidb-keys';
import type { Instance } from '../../topology/types';
import { sleep } from '../../util/concurrency';
import { runStats } from '../../util/run-stats';
import { executorFor } from '../context';
import { waitHealthy } from '../restart/health';
import { newestMtimeUs, systemctl, unitStates } from '../remote';
import { mysqlPort, SqlTlsContext, tidbInstances } from './context';
import { clusterRequire } from './require';
import { tidbToml } from './stage';

/** Why this TiDB must restart to serve the wanted SQL TLS state, or undefined when it does already. */
export async function sqlRestartReason(ctx: SqlTlsContext, inst: Instance): Promise<string | undefined> {
  const exec = await executorFor(ctx, inst);
  const unit = (await unitStates(exec, [inst.unit])).get(inst.unit);
  if (!unit || unit.activeState !== 'active') return `unit is ${unit?.activeState ?? 'missing'}`;
  const probe = await probeMysqlTls(inst.host, mysqlPort(inst), { ca: ctx.sql.caPem });
  if (ctx.sql.want === 'on' && probe.kind !== 'tls') return probe.kind === 'plain' ? 'offers no TLS' : `TLS handshake fails: ${probe.error}`;
  if (ctx.sql.want === 'off' && (probe.kind === 'tls' || probe.kind === 'failed')) return 'still offers TLS';
  const p = sqlTlsPaths(inst);
  const files = ctx.sql.want === 'on' ? [tidbToml(inst), p.ca, p.cert, p.key] : [tidbToml(inst)];
  if ((await newestMtimeUs(exec, files)) > unit.activeEnterUs) return `${files.length > 1 ? 'tidb.toml or SQL certificates' : 'tidb.toml'} changed since it started`;
  return undefined;
}

/**
 * The gate after one TiDB restarted: healthy, then a real TLS handshake on its MySQL port
 * (verified against the SQL CA; tiseal's own certificates must also name the host) and a
 * statement through it, or plaintext again after disable.
 */
export async function sqlGate(ctx: SqlTlsContext, inst: Instance, timeoutMs = 90_000): Promise<string> {
  await waitHealthy(ctx, [inst], { tls: ctx.sql.clusterTls });
  const on = ctx.sql.want === 'on';
  const port = mysqlPort(inst);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const probe = await probeMysqlTls(inst.host, port, { ca: ctx.sql.caPem });
    if (on && probe.kind !== 'tls') last = probe.kind === 'plain' ? 'the MySQL port offers no TLS' : `TLS handshake: ${probe.error}`;
    else if (on && !(ctx.sql.issued ? probe.authorized : probe.chainVerified)) last = `the served certificate does not verify against tls/sql-ca.crt${ctx.sql.issued ? ` for ${inst.host}` : ''}: ${probe.error}`;
    else if (!on && probe.kind !== 'plain') last = probe.kind === 'tls' ? 'the MySQL port still offers TLS' : `the MySQL port: ${probe.error}`;
    else {
      try {
        const s = await openSqlSession({ host: inst.host, port, tls: on ? { ca: ctx.sql.caPem, verify: true } : undefined }, ctx.sql.creds);
        try {
          await s.query('SELECT 1');
          const ssl = String((await s.query("SHOW STATUS LIKE 'Ssl_version'"))[0]?.Value ?? '');
          if (on === (ssl !== '')) return on ? `${ssl}, serial ${probe.peer?.serialHex.slice(0, 16)}…, SELECT 1 ok` : 'plaintext, SELECT 1 ok';
          last = on ? 'the session is not encrypted (Ssl_version empty)' : `the session is encrypted (${ssl})`;
        } finally {
          await s.close();
        }
      } catch (e) {
        last = `SQL as ${ctx.sql.creds.user}: ${sqlErrorText(e)}`;
        // Wrong credentials do not get better by waiting.
        if ((e as { errno?: number }).errno === 1045) break;
      }
    }
    if (Date.now() >= deadline) break;
    await sleep(1000);
  }
  throw new StepError(`${inst.host}:${port} ${inst.unit}: ${last}`, {
    suggestion: `check ${path.posix.join(inst.logDir, 'tidb.log')} on ${inst.host}; fix it and re-run the same command (it resumes), or run \`tiseal sql-tls disable\` to roll back`,
  });
}

/**
 * How long a TiDB that passed its gate stays up before the next one goes down: a load balancer
 * only sends traffic to it again once its health checks pass (HAProxy as TiDB documents it:
 * `check inter 2000 rise 2`, up to 4 s). Without it the next restart leaves the balancer no TiDB.
 */
export const LB_SETTLE_MS = 5000;

/** One step per TiDB, in topology order: restart it and pass the gate before the next one goes down. */
export function sqlRestartSteps(ctx: Pick<SqlTlsContext, 'topology'>, settleMs = LB_SETTLE_MS): Step<SqlTlsContext>[] {
  // When the TiDB restarted before this one (in this run) passed its gate.
  let previous: { at: number; inst: Instance } | undefined;
  return tidbInstances(ctx).map((inst) => {
    let gateNote = '';
    let restarted = false;
    return {
      id: `sql-restart-${inst.id}@${inst.host}`,
      title: `Restart ${inst.unit} on ${inst.host} and check its MySQL port`,
      async decide(c: SqlTlsContext) {
        const why = await sqlRestartReason(c, inst);
        if (!why) return noop(`already serves SQL TLS ${c.sql.want}`);
        // TiDB loads require_secure_transport before its TLS config; with it ON and ssl-ca set that config
        // demands a client certificate from every TLS client (pkg/util/misc.go; pingcap/tidb#69870).
        if (c.sql.want === 'on' && (await clusterRequire(c, inst))) {
          throw new StepError(`${inst.host}:${mysqlPort(inst)} ${inst.unit}: require_secure_transport is ON: restarted now with ssl-ca set, this TiDB would refuse every TLS client without a client certificate (pingcap/tidb#69870)`, {
            suggestion: 'nothing was restarted (the files are staged): run `tiseal sql-tls require --off`, re-run `tiseal sql-tls enable` (it resumes), then `tiseal sql-tls require`',
          });
        }
        const settle = previous && settleMs > 0 ? `; first ${Math.ceil(settleMs / 1000)} s for load balancers to take ${previous.inst.host}:${mysqlPort(previous.inst)} back` : '';
        return {
          actions: [
            {
              title: `restart ${inst.unit} on ${inst.host} (${why}${settle})`,
              run: async () => {
                if (previous) await sleep(previous.at + settleMs - Date.now());
                runStats.restartIssued(inst, 'tidb');
                restarted = true;
                await systemctl(await executorFor(c, inst), 'restart', inst.unit);
              },
            },
          ],
        };
      },
      async verify(c: SqlTlsContext) {
        gateNote = await sqlGate(c, inst);
        // A TiDB that was not restarted never left the balancer: nothing to wait for.
        if (restarted) previous = { at: Date.now(), inst };
        c.notes.push(`${inst.host}:${mysqlPort(inst)}: ${gateNote}`);
      },
    };
  });
}
