import * as TOML from '@iarna/toml';
import type { Step } from '../../engine/step';
import { PreflightError, StepError } from '../../errors';
import { parseCertificate } from '../../pki';
import { openSqlSession, sqlErrorText } from '../../sql/session';
import { readLiveRequire } from '../../sql/require';
import { probeMysqlTls } from '../../sql/starttls';
import { readSqlTlsKeys, sqlTlsPaths } from '../../sql/tidb-keys';
import type { Instance } from '../../topology/types';
import { sleep } from '../../util/concurrency';
import { executorFor } from '../context';
import { readRemoteText, unitStates } from '../remote';
import { fileAction } from '../certs/stage';
import { mysqlPort, SqlTlsContext, tidbInstances } from './context';
import { tidbToml } from './stage';

/** Rotation replaces the files tidb.toml already names: every TiDB must have SQL TLS on with tiseal's paths. */
export async function checkRotatable(ctx: SqlTlsContext): Promise<void> {
  for (const inst of tidbInstances(ctx)) {
    const text = await readRemoteText(await executorFor(ctx, inst), tidbToml(inst));
    const cfg = readSqlTlsKeys(text ? (TOML.parse(text) as Record<string, unknown>) : {});
    const p = sqlTlsPaths(inst);
    if (cfg.state !== 'on') throw new PreflightError(`${inst.host} ${inst.unit}: SQL TLS is ${cfg.state} in ${tidbToml(inst)}; there is nothing to rotate`, { suggestion: 'run `tiseal sql-tls enable` first; nothing was changed' });
    if (cfg.cert !== p.cert || cfg.key !== p.key) throw new PreflightError(`${inst.host} ${inst.unit}: ssl-cert/ssl-key point at ${cfg.cert} and ${cfg.key}, not tiseal's ${p.cert} and ${p.key}`, { suggestion: 'run `tiseal sql-tls enable` to move them to tiseal\'s files first; nothing was changed' });
  }
}

/*
 * TiDB loads its TLS config with RequireAndVerifyClientCert when require_secure_transport is on and
 * ssl-ca is set (pkg/util/misc.go LoadTLSCertificates; pingcap/tidb#69870): a reload then refuses
 * every TLS client without a client certificate. Rotation must not switch that on by surprise.
 */
const requireWithCa = (inst: Instance, why: string) =>
  `${inst.host} ${inst.unit}: ${why} and ssl-ca is set: after ALTER INSTANCE RELOAD TLS, TiDB would refuse every TLS client without a client certificate (pingcap/tidb#69870)`;
const REQUIRE_WITH_CA_FIX = 'run `tiseal sql-tls require --off` first, rotate, then require again; nothing was changed';

/**
 * The require side of checkRotatable, read live (read-only SQL over verified TLS): from v6.1 the
 * variable is all there is (tidb.toml's key is ignored), and before v6.1 the key sets it too.
 */
export async function checkLiveRequire(ctx: SqlTlsContext): Promise<void> {
  for (const inst of tidbInstances(ctx)) {
    let on: boolean;
    try {
      on = (await readLiveRequire({ host: inst.host, port: mysqlPort(inst), tls: { ca: ctx.sql.caPem, verify: true } }, ctx.sql.creds)).on;
    } catch (e) {
      throw new StepError(`${inst.host}:${mysqlPort(inst)}: cannot log in over TLS as ${ctx.sql.creds.user}: ${sqlErrorText(e)}`, { suggestion: 'check --sql-user/--sql-password-file and that the port serves the SQL CA; nothing was changed' });
    }
    if (on) throw new StepError(requireWithCa(inst, 'require_secure_transport is ON'), { suggestion: REQUIRE_WITH_CA_FIX });
  }
}

const serialOf = (pem: string) => parseCertificate(pem).serialHex.toLowerCase().replace(/^0+/, '');

/**
 * One TiDB: new key and certificate in place (backed up, atomic), then `ALTER INSTANCE RELOAD TLS`
 * over SQL, so TiDB serves them without a restart; the gate checks the served serial.
 */
export function sqlRotateSteps(ctx: Pick<SqlTlsContext, 'topology'>): Step<SqlTlsContext>[] {
  return tidbInstances(ctx).map((inst: Instance) => {
    let wantSerial = '';
    let activeEnterUs = 0;
    return {
      id: `sql-rotate-${inst.id}@${inst.host}`,
      title: `Rotate the SQL certificate of ${inst.unit} on ${inst.host} (ALTER INSTANCE RELOAD TLS, no restart)`,
      async decide(c: SqlTlsContext) {
        const exec = await executorFor(c, inst);
        const p = sqlTlsPaths(inst);
        const current = await readRemoteText(exec, p.cert);
        let keep: string[] = [];
        try {
          if (current) keep = [...parseCertificate(current).sans.dns, ...parseCertificate(current).sans.ip];
        } catch {
          keep = []; // an unreadable certificate is replaced with the topology's names
        }
        const leaf = await c.sql.leafFor!(inst, keep, current);
        wantSerial = serialOf(leaf.certPem);
        activeEnterUs = (await unitStates(exec, [inst.unit])).get(inst.unit)?.activeEnterUs ?? 0;
        const ca = await readRemoteText(exec, p.ca);
        const files = [
          ...(ca !== c.sql.caPem ? [fileAction(c, inst, p.ca, ca, c.sql.caPem!, 0o644)] : []),
          fileAction(c, inst, p.key, await readRemoteText(exec, p.key), leaf.keyPem, 0o600),
          fileAction(c, inst, p.cert, current, leaf.certPem, 0o644),
        ];
        return {
          actions: [
            ...files,
            {
              title: `ALTER INSTANCE RELOAD TLS on ${inst.host}:${mysqlPort(inst)}`,
              run: async () => {
                const s = await openSqlSession({ host: inst.host, port: mysqlPort(inst), tls: { ca: c.sql.caPem, verify: true } }, c.sql.creds).catch((e) => {
                  throw new StepError(`${inst.host}:${mysqlPort(inst)}: cannot log in as ${c.sql.creds.user}: ${sqlErrorText(e)}`, { suggestion: 'the new files are in place; fix the login and re-run `tiseal sql-tls rotate` (or restart the TiDB)' });
                });
                try {
                  await s.query('ALTER INSTANCE RELOAD TLS');
                } catch (e) {
                  // TiDB keeps serving the old pair when the new one does not load.
                  throw new StepError(`${inst.host}:${mysqlPort(inst)}: ALTER INSTANCE RELOAD TLS: ${sqlErrorText(e)}`, { suggestion: `TiDB still serves the previous certificate; check ${p.cert} and ${p.key} on ${inst.host} and re-run \`tiseal sql-tls rotate\`` });
                } finally {
                  await s.close();
                }
              },
            },
          ],
        };
      },
      async verify(c: SqlTlsContext) {
        const deadline = Date.now() + 15_000;
        let last = '';
        for (;;) {
          const probe = await probeMysqlTls(inst.host, mysqlPort(inst), { ca: c.sql.caPem });
          const served = probe.peer?.serialHex.replace(/^0+/, '') ?? '';
          if (probe.kind === 'tls' && (c.sql.issued ? probe.authorized : probe.chainVerified) && served === wantSerial) break;
          last = probe.kind !== 'tls' ? `no TLS (${probe.error ?? probe.kind})` : served !== wantSerial ? `serves serial ${served}, not the new ${wantSerial}` : `certificate not verified: ${probe.error}`;
          if (Date.now() >= deadline) throw new StepError(`${inst.host}:${mysqlPort(inst)}: after ALTER INSTANCE RELOAD TLS the MySQL port ${last}`, { suggestion: `check ${inst.logDir}/tidb.log on ${inst.host}; re-run \`tiseal sql-tls rotate\`` });
          await sleep(500);
        }
        const now = (await unitStates(await executorFor(c, inst), [inst.unit])).get(inst.unit)?.activeEnterUs ?? 0;
        if (activeEnterUs && now !== activeEnterUs) throw new StepError(`${inst.host} ${inst.unit} restarted during the rotation`, { suggestion: `check journalctl -u ${inst.unit} on ${inst.host}` });
        c.notes.push(`${inst.host}:${mysqlPort(inst)} serves serial ${wantSerial.slice(0, 16)}…, not restarted`);
      },
    };
  });
}
